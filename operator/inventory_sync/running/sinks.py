"""Where a run's status and Events go: the API server for the operator, memory for the CLI (running layer)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

from inventory_sync.errors import KubeNotFound
from inventory_sync.kube import KubeClient
from inventory_sync.models import GROUP, VERSION
from inventory_sync.running.resource import Tracked


class StatusSink(Protocol):
    """Merge-patches a resource's status; returns the body as stored.

    Raises KubeNotFound when the resource is gone, another KubernetesError when the write
    failed (the report step decides whether to retry)."""

    async def patch(self, resource: Tracked, patch: dict[str, Any]) -> dict[str, Any]: ...


class EventSink(Protocol):
    """Records an Event about a resource; a failure to do so never fails a run."""

    async def post(
        self, resource: Tracked, *, warning: bool, reason: str, message: str
    ) -> None: ...


class KubeStatusSink:
    """The status subresource, by JSON merge patch: never spec, never a whole-object replace."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def patch(self, resource: Tracked, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._kube.patch_status(
            group=GROUP,
            version=VERSION,
            plural=resource.kind.plural,
            namespace=resource.namespace,
            name=resource.name,
            patch={"status": patch},
        )


class KubeEventSink:
    """core/v1 Events on the resource, naming this replica as the reporting instance."""

    def __init__(self, kube: KubeClient, *, instance: str) -> None:
        self._kube = kube
        self._instance = instance

    async def post(self, resource: Tracked, *, warning: bool, reason: str, message: str) -> None:
        await self._kube.create_event(
            involved=resource.reference,
            type="Warning" if warning else "Normal",
            reason=reason,
            message=message,
            action="Sync",
            reporting_instance=self._instance,
        )


@dataclass
class MemoryStatusSink:
    """The CLI's sink: applies each patch to the body it holds, so the status the operator
    would have written can be printed."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def patch(self, resource: Tracked, patch: dict[str, Any]) -> dict[str, Any]:
        if resource.uid not in self.bodies:
            self.bodies[resource.uid] = copy.deepcopy(resource.body)
        body = self.bodies[resource.uid]
        if body.get("metadata", {}).get("deletionTimestamp"):
            raise KubeNotFound("the resource is gone")
        body["status"] = merge_patch(body.get("status") or {}, patch)
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
        return copy.deepcopy(body)

    def status(self, resource: Tracked) -> dict[str, Any]:
        status: dict[str, Any] = self.bodies.get(resource.uid, resource.body).get("status") or {}
        return status


@dataclass
class MemoryEventSink:
    """The CLI's (and tests') Events: kept in order as (type, reason, message)."""

    events: list[tuple[str, str, str]] = field(default_factory=list)

    async def post(self, resource: Tracked, *, warning: bool, reason: str, message: str) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies a merge patch: null deletes, objects merge, the
    rest (lists included) replaces."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            current = merged.get(key)
            merged[key] = merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
