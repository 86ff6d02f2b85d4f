"""doctor's verdict on one resource's status: what is stuck or stalled, and since when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inventory_sync.doctoring import resources
from inventory_sync.doctoring.findings import Level
from inventory_sync.doctoring.scope import Resource, Scope

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(type: str, status: str, minutes_ago: float, reason: str = "R", message: str = "m"):
    return {
        "type": type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at(minutes_ago),
    }


def body(
    *,
    created: float = 600,
    generation: int = 1,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    written: float | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "inventory",
        "namespace": "team-a",
        "generation": generation,
        "creationTimestamp": at(created),
    }
    if written is not None:
        meta["managedFields"] = [
            {"manager": "kubectl", "operation": "Update", "time": at(written)},
            {"manager": "op", "operation": "Update", "time": at(0), "subresource": "status"},
        ]
    result: dict[str, Any] = {"metadata": meta, "spec": spec or {"interval": "15m"}}
    if status is not None:
        result["status"] = status
    return result


HEALTHY = {
    "observedGeneration": 1,
    "conditions": [condition("Ready", "True", 30)],
    "nextSyncTime": at(-5),
}

CASES = [
    pytest.param(body(status=HEALTHY), None, "", id="Ready and due later: nothing to say"),
    pytest.param(body(created=1), None, "", id="just created, not seen yet: give it a moment"),
    pytest.param(
        body(created=30),
        Level.FAIL,
        "no operator has looked at it since it was created 30m0s ago",
        id="no status 30 minutes after creation: no operator watches it",
    ),
    pytest.param(
        body(created=30, status={"observedGeneration": -1}),
        Level.FAIL,
        "no operator has looked",
        id="observedGeneration -1 (the CRD default) long after creation",
    ),
    pytest.param(
        body(
            status={
                **HEALTHY,
                "conditions": [
                    condition(
                        "Ready", "False", 50, "MissingCredentials", "Secret team-a/glp not found"
                    ),
                    condition(
                        "Stalled", "True", 50, "MissingCredentials", "Secret team-a/glp not found"
                    ),
                ],
            }
        ),
        Level.FAIL,
        "Stalled since 2026-11-22T11:10:00Z (50m0s): MissingCredentials: Secret "
        "team-a/glp not found",
        id="Stalled=True names reason, message and since when",
    ),
    pytest.param(
        body(status={**HEALTHY, "conditions": [condition("Ready", "False", 5, "SyncFailed")]}),
        Level.WARN,
        "Ready=False since 2026-11-22T11:55:00Z (5m0s): SyncFailed: m (retried",
        id="Ready=False for less than an interval: a warning, retries may fix it",
    ),
    pytest.param(
        body(status={**HEALTHY, "conditions": [condition("Ready", "False", 40, "SyncFailed")]}),
        Level.FAIL,
        "failing for more than its interval, 15m0s",
        id="Ready=False for longer than the interval: a failure",
    ),
    pytest.param(
        body(
            spec={"interval": "1h", "timeout": "10m"},
            status={
                **HEALTHY,
                "conditions": [
                    condition("Ready", "True", 90),
                    condition("Reconciling", "True", 25, "Progressing"),
                ],
            },
        ),
        Level.FAIL,
        "a run has been in flight since 2026-11-22T11:35:00Z (25m0s), longer than "
        "its timeout (10m0s)",
        id="Reconciling=True for longer than the timeout: stuck run",
    ),
    pytest.param(
        body(
            spec={"interval": "1h", "timeout": "30m"},
            status={
                **HEALTHY,
                "conditions": [
                    condition("Ready", "True", 90),
                    condition("Reconciling", "True", 25, "Progressing"),
                ],
            },
        ),
        None,
        "",
        id="Reconciling=True within the timeout: a run in progress",
    ),
    pytest.param(
        body(status={**HEALTHY, "nextSyncTime": at(60)}),
        Level.FAIL,
        "its next run was due 1h0m ago (2026-11-22T11:00:00Z) and has not started",
        id="nextSyncTime an hour in the past: no scheduler runs",
    ),
    pytest.param(
        body(status={**HEALTHY, "nextSyncTime": at(5)}),
        Level.WARN,
        "was due 5m0s ago",
        id="nextSyncTime a few minutes in the past: a warning",
    ),
    pytest.param(
        body(spec={"interval": "15m", "suspend": True}, status={**HEALTHY, "nextSyncTime": at(60)}),
        None,
        "",
        id="suspended: an old nextSyncTime means nothing",
    ),
    pytest.param(
        body(generation=3, written=20, status=HEALTHY),
        Level.FAIL,
        "generation 3 not acted on yet (observedGeneration 1), changed 20m0s ago",
        id="observedGeneration behind for 20 minutes: a spec edit nobody acted on",
    ),
    pytest.param(
        body(generation=3, written=0.5, status=HEALTHY),
        Level.WARN,
        "generation 3 not acted on",
        id="observedGeneration behind for seconds: the operator is about to",
    ),
]


@pytest.mark.parametrize(("document", "level", "text"), CASES)
def test_judge(document: dict[str, Any], level: Level | None, text: str) -> None:
    found = resources.judge(Resource("SyncSchedule", document), now=NOW)
    if level is None:
        assert found == []
        return
    assert found, "expected a finding"
    worst = found[0]
    assert worst.level is level
    assert text in worst.message
    assert worst.subject == "SyncSchedule team-a/inventory"


def test_stalled_finding_carries_since_for_json() -> None:
    document = body(status={**HEALTHY, "conditions": [condition("Stalled", "True", 50)]})
    (finding,) = [f for f in resources.judge(Resource("Fabric", document), now=NOW)]
    assert finding.as_json()["since"] == "2026-11-22T11:10:00Z"


def test_healthy_resources_are_summed_up_in_one_line() -> None:
    scope = Scope(("team-a",), [Resource("SyncSchedule", body(status=HEALTHY))] * 3)
    (line,) = resources.check(scope, now=NOW)
    assert line.level is Level.PASS
    assert (
        line.message == "3 SyncSchedule(s), 0 Fabric(s) in namespace team-a: none stuck or stalled"
    )


def test_no_all_clear_when_a_kind_could_not_be_listed() -> None:
    scope = Scope((), [], unlisted={"SyncSchedule"})
    assert resources.check(scope, now=NOW) == []
