"""Everything the operator holds for its lifetime: pool, API client, upstream session, scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from prometheus_client import start_http_server

from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.metrics import Metrics
from inventory_sync.models import GROUP, VERSION
from inventory_sync.operating.pruning import ChangeLogPruning
from inventory_sync.operating.retiring import FabricRetirement
from inventory_sync.operating.scheduler import RECHECK_AFTER_ERROR, Listing, Scheduler
from inventory_sync.operating.secrets import KubeSecrets
from inventory_sync.running.resource import KINDS
from inventory_sync.running.runner import Runner
from inventory_sync.running.sinks import KubeEventSink, KubeStatusSink
from inventory_sync.running.steps import Backoff, Clock, RunDeps, utcnow
from inventory_sync.settings import Settings
from inventory_sync.store.database import open_pool
from inventory_sync.store.runs import RunStore
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

logger = logging.getLogger(__name__)

# A scheduler that has not ticked for this long is stuck: /healthz fails and the pod restarts.
MAX_TICK_AGE = timedelta(seconds=60)


class SchedulerDown(RuntimeError):
    """The scheduler stopped (crashed or stuck): the liveness probe fails at once."""


@dataclass
class OperatorContext:
    """Built before kopf starts; started and stopped by kopf's startup and cleanup handlers."""

    settings: Settings
    connection: KubeConnection
    database_url: str
    clock: Clock = utcnow
    metrics: Metrics = field(default_factory=Metrics)
    recheck_after_error: timedelta = RECHECK_AFTER_ERROR
    scheduler: Scheduler | None = None
    #: This process as a lease holder: its name plus a token, so a restarted pod (same name)
    #: is a new holder and never mistakes a dead predecessor's lease for its own.
    holder: str = ""
    _pool: asyncpg.Pool | None = None
    _kube: KubeClient | None = None
    _session: UpstreamSession | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _retirement: FabricRetirement | None = None
    pruning: ChangeLogPruning | None = None

    async def start(self) -> None:
        settings = self.settings
        self.holder = self.holder or f"{settings.instance}/{secrets.token_hex(4)}"
        self._pool = await open_pool(self.database_url, max_size=settings.database_pool_size)
        self._kube = KubeClient(self.connection, timeout=settings.request_timeout_seconds)
        self._session = UpstreamSession(
            request_timeout=settings.request_timeout_seconds,
            endpoint_policy=settings.endpoint_policy,
            policy=RetryPolicy(max_attempts=settings.max_retries),
            concurrency_per_client=settings.upstream_concurrency_per_client,
        )
        store = RunStore(
            self._pool, holder=self.holder, lease_ttl=timedelta(seconds=settings.lease_seconds)
        )
        deps = RunDeps(
            store=store, pool=self._pool, session=self._session, secrets=KubeSecrets(self._kube),
            status=KubeStatusSink(self._kube),
            events=KubeEventSink(self._kube, instance=settings.instance), kube=self._kube,
            metrics=self.metrics, clock=self.clock, renew_every=settings.lease_renew_seconds,
            status_retry=Backoff(most=settings.status_retry_max_seconds),
            limit=asyncio.Semaphore(settings.max_concurrent_runs),
        )  # fmt: skip
        scheduler = Scheduler(
            runner=Runner(deps),
            clock=self.clock,
            recheck_after_error=self.recheck_after_error,
            lister=self._list,
            relist_every=timedelta(seconds=settings.relist_seconds),
        )
        self.scheduler = scheduler
        if settings.metrics_port:
            start_http_server(
                settings.metrics_port,
                addr=str(settings.metrics_address),
                registry=self.metrics.registry,
            )
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(scheduler.run_forever(self._stop), name="scheduler")
        self._task.add_done_callback(self._ended)
        self._retirement = FabricRetirement(
            deps=deps, namespaces=settings.namespaces,
            interval=timedelta(seconds=settings.fabric_retirement_seconds),
        )  # fmt: skip
        self._retirement.start()
        self.pruning = ChangeLogPruning(
            self._pool, retention=timedelta(days=settings.change_log_retention_days)
        )
        self.pruning.start()
        logger.info(
            "scheduler started as %s (max %d concurrent runs)",
            self.holder, settings.max_concurrent_runs,
        )  # fmt: skip

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not self._stop.is_set() and not task.cancelled() and task.exception() is not None:
            logger.critical("the scheduler stopped", exc_info=task.exception())

    def fabric_deleted(self) -> None:
        """A Fabric was deleted: retire its rows now rather than at the next period."""
        if self._retirement is not None:
            self._retirement.wake()

    async def stop(self) -> None:
        """Cancel runs in flight and close connections; never raises, so SIGTERM always ends."""
        self._stop.set()
        for loop in (self._retirement, self.pruning):
            if loop is not None:
                with contextlib.suppress(Exception):
                    await loop.stop()
        if self._task is not None:
            try:
                await self._task
            except BaseException as error:  # a dead scheduler must not block the exit too
                logger.warning("the scheduler had stopped: %r", error)
        closers = [c.aclose for c in (self._session, self._kube) if c is not None] + (
            [self._pool.close] if self._pool is not None else []
        )
        for close in closers:
            with contextlib.suppress(Exception):  # one failed close must not skip the others
                await close()

    def healthy(self) -> dict[str, object]:
        """For kopf's liveness probe: a dead scheduler fails at once, a stuck one after 60 s."""
        task = self._task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            raise SchedulerDown(f"the scheduler stopped: {error!r}")
        ended = self.scheduler is not None and self.scheduler.ended
        if ended and not self._stop.is_set():  # it ended unasked; its runs are winding down
            raise SchedulerDown("the scheduler stopped; its runs are being cancelled")
        last = self.scheduler.last_tick if self.scheduler else None
        age = (self.clock() - last).total_seconds() if last else None
        if age is not None and age > MAX_TICK_AGE.total_seconds():
            raise SchedulerDown(f"the scheduler has not ticked for {age:.0f}s")
        return {
            "schedulerTickAgeSeconds": age,
            "resources": len(self.scheduler.slots) if self.scheduler else 0,
        }

    async def _list(self) -> Listing:
        """Both kinds, freshly listed (every watched namespace, or cluster-wide)."""
        assert self._kube is not None
        items, versions = [], []
        scopes = [f"namespaces/{n}/" for n in self.settings.namespaces] or [""]
        for kind in KINDS:
            for scope in scopes:
                path = f"/apis/{GROUP}/{VERSION}/{scope}{kind.plural}"
                async for page in self._kube.list_pages(path, limit=500):
                    items += [(kind, item) for item in page.items]
                    if page.resource_version and page.resource_version.isdigit():
                        versions.append(int(page.resource_version))
        return Listing(items, min(versions) if versions else None)
