"""The kopf layer: thin handlers that feed the scheduler. kopf appears nowhere else."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.kube.sessions import KopfLogin, open_session
from inventory_sync.models import GROUP, VERSION
from inventory_sync.operating.context import OperatorContext, SchedulerDown
from inventory_sync.running.resource import FABRIC, KINDS, ResourceKind

# Our own prefix for anything kopf stores, so nothing of kopf's lands in .status.
PREFIX = "inventorysync.dev"


def build_registry(context: OperatorContext) -> kopf.OperatorRegistry:
    """A registry per operator instance (tests run several in one process)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        """Configure kopf's bookkeeping and start the pool, API client and scheduler."""
        configure(settings, namespaced=bool(context.settings.namespaces))
        await context.start()

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        """Cancel runs in flight and close connections."""
        await context.stop()

    logins = KopfLogin(context.connection)

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.AiohttpSession:
        """kopf watches with the identity of the operator's own client, exactly as the
        kubeconfig says (proxy, tls-server-name, impersonation); after a 401 the credential is
        renewed (an exec plugin runs again) or, when it cannot change, the operator stops."""
        connection = context.connection
        try:
            credential = await logins.credential()
            session = open_session(connection, credential)
        except InventorySyncError as error:
            if error.permanent:  # kopf would otherwise retry a hopeless login for ever
                raise kopf.PermanentError(public_message(error, limit=1024)) from error
            raise kopf.TemporaryError(public_message(error, limit=1024), delay=10) from error
        return kopf.AiohttpSession(
            server=connection.server,
            aiohttp_session=session,
            default_namespace=connection.namespace,
            expiration=credential.expires_at,
        )

    @kopf.on.probe(id="scheduler", registry=registry)
    def probe(**_: Any) -> dict[str, object]:
        """Liveness: fails when the scheduler died or stopped ticking. kopf retries a probe
        that raises anything else after a backoff, which leaves /healthz hanging instead of
        failing; a PermanentError fails the request at once."""
        try:
            return context.healthy()
        except SchedulerDown as error:
            raise kopf.PermanentError(str(error)) from error

    for kind in KINDS:
        _watch(registry, context, kind)
    return registry


def _watch(registry: kopf.OperatorRegistry, context: OperatorContext, kind: ResourceKind) -> None:
    @kopf.on.event(GROUP, VERSION, kind.plural, registry=registry, id=f"watch-{kind.plural}")
    async def on_event(*, event: kopf.RawEvent, uid: str, **_: Any) -> None:
        """Every watch event updates the scheduler's view; deletion cancels a run in flight.

        async on purpose: kopf runs a plain `def` handler in a worker thread, and the
        scheduler's state belongs to the event loop alone (a thread adding a resource while
        the loop iterated them killed the scheduler under 200 resources)."""
        scheduler = context.scheduler
        if scheduler is None:
            return
        if event.get("type") == "DELETED":
            scheduler.forget(uid)
            if kind is FABRIC:
                context.fabric_deleted()  # retire its rows now, not at the next period
        else:
            scheduler.observe(kind, dict(event["object"]))


def configure(settings: kopf.OperatorSettings, *, namespaced: bool = False) -> None:
    # Watching named namespaces, kopf would list the cluster's namespaces (to match patterns),
    # which the chart's namespaced RBAC refuses: it retried the 403 for over 30 s before
    # falling back to the names as given, and no resource was watched meanwhile. Our names are
    # exact, so say so up front.
    settings.scanning.disabled = namespaced
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    # We post one Event per run outcome ourselves; kopf's per-handler chatter stays in the log.
    settings.posting.enabled = False
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
