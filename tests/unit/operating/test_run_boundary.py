"""One run, one boundary: every ending becomes status, an Event and a row, and nothing is stuck."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from inventory_sync.reconciling.conditions import find
from inventory_sync.results import RunState

from .conftest import (
    START,
    FakeApi,
    Lease,
    Replica,
    Row,
    Shared,
    make_replica,
    schedule_body,
)


def condition(status: dict[str, Any], type: str) -> dict[str, Any] | None:
    return find(status.get("conditions") or [], type)


async def test_a_finished_runs_status_is_retried_until_the_api_server_answers(
    api: FakeApi, replica: Replica
) -> None:
    api.add(schedule_body())
    replica.observe(api.body("inventory"))
    replica.work.hold()
    await replica.step()  # started: Reconciling=True landed
    assert condition(api.status("inventory"), "Reconciling") is not None
    # The API server goes away while the run ends: refused connections, then 503s.
    api.fail("PATCH", r"/status$", 0, times=3)
    api.fail("PATCH", r"/status$", 503, times=4)
    replica.work.release()
    await replica.finish()

    status = api.status("inventory")
    ready = condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    assert condition(status, "Reconciling") is None
    (row,) = replica.store.rows_of("uid-inventory")
    assert (row.state, row.status_written_at is not None) == ("Succeeded", True)
    assert "uid-inventory" not in replica.store.shared.leases  # let go once it landed


async def test_a_status_that_never_landed_is_restated_from_the_recorded_run(
    api: FakeApi, replica: Replica, shared: Shared
) -> None:
    # An earlier process finished the startup run, recorded it, and died before its status
    # patch landed; its lease has expired since.
    api.add(schedule_body())
    shared.rows.append(
        Row(1, "uid-inventory", "startup", "startup", START, START, 1, "gone/1",
            state="Succeeded", finished_at=START + timedelta(seconds=5), seconds=5.0,
            sources=[{"name": "central", "kind": "arubaCentral", "state": "Succeeded", "inserted": 7}])
    )  # fmt: skip
    shared.leases["uid-inventory"] = Lease("gone/1", START - timedelta(seconds=1), run_id=1)
    replica.observe(api.body("inventory"))

    await replica.step()

    assert replica.work.started == []  # nothing ran twice
    status = api.status("inventory")
    assert condition(status, "Ready")["reason"] == "Succeeded"  # type: ignore[index]
    assert status["sources"][0]["inserted"] == 7
    assert status["lastSyncTime"] == "2026-11-22T12:00:05Z"
    assert shared.rows[0].status_written_at is not None
    assert "StatusRestated" in api.reasons()
    # And from then on the resource is scheduled normally again.
    replica.sync_from_api()
    replica.clock.advance(timedelta(minutes=16))
    await replica.step()
    assert [key.split(":")[0] for _, key, _ in replica.work.started] == ["schedule"]


async def test_a_run_stops_when_its_lease_cannot_be_renewed(api: FakeApi, shared: Shared) -> None:
    replica = make_replica(api, shared, lease_ttl=0.3, renew_every=0.05)
    api.add(schedule_body())
    replica.observe(api.body("inventory"))
    replica.work.hold()
    await replica.step()
    shared.down = True  # PostgreSQL goes away mid-run: renewals fail

    for _ in range(100):
        await asyncio.sleep(0.01)
        slot = replica.scheduler.slots["uid-inventory"]
        if slot.task is not None and slot.task.done():
            break
    else:
        raise AssertionError("the run went on without its lease")
    assert "LeaseLost" in api.reasons()
    assert replica.work.active["uid-inventory"] == 0  # the work itself was cancelled
    await replica.scheduler.shutdown()


async def test_another_replica_takes_over_an_expired_lease_and_abandons_the_dead_run(
    api: FakeApi, replica: Replica, shared: Shared
) -> None:
    api.add(schedule_body(status={"lastSyncTime": "2026-11-22T11:00:00Z",
                                  "observedGeneration": 1}))  # fmt: skip
    shared.rows.append(Row(1, "uid-inventory", "schedule:x", "schedule", START, START, 1, "dead/1"))
    shared.leases["uid-inventory"] = Lease("dead/1", START - timedelta(seconds=1), run_id=1)
    replica.observe(api.body("inventory"))

    await replica.step()

    old, new = replica.store.rows_of("uid-inventory")
    assert (old.state, new.state) == ("Abandoned", "Succeeded")
    assert "dead/1" in (old.error or "")
    abandoned = [e for e in api.events if e["reason"] == "RunAbandoned"]
    assert len(abandoned) == 1
    assert "run 1" in abandoned[0]["message"]


async def test_a_live_lease_elsewhere_keeps_a_second_replica_from_running(
    api: FakeApi, shared: Shared
) -> None:
    first = make_replica(api, shared, holder="a/1")
    second = make_replica(api, shared, holder="b/1", work=first.work)
    api.add(schedule_body())
    first.observe(api.body("inventory"))
    first.work.hold()
    await first.step()  # a: the startup run, in flight
    # A manual request arrives; b sees it first (a lets its run finish: Forbid).
    body = api.body("inventory")
    body["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] = "now-please"
    api.objects[next(iter(api.objects))]["metadata"]["annotations"] = body["metadata"][
        "annotations"
    ]
    second.observe(body)
    await second.step()

    assert first.work.overlaps == 0
    assert [key for _, key, _ in first.work.started] == ["startup"]
    assert [r.claim_key for r in first.store.rows_of("uid-inventory")] == ["startup"]
    first.work.release()
    await first.settle()
    for replica in (first, second):
        await replica.scheduler.shutdown()


async def test_a_store_error_at_claim_is_ready_false_with_a_stable_reason(
    api: FakeApi, replica: Replica, shared: Shared
) -> None:
    api.add(schedule_body())
    replica.observe(api.body("inventory"))
    shared.fail_claims = 1

    await replica.step()

    ready = condition(api.status("inventory"), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "StoreUnavailable")
    assert "InterfaceError" not in ready["message"]
    assert "StoreUnavailable" in api.reasons()
    # Looked at again after the recheck delay, not every tick; then it runs.
    replica.sync_from_api()
    await replica.step()
    assert replica.work.started == []
    replica.clock.advance(timedelta(seconds=11))
    await replica.step()
    assert [key for _, key, _ in replica.work.started] == ["startup"]


async def test_a_forbidden_status_write_is_a_permanent_problem_with_growing_rechecks(
    api: FakeApi, replica: Replica
) -> None:
    api.add(schedule_body())
    replica.observe(api.body("inventory"))
    api.fail("PATCH", r"/status$", 403)

    await replica.step()

    assert replica.work.started == []  # a run whose status cannot be written does not start
    assert api.reasons() == ["Forbidden"]
    slot = replica.scheduler.slots["uid-inventory"]
    waits = []
    for _ in range(3):
        assert slot.not_before is not None
        waits.append((slot.not_before - replica.clock()).total_seconds())
        replica.clock.now = slot.not_before
        await replica.step()
    assert waits == [10.0, 20.0, 40.0]  # backing off, not every 10 s forever
    (row, *_) = replica.store.rows_of("uid-inventory")
    assert row.state == "Abandoned"  # the request was not answered: it may run again


async def test_a_permanent_error_raised_mid_run_stalls_naming_the_cause(
    api: FakeApi, replica: Replica
) -> None:
    from inventory_sync.errors import KubeConfigError

    async def unusable_certificate(run: Any) -> Any:
        raise KubeConfigError("client certificate of the fabric kubeconfig cannot be used")

    replica.runner.deps.executor = unusable_certificate
    api.add(schedule_body())
    replica.observe(api.body("inventory"))

    await replica.step()

    stalled = condition(api.status("inventory"), "Stalled")
    assert stalled is not None
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidKubeconfig")
    assert "client certificate" in stalled["message"]


async def test_a_spec_edit_during_a_run_gets_its_own_run_with_its_generation(
    api: FakeApi, replica: Replica
) -> None:
    api.add(schedule_body(status={"lastSyncTime": "2026-11-22T11:40:00Z",
                                  "observedGeneration": 1}))  # fmt: skip
    replica.observe(api.body("inventory"))
    replica.clock.advance(timedelta(minutes=1))
    replica.work.hold()
    await replica.step()  # the scheduled run, generation 1
    edited = api.body("inventory")
    edited["metadata"]["generation"] = 2
    edited["spec"]["interval"] = "30m"
    api.objects[next(iter(api.objects))].update(edited)
    replica.sync_from_api()
    await replica.step()  # Forbid: the run in flight finishes first
    replica.work.release()
    await replica.settle()
    assert api.status("inventory")["observedGeneration"] == 1  # the run used generation 1

    replica.sync_from_api()
    await replica.step()

    assert [(key.split(":")[0], gen) for _, key, gen in replica.work.started] == [
        ("schedule", 1), ("generation", 2),
    ]  # fmt: skip
    status = api.status("inventory")
    assert status["observedGeneration"] == 2
    assert condition(status, "Ready")["observedGeneration"] == 2  # type: ignore[index]


async def test_replace_cancels_a_first_run_for_a_spec_edit_and_keeps_its_row(
    api: FakeApi, replica: Replica
) -> None:
    api.add(schedule_body(concurrencyPolicy="Replace"))
    replica.observe(api.body("inventory"))
    replica.work.hold()
    await replica.step()  # the startup run, generation 1, in flight
    edited = api.body("inventory")
    edited["metadata"]["generation"] = 2
    api.objects[next(iter(api.objects))].update(edited)
    replica.sync_from_api()
    await replica.step()
    replica.work.release()
    await replica.settle()

    rows = replica.store.rows_of("uid-inventory")
    assert [(r.claim_key, r.state) for r in rows] == [
        ("startup", "Cancelled"), ("generation:2", "Succeeded"),
    ]  # fmt: skip
    assert api.status("inventory")["observedGeneration"] == 2


async def test_a_cancelled_request_runs_again_in_a_new_row(api: FakeApi, replica: Replica) -> None:
    api.add(schedule_body())
    replica.observe(api.body("inventory"))
    replica.work.hold()
    await replica.step()
    await replica.scheduler.shutdown()  # SIGTERM mid-run
    replica.work.release()
    replica.sync_from_api()

    await replica.step()  # the restarted operator answers the same request

    rows = replica.store.rows_of("uid-inventory")
    assert [(r.claim_key, r.state) for r in rows] == [
        ("startup", "Cancelled"), ("startup", "Succeeded"),
    ]  # fmt: skip


async def test_a_failed_run_is_not_ready_and_retried_with_backoff(
    api: FakeApi, replica: Replica
) -> None:
    replica.work.outcome = RunState.FAILED
    api.add(schedule_body())
    replica.observe(api.body("inventory"))

    await replica.step()

    status = api.status("inventory")
    assert condition(status, "Ready")["reason"] == "SyncFailed"  # type: ignore[index]
    assert status["consecutiveFailures"] == 1
    assert status["nextSyncTime"] == "2026-11-22T12:00:30Z"  # 30 s backoff after the end
    assert "SyncFailed" in api.reasons()


async def test_a_spec_problem_a_run_found_stays_stalled_until_a_run_gets_past_it(
    api: FakeApi, replica: Replica
) -> None:
    """A Fabric kind its API server does not serve is a spec problem only a run can find: the
    spec still parses between runs, which says nothing about the kind (a manual run found it
    and the next run is due later). Only parse failures clear on parsing."""
    from inventory_sync.errors import SpecError
    from inventory_sync.reconciling.due import REQUESTED_AT

    async def unserved_kind(run: Any) -> Any:
        raise SpecError("spec.kinds[0].kind: SwitchProfile is not served by the fabric")

    replica.runner.deps.executor = unserved_kind
    synced = {"lastSyncTime": "2026-11-22T11:59:00Z", "observedGeneration": 1}
    api.add(schedule_body(status=synced, annotations={REQUESTED_AT: "now-please"}))
    replica.observe(api.body("inventory"))

    await replica.step()
    stalled = condition(api.status("inventory"), "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "InvalidSpec"
    assert api.status("inventory")["lastHandledReconcileAt"] == "now-please"

    for _ in range(3):  # past the recheck backoff, the next run still 10 minutes away
        replica.clock.advance(timedelta(minutes=1))
        replica.observe(api.body("inventory"))
        await replica.step()

    status = api.status("inventory")
    assert condition(status, "Stalled") == stalled  # not declared fixed by a parse
    assert condition(status, "Ready")["reason"] == "InvalidSpec"  # type: ignore[index]
