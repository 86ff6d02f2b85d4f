"""A run as a short list of named steps with one signature: resolve, claim, mark, execute (running layer).

Each step takes the `Run` and either fills part of it or raises, which ends the run there;
`report.report` then turns however it ended into status, an Event, a metric and the
sync_runs row, in one place. The operator and `inventory-sync sync` run the same steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import asyncpg

from inventory_sync.durations import format_duration
from inventory_sync.errors import InventorySyncError, KubeNotFound, public_message
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.metrics import Metrics
from inventory_sync.models import FabricSpec, SyncScheduleSpec
from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.due import Due, Trigger
from inventory_sync.results import RunResult, RunState
from inventory_sync.running import credentials
from inventory_sync.running.leasing import LeaseKeeper
from inventory_sync.running.resource import AnySpec, Tracked, newer, timeout_of
from inventory_sync.running.sinks import EventSink, StatusSink
from inventory_sync.store.runs import (
    AbandonedRun,
    Answered,
    Busy,
    Claim,
    Claimed,
    ResourceIdentity,
    RunRecord,
)
from inventory_sync.syncing.credentials import SecretReader
from inventory_sync.syncing.fabric import check_kinds, run_fabric_sync
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.syncing.session import UpstreamSession

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunStore(Protocol):
    """What a run needs of the store (store.runs.RunStore; tests use a fake)."""

    holder: str
    lease_ttl: timedelta

    async def claim(
        self, *, resource: ResourceIdentity, claim_key: str, scheduled_at: datetime,
        trigger: str, started_at: datetime, generation: int | None,
    ) -> Claim: ...  # fmt: skip

    async def renew(self, resource_uid: str) -> bool: ...

    async def release(self, resource_uid: str) -> None: ...

    async def finish(self, run_id: int, result: RunResult) -> bool: ...

    async def end(
        self, run_id: int, *, state: str, finished_at: datetime, message: str
    ) -> bool: ...

    async def status_written(self, run_id: int) -> None: ...


Executor = Callable[["Run"], Awaitable[RunResult]]


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: `first`, doubling, at most `most` seconds."""

    first: float = 0.5
    most: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.most, self.first * 2.0 ** min(attempt, 20))


@dataclass
class RunDeps:
    """What runs need from their process; one instance per operator (or CLI invocation)."""

    store: RunStore
    pool: asyncpg.Pool | None  # the inventory merges (None only with a test executor)
    session: UpstreamSession
    secrets: SecretReader
    status: StatusSink
    events: EventSink
    kube: KubeClient | None = None  # the operator's own client: Fabrics without a kubeconfig
    metrics: Metrics | None = None
    clock: Clock = utcnow
    executor: Executor | None = None  # None → the real pipeline (see `execute_pipeline`)
    renew_every: float = 10.0  # lease renewals; the lease lasts store.lease_ttl
    status_retry: Backoff = field(default_factory=Backoff)
    limit: asyncio.Semaphore | None = None  # the cap on runs executing at once
    #: This cluster's identity as a Fabric owner (fabric_retirement.cluster_owner); runs
    #: register their Fabric under it so that a deleted Fabric's rows are retired. None until
    #: known: the retirement loop registers live Fabrics then.
    fabric_owner: str | None = None


class Stop(Exception):
    """A step ended the run early without an error: the lease is busy, the request answered."""

    def __init__(self, ending: str, *, detail: str = "", retry_in: float | None = None) -> None:
        super().__init__(detail or ending)
        self.ending = ending
        self.detail = detail
        self.retry_in = retry_in


@dataclass
class Run:
    """One run in progress: what it answers and what its steps found out so far."""

    deps: RunDeps
    resource: Tracked
    spec: AnySpec | None  # None: the spec could not be parsed (a problem report)
    due: Due | None
    #: The generation whose spec this run uses: status reports this one, not a newer one.
    generation: int | None = None
    progress: ProgressListener | None = None
    body: dict[str, Any] = field(default_factory=dict)  # newest body this run has seen
    secrets: credentials.SecretSnapshot | None = None
    fabric: KubeConnection | None = None
    run_id: int | None = None
    started_at: datetime | None = None
    result: RunResult | None = None
    record: RunRecord | None = None  # a finished run whose status must be written again
    keeper: LeaseKeeper | None = None
    abandoned: tuple[AbandonedRun, ...] = ()
    took_over_from: str | None = None

    def __post_init__(self) -> None:
        self.generation = self.resource.generation
        self.body = self.resource.body

    @property
    def trigger(self) -> Trigger:
        assert self.due is not None
        assert self.due.trigger is not None
        return self.due.trigger

    @property
    def parsed(self) -> AnySpec:
        assert self.spec is not None
        return self.spec

    @property
    def status(self) -> dict[str, Any]:
        """The freshest status known: our own last patch or the watch's, whichever is newer."""
        latest = self.resource.body if newer(self.resource.body, self.body) else self.body
        status: dict[str, Any] = latest.get("status") or {}
        return status

    def saw(self, body: dict[str, Any]) -> None:
        if newer(body, self.body):
            self.body = body

    async def guarded(self, work: Awaitable[T]) -> T:
        """`work`, stopped with LeaseLost if the lease goes first (no lease: just `work`)."""
        if self.keeper is None:
            return await work
        return await self.keeper.guard(work)


Step = Callable[[Run], Awaitable[None]]


