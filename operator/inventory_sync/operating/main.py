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
from inventory_sync.operating.kinds import FABRIC, SYNC_SCHEDULE, ResourceKind
from inventory_sync.reconciling.due import REQUESTED_AT
from inventory_sync.settings import Settings
from inventory_sync.store.embedded import HOW_TO_USE_A_REAL_SERVER, start_embedded

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
    kopf.run(
        registry=build_registry(context),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.peering_priority,
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz"
        if settings.health_port
        else None,
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
    run until status.lastHandledReconcileAt echoes it. Returns (exit code, message)."""
    kind, name = parse_target(target)
    client = KubeClient(connection or KubeConnection.default())
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}/{name}"
    requested = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    try:
        await client.patch_merge(path, {"metadata": {"annotations": {REQUESTED_AT: requested}}})
        if not wait:
            return 0, f"{kind.kind} {namespace}/{name}: run requested at {requested}"
        async with asyncio.timeout(wait_seconds):
            while True:
                body = await client.get(path) or {}
                status = body.get("status") or {}
                if status.get("lastHandledReconcileAt") == requested:
                    ready: dict[str, Any] = next(
                        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
                    )
                    code = 0 if ready.get("status") == "True" else 1
                    return code, f"{kind.kind} {namespace}/{name}: {ready.get('message', '')}"
                await asyncio.sleep(0.5)
    except TimeoutError:
        return (
            1,
            f"{kind.kind} {namespace}/{name}: no run answered the request within {wait_seconds:.0f}s",
        )
    finally:
        await client.aclose()
