"""What users see through kubectl while the real operator runs: printer columns, the category and
short name, `kubectl wait`, and generation bookkeeping that kstatus (Flux, Argo CD) relies on."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from localcluster import ClusterInfo

from inventory_sync.kube import USER_AGENT, KubeClient
from inventory_sync.simulator import FaultRule, ThreadedSimulator

from .harness import condition, eventually
from .test_operator import create_secret, path, ready, schedule

pytestmark = pytest.mark.controlplane


@pytest.fixture
async def namespace(test_namespace: str, admin: KubeClient) -> AsyncIterator[str]:
    """test_namespace; its SyncSchedules are deleted afterwards so that operators started later
    in this session do not pick them up."""
    yield test_namespace
    await admin.delete(path(test_namespace))


# kubectl renders `date` columns as an age: 5s, 3m2s, 2d…
AGE = re.compile(r"^\d+[smhdy](\d+[smh])?$")


def kubectl(control_plane: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    """kubectl as the admin (`--kubeconfig control_plane.admin_kubeconfig`); its stdout."""
    return control_plane.kubectl_run(*args, stdin=stdin).stdout


def table(output: str) -> list[dict[str, str]]:
    """kubectl's column output as rows keyed by header; columns are 3+ spaces apart, while
    headers and cells (LAST SYNC, the Ready message) may contain single spaces."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s{3}))\S", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return [
        {
            name: line[a:b].strip()
            for name, a, b in zip(names, starts, [*starts[1:], None], strict=True)
        }
        for line in lines[1:]
    ]


def kstatus(body: dict[str, Any]) -> str:
    """kstatus's generic rules (cli-utils pkg/kstatus/status), in its order."""
    metadata, status = body["metadata"], body.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    if status.get("observedGeneration", metadata["generation"]) != metadata["generation"]:
        return "InProgress"
    if (condition(body, "Reconciling") or {}).get("status") == "True":
        return "InProgress"
    if (condition(body, "Stalled") or {}).get("status") == "True":
        return "Failed"
    ready_condition = condition(body, "Ready")
    if ready_condition is not None and ready_condition["status"] != "True":
        return "InProgress"
    return "Current"


async def reconciling(admin: KubeClient, namespace: str) -> dict[str, Any] | None:
    found = condition(await admin.get(path(namespace, name="inventory")), "Reconciling")
    return found if found and found["status"] == "True" else None


async def test_kubectl_get_shows_ready_status_interval_and_last_sync_after_a_run(
    operator: Any,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    control_plane: ClusterInfo,
) -> None:
    await create_secret(admin, namespace, simulator)
    operator()
    await admin.create(path(namespace), schedule(simulator))
    body = await eventually(lambda: ready(admin, namespace), what="Ready=True")
    ready_message = condition(body, "Ready")["message"]  # type: ignore[index]

    (row,) = table(kubectl(control_plane, "get", "syncschedules", "-n", namespace))
    assert list(row) == ["NAME", "READY", "STATUS", "INTERVAL", "SUSPENDED", "LAST SYNC", "AGE"]
    assert row["NAME"] == "inventory"
    assert row["READY"] == "True"
    assert row["STATUS"] == ready_message
    assert ready_message.startswith("Synced")
    assert (row["INTERVAL"], row["SUSPENDED"]) == ("15m", "false")
    assert AGE.match(row["LAST SYNC"]), row
    assert AGE.match(row["AGE"]), row

    (wide,) = table(kubectl(control_plane, "get", "syncschedules", "-n", namespace, "-o", "wide"))
    assert list(wide) == [*row, "LAST ATTEMPT", "NEXT", "SOURCES"]
    assert AGE.match(wide["LAST ATTEMPT"]), wide
    assert wide["NEXT"] == body["status"]["nextSyncTime"]  # a future time, not an age
    assert wide["SOURCES"] == "3/3 succeeded"


