"""When a resource is due: the table of decisions the operator makes on every tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inventory_sync.reconciling.due import REQUESTED_AT, Trigger, decide

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
CREATED = NOW - timedelta(days=1)
INTERVAL = timedelta(minutes=15)


def at(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def due(status: dict[str, Any] | None = None, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "interval": INTERVAL,
        "suspend": False,
        "run_on_startup": True,
        "generation": 1,
        "created_at": CREATED,
        "status": status or {},
        "annotations": {},
        "now": NOW,
    }
    args.update(overrides)
    return decide(**args)


SYNCED_5M_AGO = {"lastSyncTime": at(-timedelta(minutes=5)), "observedGeneration": 1}

CASES = [
    ("never synced with runOnStartup runs now", {}, {}, Trigger.STARTUP),
    (
        "never synced without runOnStartup waits one interval from creation",
        {},
        {"run_on_startup": False, "created_at": NOW - timedelta(minutes=5)},
        None,
    ),
    (
        "never synced without runOnStartup runs once the interval passed",
        {},
        {"run_on_startup": False, "created_at": NOW - timedelta(minutes=20)},
        Trigger.SCHEDULE,
    ),
    ("synced 5m ago is not due (no burst after a restart)", SYNCED_5M_AGO, {}, None),
    (
        "synced 20m ago is due",
        {"lastSyncTime": at(-timedelta(minutes=20)), "observedGeneration": 1},
        {},
        Trigger.SCHEDULE,
    ),
    (
        "a new requestedAt runs now",
        SYNCED_5M_AGO,
        {"annotations": {REQUESTED_AT: "t1"}},
        Trigger.MANUAL,
    ),
    (
        "an already handled requestedAt does not run",
        {**SYNCED_5M_AGO, "lastHandledReconcileAt": "t1"},
        {"annotations": {REQUESTED_AT: "t1"}},
        None,
    ),
    ("a spec change runs now", SYNCED_5M_AGO, {"generation": 2}, Trigger.SPEC_CHANGE),
    ("suspended never runs", {}, {"suspend": True}, None),
    (
        "suspended ignores a manual request",
        SYNCED_5M_AGO,
        {"suspend": True, "annotations": {REQUESTED_AT: "t2"}},
        None,
    ),
    (
        "after one failure a retry comes after 30s, not a whole interval",
        {**SYNCED_5M_AGO, "lastSyncTime": at(-timedelta(seconds=31)), "consecutiveFailures": 1},
        {},
        Trigger.RETRY,
    ),
    (
        "after three failures the retry waits 2m",
        {**SYNCED_5M_AGO, "lastSyncTime": at(-timedelta(seconds=90)), "consecutiveFailures": 3},
        {},
        None,
    ),
]


@pytest.mark.parametrize(
    ("status", "overrides", "trigger"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decisions(
    status: dict[str, Any], overrides: dict[str, Any], trigger: Trigger | None
) -> None:
    assert due(status, **overrides).trigger is trigger


def test_the_next_time_counts_from_the_last_attempt() -> None:
    assert due(SYNCED_5M_AGO).scheduled_at == NOW + timedelta(minutes=10)


def test_a_manual_trigger_carries_the_value_to_echo() -> None:
    assert (
        due(SYNCED_5M_AGO, annotations={REQUESTED_AT: "2026-11-22T12:00:00Z"}).requested_at
        == "2026-11-22T12:00:00Z"
    )


def test_failure_backoff_never_exceeds_the_interval() -> None:
    status = {**SYNCED_5M_AGO, "consecutiveFailures": 30}
    assert due(status).scheduled_at == NOW - timedelta(minutes=5) + INTERVAL


def test_claim_keys_are_what_every_replica_derives_alike() -> None:
    assert due({}).claim_key == "startup"
    assert due(SYNCED_5M_AGO, annotations={REQUESTED_AT: "t9"}).claim_key == "manual:t9"
    assert due(SYNCED_5M_AGO, generation=2).claim_key == "generation:2"
    later = due(SYNCED_5M_AGO, now=NOW + timedelta(minutes=11))
    assert later.claim_key == "schedule:2026-11-22T12:10:00.000000+00:00"
    # evaluated a second later by another replica: the same run, the same key
    assert (
        due(SYNCED_5M_AGO, now=NOW + timedelta(minutes=11, seconds=1)).claim_key == later.claim_key
    )
