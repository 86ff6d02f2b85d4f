"""`inventory-sync doctor`: every check family in order, one report (the entry point of doctoring).

Order: the API server (nothing else on Kubernetes runs without it), the CRDs, the operator's
RBAC, the database, the Secrets, the upstream credentials (opt-in), the resources. A family
that cannot run says so in its own line; the others still run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from inventory_sync.doctoring import access, cluster, crds, credentials, database, resources
from inventory_sync.doctoring import scope as scoping
from inventory_sync.doctoring import secrets as secret_checks
from inventory_sync.doctoring.findings import Finding, Report, failed
from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.settings import Settings

# Doctor is interactive: a dead API server or database should answer within seconds.
KUBE_TIMEOUT = 15.0
DATABASE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Options:
    """What `doctor`'s command line asked for."""

    namespaces: tuple[str, ...] = ()
    #: `--as-operator NAMESPACE/NAME`: whose RBAC to review (None: doctor's own identity).
    operator: str | None = None
    database_url: str | None = None
    check_credentials: bool = False


async def doctor(
    options: Options,
    *,
    settings: Settings,
    connect: Callable[[], KubeConnection],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    """Run every check; `connect` builds the Kubernetes connection (its failure is a finding,
    so the database is still checked)."""
    subject = access.Subject.parse(options.operator)  # a bad flag is bad input: raise now
    findings: list[Finding] = []
    async with contextlib.AsyncExitStack() as stack:
        client: KubeClient | None = None
        try:
            client = KubeClient(connect(), timeout=KUBE_TIMEOUT, get_retries=1)
        except InventorySyncError as error:
            findings.append(failed(cluster.CHECK, "kubeconfig", public_message(error, limit=500)))
        identity: cluster.Identity | None = None
        if client is not None:
            await stack.enter_async_context(client)
            identity, found = await cluster.check(client)
            findings += found
        scope: scoping.Scope | None = None
        if client is not None and identity is not None:
            findings += await crds.check(client)
            scope, listing = await scoping.load(client, options.namespaces)
            findings += await access.check(client, scope, subject=subject, identity=identity)
            findings += listing
        url = options.database_url or settings.database_url
        findings += await database.check(url, seconds=DATABASE_TIMEOUT)
        if client is not None and scope is not None:
            findings += await secret_checks.check(client, scope)
            if options.check_credentials:
                findings += await credentials.check(
                    client, scope, policy=settings.endpoint_policy,
                    seconds=min(settings.request_timeout_seconds, KUBE_TIMEOUT),
                )  # fmt: skip
            findings += resources.check(scope, now=clock())
    return Report.of(findings)
