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
STALLED = {"type": "Stalled", "status": "True", "reason": "MissingCredentials", "message": "x",
           "lastTransitionTime": at(-timedelta(minutes=1))}  # fmt: skip
# Generation 2 stalled (a Secret it names is missing): the stall says it judged 2, the last
# run's history entry says 1 ran.
STALLED_ON_2 = {**SYNCED_5M_AGO, "observedGeneration": 2, "conditions": [STALLED],
                "history": [{"result": "Succeeded", "generation": 1}]}  # fmt: skip

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
    (
        "a spec change that stalled runs once it can",
        STALLED_ON_2,
        {"generation": 2},
        Trigger.SPEC_CHANGE,
    ),
    (
        "a stall on the generation that ran waits for its due time",
        {**STALLED_ON_2, "history": [{"generation": 2}]},
        {"generation": 2},
        None,
    ),
    (
        "a stall's history from before generations were recorded counts observedGeneration",
        {**STALLED_ON_2, "history": [{"result": "Succeeded"}]},
        {"generation": 2},
        None,
    ),
    (
        "without a stall observedGeneration decides, not history",
        {**SYNCED_5M_AGO, "history": [{"generation": 0}]},
        {},
        None,
    ),
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


# -- status is untrusted input (issue 10, defect 2) -----------------------------------------


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59Z", "2099-01-01T00:00:00Z", "not a time", "0001-01-01T00:00:00Z"],
    ids=["year 9999 overflows no more", "far future does not postpone", "unparsable", "year 1"],
)
def test_an_unusable_last_sync_time_runs_now_instead_of_never(value: str) -> None:
    decision = due({"lastSyncTime": value, "observedGeneration": 1})
    assert decision.trigger is Trigger.SCHEDULE
    assert decision.scheduled_at <= NOW


def test_an_unusable_last_sync_time_is_named_and_keyed_alike_on_every_replica() -> None:
    status = {"lastSyncTime": "9999-12-31T23:59:59Z", "observedGeneration": 1}
    first, second = due(status), due(status, now=NOW + timedelta(seconds=1))
    assert first.claim_key == second.claim_key
    assert first.claim_key.startswith("repair:")
    assert first.problems == (
        "status.lastSyncTime '9999-12-31T23:59:59Z' is in the future; ignored",
    )


def test_a_time_within_the_clock_skew_of_replicas_is_trusted() -> None:
    status = {"lastSyncTime": at(timedelta(minutes=2)), "observedGeneration": 1}
    decision = due(status)
    assert (decision.trigger, decision.problems) == (None, ())
    assert decision.scheduled_at == NOW + timedelta(minutes=17)


@pytest.mark.parametrize(
    "failures", ["3", -1, True, 10**30], ids=["a string", "negative", "a boolean", "huge"]
)
def test_a_failure_count_that_is_not_a_count_never_crashes(failures: Any) -> None:
    decision = due({**SYNCED_5M_AGO, "consecutiveFailures": failures})
    assert decision.scheduled_at <= NOW + INTERVAL


# -- honest periods and a per-resource phase (defect 10) -----------------------------------


def test_the_period_counts_from_when_the_last_run_was_due_not_when_it_ended() -> None:
    # The run due at 11:50 started late and took 70 s; "15m" still means 12:05.
    status = {
        "lastScheduleTime": at(-timedelta(minutes=10)),
        "lastSyncTime": at(-timedelta(minutes=8, seconds=50)),
        "observedGeneration": 1,
    }
    assert due(status).scheduled_at == NOW + timedelta(minutes=5)


def test_missed_periods_run_once_for_the_latest() -> None:
    status = {"lastScheduleTime": at(-timedelta(hours=2, minutes=3)), "observedGeneration": 1,
              "lastSyncTime": at(-timedelta(hours=2))}  # fmt: skip
    decision = due(status)
    assert decision.trigger is Trigger.SCHEDULE
    assert NOW - INTERVAL < decision.scheduled_at <= NOW
    assert decision.anchor == decision.scheduled_at  # so the next one is a period later


def test_the_phase_is_fixed_per_uid_and_spreads_resources_over_the_interval() -> None:
    from inventory_sync.reconciling.due import phase_of

    minute = timedelta(minutes=1)
    phases = [phase_of(f"uid-{n}", minute) for n in range(200)]
    assert all(timedelta(0) <= p < minute for p in phases)
    assert all(p.microseconds % 1000 == 0 for p in phases)  # milliseconds, as status keeps them
    assert phase_of("uid-7", minute) == phases[7]  # every replica computes the same
    busiest = max(sum(1 for p in phases if p.seconds == s) for s in range(60))
    assert busiest <= 10  # 200 resources, about 3.3 per second of the minute, not a burst
    assert len(set(phases)) >= 195  # and hardly two at the same instant (60,000 slots)


def test_a_triggered_run_joins_its_grid_at_the_nearest_slot() -> None:
    phase = timedelta(seconds=40)  # this resource's slots: hh:mm:40 of every 15th minute
    decision = due(SYNCED_5M_AGO, annotations={REQUESTED_AT: "t1"}, phase=phase)
    assert decision.anchor == NOW + timedelta(seconds=40)  # 12:00:40, the nearest slot
    following = due(
        {"lastSyncTime": at(timedelta(seconds=5)), "lastScheduleTime": "2026-11-22T12:00:40Z",
         "observedGeneration": 1}, phase=phase,
    )  # fmt: skip
    assert following.scheduled_at == NOW + timedelta(minutes=15, seconds=40)
    late = due(SYNCED_5M_AGO, annotations={REQUESTED_AT: "t2"}, phase=phase,
               now=NOW + timedelta(minutes=9))  # fmt: skip
    assert late.anchor == NOW + timedelta(minutes=15, seconds=40)  # 12:15:40 is nearer


# -- a spec edit during a first run (defect 6) ------------------------------------------------


def test_a_first_run_that_used_an_older_generation_is_followed_by_a_spec_change_run() -> None:
    # The startup run wrote observedGeneration 1 when it started; the spec moved to 2 since.
    decision = due({"observedGeneration": 1}, generation=2)
    assert (decision.trigger, decision.claim_key) == (Trigger.SPEC_CHANGE, "generation:2")


def test_a_huge_request_value_is_keyed_by_its_digest() -> None:
    decision = due(SYNCED_5M_AGO, annotations={REQUESTED_AT: "x" * 5000})
    assert decision.claim_key.startswith("manual:sha256:")
    assert decision.requested_at == "x" * 5000


def test_a_triggered_run_that_waited_for_a_run_slot_joins_its_grid_where_it_started() -> None:
    phase = timedelta(seconds=40)
    decision = due({}, phase=phase)  # the startup run, decided at 12:00:00
    started = NOW + timedelta(minutes=9)  # it waited behind 200 others for a free run slot
    assert decision.rejoined(started, INTERVAL, phase) == NOW + timedelta(minutes=15, seconds=40)
    scheduled = due({**SYNCED_5M_AGO, "lastScheduleTime": "2026-11-22T11:45:40Z"}, phase=phase)
    assert scheduled.rejoined(started, INTERVAL, phase) == scheduled.anchor  # the grid holds


def test_an_unusable_history_generation_is_named_and_ignored() -> None:
    status = {**STALLED_ON_2, "history": [{"generation": "two"}]}
    decision = due(status, generation=2)
    assert decision.trigger is None  # observedGeneration (2) decides: nothing newer
    assert decision.problems == ("status.history[0].generation 'two' is not a generation; ignored",)
