"""The two custom resources as a run sees them: how to parse, time and identify each (running layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from inventory_sync.models import (
    DEFAULT_TIMEOUT,
    GROUP,
    VERSION,
    FabricSpec,
    SyncScheduleSpec,
    parse_fabric_spec,
    parse_sync_schedule_spec,
)
from inventory_sync.reconciling.view import parse_time
from inventory_sync.store.runs import ResourceIdentity

AnySpec = SyncScheduleSpec | FabricSpec


@dataclass(frozen=True)
class ResourceKind:
    kind: str
    plural: str

    def parse(self, spec: dict[str, Any]) -> AnySpec:
        """Validate the spec; SpecError names the field (what the CRD schema cannot catch)."""
        if self.kind == "SyncSchedule":
            return parse_sync_schedule_spec(spec)
        return parse_fabric_spec(spec)


SYNC_SCHEDULE = ResourceKind("SyncSchedule", "syncschedules")
FABRIC = ResourceKind("Fabric", "fabrics")
KINDS = (SYNC_SCHEDULE, FABRIC)


def timeout_of(spec: AnySpec) -> timedelta:
    """How long a run may take, for both kinds: the one place the run timeout is decided."""
    if isinstance(spec, SyncScheduleSpec):
        return spec.effective_timeout
    return min(DEFAULT_TIMEOUT, spec.interval)


def run_on_startup(spec: AnySpec) -> bool:
    return spec.run_on_startup if isinstance(spec, SyncScheduleSpec) else True


def history_limit(spec: AnySpec) -> int:
    return spec.history_limit if isinstance(spec, SyncScheduleSpec) else 10


@dataclass
class Tracked:
    """One watched resource: its latest body (from watch events or our own patch responses)."""

    kind: ResourceKind
    body: dict[str, Any]

    def take_newer(self, body: dict[str, Any] | None) -> None:
        """Keep `body` if it is at least as new as the one held (our patch responses and
        watch events race; an older one must never win)."""
        if body is not None and newer(body, self.body):
            self.body = body

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.body.get("metadata") or {}
        return meta

    @property
    def uid(self) -> str:
        return str(self.meta.get("uid"))

    @property
    def name(self) -> str:
        return str(self.meta.get("name"))

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "default")

    @property
    def generation(self) -> int | None:
        value = self.meta.get("generation")
        return int(value) if isinstance(value, int) else None

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.body.get("status") or {}
        return status

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.meta.get("annotations") or {}).items()}

    @property
    def resource_version(self) -> str:
        return str(self.meta.get("resourceVersion") or "")

    @property
    def created_at(self) -> datetime:
        created = parse_time(self.meta.get("creationTimestamp"))
        assert created is not None, "the API server always sets creationTimestamp"
        return created

    @property
    def identity(self) -> ResourceIdentity:
        return ResourceIdentity(
            kind=self.kind.kind, namespace=self.namespace, name=self.name, uid=self.uid
        )

    @property
    def reference(self) -> dict[str, str]:
        """The involvedObject of an Event about this resource."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": self.kind.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


def newer(body: dict[str, Any], than: dict[str, Any]) -> bool:
    """resourceVersion is opaque, but etcd's are integers; equal or unparsable → take the new."""
    try:
        return int(body["metadata"]["resourceVersion"]) >= int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True
