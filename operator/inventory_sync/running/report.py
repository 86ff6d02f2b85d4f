"""The one place a run's ending becomes status, an Event, a metric and its sync_runs row (running layer).

Whatever ended the run (a result, an error, a cancellation, a lost lease, a takeover) comes
here. A finished run's row and status are retried until they land, across database and API
server outages, for as long as this replica holds the lease; if it stops holding it, the
next holder finds the finished row whose status never landed and writes that status
instead (store.runs: `Answered(restate=True)`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from inventory_sync.errors import (
    InventorySyncError,
    KubeNotFound,
    StoreError,
    public_message,
)
from inventory_sync.reconciling import reasons
from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.conditions import READY, STALLED, find, rfc3339
from inventory_sync.reconciling.due import decide, phase_of
from inventory_sync.results import RunResult, RunState, SourceOutcome
from inventory_sync.running import resource as kinds
from inventory_sync.running.leasing import LeaseLost
from inventory_sync.running.steps import Run, Stop
from inventory_sync.store.runs import RunRecord

logger = logging.getLogger(__name__)

Status = dict[str, Any]
# A problem's status write is tried this often before the scheduler's next look takes over.
PROBLEM_ATTEMPTS = 3


class Ending(StrEnum):
    FINISHED = "finished"  # a result: Succeeded, Failed or TimedOut
    RESTATED = "restated"  # an earlier run's lost status was written again
    PROBLEM = "problem"  # an error kept the run from starting or finishing
    CANCELLED = "cancelled"  # Replace, deletion or shutdown
    LEASE_LOST = "lease-lost"  # this replica could not keep the lease and stopped
    BUSY = "busy"  # another replica holds the lease
    ANSWERED = "answered"  # the request already ran; its status is on its way
    GONE = "gone"  # the resource was deleted


@dataclass(frozen=True)
class RunEnd:
    """What the scheduler learns from a run."""

    ending: Ending
    body: dict[str, Any] | None = None  # the newest body the run saw
    retry_in: float | None = None  # look again after this many seconds (None: as usual)
    reason: str = ""  # for a problem: its stable reason
    permanent: bool = False  # for a problem: a retry cannot fix it
    error: BaseException | None = None  # for a problem: what it was
    result: RunResult | None = None

    @property
    def gone(self) -> bool:
        return self.ending is Ending.GONE


class Gone(Exception):
    """The resource's status answered 404: it was deleted."""


async def finished(run: Run) -> RunEnd:
    """Row, status (both retried until they land), Event, metric."""
    assert run.result is not None
    assert run.run_id is not None
    deps, result = run.deps, run.result
    await _takeovers(run)
    try:
        recorded = await _persist(run, lambda: deps.store.finish(run.run_id or 0, result))
        if not recorded:  # a replica that took the lease over has marked it Abandoned
            return await lease_lost(run, "another replica took the run over while it ended")
        _record_metrics(run, result)  # the run happened, whenever its status lands
        await _write_status(run, lambda status: _finished_patch(run, status, result))
    except LeaseLost as lost:
        return await lease_lost(run, str(lost))
    except Gone:
        return RunEnd(Ending.GONE)
    except InventorySyncError as error:  # a permanent refusal of the status write (RBAC)
        return await problem(run, error)
    await _best_effort(deps.store.status_written(run.run_id))
    reason = reasons.SYNCED if result.succeeded else st.ready_reason(result)
    await event(run, warning=not result.succeeded, reason=reason, message=st.ready_message(result))
    return RunEnd(Ending.FINISHED, run.body, result=result)


async def restated(run: Run) -> RunEnd:
    """A finished run's status never landed (its holder died, or it was rolled back): write it
    from the run's row, as that run would have."""
    record = run.record
    assert record is not None
    result = result_of(record)
    try:
        await _write_status(
            run, lambda status: _finished_patch(run, status, result, generation=record.generation)
        )
    except LeaseLost as lost:
        return await lease_lost(run, str(lost))
    except Gone:
        return RunEnd(Ending.GONE)
    except InventorySyncError as error:
        return await problem(run, error)
    await _best_effort(run.deps.store.status_written(record.id))
    message = (
        f"run {record.id} ({record.claim_key}) ended {record.state}; its status is written again"
    )
    logger.info("%s: %s", _name(run), message)
    await event(run, warning=False, reason=reasons.STATUS_RESTATED, message=message)
    return RunEnd(Ending.RESTATED, run.body, result=result)


