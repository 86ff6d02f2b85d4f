"""The seed-000 verification, item by item, on the seed-sized dataset over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio

from inventory_sync.models import SyncScheduleSpec
from inventory_sync.results import RunResult, SourceState
from inventory_sync.simulator import SimulatorConfig, start_in_thread
from inventory_sync.store import inspection
from inventory_sync.store.database import open_pool
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession

from .conftest import schedule_spec, secrets_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class SeedRuns:
    first: RunResult
    second: RunResult
    third: RunResult
    counts: inspection.InventoryCounts
    orphans: int
    written_by_second: int
    written_by_third: int


def walking_fully(spec: SyncScheduleSpec) -> SyncScheduleSpec:
    """The same schedule with fullSyncInterval 0s on its GreenLake sources."""
    sources = [
        s.model_copy(
            update={
                "greenlake": s.greenlake.model_copy(update={"full_sync_interval": timedelta(0)})
            }
        )
        if s.greenlake is not None
        else s
        for s in spec.sources
    ]
    return spec.model_copy(update={"sources": sources})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seed_runs(postgres_server_url: str) -> AsyncIterator[SeedRuns]:
    """Two runs of the demo schedule against the seed dataset, on a database of their own."""
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute("DROP DATABASE IF EXISTS seed_runs WITH (FORCE)")
    await admin.execute("CREATE DATABASE seed_runs")
    await admin.close()
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(postgres_server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/seed_runs", parts.query, parts.fragment))
    pool = await open_pool(url)
    session = UpstreamSession()
    with start_in_thread(SimulatorConfig()) as simulator:
        spec = schedule_spec(simulator)
        secrets = secrets_for(simulator)

        async def run(spec: SyncScheduleSpec = spec) -> RunResult:
            return await run_sync(
                spec,
                pool=pool,
                session=session,
                secrets=secrets,
                namespace="default",
                trigger="test",
            )

        first = await run()
        counts = await inspection.inventory_counts(pool)
        orphans = await inspection.orphaned_links(pool)
        marker = await inspection.write_marker(pool)
        second = await run()
        written = await inspection.rows_written_since(pool, marker)
        marker = await inspection.write_marker(pool)
        third = await run(walking_fully(spec))
        written_by_third = await inspection.rows_written_since(pool, marker)
    await session.aclose()
    await pool.close()
    yield SeedRuns(first, second, third, counts, orphans, written, written_by_third)


async def test_subscriptions_finish_before_the_parallel_sources_start(seed_runs: SeedRuns) -> None:
    run = seed_runs.first
    subscriptions, devices, central = (
        run.source(n) for n in ("subscriptions", "devices", "central")
    )
    assert subscriptions.finished_at is not None
    assert devices.started_at is not None
    assert central.started_at is not None
    assert subscriptions.finished_at <= devices.started_at
    assert subscriptions.finished_at <= central.started_at


async def test_the_parallel_sources_start_together(seed_runs: SeedRuns) -> None:
    devices, central = seed_runs.first.source("devices"), seed_runs.first.source("central")
    assert devices.started_at is not None
    assert central.started_at is not None
    assert abs((devices.started_at - central.started_at).total_seconds()) < 0.1


async def test_the_parallel_phase_lasts_about_the_longest_source_not_the_sum(
    seed_runs: SeedRuns,
) -> None:
    devices, central = seed_runs.first.source("devices"), seed_runs.first.source("central")
    assert devices.started_at
    assert central.started_at
    assert devices.finished_at
    assert central.finished_at
    phase = (
        max(devices.finished_at, central.finished_at) - min(devices.started_at, central.started_at)
    ).total_seconds()
    longest = max(devices.seconds, central.seconds)
    assert phase <= longest * 1.15
    assert phase < devices.seconds + central.seconds


async def test_every_source_succeeds_with_no_errors(seed_runs: SeedRuns) -> None:
    assert seed_runs.first.succeeded, seed_runs.first.message
    assert all(s.state is SourceState.SUCCEEDED and s.errors == 0 for s in seed_runs.first.sources)


async def test_row_counts_match_the_seed_report(seed_runs: SeedRuns) -> None:
    counts = seed_runs.counts
    assert counts.subscriptions == 27
    assert counts.glp_devices == 11727
    assert counts.central_devices == 8978
    assert counts.links + counts.unresolved_links == 9099
    assert counts.unresolved_links == 12
    assert seed_runs.first.source("devices").unresolved_links == 12


async def test_no_link_is_orphaned(seed_runs: SeedRuns) -> None:
    assert seed_runs.orphans == 0


async def test_a_second_identical_run_writes_zero_rows_and_reports_them_unchanged(
    seed_runs: SeedRuns,
) -> None:
    third = seed_runs.third  # every GreenLake list walked in full (fullSyncInterval 0s)
    assert third.succeeded
    assert seed_runs.written_by_third == 0  # from PostgreSQL itself (xmin), not our counters
    assert third.rows_written == 0
    assert third.source("devices").unchanged == 11727
    assert third.source("devices").mode == "full"
    assert third.source("central").unchanged == 8978
    assert third.source("subscriptions").unchanged == 27


async def test_an_unchanged_second_run_is_incremental_costs_two_requests_and_writes_nothing(
    seed_runs: SeedRuns,
) -> None:
    second = seed_runs.second
    assert second.succeeded
    assert seed_runs.written_by_second == 0
    for name in ("devices", "subscriptions"):
        source = second.source(name)
        assert (source.mode, source.rows_written) == ("incremental", 0)
        assert source.requests == 2  # the changes since the mark (none), then the count check
    assert seed_runs.first.source("devices").mode == "full"
    assert seed_runs.first.source("devices").mode_reason == "no consistent full walk yet"
    assert second.source("central").mode is None  # New Central has no changes-only filter
