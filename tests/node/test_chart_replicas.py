"""The chart's HA values (two replicas) on a real node: each due time runs exactly once across
both pods, and when the pod that ran last is deleted the other one carries on.

Both replicas are active and compute the same due times; the per-resource lease and the claim
key in PostgreSQL let exactly one of them run each (docs/operator.md, "Several replicas").
What is asserted is what a user sees — rows in `sync_runs`, requests in the simulator's log,
the time until the next run — not which replica wins a claim."""

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

#: The simulator's routes of the `subscriptions` source (listing and get-by-id).
SUBSCRIPTIONS = "GET /subscriptions/v1/subscriptions"
#: Scheduled runs to watch before and after the takeover (interval 1m, the CRD's minimum),
#: besides the first run: each costs a minute of CI.
ROUNDS_BEFORE, ROUNDS_AFTER = 1, 1


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[Release]:
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
    """Every request the simulator answered on the subscriptions routes, whatever the code."""
    routes = cluster.simulator.stats()["requests"]
    return sum(
        sum(codes.values()) for route, codes in routes.items() if route.startswith(SUBSCRIPTIONS)
    )


def recorded_subscription_requests(release: Release, uid: str) -> int:
    """The requests the recorded runs say their `subscriptions` source made (a first run lists
    once, an incremental one adds its count check: the number per run varies)."""
    total = release.cluster.postgres.scalar(
        "SELECT coalesce(sum((s->>'requests')::int), 0) FROM sync_runs,"
        " jsonb_array_elements(sources) s"
        f" WHERE resource_uid = '{uid}' AND s->>'name' = 'subscriptions'",
        release.database,
    )
    return int(total)


def pod_of(run: dict[str, str]) -> str:
    """The pod that ran it: a run's holder is "<pod name>/<process token>"."""
    return run["holder"].split("/")[0]


def test_each_due_time_runs_once_across_two_pods_and_the_other_pod_takes_over(
    release: Release, measured: dict[str, float]
) -> None:
    cluster, ns = release.cluster, release.namespace
    pods = [p["metadata"]["name"] for p in release.live_pods()]
    assert len(pods) == 2, pods
    others = cluster.get(SYNC_SCHEDULES, "-A")["items"]
    assert others == [], "another SyncSchedule would share the simulator's request log"
    requests_before = subscription_requests(cluster)
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
    active = pod_of(release.runs(uid)[-1])
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
    # Every subscriptions request the simulator saw belongs to a recorded run: no unrecorded
    # duplicate ran anywhere.
    seen = subscription_requests(cluster) - requests_before
    assert seen == recorded_subscription_requests(release, uid) > 0

    # The takeover: the first run due after the deletion ran on the other pod, on time.
    (first_after,) = [
        r for r in runs if abs((parse_time(r["scheduled_at"]) - next_due).total_seconds()) < 2
    ]
    lateness = (parse_time(first_after["started_at"]) - next_due).total_seconds()
    assert pod_of(first_after) != active, "the deleted pod cannot have run it"
    measured["HA: first run after deleting the active pod, seconds late"] = lateness
    measured["HA: deletion to that run's start (s)"] = (
        parse_time(first_after["started_at"]).timestamp() - deleted_at
    )
    assert lateness < 30, f"the surviving pod started the due run {lateness:.0f}s late"
    assert parse_time(first_after["started_at"]) >= next_due - timedelta(seconds=1)
