"""`helm install` with default values on a real node: the pod runs the way the chart promises,
syncs a SyncSchedule and a Fabric into PostgreSQL, and survives `kubectl rollout restart`
without running anything twice or early."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import hedgehog  # tests/controlplane/hedgehog.py: the Hedgehog-shaped CRDs and objects
import pytest
from nodekit import (
    CHART,
    FABRICS,
    SYNC_SCHEDULES,
    TRUST_SIMULATOR,
    Cluster,
    Release,
    condition,
    credentials_secret,
    eventually,
    installed,
    parse_time,
    request_run,
    schedule,
    wait_handled,
    wait_ready,
)

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

INVENTORY_TABLES = (
    "glp_subscriptions",
    "glp_devices",
    "glp_device_subscriptions",
    "glp_unresolved_subscription_links",
    "central_devices",
    "central_classic_devices",
    "fabric_objects",
)


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[Release]:
    """The chart installed as the README says, with default values and the database Secret."""
    with installed(cluster, "op-default") as release:
        yield release


@pytest.fixture(scope="module")
def trusting(release: Release) -> Release:
    """The same release told to trust the simulator's CA (docs/deploy.md, "Upstreams behind
    a private CA"): in a cluster, upstreams are https."""
    release.cluster.node.helm(
        "upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values",
        *TRUST_SIMULATOR, "--wait", "--timeout=5m",
    )  # fmt: skip
    return release


def test_the_deployment_is_available_and_serves_healthz_and_metrics(release: Release) -> None:
    cluster = release.cluster
    deployment = cluster.get("deployment", release.name, "-n", release.namespace)
    assert deployment["status"].get("availableReplicas") == 1
    pod = release.pod()["metadata"]["name"]
    proxy = f"/api/v1/namespaces/{release.namespace}/pods/{pod}"
    # Through the apiserver's proxy to the pod IP: the ports listen on the pod's interfaces.
    cluster.raw(f"{proxy}:8080/proxy/healthz")  # kubectl fails on any non-2xx
    metrics = cluster.raw(f"{proxy}:9090/proxy/metrics")
    assert "inventory_sync_runs_in_flight" in metrics
    service = cluster.raw(
        f"/api/v1/namespaces/{release.namespace}/services/{release.name}-metrics:metrics/proxy/metrics"
    )
    assert "inventory_sync_runs_total" in service or "inventory_sync_runs_in_flight" in service


def test_the_security_context_is_in_force(release: Release) -> None:
    probe = """
import json, os
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
try:
    open("/probe", "w").close()
    root_writable = True
except OSError as error:
    root_writable = error.strerror
open("/tmp/probe", "w").close()
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "root_writable": root_writable, "cap_eff": status["CapEff"].strip(),
    "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "seccomp": status["Seccomp"].strip()}))
"""
    pod = release.pod()["metadata"]["name"]
    out = release.cluster.exec(release.namespace, pod, "python", "-c", probe, container="operator")
    found = json.loads(out)
    assert (found["uid"], found["gid"]) == (65532, 65532)
    assert found["root_writable"] == "Read-only file system"
    assert int(found["cap_eff"], 16) == 0
    assert int(found["cap_bnd"], 16) == 0
    assert found["no_new_privs"] == "1"
    assert found["seccomp"] == "2"  # filter mode: RuntimeDefault


def _install_hedgehog_crds(cluster: Cluster) -> None:
    """The Hedgehog-shaped test CRDs (tests/controlplane/hedgehog_crds), strict schemas."""
    crds = list(hedgehog.load_crds().values())
    cluster.apply(*crds)
    names = [f"crd/{c['metadata']['name']}" for c in crds]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    # Established can precede discovery, which the operator lists kinds through.
    kinds = ",".join(f"{c['spec']['names']['plural']}.{c['spec']['group']}" for c in crds)
    eventually(
        lambda: cluster.node.kubectl("get", kinds, "-A", check=False).returncode == 0,
        within=30,
        what="the Hedgehog kinds in discovery",
    )


def _rows_written_since(cluster: Cluster, database: str, marker: int) -> int:
    low = marker % 2**32
    union = " + ".join(
        f"(SELECT count(*) FROM {table} WHERE xmin::text::bigint > {low})"
        for table in INVENTORY_TABLES
    )
    return int(cluster.postgres.scalar(f"SELECT {union}", database))


