"""Incremental sync of a GreenLake list: fetch only what changed since the scope's high-water mark,
check the count, and walk fully when deletions must be judged (syncing layer).

The correctness argument is in docs/sync-engine.md ("Incremental sync").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from inventory_sync.durations import format_duration
from inventory_sync.store.scopes import ScopeState
from inventory_sync.upstream import Page

#: Changes are asked for from this long before the high-water mark: upstream servers stamp
#: `updatedAt` with their own clocks and may commit a change after a later-stamped one is
#: visible. A change stamped earlier than this behind the mark is caught by the next full walk.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

Mode = Literal["full", "incremental"]


@dataclass(frozen=True)
class WalkPlan:
    """Which walk a run makes of one scope, and why (shown in the source's outcome)."""

    mode: Mode
    reason: str
    #: Incremental only: ask for items with `updatedAt` after this instant.
    since: datetime | None = None


def plan_walk(
    state: ScopeState | None, *, now: datetime, full_sync_interval: timedelta
) -> WalkPlan:
    """Full when no trusted full walk exists, when it is older than `full_sync_interval`, or
    when incremental sync is switched off (interval 0); incremental otherwise."""
    if full_sync_interval <= timedelta(0):
        return WalkPlan("full", "fullSyncInterval is 0s: every run walks everything")
    if state is None or state.last_full_at is None:
        return WalkPlan("full", "no consistent full walk yet")
    if state.high_water_mark is None:
        return WalkPlan("full", "the last full walk saw no updatedAt to continue from")
    if now - state.last_full_at >= full_sync_interval:
        return WalkPlan("full", f"fullSyncInterval {format_duration(full_sync_interval)} elapsed")
    since = state.high_water_mark - CLOCK_SKEW_ALLOWANCE
    return WalkPlan("incremental", f"changes since {format_timestamp(since)}", since=since)


def changed_since_filter(since: datetime) -> str:
    """The GreenLake filter for items changed after `since` (the documented grammar)."""
    return f"updatedAt gt '{format_timestamp(since)}'"


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as GreenLake writes `updatedAt`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class HighWater:
    """Observes a walk's pages (as the walk yields them) for the newest `updatedAt`, capped by
    the server's clock when the walk began (the first page's `Date`), so a future-stamped item
    cannot push the mark past changes still to come."""

    def __init__(self) -> None:
        self._newest: datetime | None = None
        self._server_start: datetime | None = None

    def observe(self, page: Page) -> None:
        if self._server_start is None and page.server_date is not None:
            self._server_start = page.server_date
        # Read where the page was decoded (`Page.newest_update`): its items may be gone.
        moment = page.newest_update
        if moment is not None and (self._newest is None or moment > self._newest):
            self._newest = moment

    @property
    def server_start(self) -> datetime | None:
        """The server's clock at the walk's first page, if it sent a `Date` header."""
        return self._server_start

    @property
    def mark(self) -> datetime | None:
        """The high-water mark this walk supports, or None when it saw no `updatedAt`."""
        if self._newest is None:
            return None
        if self._server_start is not None and self._newest > self._server_start:
            return self._server_start
        return self._newest


def outcome_counts(outcome: Any) -> dict[str, int]:
    """The counters a second walk in the same run would overwrite (see `add_counts`)."""
    return {name: int(getattr(outcome, name)) for name in _COUNTERS}


def add_counts(outcome: Any, earlier: dict[str, int]) -> None:
    """Add the counters of an earlier walk of this run back onto `outcome`."""
    for name, value in earlier.items():
        setattr(outcome, name, int(getattr(outcome, name)) + value)


_COUNTERS = ("fetched", "inserted", "updated", "unchanged", "errors", "unresolved_links")
