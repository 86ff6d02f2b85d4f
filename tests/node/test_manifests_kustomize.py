"""`kubectl apply --server-side -k manifests/` on a real node, as docs/deploy.md says: the same
working operator as the chart's default install, in the Namespace that enforces the
`restricted` Pod Security Standard."""

from __future__ import annotations

import time

import pytest
from nodekit import (
    REPO,
    SYNC_SCHEDULES,
    Cluster,
    credentials_secret,
    database_secret,
    parse_time,
    schedule,
    trust_simulator_patch,
    wait_ready,
)

pytestmark = [pytest.mark.node, pytest.mark.timeout(600)]

NAMESPACE = "inventory-sync-system"  # what manifests/ creates
NAME = "inventory-sync-operator"


def test_kustomize_manifests_give_a_working_operator(cluster: Cluster) -> None:
    database = cluster.postgres.create_database()
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "manifests"))
    try:
        namespace = cluster.get("namespace", NAMESPACE)
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        # The Secret the docs tell users to create; until it exists the pod waits.
        cluster.apply(database_secret(cluster.postgres, NAMESPACE, database))
        cluster.wait_rollout(NAMESPACE, NAME)
        pods = cluster.pods(NAMESPACE, f"app.kubernetes.io/name={NAME}")
        assert len(pods) == 1
        status = pods[0]["status"]["containerStatuses"][0]
        assert status["ready"] is True
        assert status["restartCount"] == 0
        # An overlay's job, done as a patch: trust the simulator's CA (https upstreams).
        cluster.apply(cluster.simulator.ca_configmap(NAMESPACE))
        cluster.kubectl(
            "patch", "deployment", NAME, "-n", NAMESPACE, "--type=strategic",
            "-p", trust_simulator_patch(),
        )  # fmt: skip
        cluster.wait_rollout(NAMESPACE, NAME)
        pods = [
            p
            for p in cluster.pods(NAMESPACE, f"app.kubernetes.io/name={NAME}")
            if not p["metadata"].get("deletionTimestamp")
        ]

        workload = cluster.namespace("kustomize-inventory")
        cluster.apply(
            credentials_secret(cluster.simulator, workload),
            schedule(cluster.simulator, "demo", workload),
        )
        started = time.time()
        body = wait_ready(cluster, SYNC_SCHEDULES, workload, "demo", within=180)
        assert "Synced 3/3 succeeded" in next(
            c["message"] for c in body["status"]["conditions"] if c["type"] == "Ready"
        )
        assert parse_time(body["status"]["lastSyncTime"]).timestamp() >= started - 5
        rows = cluster.postgres.scalar("SELECT count(*) FROM glp_devices", database)
        assert rows == "11727"
        events = cluster.events(workload, "Synced")
        assert [e["reportingInstance"] for e in events] == [pods[0]["metadata"]["name"]]
        cluster.kubectl("delete", "namespace", workload, "--wait=false")
    finally:
        # Everything of manifests/ but the CRDs (other tests' resources live in them).
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s")
        cluster.kubectl("delete", "clusterrole,clusterrolebinding", NAME, "--ignore-not-found")
