"""Fabric metrics are labelled per kind (group/Kind), not per group/version, and count each kind's requests."""

from __future__ import annotations

from datetime import UTC, datetime

from inventory_sync.metrics import Metrics
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_two_kinds_of_one_group_are_two_label_values() -> None:
    metrics = Metrics()
    result = RunResult(
        state=RunState.SUCCEEDED, trigger="schedule", started_at=NOW, finished_at=NOW, seconds=1.0,
        sources=[
            SourceOutcome(name="Switch", kind="wiring.githedgehog.com/Switch", state=SourceState.SUCCEEDED,
                          inserted=5, requests=3, status_codes={"200": 3}),
            SourceOutcome(name="Server", kind="wiring.githedgehog.com/Server", state=SourceState.SUCCEEDED,
                          inserted=2, requests=2, status_codes={"200": 1, "410": 1}),
        ],
    )  # fmt: skip

    metrics.record(kind="Fabric", namespace="ops", name="dc1", result=result)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    switch, server = "wiring.githedgehog.com/Switch", "wiring.githedgehog.com/Server"
    assert sample("inventory_sync_rows_total", source_kind=switch, operation="inserted") == 5
    assert sample("inventory_sync_rows_total", source_kind=server, operation="inserted") == 2
    assert sample("inventory_sync_upstream_requests_total", source_kind=switch, code="200") == 3
    assert sample("inventory_sync_upstream_requests_total", source_kind=server, code="410") == 1
    assert sample("inventory_sync_source_duration_seconds_count", source_kind=server) == 1
