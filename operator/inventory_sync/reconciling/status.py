"""The status a resource shows: patches for run start, run end and stalled specs (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from inventory_sync.reconciling import conditions as cond
from inventory_sync.reconciling import reasons
from inventory_sync.reconciling.due import Trigger
from inventory_sync.reconciling.view import read_status
from inventory_sync.results import RunResult, RunState, SourceState

Status = dict[str, Any]


class SyncStatus:
    IN_SYNC = "InSync"
    OUT_OF_SYNC = "OutOfSync"  # the last success is older than twice the interval (the seeds' rule)
    ERROR = "Error"
    NEVER_SYNCED = "NeverSynced"


def sync_status(status: Status, *, interval: timedelta, now: datetime) -> str:
    """InSync / OutOfSync / Error / NeverSynced from what status already records."""
    if not status.get("lastSyncTime"):
        return SyncStatus.NEVER_SYNCED
    view = read_status(status, now=now)
    if view.failures > 0:
        return SyncStatus.ERROR
    last_success = view.last_success
    if last_success is None or now - last_success > 2 * interval:
        return SyncStatus.OUT_OF_SYNC
    return SyncStatus.IN_SYNC


def started(status: Status, *, generation: int | None, trigger: Trigger, now: datetime) -> Status:
    """Written when a run starts: Reconciling=True, so kstatus and GitOps tools see progress."""
    conditions = cond.set_condition(
        _conditions(status),
        type=cond.RECONCILING,
        status=True,
        reason=reasons.PROGRESSING,
        message=f"Run in progress ({trigger.value})",
        generation=generation,
        now=now,
    )
    conditions = cond.remove_condition(conditions, cond.STALLED)
    if not status.get("lastSyncTime"):  # whatever Ready said before (waiting, a fixed stall)
        conditions = cond.set_condition(
            conditions,
            type=cond.READY,
            status=False,
            reason=reasons.PROGRESSING,
            message="First run in progress",
            generation=generation,
            now=now,
        )
    return {"conditions": conditions, "observedGeneration": generation}


def finished(
    status: Status,
    result: RunResult,
    *,
    generation: int | None,
    interval: timedelta,
    history_limit: int,
    requested_at: str | None,
    anchor: datetime | None,
    now: datetime,
) -> Status:
    """Written once when a run ends: outcome, times, conditions, per-source counts, history.

    `generation` is the one the run used, not the newest: a spec edited during the run has
    not been applied, and observedGeneration must not claim it has. nextSyncTime is left to
    the caller, who decides it from the status this patch produces.
    """
    ok = result.succeeded
    failures = 0 if ok else read_status(status, now=now).failures + 1
    last_success = cond.rfc3339(result.finished_at) if ok else status.get("lastSuccessfulSyncTime")
    patch: Status = {
        "observedGeneration": generation,
        "lastSyncTime": cond.rfc3339(result.finished_at),
        "lastSuccessfulSyncTime": last_success,
        "lastDurationSeconds": result.seconds,
        "consecutiveFailures": failures,
        "sources": [
            s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in result.sources
        ],
        "sourceSummary": source_summary(result),
        "history": _history(status, result, generation=generation, limit=history_limit),
    }
    if anchor is not None:
        patch["lastScheduleTime"] = cond.rfc3339_millis(anchor)
    if requested_at is not None:
        patch["lastHandledReconcileAt"] = requested_at
    conditions = cond.remove_condition(_conditions(status), cond.RECONCILING)
    conditions = cond.remove_condition(conditions, cond.STALLED)
    patch["conditions"] = cond.set_condition(
        conditions,
        type=cond.READY,
        status=ok,
        reason=ready_reason(result),
        message=ready_message(result),
        generation=generation,
        now=now,
    )
    patch["syncStatus"] = sync_status({**status, **patch}, interval=interval, now=now)
    return patch


def ready_reason(result: RunResult) -> str:
    if result.succeeded:
        return reasons.SUCCEEDED
    return reasons.TIMED_OUT if result.state is RunState.TIMED_OUT else reasons.SYNC_FAILED


def not_ready(
    status: Status,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
    requested_at: str | None = None,
) -> Status:
    """A run could not even start or finish (database down, API refused): Ready=False, retried.

    With `requested_at` the manual request counts as answered (as Flux does), so
    `inventory-sync trigger --wait` returns with this message instead of waiting it out.
    """
    conditions = cond.remove_condition(_conditions(status), cond.RECONCILING)
    conditions = cond.set_condition(
        conditions, type=cond.READY, status=False, reason=reason, message=message,
        generation=generation, now=now,
    )  # fmt: skip
    patch: Status = {"conditions": conditions}
    if requested_at is not None:
        patch["lastHandledReconcileAt"] = requested_at
    return patch


class ProblemPatch(Protocol):
    def __call__(
        self,
        status: Status,
        *,
        reason: str,
        message: str,
        generation: int | None,
        now: datetime,
        requested_at: str | None = None,
    ) -> Status: ...


def stalled(
    status: Status,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
    requested_at: str | None = None,
) -> Status:
    """A problem a retry will not fix (bad spec, missing Secret): Stalled=True, Ready=False.

    observedGeneration says the operator has judged this generation: kstatus (Flux's health
    checks) reads Stalled as Failed only then, and a new resource or an edited spec would read
    InProgress until a timeout instead. Whether the generation has run is `history[0]`'s
    business (`due.decide`).
    """
    patch = not_ready(
        status, reason=reason, message=message, generation=generation, now=now,
        requested_at=requested_at,
    )  # fmt: skip
    if generation is not None:
        patch["observedGeneration"] = generation
    patch["conditions"] = cond.set_condition(
        patch["conditions"], type=cond.STALLED, status=True, reason=reason, message=message,
        generation=generation, now=now,
    )  # fmt: skip
    return patch


def ready_message(result: RunResult) -> str:
    """The Ready message (the STATUS column): what the last run did, in one line."""
    if not result.succeeded:
        return result.message or result.state.value
    inserted = sum(s.inserted for s in result.sources)
    updated = sum(s.updated for s in result.sources)
    deleted = sum(s.deleted for s in result.sources)
    unchanged = sum(s.unchanged for s in result.sources)
    message = (
        f"Synced {source_summary(result)} in {result.seconds:.1f}s: {inserted} inserted, "
        f"{updated} updated, {deleted} deleted, {unchanged} unchanged"
    )
    skipped = [s for s in result.sources if s.state is SourceState.SKIPPED]
    if skipped:  # name them: "1 skipped" alone sends the reader to the status to find which
        message += "; skipped " + "; ".join(f"{s.name}: {s.message or 'skipped'}" for s in skipped)
    return message


def source_summary(result: RunResult) -> str:
    """`3/3 succeeded`, or for a fabric with missing CRDs `2/12 succeeded, 10 skipped`."""
    ok = sum(1 for s in result.sources if s.state is SourceState.SUCCEEDED)
    skipped = sum(1 for s in result.sources if s.state is SourceState.SKIPPED)
    text = f"{ok}/{len(result.sources)} succeeded"
    return f"{text}, {skipped} skipped" if skipped else text


def _conditions(status: Status) -> list[dict[str, Any]]:
    # Status is input from anyone with status-write access: keep only well-formed entries.
    found = status.get("conditions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _history(
    status: Status, result: RunResult, *, generation: int | None, limit: int
) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "startedAt": cond.rfc3339(result.started_at),
        "finishedAt": cond.rfc3339(result.finished_at),
        "trigger": result.trigger,
        "result": result.state.value,
        "seconds": result.seconds,
        "rowsWritten": result.rows_written,
    }
    if generation is not None:  # which spec it ran: a stall's observedGeneration does not say
        entry["generation"] = generation
    if result.message:
        entry["message"] = result.message
    found = status.get("history")
    previous = [h for h in found if isinstance(h, dict)] if isinstance(found, list) else []
    return [entry, *previous][:limit]


def cancelled(status: Status) -> Status:
    """A run was cancelled (Replace, deletion, shutdown): it is no longer in flight."""
    return {"conditions": cond.remove_condition(_conditions(status), cond.RECONCILING)}


def awaiting_first_run(
    status: Status, *, generation: int | None, due_at: datetime, now: datetime
) -> Status:
    """Seen, never run, and no run due yet (runOnStartup: false): Ready=Unknown.

    Without a Ready condition, kstatus (Flux's health checks) reads an observed resource as
    Current, i.e. done, before it ever synced; Ready=Unknown reads as InProgress, as Argo CD's
    check already says (tests/health_states.py holds both verdicts).
    """
    conditions = cond.set_condition(
        _conditions(status), type=cond.READY, status=None, reason=reasons.WAITING,
        message=f"no run yet: the first is due at {cond.rfc3339(due_at)}",
        generation=generation, now=now,
    )  # fmt: skip
    return {"conditions": conditions}


#: Ends the message of a permanent problem a run found after the spec parsed (a Fabric kind its
#: API server does not serve, a refused kubeconfig or endpoint). The spec parsing again says
#: nothing about those, so the scheduler leaves such a stall to the next run.
RECHECKED_BY_RUN = " (the next run checks again)"


def rechecked_by_run(message: str) -> str:
    return message + RECHECKED_BY_RUN


def is_rechecked_by_run(condition: Mapping[str, Any]) -> bool:
    message = condition.get("message")
    return isinstance(message, str) and message.endswith(RECHECKED_BY_RUN)


def cleared_stall(status: Status, *, generation: int | None, now: datetime) -> Status:
    """The stalling problem is gone but no run is due yet: drop Stalled, say what happens next."""
    conditions = cond.remove_condition(_conditions(status), cond.STALLED)
    ready = cond.find(conditions, cond.READY)
    if ready is not None and ready.get("reason") in reasons.STALL_REASONS:
        conditions = cond.set_condition(
            conditions, type=cond.READY, status=False, reason=reasons.WAITING,
            message="the problem is fixed; waiting for the next run", generation=generation, now=now,
        )  # fmt: skip
    return {"conditions": conditions}
