"""`inventory-sync run` (the operator) and `inventory-sync trigger` (a manual run request)."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

import kopf

from inventory_sync.errors import SpecError
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import GROUP, VERSION
from inventory_sync.operating.context import OperatorContext
from inventory_sync.operating.handlers import build_registry
from inventory_sync.reconciling.due import REQUESTED_AT
from inventory_sync.running.resource import FABRIC, SYNC_SCHEDULE, ResourceKind
from inventory_sync.settings import Settings
from inventory_sync.store.embedded import (
    HOW_TO_USE_A_REAL_SERVER,
    require_embedded,
    start_embedded,
)

logger = logging.getLogger(__name__)


def run_operator(settings: Settings, *, connection: KubeConnection | None = None) -> int:
    """Run until SIGTERM/SIGINT.

    In a pod INVENTORY_SYNC_DATABASE_URL is required: data in a pod-local embedded server
    would vanish with the pod. Outside a cluster (a laptop against `make dev-cluster`) the
    embedded server is used, with a warning.
    """
    database_url = settings.database_url
    if not database_url:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise SpecError("INVENTORY_SYNC_DATABASE_URL is required when running in a cluster")
        require_embedded()
        logger.warning(
            "no database URL: using an embedded PostgreSQL (%s)", HOW_TO_USE_A_REAL_SERVER
        )
        database_url = start_embedded()
    context = OperatorContext(
        settings=settings,
        connection=connection or KubeConnection.default(),
        database_url=database_url,
    )
    namespaces = settings.namespaces
    # Active-active: every replica watches and schedules, and the per-resource lease in
    # PostgreSQL is the only guard (docs/operator.md, "Several replicas"). kopf peering is
    # never used: a paused peer kept running its scheduler, and it is no lock anyway.
    kopf.run(
        registry=build_registry(context),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        liveness_endpoint=settings.health_url,
    )
    return 0


def parse_target(target: str) -> tuple[ResourceKind, str]:
    """`syncschedules/NAME`, `fabrics/NAME` (also singular, or fully qualified as
    `fabrics.inventorysync.dev/NAME`) → (kind, name). Whatever the spelling, the request goes
    to this operator's own API group: never to another group's resource of the same name
    (Hedgehog declares the category `fabric` and Fabricator the short name `fab`)."""
    kind_text, _, name = target.partition("/")
    resource, _, group = kind_text.lower().partition(".")
    aliases = {
        "syncschedule": SYNC_SCHEDULE, "syncschedules": SYNC_SCHEDULE, "ss": SYNC_SCHEDULE,
        "fabric": FABRIC, "fabrics": FABRIC,
    }  # fmt: skip
    kind = aliases.get(resource)
    if kind is None or not name or group not in ("", GROUP):
        raise SpecError(f"target {target!r}: use syncschedules/NAME or fabrics/NAME")
    return kind, name


async def trigger(
    target: str,
    *,
    namespace: str,
    wait: bool,
    wait_seconds: float,
    connection: KubeConnection | None = None,
) -> tuple[int, str]:
    """Set reconcile.fluxcd.io/requestedAt (as `flux reconcile` does); with wait, follow the
    run until status.lastHandledReconcileAt echoes it. Returns (exit code, message).

    With wait, a suspended resource is refused at once (no run would ever answer) and a
    stalled one is answered by the operator with its Stalled condition, then the message.
    """
    kind, name = parse_target(target)
    client = KubeClient(connection or KubeConnection.default())
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}/{name}"
    what = f"{kind.kind} {namespace}/{name}"
    requested = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    try:
        body = await client.get(path)
        if body is None:
            return 1, f"{what} not found"
        suspended = (body.get("spec") or {}).get("suspend") is True
        if suspended and wait:  # no run would ever answer: say so instead of waiting it out
            return (
                1,
                f"{what} is suspended (spec.suspend: true): no run will start; resume it first",
            )
        await client.patch_merge(path, {"metadata": {"annotations": {REQUESTED_AT: requested}}})
        if not wait:
            later = " (suspended: it runs once resumed)" if suspended else ""
            return 0, f"{what}: run requested at {requested}{later}"
        async with asyncio.timeout(wait_seconds):
            while True:
                body = await client.get(path) or {}
                answer = _answer(body, requested)
                if answer is not None:
                    code, text = answer
                    return code, f"{what}: {text}"
                await asyncio.sleep(0.5)
    except TimeoutError:
        return 1, f"{what}: no run answered the request within {wait_seconds:.0f}s"
    finally:
        await client.aclose()


def _answer(body: dict[str, Any], requested: str) -> tuple[int, str] | None:
    """(exit code, message) once the request is answered or cannot be; None: keep waiting."""
    if (body.get("spec") or {}).get("suspend") is True:
        return 1, "suspended while waiting: no run will start"
    status = body.get("status") or {}
    if status.get("lastHandledReconcileAt") != requested:
        return None
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    stalled = conditions.get("Stalled") or {}
    if stalled.get("status") == "True":
        return 1, f"stalled: {stalled.get('reason', '')}: {stalled.get('message', '')}"
    ready = conditions.get("Ready") or {}
    return (0 if ready.get("status") == "True" else 1), str(ready.get("message", ""))
