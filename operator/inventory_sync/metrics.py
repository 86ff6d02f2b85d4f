"""Prometheus metrics of runs, sources, rows and upstream requests, served on the metrics port."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from inventory_sync.results import RunResult

# Buckets from a sub-second no-op run to the seeds' 72 s run and a 10-minute timeout.
_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """One registry per operator (not the global one), so tests can run several side by side."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "inventory_sync_runs", "Runs by resource kind, trigger and outcome.",
            ["kind", "trigger", "outcome"], registry=r,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "inventory_sync_run_duration_seconds", "Wall time of whole runs.",
            ["kind"], buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.source_seconds = Histogram(
            "inventory_sync_source_duration_seconds", "Wall time of one source within a run.",
            ["source_kind"], buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.rows = Counter(
            "inventory_sync_rows", "Rows written to PostgreSQL by operation.",
            ["source_kind", "operation"], registry=r,
        )  # fmt: skip
        self.last_success = Gauge(
            "inventory_sync_last_success_timestamp_seconds",
            "Unix time of each resource's last successful run.",
            ["kind", "namespace", "name"], registry=r,
        )  # fmt: skip
        self.upstream_requests = Counter(
            "inventory_sync_upstream_requests", "Upstream HTTP requests by source kind and status code.",
            ["source_kind", "code"], registry=r,
        )  # fmt: skip
        self.rate_limit_wait = Counter(
            "inventory_sync_rate_limit_wait_seconds", "Time spent waiting on client-side rate limiters.",
            ["source_kind"], registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "inventory_sync_runs_in_flight", "Runs currently executing.", registry=r
        )

    def record(self, *, kind: str, namespace: str, name: str, result: RunResult) -> None:
        outcome = result.state.value
        self.runs.labels(kind, result.trigger, outcome).inc()
        self.run_seconds.labels(kind).observe(result.seconds)
        if result.succeeded:
            self.last_success.labels(kind, namespace, name).set(result.finished_at.timestamp())
        for source in result.sources:
            self.source_seconds.labels(source.kind).observe(source.seconds)
            for operation, count in (
                ("inserted", source.inserted),
                ("updated", source.updated),
                ("deleted", source.deleted),
            ):
                if count:
                    self.rows.labels(source.kind, operation).inc(count)
            for code, count in source.status_codes.items():
                self.upstream_requests.labels(source.kind, code).inc(count)
            if source.rate_limit_wait_seconds:
                self.rate_limit_wait.labels(source.kind).inc(source.rate_limit_wait_seconds)

    def forget(self, *, kind: str, namespace: str, name: str) -> None:
        """A deleted resource stops exporting its last-success gauge."""
        with contextlib.suppress(KeyError):  # never recorded a success
            self.last_success.remove(kind, namespace, name)