async def problem(run: Run, error: BaseException) -> RunEnd:
    """An error kept the run from starting or finishing: Stalled when a retry cannot help,
    Ready=False otherwise; reported once per distinct problem, not on every retry."""
    reason, permanent = reasons.reason_for(error), reasons.is_permanent(error)
    message = public_message(error, limit=1024)
    if not isinstance(error, InventorySyncError):
        logger.error("%s: internal error", _name(run), exc_info=error)
        message = f"internal error ({type(error).__name__}); the operator log has the details"
    elif permanent and run.spec is not None:  # a run got past parsing: only a run can clear it
        message = st.rechecked_by_run(public_message(error, limit=1024 - len(st.RECHECKED_BY_RUN)))
    await _takeovers(run)
    if run.run_id is not None:
        await _best_effort(
            run.deps.store.end(
                run.run_id, state="Abandoned", finished_at=run.deps.clock(),
                message=f"{reason}: {message}",
            )
        )  # fmt: skip
    requested = run.due.requested_at if run.due is not None and permanent else None
    status = run.status
    shown = find(_conditions(status), STALLED if permanent else READY)
    repeat = shown is not None and (shown.get("status"), shown.get("reason"), shown.get("message")) == (
        "True" if permanent else "False", reason, message
    ) and (requested is None or status.get("lastHandledReconcileAt") == requested)  # fmt: skip
    end = RunEnd(Ending.PROBLEM, run.body, reason=reason, permanent=permanent, error=error)
    if repeat:
        return end
    logger.warning("%s: %s: %s", _name(run), reason, message)
    build = st.stalled if permanent else st.not_ready

    def patch(status: Status) -> Status:
        return build(
            status, reason=reason, message=message, generation=run.generation,
            now=run.deps.clock(), requested_at=requested,
        )  # fmt: skip

    try:
        await _write_status(run, patch, attempts=PROBLEM_ATTEMPTS)
    except Gone:
        return RunEnd(Ending.GONE)
    except (InventorySyncError, LeaseLost) as failure:
        logger.warning("%s: status not written: %s", _name(run), public_message(failure))
    await event(run, warning=True, reason=reason, message=message)
    return RunEnd(Ending.PROBLEM, run.body, reason=reason, permanent=permanent, error=error)


async def cancelled(run: Run, why: str) -> None:
    """Replace, deletion or shutdown cancelled the run: its row says so and the request may
    run again; status stops saying a run is in flight (one attempt: we are being stopped)."""
    deps = run.deps
    if run.run_id is not None:
        await _best_effort(
            deps.store.end(
                run.run_id, state="Cancelled", finished_at=deps.clock(), message=f"cancelled: {why}"
            )
        )
        _count(run, "Cancelled")
    if run.run_id is None or find(_conditions(run.status), "Reconciling") is None:
        return
    try:
        run.saw(await deps.status.patch(run.resource, st.cancelled(run.status)))
    except InventorySyncError:  # deleted, or the API server is away: the next run fixes it
        return
    await event(run, warning=False, reason=reasons.CANCELLED, message=f"run cancelled: {why}")


async def lease_lost(run: Run, why: str) -> RunEnd:
    """This replica stopped its run: another may hold the lease now, so status is left to it."""
    deps = run.deps
    if run.run_id is not None:
        await _best_effort(
            deps.store.end(run.run_id, state="Abandoned", finished_at=deps.clock(), message=why)
        )
        _count(run, "Abandoned")
    await event(run, warning=True, reason=reasons.LEASE_LOST, message=why)
    return RunEnd(Ending.LEASE_LOST, run.body)


async def stopped(run: Run, stop: Stop) -> RunEnd:
    """A step ended the run without an error (see steps.Stop)."""
    if stop.ending == "restate":
        return await restated(run)
    logger.debug("%s: %s", _name(run), stop)
    if stop.ending == "gone":
        if run.run_id is not None:
            await _best_effort(
                run.deps.store.end(
                    run.run_id, state="Cancelled", finished_at=run.deps.clock(),
                    message="cancelled: the resource was deleted",
                )
            )  # fmt: skip
        return RunEnd(Ending.GONE)
    await _takeovers(run)
    ending = Ending.BUSY if stop.ending == "busy" else Ending.ANSWERED
    return RunEnd(ending, run.body, retry_in=stop.retry_in)


async def refresh(run: Run, patch: Status) -> RunEnd:
    """A status change between runs (nextSyncTime, syncStatus, a cleared stall): one attempt;
    the scheduler tries again on its next look if it did not land."""
    try:
        run.saw(await run.deps.status.patch(run.resource, patch))
    except KubeNotFound:
        return RunEnd(Ending.GONE)
    except InventorySyncError as error:
        logger.warning("%s: status not updated: %s", _name(run), public_message(error))
        return RunEnd(Ending.PROBLEM, run.body, reason=reasons.reason_for(error))
    return RunEnd(Ending.FINISHED, run.body)


async def event(run: Run, *, warning: bool, reason: str, message: str) -> None:
    """An Event is a courtesy: failing to post one never fails anything."""
    try:
        await run.deps.events.post(run.resource, warning=warning, reason=reason, message=message)
    except InventorySyncError as error:
        logger.warning("%s: could not post an Event: %s", _name(run), public_message(error))


