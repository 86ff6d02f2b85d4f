"""What status says after a run starts, ends or stalls; conditions follow metav1 rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.conditions import find
from inventory_sync.reconciling.due import Trigger
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=15)


def result(ok: bool = True, *, at: datetime = NOW) -> RunResult:
    return RunResult(
        state=RunState.SUCCEEDED if ok else RunState.FAILED,
        trigger="schedule",
        started_at=at - timedelta(seconds=6),
        finished_at=at,
        seconds=6.0,
        sources=[
            SourceOutcome(
                name="subscriptions",
                kind="greenlake/subscriptions",
                state=SourceState.SUCCEEDED,
                inserted=27,
            ),
            SourceOutcome(
                name="devices",
                kind="greenlake/devices",
                state=SourceState.SUCCEEDED if ok else SourceState.FAILED,
                inserted=5,
            ),
        ],
        message=None if ok else "devices: upstream unavailable after 6 attempts",
    )


def finish(
    status: dict[str, Any], run: RunResult, *, now: datetime = NOW, limit: int = 10
) -> dict[str, Any]:
    return st.finished(
        status, run, generation=3, interval=INTERVAL, history_limit=limit, requested_at=None,
        anchor=now, now=now,
    )  # fmt: skip


def test_a_good_run_is_ready_in_sync_with_counts() -> None:
    patch = finish({}, result())

    ready = find(patch["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "True",
        "Succeeded",
        3,
    )
    assert "32 inserted" in ready["message"]
    assert patch["syncStatus"] == "InSync"
    assert patch["lastSuccessfulSyncTime"] == patch["lastSyncTime"] == "2026-11-22T12:00:00Z"
    assert patch["sourceSummary"] == "2/2 succeeded"
    assert find(patch["conditions"], "Reconciling") is None


def test_a_failed_run_is_not_ready_with_the_reason_and_keeps_the_last_success() -> None:
    good = finish({}, result())
    bad = finish(good, result(ok=False, at=NOW + INTERVAL), now=NOW + INTERVAL)

    ready = find(bad["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "SyncFailed")
    assert "upstream unavailable" in ready["message"]
    assert bad["syncStatus"] == "Error"
    assert bad["consecutiveFailures"] == 1
    assert bad["lastSuccessfulSyncTime"] == good["lastSuccessfulSyncTime"]


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = finish({}, result())
    again = finish(first, result(at=NOW + INTERVAL), now=NOW + INTERVAL)
    failed = finish(again, result(ok=False, at=NOW + 2 * INTERVAL), now=NOW + 2 * INTERVAL)

    def transition(s: dict[str, Any]) -> str:
        ready = find(s["conditions"], "Ready")
        assert ready is not None
        return str(ready["lastTransitionTime"])

    assert transition(again) == transition(first)
    assert transition(failed) != transition(again)


def test_a_last_success_older_than_twice_the_interval_is_out_of_sync() -> None:
    status = finish({}, result())
    assert (
        st.sync_status(status, interval=INTERVAL, now=NOW + 2 * INTERVAL + timedelta(seconds=1))
        == "OutOfSync"
    )
    assert st.sync_status(status, interval=INTERVAL, now=NOW + INTERVAL) == "InSync"
    assert st.sync_status({}, interval=INTERVAL, now=NOW) == "NeverSynced"


def test_history_is_bounded_newest_first() -> None:
    status: dict[str, Any] = {}
    for n in range(5):
        status = {
            **status,
            **finish(status, result(at=NOW + n * INTERVAL), now=NOW + n * INTERVAL, limit=3),
        }
    assert [h["finishedAt"] for h in status["history"]] == [
        "2026-11-22T13:00:00Z",
        "2026-11-22T12:45:00Z",
        "2026-11-22T12:30:00Z",
    ]


def test_a_started_run_shows_reconciling_and_a_first_ready_false() -> None:
    patch = st.started({}, generation=1, trigger=Trigger.STARTUP, now=NOW)
    reconciling = find(patch["conditions"], "Reconciling")
    ready = find(patch["conditions"], "Ready")
    assert reconciling is not None
    assert reconciling["status"] == "True"
    assert ready is not None
    assert ready["status"] == "False"


def test_stalled_sets_stalled_and_not_ready_with_the_message() -> None:
    patch = st.stalled(
        {}, reason="MissingCredentials", message="Secret ns/glp not found", generation=2, now=NOW
    )
    stalled = find(patch["conditions"], "Stalled")
    assert stalled is not None
    assert (stalled["status"], stalled["message"]) == ("True", "Secret ns/glp not found")
    ready = find(patch["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "MissingCredentials")
    # The stall is the verdict on generation 2: kstatus reads Failed, not InProgress.
    assert patch["observedGeneration"] == 2
    assert "history" not in patch  # which generation ran is the last run's to say


def test_a_history_entry_names_the_generation_its_run_used() -> None:
    patch = finish({}, result(True))
    assert patch["history"][0]["generation"] == 3


def test_not_ready_leaves_observed_generation_to_the_run() -> None:
    """A run that could not start has not used its generation: a spec change stays pending."""
    patch = st.not_ready({}, reason="StoreUnavailable", message="gone", generation=2, now=NOW)
    assert "observedGeneration" not in patch


def test_a_resource_that_never_ran_waits_with_ready_unknown() -> None:
    patch = st.awaiting_first_run(
        {"observedGeneration": -1}, generation=1, due_at=NOW + timedelta(minutes=15), now=NOW
    )
    ready = find(patch["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("Unknown", "Waiting")
    assert ready["message"] == "no run yet: the first is due at 2026-11-22T12:15:00Z"


def test_a_first_run_replaces_whatever_ready_said_before_it() -> None:
    waiting = st.awaiting_first_run({}, generation=1, due_at=NOW, now=NOW)
    patch = st.started(waiting, generation=1, trigger=Trigger.SCHEDULE, now=NOW)
    ready = find(patch["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["message"]) == ("False", "First run in progress")


def test_the_ready_message_names_each_skipped_kind_and_why() -> None:
    run = RunResult(
        state=RunState.SUCCEEDED, trigger="schedule", started_at=NOW, finished_at=NOW, seconds=0.4,
        sources=[
            SourceOutcome(name="Switch", kind="wiring.githedgehog.com/Switch",
                          state=SourceState.SUCCEEDED, inserted=3),
            SourceOutcome(name="Agent", kind="agent.githedgehog.com/Agent", state=SourceState.SKIPPED,
                          message="not installed: the fabric serves no API group agent.githedgehog.com"),
            SourceOutcome(name="VPC", kind="vpc.githedgehog.com/VPC", state=SourceState.SKIPPED,
                          message="installed at vpc.githedgehog.com/v1beta1, not at the pinned version v1alpha2"),
        ],
    )  # fmt: skip

    message = find(finish({}, run)["conditions"], "Ready")["message"]

    assert message == (
        "Synced 1/3 succeeded, 2 skipped in 0.4s: 3 inserted, 0 updated, 0 deleted, 0 unchanged; "
        "skipped Agent: not installed: the fabric serves no API group agent.githedgehog.com; "
        "VPC: installed at vpc.githedgehog.com/v1beta1, not at the pinned version v1alpha2"
    )