async def test_the_category_and_the_short_name_list_the_schedule(
    operator: Any,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    control_plane: ClusterInfo,
) -> None:
    await create_secret(admin, namespace, simulator)
    operator()
    await admin.create(path(namespace), schedule(simulator))
    await eventually(lambda: ready(admin, namespace), what="Ready=True")

    by_category = kubectl(control_plane, "get", "inventorysync", "-n", namespace, "-o", "name")
    by_short_name = table(kubectl(control_plane, "get", "ss", "inventory", "-n", namespace))

    assert by_category.split() == ["syncschedule.inventorysync.dev/inventory"]
    assert [(r["NAME"], r["READY"]) for r in by_short_name] == [("inventory", "True")]


async def test_kubectl_wait_for_ready_times_out_during_the_first_run_and_succeeds_after(
    operator: Any,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    control_plane: ClusterInfo,
) -> None:
    await create_secret(admin, namespace, simulator)
    # Central answers its first inventory page 5 s late: the first run is still in flight.
    simulator.state.faults.replace(
        [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=5, count=1)]
    )
    operator()
    await admin.create(path(namespace), schedule(simulator))
    await eventually(lambda: reconciling(admin, namespace), what="a run in flight")
    wait = ("wait", "--for=condition=Ready", "syncschedule/inventory", "-n", namespace)

    early = control_plane.kubectl_run(*wait, "--timeout=2s", check=False)
    assert early.returncode != 0
    assert "timed out waiting for the condition" in early.stderr

    done = control_plane.kubectl_run(*wait, "--timeout=30s", check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "syncschedule.inventorysync.dev/inventory condition met"


async def test_runs_never_bump_generation_and_observed_generation_follows_a_spec_edit(
    operator: Any,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    control_plane: ClusterInfo,
) -> None:
    await create_secret(admin, namespace, simulator)
    operator()
    # Created by kubectl, so its field manager is told apart from the operator's.
    created = json.loads(
        kubectl(control_plane, "create", "-n", namespace, "-o", "json", "-f", "-",
                stdin=json.dumps(schedule(simulator)))
    )  # fmt: skip
    first = await eventually(lambda: ready(admin, namespace), what="the first run")
    assert first["metadata"]["generation"] == first["status"]["observedGeneration"] == 1
    assert kstatus(first) == "Current"

    # A second run, requested the GitOps way: an annotation, which never bumps generation.
    kubectl(
        control_plane, "annotate", "syncschedule", "inventory", "-n", namespace,
        "reconcile.fluxcd.io/requestedAt=second",
    )  # fmt: skip

    async def second_run() -> dict[str, Any] | None:
        body = await ready(admin, namespace)
        handled = body and body["status"].get("lastHandledReconcileAt") == "second"
        return body if handled and condition(body, "Reconciling") is None else None

    second = await eventually(second_run, what="the requested run")
    assert second["metadata"]["generation"] == second["status"]["observedGeneration"] == 1
    assert second["spec"] == created["spec"]  # the operator writes status only
    assert len(second["status"]["history"]) == 2
    assert kstatus(second) == "Current"
    operator_writes = [f for f in second["metadata"]["managedFields"] if f["manager"] == USER_AGENT]
    assert operator_writes
    assert {f.get("subresource") for f in operator_writes} == {"status"}  # never the main resource

    # The object as this write stored it: the operator cannot have touched it yet.
    edited = json.loads(
        kubectl(control_plane, "patch", "syncschedule", "inventory", "-n", namespace,
                "--type=merge", "-p", '{"spec": {"interval": "30m"}}', "-o", "json")
    )  # fmt: skip
    assert edited["metadata"]["generation"] == 2
    assert kstatus(edited) == "InProgress"  # until the operator has observed generation 2

    async def current() -> dict[str, Any] | None:
        body = await admin.get(path(namespace, name="inventory"))
        if not body or kstatus(body) != "Current":
            return None
        ready_condition = condition(body, "Ready") or {}
        observed = (body["status"]["observedGeneration"], ready_condition.get("observedGeneration"))
        return body if observed == (2, 2) else None

    await eventually(current, what="kstatus Current with Ready observed at generation 2")
    (row,) = table(kubectl(control_plane, "get", "ss", "-n", namespace))
    assert row["INTERVAL"] == "30m"
