"""When is a SyncSchedule or Fabric due? Computed from its status, so a restart causes no burst.

Scheduled runs sit on a grid: each is due `interval` after the previous one was due
(`status.lastScheduleTime`), not after it ended, so "1m" means a run every 60 s however long
runs take. Each resource has its own grid, offset from the Unix epoch by a *phase* in
[0, interval) taken from its uid alone, so every replica computes the same times and 200
schedules created (or edited by a GitOps tool) at once spread over the interval instead of
falling due together. A run started by a trigger (creation, a manual request, a spec
change) joins its grid at the slot nearest to its start: the next scheduled run follows
between half an interval and one and a half intervals later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from inventory_sync.reconciling.view import parse_time, read_status

__all__ = ["REQUESTED_AT", "Due", "Trigger", "decide", "nearest_slot", "parse_time", "phase_of"]

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# After a failed run the next attempt comes sooner than a whole interval, doubling per
# consecutive failure, so a transient outage heals quickly without hammering the upstream.
FAILURE_BACKOFF_BASE = timedelta(seconds=30)
# Every resource's grid is laid from here.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A claim key is an index entry: a requestedAt longer than this is keyed by its digest.
_MAX_KEYED_REQUEST = 200


class Trigger(StrEnum):
    STARTUP = "startup"  # never synced and runOnStartup
    SCHEDULE = "schedule"  # the interval elapsed
    MANUAL = "manual"  # reconcile.fluxcd.io/requestedAt changed
    SPEC_CHANGE = "spec-change"  # metadata.generation moved past observedGeneration
    RETRY = "retry"  # the previous run failed; backing off
    CLI = "cli"  # a one-shot run of `inventory-sync sync`


@dataclass(frozen=True)
class Due:
    """The decision for one resource at one instant."""

    trigger: Trigger | None  # None: not due now
    scheduled_at: datetime  # when this run was (or the next one will be) due
    requested_at: str | None = None  # the manual-trigger value to echo into status
    #: What the run answers, identical on every replica: the sync_runs claim (see store.runs).
    claim_key: str = ""
    #: Where the next interval counts from once this run happened (status.lastScheduleTime).
    anchor: datetime | None = None
    #: A triggered run joins its grid at the slot nearest to when it actually starts (see
    #: `rejoined`): one that waited for a free run slot must not fall due again at once.
    rejoin: bool = False
    #: Status fields that were unusable and ignored (reported as an Event).
    problems: tuple[str, ...] = ()

    @property
    def now(self) -> bool:
        return self.trigger is not None

    def rejoined(self, started: datetime, interval: timedelta, phase: timedelta) -> datetime | None:
        """The anchor for a run that started at `started`."""
        return nearest_slot(started, interval, phase) if self.rejoin else self.anchor


def phase_of(uid: str, interval: timedelta) -> timedelta:
    """The resource's grid offset in [0, interval), in milliseconds (as lastScheduleTime
    keeps them), from its uid alone.

    A small jitter cannot spread load that exceeds what runs can absorb within it (200
    schedules at 1m, four runs at a time): the whole interval can."""
    fraction = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 2**32
    return timedelta(milliseconds=int(interval.total_seconds() * 1000 * fraction))


def nearest_slot(moment: datetime, interval: timedelta, phase: timedelta) -> datetime:
    """The point of the grid EPOCH + phase + k * interval nearest to `moment`."""
    start = EPOCH + phase
    return start + ((moment - start + interval / 2) // interval) * interval


def decide(
    *,
    interval: timedelta,
    suspend: bool,
    run_on_startup: bool,
    generation: int | None,
    created_at: datetime,
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    now: datetime,
    phase: timedelta = timedelta(0),
) -> Due:
    """Whether a run is due now, and if not, when the next one is.

    Manual triggers and spec changes run at once; otherwise on the grid described in the
    module docstring, or after a failure backoff, or one interval after creation when the
    resource never ran and runOnStartup is false. Suspended resources never run. Status
    fields that cannot be trusted are ignored and named in `problems`; an unusable
    lastSyncTime makes the resource due now, which writes a good one.
    """
    view = read_status(status, now=now)
    problems = view.problems
    restart = nearest_slot(now, interval, phase)  # where a triggered run joins its grid
    anchor = view.last_schedule or view.last_sync
    if suspend:
        return Due(None, (anchor or created_at + phase) + interval, problems=problems)
    requested = annotations.get(REQUESTED_AT)
    if requested and requested != view.handled_request:
        return Due(
            Trigger.MANUAL, now, requested_at=requested, claim_key=f"manual:{_keyed(requested)}",
            anchor=restart, rejoin=True, problems=problems,
        )  # fmt: skip
    observed = view.observed_generation
    if view.stalled and view.last_run_generation is not None:
        # A stall records the generation it judged (kstatus reads Failed only then), not one
        # that ran: a spec change it stalled on is still to run, once whatever stalled it is
        # fixed. The last run's history entry says which generation it used.
        observed = view.last_run_generation
    newer = generation is not None and observed is not None and 0 < observed < generation
    spec_change = Due(
        Trigger.SPEC_CHANGE, now, claim_key=f"generation:{generation}", anchor=restart,
        rejoin=True, problems=problems,
    )  # fmt: skip
    if view.last_sync is None:
        if view.last_sync_unusable:
            return Due(
                Trigger.SCHEDULE, now, claim_key=f"repair:{view.fingerprint}", anchor=restart,
                rejoin=True, problems=problems,
            )  # fmt: skip
        if not run_on_startup:
            first = nearest_slot(created_at + interval, interval, phase)
            return Due(
                Trigger.SCHEDULE if first <= now else None, first,
                claim_key=f"schedule:{_key(first)}", anchor=first, problems=problems,
            )  # fmt: skip
        # A first run that used an older spec (a Replace cancelled it, or Forbid let it finish).
        if newer:
            return spec_change
        return Due(
            Trigger.STARTUP,
            created_at,
            claim_key="startup",
            anchor=restart,
            rejoin=True,
            problems=problems,
        )
    if newer:
        return spec_change
    if view.failures > 0:
        wait = min(interval, FAILURE_BACKOFF_BASE * 2 ** min(view.failures - 1, 16))
        retry_at = view.last_sync + wait
        return Due(
            Trigger.RETRY if retry_at <= now else None, retry_at,
            claim_key=f"retry:{_key(retry_at)}", anchor=nearest_slot(retry_at, interval, phase),
            problems=problems,
        )  # fmt: skip
    assert anchor is not None  # last_sync is set
    next_time = anchor + interval
    if next_time + interval <= now:
        # Whole periods were missed (the operator was down): run once, for the latest of them.
        next_time += ((now - next_time) // interval) * interval
    return Due(
        Trigger.SCHEDULE if next_time <= now else None, next_time,
        claim_key=f"schedule:{_key(next_time)}", anchor=next_time, problems=problems,
    )  # fmt: skip


def _key(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _keyed(requested: str) -> str:
    if len(requested) <= _MAX_KEYED_REQUEST:
        return requested
    return "sha256:" + hashlib.sha256(requested.encode()).hexdigest()
