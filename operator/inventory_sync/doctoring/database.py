"""Doctor's database check: PostgreSQL reachable, and its schema at the version this build ships (read only).

doctor never applies migrations (the operator does on start, `inventory-sync migrate` does
on request) and never starts the embedded server: with no URL there is nothing to check, and
a private empty database would only say "not migrated".
"""

from __future__ import annotations

from inventory_sync.doctoring.findings import Finding, failed, passed, warned
from inventory_sync.errors import StoreError, public_message
from inventory_sync.store.database import redact_url
from inventory_sync.store.versions import SchemaState, read_schema_state

CHECK = "database"
MIGRATE = "start the operator of this build (it migrates on start) or run `inventory-sync migrate`"


async def check(url: str | None, *, seconds: float) -> list[Finding]:
    if not url:
        return [
            warned(
                CHECK,
                "connection",
                "not checked: pass --database-url or set "
                "INVENTORY_SYNC_DATABASE_URL (the operator's is in its database Secret)",
            )
        ]
    where = redact_url(url)
    try:
        state = await read_schema_state(url, seconds=seconds)
    except StoreError as error:
        return [failed(CHECK, "connection", public_message(error, limit=500))]
    return [
        passed(CHECK, "connection", f"{where} reachable (PostgreSQL {state.server_version})"),
        *schema_findings(state),
    ]


def schema_findings(state: SchemaState) -> list[Finding]:
    """Behind this build is a failure (the operator would migrate, or its queries would fail on
    a database another process keeps old); ahead is a warning (a newer build migrated it)."""
    if state.applied is None:
        return [failed(CHECK, "schema", f"not migrated (no schema_migrations table): {MIGRATE}")]
    newest = max((m.version for m in state.shipped), default=0)
    findings = []
    missing = state.missing
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        at = f"{state.current:04d}" if state.current is not None else "none"
        findings.append(
            failed(
                CHECK,
                "schema",
                f"behind this build (at {at}, this build ships {newest:04d}):"
                f" {len(missing)} migration(s) not applied ({names}): {MIGRATE}",
            )
        )
    if state.unknown:
        versions = ", ".join(f"{v:04d}" for v in state.unknown)
        findings.append(
            warned(
                CHECK,
                "schema",
                f"ahead of this build: migration(s) {versions} are not "
                "shipped with it; a newer operator migrated this database, and this one "
                "may not understand its tables",
            )
        )
    if not findings:
        findings.append(
            passed(
                CHECK,
                "schema",
                f"at {newest:04d} ({len(state.shipped)} migrations), as this build ships",
            )
        )
    return findings