def result_of(record: RunRecord) -> RunResult:
    """The RunResult a recorded run had, rebuilt from its row."""
    finished_at = record.finished_at or record.started_at
    seconds = record.seconds
    if seconds is None:
        seconds = round((finished_at - record.started_at).total_seconds(), 3)
    return RunResult(
        state=RunState(record.state), trigger=record.trigger, started_at=record.started_at,
        finished_at=finished_at, seconds=seconds, message=record.error,
        sources=[SourceOutcome.model_validate(s) for s in record.sources],
    )  # fmt: skip


def _finished_patch(
    run: Run, status: Status, result: RunResult, *, generation: int | None = None
) -> Status:
    spec, due, resource = run.spec, run.due, run.resource
    assert spec is not None
    assert due is not None
    used = run.generation if generation is None else generation
    now = run.deps.clock()
    phase = phase_of(resource.uid, spec.interval)
    anchor = due.rejoined(result.started_at, spec.interval, phase)
    patch = st.finished(
        status, result, generation=used, interval=spec.interval,
        history_limit=kinds.history_limit(spec), requested_at=due.requested_at,
        anchor=anchor, now=now,
    )  # fmt: skip
    after = {**status, **patch}
    following = decide(
        interval=spec.interval, suspend=spec.suspend, run_on_startup=kinds.run_on_startup(spec),
        generation=resource.generation, created_at=resource.created_at, status=after,
        annotations=resource.annotations, now=now, phase=phase,
    )  # fmt: skip
    patch["nextSyncTime"] = None if spec.suspend else rfc3339(following.scheduled_at)
    return patch


async def _write_status(
    run: Run, build: Callable[[Status], Status], *, attempts: int | None = None
) -> None:
    """Patch status, rebuilt from the freshest status on every attempt, until it lands.

    Transient failures (the API server restarting) are retried with backoff for as long as
    the run holds its lease (`attempts` bounds it for problem reports, which the scheduler
    repeats anyway). Raises Gone on 404, the error itself when it is permanent (403, 422),
    LeaseLost when the lease goes first.
    """
    deps, attempt = run.deps, 0
    while True:
        try:
            run.saw(await run.guarded(deps.status.patch(run.resource, build(run.status))))
            return
        except KubeNotFound:
            raise Gone() from None
        except InventorySyncError as error:
            if error.permanent or (attempts is not None and attempt + 1 >= attempts):
                raise
            if attempt % 10 == 0:
                logger.warning(
                    "%s: status not written yet (attempt %d, retrying): %s",
                    _name(run), attempt + 1, public_message(error),
                )  # fmt: skip
        await run.guarded(asyncio.sleep(deps.status_retry.delay(attempt)))
        attempt += 1


async def _persist(run: Run, write: Callable[[], Awaitable[bool]]) -> bool:
    """A store write retried while the database is away, for as long as the lease lives."""
    attempt = 0
    while True:
        try:
            return await run.guarded(write())
        except StoreError as error:
            if run.keeper is None:
                raise
            if attempt % 10 == 0:
                logger.warning(
                    "%s: run not recorded yet (retrying): %s", _name(run), public_message(error)
                )
        await run.guarded(asyncio.sleep(run.deps.status_retry.delay(attempt)))
        attempt += 1


async def _takeovers(run: Run) -> None:
    """Runs found Running under an expired lease were abandoned by the claim: say so, once."""
    abandoned, run.abandoned = run.abandoned, ()
    for dead in abandoned:
        holder = f"replica {dead.holder}" if dead.holder else "an earlier operator"
        message = (
            f"took over: run {dead.id} ({dead.claim_key}) was abandoned; "
            f"{holder} stopped renewing its lease"
        )
        logger.warning("%s: %s", _name(run), message)
        await event(run, warning=True, reason=reasons.RUN_ABANDONED, message=message)


async def _best_effort(write: Awaitable[Any]) -> None:
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT.total_seconds()):
            await write
    except (StoreError, TimeoutError) as error:
        logger.warning("run bookkeeping not written: %s", public_message(error))


# Bookkeeping on the way out (a cancelled run's row, the lease) must not hold up a shutdown.
RELEASE_TIMEOUT = timedelta(seconds=5)


def _record_metrics(run: Run, result: RunResult) -> None:
    metrics, resource = run.deps.metrics, run.resource
    if metrics is not None:
        metrics.record(
            kind=resource.kind.kind, namespace=resource.namespace, name=resource.name,
            result=result,
        )  # fmt: skip


def _count(run: Run, outcome: str) -> None:
    metrics = run.deps.metrics
    if metrics is not None and run.due is not None and run.due.trigger is not None:
        metrics.runs.labels(run.resource.kind.kind, run.due.trigger.value, outcome).inc()


def _conditions(status: Status) -> list[dict[str, Any]]:
    found = status.get("conditions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _name(run: Run) -> str:
    resource = run.resource
    return f"{resource.kind.kind} {resource.namespace}/{resource.name}"