async def resolve_credentials(run: Run) -> None:
    """Read every Secret the run needs, once; a missing one stops the run before the claim."""
    spec, namespace = run.parsed, run.resource.namespace
    if isinstance(spec, SyncScheduleSpec):
        run.secrets = await credentials.resolve_schedule(
            spec, namespace=namespace, source=run.deps.secrets,
            policy=run.deps.session.endpoint_policy,
        )  # fmt: skip
        return
    kube = run.deps.kube
    if kube is None:
        raise InventorySyncError("a Fabric needs a Kubernetes client: run it with the operator")
    run.fabric = await credentials.resolve_fabric(spec, namespace=namespace, local=kube)
    await _check_fabric_kinds(run, spec, kube)


# A misspelt kind is a spec problem worth naming before the run; a fabric that is slow or
# down to tell must not hold the run up (the run then reports what is wrong with it).
FABRIC_CHECK_SECONDS = 2.0


async def _check_fabric_kinds(run: Run, spec: FabricSpec, kube: KubeClient) -> None:
    assert run.fabric is not None
    local = run.fabric is kube.connection
    client = kube if local else KubeClient(run.fabric, timeout=FABRIC_CHECK_SECONDS, get_retries=0)
    try:
        async with asyncio.timeout(FABRIC_CHECK_SECONDS):
            await check_kinds(spec, client=client)
    except TimeoutError:
        pass
    finally:
        if not local:
            await client.aclose()


async def claim(run: Run) -> None:
    """Take the resource's lease and the request's row (store.runs.RunStore.claim)."""
    deps, due = run.deps, run.due
    assert due is not None
    sent = time.monotonic()
    started = deps.clock()
    claimed = await deps.store.claim(
        resource=run.resource.identity, claim_key=due.claim_key, scheduled_at=due.scheduled_at,
        trigger=run.trigger.value, started_at=started, generation=run.generation,
    )  # fmt: skip
    if isinstance(claimed, Busy):
        raise Stop("busy", detail=f"{claimed.holder} runs it", retry_in=claimed.retry_in)
    run.abandoned = claimed.abandoned
    if isinstance(claimed, Answered):
        if not claimed.restate:
            raise Stop(
                "answered", detail=f"{due.claim_key!r} already ran (run {claimed.record.id})"
            )
        run.record = claimed.record
        _keep_lease(run, sent)
        raise Stop("restate", detail=f"run {claimed.record.id}'s status never landed")
    assert isinstance(claimed, Claimed)
    run.run_id, run.started_at = claimed.run_id, started
    run.took_over_from = claimed.took_over_from
    _keep_lease(run, sent)


def _keep_lease(run: Run, sent: float) -> None:
    store, uid = run.deps.store, run.resource.uid

    async def renew() -> bool:
        return await store.renew(uid)

    run.keeper = LeaseKeeper(renew, ttl=store.lease_ttl.total_seconds(), every=run.deps.renew_every)
    run.keeper.start(acquired_at=sent)


async def mark_reconciling(run: Run) -> None:
    """Reconciling=True, so kstatus and GitOps tools see a run in flight. A transient failure
    does not hold the run up (its final status is retried until it lands); a permanent one
    (RBAC) ends it, and a deleted resource ends it quietly."""
    assert run.started_at is not None
    patch = st.started(
        run.status, generation=run.generation, trigger=run.trigger, now=run.started_at
    )
    try:
        run.saw(await run.guarded(run.deps.status.patch(run.resource, patch)))
    except KubeNotFound:
        raise Stop("gone", detail="the resource was deleted") from None
    except InventorySyncError as error:
        if error.permanent:
            raise
        logger.warning(
            "%s: could not mark the run in progress: %s", _name(run), public_message(error)
        )


async def execute(run: Run) -> None:
    """The sync itself, under the run's timeout; guarded by the lease."""
    deps = run.deps
    executor = deps.executor or execute_pipeline
    if deps.metrics is not None:
        deps.metrics.in_flight.inc()
    try:
        run.result = await run.guarded(executor(run))
    finally:
        if deps.metrics is not None:
            deps.metrics.in_flight.dec()


STEPS: tuple[Step, ...] = (resolve_credentials, claim, mark_reconciling, execute)


async def execute_pipeline(run: Run) -> RunResult:
    """The real work for either kind; the timeout comes from `timeout_of`, for both."""
    deps, spec, trigger = run.deps, run.parsed, run.trigger.value
    timeout = timeout_of(spec)
    assert deps.pool is not None
    if isinstance(spec, SyncScheduleSpec):
        assert run.secrets is not None
        return await run_sync(
            spec, pool=deps.pool, session=deps.session, secrets=run.secrets,
            namespace=run.resource.namespace, trigger=trigger, progress=run.progress,
            clock=deps.clock, time_limit=timeout, run_id=run.run_id,
        )  # fmt: skip
    assert run.fabric is not None
    assert deps.kube is not None
    local = run.fabric is deps.kube.connection
    client = deps.kube if local else KubeClient(run.fabric)
    started, t0 = deps.clock(), time.monotonic()
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            return await run_fabric_sync(
                spec, fabric=run.resource.identity, client=client, pool=deps.pool,
                trigger=trigger, clock=deps.clock, progress=run.progress, owner=deps.fabric_owner,
                run_id=run.run_id,
            )  # fmt: skip
    except TimeoutError:
        return RunResult(
            state=RunState.TIMED_OUT, trigger=trigger, started_at=started,
            finished_at=deps.clock(), seconds=round(time.monotonic() - t0, 3),
            message=f"run exceeded its timeout of {format_duration(timeout)}",
        )  # fmt: skip
    finally:
        if not local:
            await client.aclose()


def _name(run: Run) -> str:
    return f"{run.resource.kind.kind} {run.resource.namespace}/{run.resource.name}"
