"""Everything the operator holds for its lifetime: pool, API client, upstream session, scheduler."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from prometheus_client import start_http_server

from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.metrics import Metrics
from inventory_sync.operating.retiring import FabricRetirement
from inventory_sync.operating.runner import Clock, Runner, RunnerDeps, utcnow
from inventory_sync.operating.scheduler import RECHECK_AFTER_ERROR, Scheduler
from inventory_sync.settings import Settings
from inventory_sync.store.database import open_pool
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

logger = logging.getLogger(__name__)


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
    _pool: asyncpg.Pool | None = None
    _kube: KubeClient | None = None
    _session: UpstreamSession | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _retirement: FabricRetirement | None = None

    async def start(self) -> None:
        settings = self.settings
        self._pool = await open_pool(self.database_url, max_size=settings.database_pool_size)
        self._kube = KubeClient(self.connection, timeout=settings.request_timeout_seconds)
        self._session = UpstreamSession(
            request_timeout=settings.request_timeout_seconds,
            endpoint_policy=settings.endpoint_policy,
            policy=RetryPolicy(max_attempts=settings.max_retries),
        )
        deps = RunnerDeps(
            pool=self._pool, kube=self._kube, connection=self.connection, session=self._session,
            metrics=self.metrics, instance=settings.instance, clock=self.clock,
        )  # fmt: skip
        scheduler = Scheduler(
            runner=Runner(deps),
            clock=self.clock,
            max_concurrent_runs=settings.max_concurrent_runs,
            recheck_after_error=self.recheck_after_error,
        )
        self.scheduler = scheduler
        if settings.metrics_port:
            start_http_server(settings.metrics_port, registry=self.metrics.registry)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(scheduler.run_forever(self._stop), name="scheduler")
        self._retirement = FabricRetirement(
            deps=deps, namespaces=settings.namespaces,
            interval=timedelta(seconds=settings.fabric_retirement_seconds),
        )  # fmt: skip
        self._retirement.start()
        logger.info("scheduler started (max %d concurrent runs)", settings.max_concurrent_runs)

    def fabric_deleted(self) -> None:
        """A Fabric was deleted: retire its rows now rather than at the next period."""
        if self._retirement is not None:
            self._retirement.wake()

    async def stop(self) -> None:
        self._stop.set()
        if self._retirement is not None:
            await self._retirement.stop()
        if self._task is not None:
            await self._task
        if self._session is not None:
            await self._session.aclose()
        if self._kube is not None:
            await self._kube.aclose()
        if self._pool is not None:
            await self._pool.close()

    def healthy(self) -> dict[str, object]:
        """For kopf's liveness probe: a scheduler that stopped ticking is a zombie operator."""
        last = self.scheduler.last_tick if self.scheduler else None
        age = (self.clock() - last).total_seconds() if last else None
        if age is not None and age > 60:
            raise RuntimeError(f"scheduler has not ticked for {age:.0f}s")
        return {
            "schedulerTickAgeSeconds": age,
            "resources": len(self.scheduler.slots) if self.scheduler else 0,
        }
