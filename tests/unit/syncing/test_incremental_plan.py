"""Which walk a run makes (full or incremental, and why) and the high-water mark a walk supports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inventory_sync.store.scopes import ScopeState
from inventory_sync.syncing.incremental import (
    CLOCK_SKEW_ALLOWANCE,
    HighWater,
    changed_since_filter,
    plan_walk,
)
from inventory_sync.upstream import Page
from inventory_sync.upstream.paging import newest_timestamp

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
MARK = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "interval", "mode", "reason"),
    [
        pytest.param(None, DAY, "full", "no consistent full walk yet", id="never walked: full"),
        pytest.param(
            ScopeState(last_full_at=None, high_water_mark=MARK),
            DAY,
            "full",
            "no consistent full walk yet",
            id="no consistent full walk: full",
        ),
        pytest.param(
            ScopeState(last_full_at=NOW - timedelta(hours=1), high_water_mark=None),
            DAY,
            "full",
            "the last full walk saw no updatedAt to continue from",
            id="no mark: full",
        ),
        pytest.param(
            ScopeState(last_full_at=NOW - DAY, high_water_mark=MARK),
            DAY,
            "full",
            "fullSyncInterval 24h elapsed",
            id="interval elapsed: full",
        ),
        pytest.param(
            ScopeState(last_full_at=NOW - timedelta(hours=1), high_water_mark=MARK),
            timedelta(0),
            "full",
            "fullSyncInterval is 0s: every run walks everything",
            id="interval 0s: always full",
        ),
        pytest.param(
            ScopeState(last_full_at=NOW - timedelta(hours=23), high_water_mark=MARK),
            DAY,
            "incremental",
            "changes since 2026-12-02T10:55:00.000Z",
            id="recent full walk and a mark: incremental from the mark minus the allowance",
        ),
    ],
)
def test_plan_walk(state: ScopeState | None, interval: timedelta, mode: str, reason: str) -> None:
    plan = plan_walk(state, now=NOW, full_sync_interval=interval)
    assert (plan.mode, plan.reason) == (mode, reason)
    if mode == "incremental":
        assert plan.since == MARK - CLOCK_SKEW_ALLOWANCE


def test_the_filter_uses_the_documented_grammar_and_never_rounds_up() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)
    assert changed_since_filter(moment) == "updatedAt gt '2026-01-02T03:04:05.678Z'"


def page(*stamps: str | None, date: datetime | None = None) -> Page:
    """A page as a decoder in a worker process hands it over: its newest stamp read there."""
    items = [{"updatedAt": s} for s in stamps]
    newest = newest_timestamp(items, "updatedAt")
    return Page(items=[], total=None, number=0, server_date=date, newest_update=newest)


def test_the_mark_is_the_newest_update_seen() -> None:
    watch = HighWater()
    watch.observe(page("2026-12-01T10:00:00.000Z", None, "garbage", date=NOW))
    watch.observe(page("2026-12-02T09:30:00.500Z", "2026-12-02T09:30:00Z"))
    watch.observe(page("2026-12-02T10:00:00+02:00"))  # 08:00Z: older, despite its text
    assert watch.mark == datetime(2026, 12, 2, 9, 30, 0, 500000, tzinfo=UTC)
    assert watch.server_start == NOW


def test_a_future_stamp_cannot_push_the_mark_past_the_servers_clock() -> None:
    watch = HighWater()
    watch.observe(page("2027-01-01T00:00:00.000Z", date=NOW))
    watch.observe(page("2026-12-02T11:00:00.000Z", date=NOW + timedelta(minutes=1)))
    assert watch.mark == NOW  # the first page's Date: when the walk began, by the server


def test_a_walk_without_updated_at_supports_no_mark() -> None:
    watch = HighWater()
    watch.observe(page(None, date=NOW))
    assert watch.mark is None