def test_a_schedule_and_a_fabric_sync_into_postgresql_and_a_second_run_writes_nothing(
    trusting: Release,
) -> None:
    release = trusting
    cluster, ns = release.cluster, release.namespace
    pg, sim = cluster.postgres, cluster.simulator
    _install_hedgehog_crds(cluster)
    cluster.apply(*hedgehog.small_fabric(ns))
    fabric = {
        "apiVersion": "inventorysync.dev/v1alpha1",
        "kind": "Fabric",
        "metadata": {"name": "local-fabric", "namespace": ns},
        "spec": {"interval": "15m", "namespaces": [ns]},
    }
    cluster.apply(credentials_secret(sim, ns), schedule(sim, "demo", ns), fabric)
    for kind, name in ((SYNC_SCHEDULES, "demo"), (FABRICS, "local-fabric")):
        wait_ready(cluster, kind, ns, name, within=180)
    counts = pg.query(
        "SELECT (SELECT count(*) FROM glp_subscriptions), (SELECT count(*) FROM glp_devices),"
        " (SELECT count(*) FROM central_devices), (SELECT count(*) FROM fabric_objects)",
        release.database,
    )[0]
    assert [int(c) for c in counts] == [27, 11727, 8978, sum(hedgehog.SMALL_FABRIC_COUNTS.values())]
    assert (
        pg.scalar("SELECT count(*) FROM sync_runs WHERE state = 'Succeeded'", release.database)
        == "2"
    )

    marker = int(pg.scalar("SELECT pg_current_xact_id()::text::bigint", release.database))
    stamps = {
        kind: request_run(cluster, kind, ns, name)
        for kind, name in ((SYNC_SCHEDULES, "demo"), (FABRICS, "local-fabric"))
    }
    for kind, name in ((SYNC_SCHEDULES, "demo"), (FABRICS, "local-fabric")):
        body = wait_handled(cluster, kind, ns, name, stamps[kind], within=120)
        assert condition(body, "Ready")["status"] == "True"
        for source in body["status"]["sources"]:
            assert (source.get("inserted"), source.get("updated"), source.get("deleted")) == (
                0,
                0,
                0,
            ), source
    # From PostgreSQL itself, not from the run's own counters: no row version is newer.
    assert _rows_written_since(cluster, release.database, marker) == 0
    assert (
        pg.scalar("SELECT count(*) FROM sync_runs WHERE state = 'Succeeded'", release.database)
        == "4"
    )


def test_probes_never_failed_and_the_container_never_restarted(trusting: Release) -> None:
    release = trusting
    """After the syncs above (a busy operator) and at least one liveness period."""
    pod = release.pod()
    started = parse_time(pod["status"]["startTime"])
    eventually(lambda: time.time() - started.timestamp() > 45, within=60, what="a minute of uptime")
    pod = release.pod()
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    unhealthy = release.cluster.events(release.namespace, "Unhealthy")
    assert unhealthy == [], [e["message"] for e in unhealthy]


def test_rollout_restart_runs_nothing_twice_and_keeps_due_times(trusting: Release) -> None:
    release = trusting
    cluster, ns = release.cluster, release.namespace
    pg, sim = cluster.postgres, cluster.simulator
    cluster.apply(credentials_secret(sim, ns), schedule(sim, "tick", ns, interval="1m"))
    body = wait_ready(cluster, SYNC_SCHEDULES, ns, "tick", within=120)
    uid = body["metadata"]["uid"]
    due = parse_time(body["status"]["nextSyncTime"])
    before = pg.runs(release.database)
    old_pod = release.pod()["metadata"]["name"]

    restarted = time.time()
    cluster.kubectl("rollout", "restart", f"deployment/{release.name}", "-n", ns)
    cluster.wait_rollout(ns, release.name)
    assert release.pod()["metadata"]["name"] != old_pod
    # Past the due time with room for one run: exactly that run, at that time.
    eventually(
        lambda: any(r["started_at"] and parse_time(r["started_at"]) >= due - timedelta(seconds=1)
                    for r in pg.runs(release.database, uid)),
        within=(due.timestamp() - time.time()) + 90,
        what="the run due at the time status promised",
    )  # fmt: skip
    time.sleep(5)
    after = pg.runs(release.database)
    new = [r for r in after if r["id"] not in {b["id"] for b in before}]
    assert [r["resource_name"] for r in new] == ["tick"], new  # nothing else ran: no burst
    (run,) = new
    assert abs((parse_time(run["scheduled_at"]) - due).total_seconds()) < 2, (run, due)
    assert parse_time(run["started_at"]) >= due - timedelta(seconds=1)
    assert run["trigger"] == "schedule"
    assert restarted < parse_time(run["started_at"]).timestamp()
    keys = [(r["resource_name"], r["scheduled_at"]) for r in after]
    assert len(keys) == len(set(keys)), after  # no run started twice
