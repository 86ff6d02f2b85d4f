"""When is a SyncSchedule or Fabric due? Computed from its status, so a restart causes no burst."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# After a failed run the next attempt comes sooner than a whole interval, doubling per
# consecutive failure, so a transient outage heals quickly without hammering the upstream.
FAILURE_BACKOFF_BASE = timedelta(seconds=30)


class Trigger(StrEnum):
    STARTUP = "startup"  # never synced and runOnStartup
    SCHEDULE = "schedule"  # the interval elapsed
    MANUAL = "manual"  # reconcile.fluxcd.io/requestedAt changed
    SPEC_CHANGE = "spec-change"  # metadata.generation moved past observedGeneration
    RETRY = "retry"  # the previous run failed; backing off


@dataclass(frozen=True)
class Due:
    """The decision for one resource at one instant."""

    trigger: Trigger | None  # None: not due now
    scheduled_at: datetime  # when this run was (or the next one will be) due
    requested_at: str | None = None  # the manual-trigger value to echo into status
    #: What the run answers, identical on every replica: the sync_runs claim (see store.runs).
    claim_key: str = ""

    @property
    def now(self) -> bool:
        return self.trigger is not None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def decide(
    *,
    interval: timedelta,
    suspend: bool,
    run_on_startup: bool,
    generation: int | None,
    created_at: datetime,
    status: dict[str, Any],
    annotations: dict[str, str],
    now: datetime,
) -> Due:
    """Whether a run is due now, and if not, when the next one is.

    Manual triggers and spec changes run at once; otherwise the interval counts from the last
    attempt (status.lastSyncTime), or from creation when the resource never ran and
    runOnStartup is false. Suspended resources never run.
    """
    last_attempt = parse_time(status.get("lastSyncTime"))
    requested = annotations.get(REQUESTED_AT)
    if suspend:
        next_time = (last_attempt or created_at) + interval
        return Due(None, next_time)
    if requested and requested != status.get("lastHandledReconcileAt"):
        return Due(Trigger.MANUAL, now, requested_at=requested, claim_key=f"manual:{requested}")
    observed = status.get("observedGeneration")
    if last_attempt is None:
        if run_on_startup:
            return Due(Trigger.STARTUP, created_at, claim_key="startup")
        first = created_at + interval
        return Due(
            Trigger.SCHEDULE if first <= now else None, first, claim_key=f"schedule:{_key(first)}"
        )
    if generation is not None and isinstance(observed, int) and 0 < observed < generation:
        return Due(Trigger.SPEC_CHANGE, now, claim_key=f"generation:{generation}")
    failures = int(status.get("consecutiveFailures") or 0)
    wait = interval
    if failures > 0:
        wait = min(interval, FAILURE_BACKOFF_BASE * 2 ** min(failures - 1, 16))
    next_time = last_attempt + wait
    trigger = Trigger.RETRY if failures else Trigger.SCHEDULE
    key = f"{trigger.value}:{_key(next_time)}"
    return Due(trigger if next_time <= now else None, next_time, claim_key=key)


def _key(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
