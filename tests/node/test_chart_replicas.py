"""The chart's HA values (two replicas) on a real node: each due time runs exactly once across
both pods, and when the pod that ran last is deleted the other one carries on.

Only what a user sees is asserted — rows in `sync_runs`, requests in the simulator's log, the
time until the next run — not how the replicas agree, so the test holds whichever replica
model the operator uses."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from nodekit import (
    CHART,
    SYNC_SCHEDULES,
    TRUST_SIMULATOR,
    Cluster,
    Release,
    credentials_secret,
    eventually,
    installed,
    parse_time,
    schedule,
    wait_ready,
)

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

SUBSCRIPTIONS = "GET /subscriptions/v1/subscriptions"
#: Scheduled runs to watch before and after the takeover (interval 1m, the CRD's minimum),
#: besides the first run: each costs a minute of CI.
ROUNDS_BEFORE, ROUNDS_AFTER = 1, 1


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[Release]:
    peering_crds = CHART / "files" / "kopf-peering-crds.yaml"
    if peering_crds.is_file():  # kopf peering (chart <= 0.2): its CRDs come first, as documented
        cluster.kubectl("apply", "--server-side", "-f", str(peering_crds))
    # ha-values.yaml as shipped, minus the ServiceMonitor: no prometheus-operator on this node.
    values = [
        "-f",
        str(CHART / "ci" / "ha-values.yaml"),
        "--set",
        "metrics.serviceMonitor.enabled=false",
    ]
    with installed(cluster, "op-ha", *values, *TRUST_SIMULATOR) as release:
        yield release


def subscription_requests(cluster: Cluster) -> int:
    """Successful subscription listings: each run makes exactly one (27 fit one page)."""
    return cluster.simulator.stats()["requests"].get(SUBSCRIPTIONS, {}).get("200", 0)


def runner_of(cluster: Cluster, namespace: str, name: str, started_after: float) -> str:
    """The pod that reported the newest run of `name` (Events carry the replica's name)."""
    events = [
        e
        for e in cluster.events(namespace)
        if e["involvedObject"].get("name") == name
        and e.get("reason") in ("Synced", "SyncFailed")
        and parse_time(e["eventTime"] or e["lastTimestamp"]).timestamp() >= started_after
    ]
    assert events, "no run Event yet"
    newest = max(events, key=lambda e: e["eventTime"] or e["lastTimestamp"])
    return str(newest["reportingInstance"])


def test_each_due_time_runs_once_across_two_pods_and_the_other_pod_takes_over(
    release: Release, measured: dict[str, float]
) -> None:
    cluster, ns = release.cluster, release.namespace
    pods = [p["metadata"]["name"] for p in release.live_pods()]
    assert len(pods) == 2, pods
    others = cluster.get(SYNC_SCHEDULES, "-A")["items"]
    assert others == [], "another SyncSchedule would share the simulator's request log"
    requests_before = subscription_requests(cluster)
    created = time.time()
    cluster.apply(
        credentials_secret(cluster.simulator, ns),
        schedule(cluster.simulator, "ha", ns, interval="1m"),
    )
    uid = wait_ready(cluster, SYNC_SCHEDULES, ns, "ha", within=120)["metadata"]["uid"]

    def runs_done(count: int) -> list[dict[str, str]] | None:
        runs = [r for r in release.runs(uid) if r["finished_at"]]
        return runs if len(runs) >= count else None

    eventually(
        lambda: runs_done(1 + ROUNDS_BEFORE), within=ROUNDS_BEFORE * 60 + 90, what="scheduled runs"
    )
    # Right after a run: the pod that ran it goes, well before the next due time.
    active = runner_of(cluster, ns, "ha", created)
    assert active in pods, (active, pods)
    body = cluster.get(SYNC_SCHEDULES, "ha", "-n", ns)
    next_due = parse_time(body["status"]["nextSyncTime"])
    deleted_at = time.time()
    cluster.kubectl("delete", "pod", active, "-n", ns, "--wait=true", "--timeout=120s")
    total = 1 + ROUNDS_BEFORE + ROUNDS_AFTER
    runs = eventually(
        lambda: runs_done(total), within=ROUNDS_AFTER * 60 + 120, what="runs after the takeover"
    )
    time.sleep(3)  # let a duplicate, if any, show up
    runs = release.runs(uid)

    # Exactly one run per due time, never two at once, all of them successful.
    scheduled = [r["scheduled_at"] for r in runs]
    assert len(scheduled) == len(set(scheduled)), runs
    assert all(r["state"] == "Succeeded" for r in runs), runs
    spans = sorted((parse_time(r["started_at"]), parse_time(r["finished_at"])) for r in runs)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    # The simulator saw one subscription listing per recorded run: no unrecorded duplicate.
    assert subscription_requests(cluster) - requests_before == len(runs)

    # The takeover: the first run due after the deletion ran on the other pod, on time.
    (first_after,) = [
        r for r in runs if abs((parse_time(r["scheduled_at"]) - next_due).total_seconds()) < 2
    ]
    lateness = (parse_time(first_after["started_at"]) - next_due).total_seconds()
    runner = runner_of(cluster, ns, "ha", parse_time(first_after["started_at"]).timestamp() - 1)
    assert runner != active, "the deleted pod cannot have run it"
    measured["HA: first run after deleting the active pod, seconds late"] = lateness
    measured["HA: deletion to that run's start (s)"] = (
        parse_time(first_after["started_at"]).timestamp() - deleted_at
    )
    assert lateness < 30, f"the surviving pod started the due run {lateness:.0f}s late"
    assert parse_time(first_after["started_at"]) >= next_due - timedelta(seconds=1)
