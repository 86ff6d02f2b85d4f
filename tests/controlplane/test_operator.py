"""The operator against a real kube-apiserver with RBAC, real PostgreSQL and the simulator."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from inventory_sync.kube import KubeClient
from inventory_sync.models import GROUP, VERSION
from inventory_sync.simulator import FaultRule, ThreadedSimulator

from .harness import ShiftableClock, condition, eventually
from .operator_fixtures import SECRET, create_secret, path, ready, runs_of, schedule

pytestmark = pytest.mark.controlplane


async def test_a_new_schedule_runs_and_becomes_ready_with_its_status(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator
) -> None:
    await create_secret(admin, test_namespace, simulator)
    operator()
    created = await admin.create(path(test_namespace), schedule(simulator))

    body = await eventually(lambda: ready(admin, test_namespace), what="Ready=True")

    status = body["status"]
    assert status["observedGeneration"] == created["metadata"]["generation"]
    assert status["syncStatus"] == "InSync"
    assert status["lastSyncTime"] == status["lastSuccessfulSyncTime"]
    assert status["nextSyncTime"] > status["lastSyncTime"]
    assert [s["name"] for s in status["sources"]] == ["subscriptions", "devices", "central"]
    assert all(s["state"] == "Succeeded" for s in status["sources"])
    assert status["sourceSummary"] == "3/3 succeeded"
    assert condition(body, "Reconciling") is None
    assert condition(body, "Stalled") is None
    assert body["spec"] == created["spec"]  # the operator never writes spec
    assert "kopf" not in str(status)


async def test_no_run_before_due_and_a_run_after(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    clock: ShiftableClock, database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    operator()
    created = await admin.create(path(test_namespace), schedule(simulator))
    uid = created["metadata"]["uid"]
    body = await eventually(lambda: ready(admin, test_namespace), what="first run")

    await asyncio.sleep(3)  # three ticks: nothing is due
    assert len(await runs_of(database_url, uid)) == 1

    # The next run is due on the resource's grid: half an interval to one and a half after
    # the first (docs/operator.md); status says when.
    due = datetime.fromisoformat(body["status"]["nextSyncTime"].replace("Z", "+00:00"))
    assert timedelta(minutes=7) < due - clock() < timedelta(minutes=23)
    clock.advance(due - clock() + timedelta(seconds=1))
    runs = await eventually(
        lambda: _at_least(runs_of(database_url, uid), 2), what="the scheduled run"
    )
    assert runs[1]["trigger"] == "schedule"


async def _at_least(rows: Any, n: int) -> list[dict[str, Any]] | None:
    found = await rows
    return found if len(found) >= n and all(r["state"] != "Running" for r in found) else None


async def test_a_restart_causes_no_extra_run(
    operator: Any,
    admin: KubeClient,
    test_namespace: str,
    simulator: ThreadedSimulator,
    database_url: str,
) -> None:
    await create_secret(admin, test_namespace, simulator)
    first = operator()
    created = await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: ready(admin, test_namespace), what="first run")
    first.stop()

    operator()
    await asyncio.sleep(4)

    assert len(await runs_of(database_url, created["metadata"]["uid"])) == 1


async def test_a_manual_trigger_runs_within_two_seconds_and_is_echoed(
    operator: Any,
    admin: KubeClient,
    test_namespace: str,
    simulator: ThreadedSimulator,
    database_url: str,
) -> None:
    await create_secret(admin, test_namespace, simulator)
    operator()
    created = await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: ready(admin, test_namespace), what="first run")

    await admin.patch_merge(
        path(test_namespace, name="inventory"),
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "manual-1"}}},
    )

    async def echoed() -> dict[str, Any] | None:
        body = await admin.get(path(test_namespace, name="inventory"))
        return (
            body
            if (body or {}).get("status", {}).get("lastHandledReconcileAt") == "manual-1"
            else None
        )

    await eventually(echoed, within=10, what="lastHandledReconcileAt")
    runs = await runs_of(database_url, created["metadata"]["uid"])
    assert [r["trigger"] for r in runs] == ["startup", "manual"]


async def test_suspend_stops_runs_and_resume_restarts_them(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    clock: ShiftableClock, database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    operator()
    created = await admin.create(path(test_namespace), schedule(simulator))
    uid = created["metadata"]["uid"]
    await eventually(lambda: ready(admin, test_namespace), what="first run")

    await admin.patch_merge(path(test_namespace, name="inventory"), {"spec": {"suspend": True}})

    async def suspended_shown() -> dict[str, Any] | None:
        body = await admin.get(path(test_namespace, name="inventory")) or {}
        status = body.get("status", {})
        return (
            body
            if status.get("observedGeneration") == 2 and status.get("nextSyncTime") is None
            else None
        )

    await eventually(suspended_shown, what="suspension in status")
    clock.advance(timedelta(hours=1))
    await asyncio.sleep(3)
    assert len(await runs_of(database_url, uid)) == 1

    await admin.patch_merge(path(test_namespace, name="inventory"), {"spec": {"suspend": False}})
    runs = await eventually(
        lambda: _at_least(runs_of(database_url, uid), 2), what="run after resume"
    )
    assert runs[1]["trigger"] in ("spec-change", "schedule")


async def test_a_spec_change_runs_and_observed_generation_follows(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator
) -> None:
    await create_secret(admin, test_namespace, simulator)
    operator()
    await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: ready(admin, test_namespace), what="first run")

    changed = await admin.patch_merge(
        path(test_namespace, name="inventory"), {"spec": {"interval": "30m"}}
    )
    generation = changed["metadata"]["generation"]

    async def settled() -> dict[str, Any] | None:
        # kstatus "Current": observedGeneration caught up AND no run in flight any more.
        body = await ready(admin, test_namespace, generation=generation)
        return body if body and condition(body, "Reconciling") is None else None

    body = await eventually(settled, what="observedGeneration and the run done")
    assert condition(body, "Ready")["observedGeneration"] == generation  # type: ignore[index]
    assert body["status"]["history"][0]["trigger"] == "spec-change"


async def test_a_missing_secret_stalls_naming_it_then_recovers(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator
) -> None:
    operator()
    await admin.create(path(test_namespace), schedule(simulator))

    async def stalled() -> dict[str, Any] | None:
        found = condition(await admin.get(path(test_namespace, name="inventory")), "Stalled")
        return found if found and found["status"] == "True" else None

    found = await eventually(stalled, what="Stalled")
    assert found["reason"] == "MissingCredentials"
    assert f"Secret {test_namespace}/{SECRET} not found" in found["message"]

    await create_secret(admin, test_namespace, simulator)
    body = await eventually(lambda: ready(admin, test_namespace), what="recovery")
    assert condition(body, "Stalled") is None


async def test_an_upstream_failure_is_not_ready_with_a_reason_and_an_event_then_recovers(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    clock: ShiftableClock,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    simulator.state.faults.replace(
        [FaultRule(kind="status", status=503, route="/devices/v1/devices", count=None)]
    )
    operator()
    await admin.create(path(test_namespace), schedule(simulator))

    async def failed() -> dict[str, Any] | None:
        body = await admin.get(path(test_namespace, name="inventory"))
        found = condition(body, "Ready")
        return body if found and found["reason"] == "SyncFailed" else None

    body = await eventually(failed, within=60, what="Ready=False after the failed run")
    ready_condition = condition(body, "Ready")
    assert ready_condition is not None
    assert ready_condition["reason"] == "SyncFailed"
    assert "devices" in ready_condition["message"]
    assert body["status"]["syncStatus"] == "Error"

    async def warning_event() -> list[dict[str, Any]] | None:
        events = await admin.get(f"/api/v1/namespaces/{test_namespace}/events") or {}
        found = [
            e
            for e in events.get("items", [])
            if e.get("type") == "Warning" and e.get("reason") == "SyncFailed"
        ]
        return found or None

    events = await eventually(warning_event, what="a Warning Event")
    assert events[0]["involvedObject"]["name"] == "inventory"

    simulator.state.faults.replace([])
    clock.advance(timedelta(minutes=1))  # past the failure backoff
    await eventually(lambda: ready(admin, test_namespace), within=30, what="recovery")


async def test_deleting_a_resource_while_its_run_is_in_flight_does_not_hang(
    operator: Any,
    admin: KubeClient,
    test_namespace: str,
    simulator: ThreadedSimulator,
    database_url: str,
) -> None:
    await create_secret(admin, test_namespace, simulator)
    simulator.state.faults.replace(
        [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=30, count=None)]
    )
    operator()
    created = await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: _reconciling(admin, test_namespace), what="a run in flight")

    await admin.delete(path(test_namespace, name="inventory"))

    async def gone() -> bool:
        return await admin.get(path(test_namespace, name="inventory")) is None

    await eventually(gone, within=5, what="deletion")
    runs = await eventually(
        lambda: _finished(database_url, created["metadata"]["uid"]), what="the run cancelled"
    )
    assert runs[0]["state"] == "Cancelled"


async def _reconciling(admin: KubeClient, namespace: str) -> dict[str, Any] | None:
    found = condition(await admin.get(path(namespace, name="inventory")), "Reconciling")
    return found if found and found["status"] == "True" else None


async def _finished(database_url: str, uid: str) -> list[dict[str, Any]] | None:
    runs = await runs_of(database_url, uid)
    return runs if runs and runs[0]["state"] != "Running" else None


async def fabric_rows(database_url: str, fabric_uid: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """SELECT kind, count(*) FILTER (WHERE deleted_at IS NULL) AS live,
                      count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted
               FROM fabric_objects WHERE fabric_uid = $1 GROUP BY kind""",
            fabric_uid,
        )
    finally:
        await connection.close()
    return {f"{r['kind']}:live": r["live"] for r in rows} | {
        f"{r['kind']}:deleted": r["deleted"] for r in rows
    }


async def test_a_fabric_syncs_hedgehog_objects_through_the_operators_identity(
    operator: Any, admin: KubeClient, test_namespace: str, hedgehog_crds: Any, database_url: str
) -> None:
    wiring = f"/apis/wiring.githedgehog.com/v1beta1/namespaces/{test_namespace}"
    for n in range(3):
        await admin.create(
            f"{wiring}/switches",
            {
                "apiVersion": "wiring.githedgehog.com/v1beta1",
                "kind": "Switch",
                "metadata": {"name": f"leaf-{n}", "labels": {"rack": "r1"}},
                "spec": {"role": "server-leaf", "asn": 65100 + n},
            },
        )
    operator()
    fabric = await admin.create(
        path(test_namespace, "fabrics"),
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Fabric",
            "metadata": {"name": "fab-a"},
            "spec": {"interval": "5m", "namespaces": [test_namespace], "pageSize": 2},
        },
    )
    uid = fabric["metadata"]["uid"]

    body = await eventually(
        lambda: ready(admin, test_namespace, "fab-a", plural="fabrics"), what="Fabric Ready"
    )
    kinds = {s["name"]: s for s in body["status"]["sources"]}
    assert kinds["Switch"]["inserted"] == 3
    assert kinds["VPC"]["state"] == "Succeeded"
    assert (await fabric_rows(database_url, uid))["Switch:live"] == 3

    await admin.delete(f"{wiring}/switches/leaf-1")
    await admin.patch_merge(
        path(test_namespace, "fabrics", "fab-a"),
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "after-delete"}}},
    )

    async def soft_deleted() -> dict[str, int] | None:
        rows = await fabric_rows(database_url, uid)
        return rows if rows.get("Switch:deleted") == 1 else None

    rows = await eventually(soft_deleted, what="the deleted Switch soft-deleted")
    assert rows["Switch:live"] == 2


async def test_no_secret_value_reaches_logs_status_or_events(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level("DEBUG")
    await create_secret(admin, test_namespace, simulator)
    simulator.state.faults.replace(  # an auth failure path too: errors must not echo secrets
        [FaultRule(kind="status", status=503, route="/devices/v1/devices", count=None)]
    )
    operator()
    await admin.create(path(test_namespace), schedule(simulator))
    await eventually(
        lambda: ready(admin, test_namespace, status="False"), within=60, what="a failed run"
    )
    simulator.state.faults.replace([])
    await admin.patch_merge(
        path(test_namespace, name="inventory"),
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}},
    )
    await eventually(lambda: ready(admin, test_namespace), within=30, what="a good run")

    secret_values = [simulator.state.credentials()[1]]
    secret_values += list(simulator.state.tokens._sessions)  # every bearer token issued
    assert len(secret_values) >= 2
    body = await admin.get(path(test_namespace, name="inventory"))
    events = await admin.get(f"/api/v1/namespaces/{test_namespace}/events")
    published = "\n".join([caplog.text, str(body), str(events)])
    for value in secret_values:
        assert value not in published


async def test_metrics_count_runs_rows_and_requests(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator
) -> None:
    from prometheus_client import generate_latest

    await create_secret(admin, test_namespace, simulator)
    process = operator()
    await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: ready(admin, test_namespace), what="Ready=True")

    text = generate_latest(process.context.metrics.registry).decode()
    assert (
        'inventory_sync_runs_total{kind="SyncSchedule",outcome="Succeeded",trigger="startup"} 1.0'
        in text
    )
    assert 'inventory_sync_rows_total{operation="inserted",source_kind="greenlake/devices"}' in text
    assert 'inventory_sync_upstream_requests_total{code="200",source_kind="arubaCentral"}' in text
    assert f'name="inventory",namespace="{test_namespace}"' in text  # last success per resource
    assert "inventory_sync_run_duration_seconds_bucket" in text


async def _manual(admin: KubeClient, namespace: str, value: str) -> None:
    await admin.patch_merge(
        path(namespace, name="inventory"),
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": value}}},
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("Replace", [("startup", "Cancelled"), ("manual", "Succeeded")]),
        ("Forbid", [("startup", "Succeeded"), ("manual", "Succeeded")]),
    ],
    ids=["Replace cancels the run in flight", "Forbid lets it finish, then runs the request"],
)
async def test_concurrency_policy_decides_what_a_request_during_a_run_does(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    database_url: str, policy: str, expected: list[tuple[str, str]],
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    # Only the first Central request is slow: the first run hangs, a second one does not.
    simulator.state.faults.replace(
        [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=4, count=1)]
    )
    operator()
    created = await admin.create(
        path(test_namespace), schedule(simulator, concurrencyPolicy=policy)
    )
    await eventually(lambda: _reconciling(admin, test_namespace), what="the first run in flight")

    await _manual(admin, test_namespace, "during-the-run")

    runs = await eventually(
        lambda: _at_least(runs_of(database_url, created["metadata"]["uid"]), 2),
        within=30,
        what="both runs finished",
    )
    assert [(r["trigger"], r["state"]) for r in runs] == expected
    body = await eventually(lambda: ready(admin, test_namespace), what="Ready after the request")
    assert body["status"]["lastHandledReconcileAt"] == "during-the-run"


async def test_the_global_cap_keeps_runs_from_overlapping(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    simulator.state.faults.replace(
        [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=1, count=None)]
    )
    # Its own namespace only: earlier tests' schedules stay behind (namespaces never finish
    # terminating without a controller-manager) and, clusterwide, took the one slot first,
    # each retrying its gone simulator for seconds (CI saw 30 s pass without a run). Watching
    # one namespace under the operator's RBAC (no namespace listing) must start at once too.
    operator(max_concurrent_runs=1, watch_namespaces=test_namespace)
    uids = []
    for name in ("first", "second"):
        created = await admin.create(path(test_namespace), schedule(simulator, name=name))
        uids.append(created["metadata"]["uid"])

    runs = [
        (await eventually(lambda uid=uid: _at_least(runs_of(database_url, uid), 1), within=30))[0]
        for uid in uids
    ]
    first, second = sorted(runs, key=lambda r: r["started_at"])
    assert first["finished_at"] <= second["started_at"]
