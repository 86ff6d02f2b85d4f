"""The scheduler: one resource's problem never stops another's, and gone resources are forgotten."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from inventory_sync.operating.context import OperatorContext, SchedulerDown
from inventory_sync.operating.scheduler import Listing
from inventory_sync.reconciling.conditions import find
from inventory_sync.running.resource import SYNC_SCHEDULE
from inventory_sync.settings import Settings

from .conftest import START, FakeApi, Replica, schedule_body

SYNCED = {"lastSyncTime": "2026-11-22T11:59:00Z", "observedGeneration": 1}


@pytest.mark.parametrize(
    "hostile",
    [
        {"lastSyncTime": "9999-12-31T23:59:59Z"},
        {"lastSyncTime": "2099-01-01T00:00:00Z"},
        {"lastSyncTime": "yesterday"},
        {"lastSyncTime": "2026-11-22T11:59:00Z", "lastScheduleTime": "9999-12-31T23:59:59Z"},
        {"lastSyncTime": "2026-11-22T11:59:00Z", "consecutiveFailures": "many"},
    ],
    ids=["year 9999", "year 2099", "not a time", "lastScheduleTime 9999", "failures not a count"],
)
async def test_a_hostile_status_on_one_resource_never_stops_the_others(
    api: FakeApi, replica: Replica, hostile: dict[str, Any]
) -> None:
    api.add(schedule_body("hostile", status={**hostile, "observedGeneration": 1}))
    api.add(schedule_body("neighbour", status=dict(SYNCED)))
    replica.sync_from_api()

    await replica.step()
    replica.clock.advance(timedelta(minutes=15))  # the neighbour falls due
    await replica.step()

    ran = {uid for uid, _, _ in replica.work.started}
    assert "uid-neighbour" in ran
    invalid = [e for e in api.events if e["reason"] == "InvalidStatus"]
    assert len(invalid) == 1  # said once, not every tick
    assert "status." in invalid[0]["message"]
    assert invalid[0]["involvedObject"]["name"] == "hostile"
    if "lastSyncTime" in invalid[0]["message"]:  # the schedule cannot count from it: run now
        assert "uid-hostile" in ran
        assert api.status("hostile")["lastSyncTime"].startswith("2026-11-22")


async def test_a_bug_in_one_resource_is_contained_to_it(api: FakeApi, replica: Replica) -> None:
    broken = schedule_body("broken")
    del broken["metadata"]["creationTimestamp"]  # decide cannot place it at all
    api.add(broken)
    api.add(schedule_body("fine"))
    replica.sync_from_api()

    await replica.step()

    assert {uid for uid, _, _ in replica.work.started} == {"uid-fine"}
    assert replica.scheduler.slots["uid-broken"].not_before is not None  # rechecked later


async def test_a_resource_whose_status_answers_404_is_forgotten(
    api: FakeApi, replica: Replica
) -> None:
    # A DELETED event was missed: the scheduler still holds a body of a resource that is gone.
    ghost = schedule_body("ghost")
    replica.observe(ghost)

    await replica.step()

    assert "uid-ghost" not in replica.scheduler.slots
    assert replica.work.started == []  # it never ran: the first status write said 404
    assert api.events == []


async def test_a_fresh_list_drops_what_it_no_longer_has_and_adds_what_was_missed(
    api: FakeApi, replica: Replica
) -> None:
    replica.observe(schedule_body("deleted", status=dict(SYNCED)) | {"metadata": {
        "name": "deleted", "namespace": "ns", "uid": "uid-deleted", "resourceVersion": "5",
        "creationTimestamp": "2026-11-22T10:00:00Z", "generation": 1}})  # fmt: skip
    missed = api.add(schedule_body("missed", status=dict(SYNCED)))
    api.version += 10

    replica.scheduler.reconcile(Listing([(SYNC_SCHEDULE, missed)], resource_version=api.version))

    assert set(replica.scheduler.slots) == {"uid-missed"}


async def test_a_resource_newer_than_the_list_is_kept(replica: Replica) -> None:
    body = schedule_body("new")
    body["metadata"]["resourceVersion"] = "900"
    replica.observe(body)

    replica.scheduler.reconcile(Listing([], resource_version=800))

    assert set(replica.scheduler.slots) == {"uid-new"}


async def test_the_scheduler_wakes_at_the_due_time_not_a_tick_later(
    api: FakeApi, replica: Replica
) -> None:
    status = dict(SYNCED, lastScheduleTime="2026-11-22T11:45:00.400000Z")
    api.add(schedule_body(status=status))
    replica.sync_from_api()
    replica.scheduler.tick()
    slot = replica.scheduler.slots["uid-inventory"]
    assert slot.wake_at is not None
    assert slot.wake_at.isoformat() == "2026-11-22T12:00:00.400000+00:00"  # 11:45:00.4 + 15m


async def test_the_liveness_probe_fails_at_once_when_the_scheduler_died() -> None:
    from inventory_sync.kube import KubeConnection

    context = OperatorContext(
        settings=Settings(database_url="postgresql://unused", metrics_port=0, health_port=0),
        connection=KubeConnection(server="https://api.invalid"),
        database_url="postgresql://unused",
    )

    async def crash() -> None:
        raise OverflowError("date value out of range")

    context._task = asyncio.create_task(crash())
    await asyncio.sleep(0)
    with pytest.raises(SchedulerDown, match="OverflowError"):
        context.healthy()
    await context.stop()  # and stopping never hangs or raises on a dead scheduler


def stalled_status(reason: str) -> dict[str, Any]:
    return {
        **SYNCED, "nextSyncTime": "2026-11-22T12:14:00Z", "syncStatus": "InSync",
        "conditions": [
            {"type": "Stalled", "status": "True", "reason": reason, "message": "x",
             "lastTransitionTime": "2026-11-22T11:00:00Z"},
            {"type": "Ready", "status": "False", "reason": reason, "message": "x",
             "lastTransitionTime": "2026-11-22T11:00:00Z"},
        ],
    }  # fmt: skip


async def test_a_cleared_stall_is_said_between_runs(api: FakeApi, replica: Replica) -> None:
    """InvalidSpec from an older operator (it refused fields this one knows): the spec parses
    now, so the stall is over; the next run is due when it was."""
    api.add(schedule_body(status=stalled_status("InvalidSpec")))
    replica.sync_from_api()

    await replica.step()

    status = api.status("inventory")
    assert find(status["conditions"], "Stalled") is None
    assert find(status["conditions"], "Ready")["reason"] == "Waiting"  # type: ignore[index]
    assert replica.work.started == []


async def test_a_missing_secret_is_not_declared_fixed_between_runs(
    api: FakeApi, replica: Replica
) -> None:
    """Only a run can tell whether a Secret is back (a stall answered a manual request, the
    next run is due later): the stall stays, and kstatus keeps reading Failed."""
    api.add(schedule_body(status=stalled_status("MissingCredentials")))
    replica.sync_from_api()

    await replica.step()

    status = api.status("inventory")
    assert find(status["conditions"], "Stalled") is not None
    assert find(status["conditions"], "Ready")["reason"] == "MissingCredentials"  # type: ignore[index]
    assert replica.work.started == []


async def test_a_resource_that_never_ran_says_so_until_its_first_run(
    api: FakeApi, replica: Replica
) -> None:
    """runOnStartup: false: no condition at all would read as Current (done) to kstatus."""
    api.add(schedule_body(runOnStartup=False, created=START - timedelta(minutes=1)))
    replica.sync_from_api()

    await replica.step()

    assert replica.work.started == []
    status = api.status("inventory")
    assert status["observedGeneration"] == 1
    ready = find(status["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("Unknown", "Waiting")
