"""Runs through the real pipeline under upstream faults: data stays correct, nothing is lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from inventory_sync.models import SyncScheduleSpec
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState
from inventory_sync.simulator import FaultRule, SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.store import inspection
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

from .conftest import schedule_spec, secrets_for

pytestmark = pytest.mark.integration

# Fast retries: the behaviour under test is that they happen, not how long they wait.
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)


async def sync(
    pool: asyncpg.Pool,
    simulator: ThreadedSimulator,
    *,
    progress: Any = None,
    policy: RetryPolicy = FAST,
    **spec: Any,
) -> RunResult:
    return await run_spec(
        pool, simulator, schedule_spec(simulator, **spec), progress=progress, policy=policy
    )


async def run_spec(
    pool: asyncpg.Pool,
    simulator: ThreadedSimulator,
    spec: SyncScheduleSpec,
    *,
    progress: Any = None,
    policy: RetryPolicy = FAST,
) -> RunResult:
    session = UpstreamSession(policy=policy)
    try:
        return await run_sync(
            spec,
            pool=pool,
            session=session,
            secrets=secrets_for(simulator),
            namespace="default",
            trigger="test",
            progress=progress,
        )
    finally:
        await session.aclose()


def upstream_counts(simulator: ThreadedSimulator) -> tuple[int, int, int]:
    workspace = simulator.state.workspace()
    return (
        len(workspace.subscriptions()),
        len(workspace.glp_devices()),
        len(workspace.central_devices()),
    )


async def stored_counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    counts = await inspection.inventory_counts(pool)
    return counts.subscriptions, counts.glp_devices, counts.central_devices


async def test_a_device_removed_upstream_is_soft_deleted_after_a_complete_fetch(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator
) -> None:
    await sync(pool, small_simulator)
    gone = small_simulator.state.workspace().glp_devices()[5]["id"]
    small_simulator.state.workspace().delete_glp_devices([gone])

    result = await sync(pool, small_simulator)

    assert result.source("devices").deleted == 1
    assert result.source("devices").deletion_skipped is None
    deleted_at = await pool.fetchval("SELECT deleted_at FROM glp_devices WHERE id = $1", gone)
    assert deleted_at == result.started_at
    assert await stored_counts(pool) == upstream_counts(small_simulator)


async def test_a_fetch_that_fails_midway_deletes_nothing(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator
) -> None:
    await sync(pool, small_simulator, page_size=20)
    before = await stored_counts(pool)
    small_simulator.state.workspace().delete_glp_devices(
        [d["id"] for d in small_simulator.state.workspace().glp_devices()[:3]]
    )
    # Page 3 of devices answers 503 forever: retries run out and the walk fails.
    small_simulator.state.faults.replace(
        [FaultRule(kind="status", status=503, route="/devices/v1/devices", after=2, count=None)]
    )

    result = await sync(pool, small_simulator, page_size=20)

    devices = result.source("devices")
    assert devices.state is SourceState.FAILED
    assert "503" in (devices.message or "") or "retries" in (devices.message or "")
    assert devices.deleted == 0
    assert await stored_counts(pool) == before
    assert result.source("central").state is SourceState.SUCCEEDED  # a sibling, not a dependent
    assert result.state is RunState.FAILED


async def test_items_shifting_between_pages_delete_nothing(pool: asyncpg.Pool) -> None:
    config = SimulatorConfig.small(scale=0.01, page_mutations=1)
    with start_in_thread(config) as simulator:
        first = await sync(pool, simulator, page_size=10)
        assert first.source("devices").state is SourceState.SUCCEEDED
        live_before = (await inspection.inventory_counts(pool)).glp_devices

        second = await sync(pool, simulator, page_size=10)

    devices = second.source("devices")
    assert devices.state is SourceState.SUCCEEDED
    assert devices.deleted == 0
    assert devices.deletion_skipped is not None
    assert (await inspection.inventory_counts(pool)).glp_devices >= live_before


async def test_a_token_expiring_mid_sync_is_refreshed_and_the_run_completes(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator
) -> None:
    class ExpireWhenSubscriptionsFinish:
        """The token the run started with dies between its stages: both parallel sources
        meet a 401 at once and must share one refresh."""

        expired = False

        def source_started(self, outcome: SourceOutcome) -> None:
            pass

        def page_merged(self, outcome: SourceOutcome, *, total: int | None) -> None:
            pass

        def source_finished(self, outcome: SourceOutcome) -> None:
            if outcome.name == "subscriptions":
                self.expired = small_simulator.state.tokens.expire_all() > 0

    listener = ExpireWhenSubscriptionsFinish()
    result = await sync(pool, small_simulator, page_size=20, progress=listener)

    assert listener.expired
    assert result.succeeded, result.message
    assert small_simulator.state.stats.count("POST /as/token.oauth2", 200) == 2
    # Whichever source asks first meets the 401; the other may already wait on the shared
    # refresh and never send the dead token. So: one or two 401s in all, one refresh.
    refused = {
        route: counts["401"]
        for route, counts in small_simulator.state.stats.by_route().items()
        if "401" in counts
    }
    assert 1 <= sum(refused.values()) <= 2, refused
    assert all(
        route == "GET /devices/v1/devices" or route.startswith("GET /network-monitoring/")
        for route in refused
    ), refused
    assert await stored_counts(pool) == upstream_counts(small_simulator)


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(
            kind="rate_limit", route="/devices/v1/devices", after=1, count=3, retry_after_seconds=1
        ),
        FaultRule(kind="status", status=500, route="/devices/v1/devices", after=1, count=3),
        FaultRule(kind="status", status=502, route="/network-monitoring/*", count=2),
        FaultRule(kind="reset", route="/subscriptions/v1/subscriptions", count=2),
        FaultRule(kind="truncated_json", route="/devices/v1/devices", after=2, count=1),
        FaultRule(kind="partial_page", route="/devices/v1/devices", after=1, count=1),
    ],
    ids=[
        "429 burst with Retry-After",
        "500 burst",
        "502 burst on Central",
        "connection resets",
        "truncated JSON",
        "partial page",
    ],
)
async def test_transient_faults_are_retried_and_the_data_is_complete(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator, fault: FaultRule
) -> None:
    small_simulator.state.faults.replace([fault])

    result = await sync(pool, small_simulator, page_size=20)

    assert result.succeeded, result.message
    assert small_simulator.state.faults.report()[0]["fired"] >= 1
    assert sum(s.retries for s in result.sources) >= 1
    assert await stored_counts(pool) == upstream_counts(small_simulator)
    assert await inspection.orphaned_links(pool) == 0


async def test_retry_after_is_honoured(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator
) -> None:
    small_simulator.state.faults.replace(
        [FaultRule(kind="rate_limit", route="/devices/v1/devices", count=1, retry_after_seconds=1)]
    )

    result = await sync(pool, small_simulator, policy=RetryPolicy(base_delay=0.01, max_delay=5))

    assert result.succeeded
    assert result.source("devices").seconds >= 1.0  # waited the server's second, not 10 ms


async def test_a_failed_prerequisite_skips_its_dependents_not_its_siblings(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator
) -> None:
    small_simulator.state.faults.replace(
        [FaultRule(kind="status", status=503, route="/subscriptions/v1/subscriptions", count=None)]
    )

    spec = schedule_spec(small_simulator)
    central = spec.sources[2].model_copy(update={"depends_on": []})
    result = await run_spec(
        pool, small_simulator, spec.model_copy(update={"sources": [*spec.sources[:2], central]})
    )

    assert result.source("subscriptions").state is SourceState.FAILED
    assert result.source("devices").state is SourceState.SKIPPED
    assert result.source("central").state is SourceState.SUCCEEDED
    assert (await inspection.inventory_counts(pool)).glp_devices == 0


async def test_the_run_timeout_cancels_cleanly_and_keeps_merged_pages(pool: asyncpg.Pool) -> None:
    config = SimulatorConfig.small(scale=0.05)
    with start_in_thread(config) as simulator:
        # Every Central page takes 0.5 s: 18 pages of 25, 8 at a time after the first, is
        # about 2 s, so Central is cut off mid-walk.
        simulator.state.faults.replace(
            [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=0.5, count=None)]
        )
        # Below the schema's 1-minute floor on purpose: a test should not wait a minute.
        spec = schedule_spec(simulator, central_page_size=25).model_copy(
            update={"timeout": timedelta(seconds=1.5)}
        )
        result = await run_spec(pool, simulator, spec)

    assert result.state is RunState.TIMED_OUT
    central = result.source("central")
    assert central.state is SourceState.CANCELLED
    assert result.source("subscriptions").state is SourceState.SUCCEEDED
    stored = (await inspection.inventory_counts(pool)).central_devices
    assert stored == central.inserted  # pages merged before the timeout stay, consistently
    assert await inspection.orphaned_links(pool) == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        )
        == 0
    )
