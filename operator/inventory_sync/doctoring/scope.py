"""What doctor looks at: the SyncSchedules and Fabrics in the chosen namespaces, listed once and shared by the checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inventory_sync.doctoring.findings import Finding, failed, warned
from inventory_sync.durations import parse_duration
from inventory_sync.errors import InventorySyncError, KubeNotFound, public_message
from inventory_sync.kube import KubeClient, resource_path
from inventory_sync.models import (
    DEFAULT_TIMEOUT,
    GROUP,
    VERSION,
    FabricSpec,
    SyncScheduleSpec,
    parse_fabric_spec,
    parse_sync_schedule_spec,
)
from inventory_sync.reconciling.due import parse_time

SYNC_SCHEDULE, FABRIC = "SyncSchedule", "Fabric"
#: Kind → plural, in the order the report lists them.
KINDS = {SYNC_SCHEDULE: "syncschedules", FABRIC: "fabrics"}
# A page of a list: big enough that a typical installation is one request per kind.
_PAGE = 500


@dataclass(frozen=True)
class Resource:
    """One SyncSchedule or Fabric as the API server returned it (read generically: the status
    fields doctor reads are the documented ones, whatever operator version wrote them)."""

    kind: str
    body: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.body.get("metadata") or {}
        return meta

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "default")

    @property
    def name(self) -> str:
        return str(self.meta.get("name"))

    @property
    def label(self) -> str:
        """`SyncSchedule team-a/inventory`: the subject of a report line."""
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.body.get("spec") or {}
        return spec

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.body.get("status") or {}
        return status

    @property
    def created(self) -> datetime | None:
        return parse_time(self.meta.get("creationTimestamp"))

    def parsed(self) -> SyncScheduleSpec | FabricSpec:
        """The spec as the operator validates it; SpecError names the field."""
        if self.kind == SYNC_SCHEDULE:
            return parse_sync_schedule_spec(self.spec)
        return parse_fabric_spec(self.spec)

    @property
    def interval(self) -> timedelta | None:
        """spec.interval, or None when it does not parse (the operator stalls such a spec)."""
        return _duration(self.spec.get("interval"))

    @property
    def timeout(self) -> timedelta | None:
        """How long a run may take: spec.timeout, else the smaller of 10 minutes and the
        interval (the operator's rule for both kinds; a Fabric has no timeout field)."""
        interval = self.interval
        explicit = _duration(self.spec.get("timeout")) if self.kind == SYNC_SCHEDULE else None
        if explicit is not None:
            return explicit
        return None if interval is None else min(DEFAULT_TIMEOUT, interval)

    def condition(self, type: str) -> dict[str, Any] | None:
        conditions = self.status.get("conditions") or []
        return next((c for c in conditions if isinstance(c, dict) and c.get("type") == type), None)


def _duration(value: Any) -> timedelta | None:
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass
class Scope:
    """The namespaces asked for (empty: all) and what was found in them."""

    namespaces: tuple[str, ...]
    resources: list[Resource] = field(default_factory=list)
    #: Kinds whose listing failed (their findings say why); their checks have nothing to judge.
    unlisted: set[str] = field(default_factory=set)

    @property
    def everywhere(self) -> bool:
        return not self.namespaces

    @property
    def where(self) -> str:
        """`across all namespaces` / `in namespace a` / `in namespaces a, b`, for messages."""
        if self.everywhere:
            return "across all namespaces"
        plural = "s" if len(self.namespaces) > 1 else ""
        return f"in namespace{plural} {', '.join(self.namespaces)}"

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]


async def load(client: KubeClient, namespaces: Sequence[str]) -> tuple[Scope, list[Finding]]:
    """List both kinds in each namespace (or across all). A kind whose CRD is missing lists as
    empty (the crds check reports it); a refused list is a finding."""
    scope = Scope(tuple(dict.fromkeys(namespaces)))
    findings: list[Finding] = []
    for name in scope.namespaces:
        try:
            exists = await client.get(resource_path("", "v1", "namespaces", None, name)) is not None
        except InventorySyncError:
            continue  # may not read namespaces: listing in it says enough
        if not exists:
            findings.append(warned("resources", f"namespace {name}", "does not exist"))
    for kind, plural in KINDS.items():
        targets: Sequence[str | None] = scope.namespaces or [None]
        for namespace in targets:
            path = resource_path(GROUP, VERSION, plural, namespace)
            try:
                async for page in client.list_pages(path, limit=_PAGE):
                    scope.resources += [Resource(kind, item) for item in page.items]
            except KubeNotFound:
                continue
            except InventorySyncError as error:
                scope.unlisted.add(kind)
                findings.append(
                    failed("resources", plural, f"cannot list them: {public_message(error)}")
                )
                break
    return scope, findings
