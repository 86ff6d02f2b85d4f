"""A whole run: sources ordered by their dependsOn graph, siblings in parallel, under one timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from inventory_sync.durations import format_duration
from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.models import Source, SyncScheduleSpec, dependency_graph
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState
from inventory_sync.syncing import shared_budgets
from inventory_sync.syncing.context import SourceContext
from inventory_sync.syncing.credentials import SecretReader
from inventory_sync.syncing.progress import NoProgress, ProgressListener
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.syncing.sources import sync_source
from inventory_sync.upstream.offloading import SHARED_WORKERS

logger = logging.getLogger(__name__)

#: What a page worker unpickles its work from: the page readers and the staging `Prepare`.
PAGE_WORK_MODULES = (
    "inventory_sync.upstream.greenlake",
    "inventory_sync.upstream.central",
    "inventory_sync.syncing.streaming",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def run_sync(
    spec: SyncScheduleSpec,
    *,
    pool: asyncpg.Pool,
    session: UpstreamSession,
    secrets: SecretReader,
    namespace: str,
    trigger: str,
    progress: ProgressListener | None = None,
    clock: Callable[[], datetime] = utcnow,
    time_limit: timedelta | None = None,
    run_id: int | None = None,
) -> RunResult:
    """Run every source once; never raises for a source failure — the result says what failed.

    `time_limit` is the run's timeout (running.resource.timeout_of decides it for both kinds); the
    default is the spec's own, for callers outside a run. `run_id` (the run's sync_runs row)
    is recorded with every change the sources make (store/changes.py). The slots other
    processes took in the upstream budgets are held before the first request, and ours are
    saved for them while the sources run and once they are done (syncing/shared_budgets.py).
    """
    limit = time_limit or spec.effective_timeout
    # Pages are decoded in worker processes: they start while the first requests travel.
    SHARED_WORKERS.warm_up(PAGE_WORK_MODULES)
    started = clock()
    t0 = time.monotonic()
    ctx = SourceContext(
        pool=pool,
        session=session,
        secrets=secrets,
        namespace=namespace,
        progress=progress or NoProgress(),
        now=started,
        run_id=run_id,
    )
    outcomes = {s.name: SourceOutcome(name=s.name, kind=s.kind) for s in spec.sources}
    graph = dependency_graph(spec.sources)
    finished = {s.name: asyncio.Event() for s in spec.sources}

    async def run_one(source: Source) -> None:
        outcome = outcomes[source.name]
        try:
            for dependency in graph[source.name]:
                await finished[dependency].wait()
            failed = [
                d for d in graph[source.name] if outcomes[d].state is not SourceState.SUCCEEDED
            ]
            if failed:
                outcome.state = SourceState.SKIPPED
                outcome.message = f"skipped: prerequisite {', '.join(failed)} did not succeed"
                return
            await _run_source(ctx, source, outcome, clock)
        finally:
            finished[source.name].set()

    state, message = RunState.SUCCEEDED, None
    async with shared_budgets.exchanged(pool, session.limiters):
        tasks = [asyncio.create_task(run_one(s), name=f"source:{s.name}") for s in spec.sources]
        try:
            async with asyncio.timeout(limit.total_seconds()):
                await asyncio.gather(*tasks)
        except TimeoutError:
            state = RunState.TIMED_OUT
            message = f"run exceeded its timeout of {format_duration(limit)}"
        finally:
            # gather() does not cancel siblings on our own cancellation; make sure none outlive us.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes.values():
        if outcome.state in (SourceState.PENDING, SourceState.RUNNING):
            outcome.state = SourceState.CANCELLED
            outcome.message = outcome.message or "cancelled: the run timed out"
    if state is RunState.SUCCEEDED:
        bad = [o for o in outcomes.values() if o.state is not SourceState.SUCCEEDED]
        if bad:
            state = RunState.FAILED
            message = "; ".join(f"{o.name}: {o.message or o.state.value}" for o in bad)
    ordered = sorted(
        outcomes.values(), key=lambda o: (o.started_at is None, o.started_at or started)
    )
    return RunResult(
        state=state,
        trigger=trigger,
        started_at=started,
        finished_at=clock(),
        seconds=round(time.monotonic() - t0, 3),
        sources=ordered,
        message=message,
    )


async def _run_source(
    ctx: SourceContext, source: Source, outcome: SourceOutcome, clock: Callable[[], datetime]
) -> None:
    outcome.state = SourceState.RUNNING
    outcome.started_at = clock()
    t0 = time.monotonic()
    ctx.progress.source_started(outcome)
    try:
        await sync_source(ctx, source, outcome)
        outcome.state = SourceState.SUCCEEDED
    except asyncio.CancelledError:
        outcome.state = SourceState.CANCELLED
        outcome.message = "cancelled: the run timed out"
        raise
    except InventorySyncError as error:
        outcome.state = SourceState.FAILED
        outcome.message = public_message(error)
        logger.warning("source %s failed: %s", source.name, outcome.message)
    except Exception as error:  # a bug must fail this source, not the siblings or the operator
        outcome.state = SourceState.FAILED
        outcome.message = f"internal error: {type(error).__name__}"
        logger.exception("source %s failed unexpectedly", source.name)
    finally:
        outcome.finished_at = clock()
        outcome.seconds = round(time.monotonic() - t0, 3)
        ctx.progress.source_finished(outcome)
