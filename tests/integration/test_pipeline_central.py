"""New Central through the real pipeline: page-number walks that shift between pages delete nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web

from inventory_sync.results import RunResult, SourceState
from inventory_sync.simulator import (
    Fault,
    FaultRule,
    SimulatorConfig,
    ThreadedSimulator,
    fault_kind,
    start_in_thread,
)
from inventory_sync.simulator.state import STATE_KEY
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

from .conftest import schedule_spec, secrets_for

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
INVENTORY = "GET /network-monitoring/v1/device-inventory"


async def sync(pool: asyncpg.Pool, simulator: ThreadedSimulator, **spec: Any) -> RunResult:
    session = UpstreamSession(policy=FAST)
    try:
        return await run_sync(
            schedule_spec(simulator, **spec),
            pool=pool,
            session=session,
            secrets=secrets_for(simulator),
            namespace="default",
            trigger="test",
        )
    finally:
        await session.aclose()


async def live_central_ids(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch("SELECT id FROM central_devices WHERE deleted_at IS NULL")
    return {row["id"] for row in rows}


#: The device the `shift_central_page` fault brings back on the last page (set per test).
RETURNING: list[dict[str, Any]] = []


@fault_kind("shift_central_page")
async def _shift_central_page(fault: Fault) -> web.StreamResponse:
    """Just before page 2 is sliced: the first device (page 1, already delivered) goes and a
    device with the largest id (the last page) comes back. The total stays the same and no
    device is delivered twice, but page 2 now starts one device later: one is missed."""
    workspace = fault.request.app[STATE_KEY].workspace()
    workspace.delete_central_devices([workspace.central_devices()[0]["id"]])
    workspace.restore_central_devices(RETURNING)
    return await fault.answer()


async def test_a_walk_whose_pages_shifted_deletes_nothing_and_says_why(pool: asyncpg.Pool) -> None:
    with start_in_thread(SimulatorConfig.small(scale=0.01)) as simulator:
        first = await sync(pool, simulator, central_page_size=10)
        assert first.source("central").deleted == 0
        stored = await live_central_ids(pool)
        # From now on others add and remove devices while the walk pages.
        simulator.state.config = simulator.state.config.model_copy(
            update={"central_page_mutations": 2}
        )

        second = await sync(pool, simulator, central_page_size=10)

    central = second.source("central")
    assert central.state is SourceState.SUCCEEDED
    assert central.deleted == 0
    assert central.deletion_skipped is not None
    assert stored <= await live_central_ids(pool)


async def test_a_device_missed_by_a_shifted_walk_is_confirmed_present_and_kept(
    pool: asyncpg.Pool,
) -> None:
    with start_in_thread(SimulatorConfig.small(scale=0.01)) as simulator:
        workspace = simulator.state.workspace()
        devices = workspace.central_devices()  # 90: two pages of 50
        await sync(pool, simulator, central_page_size=50)
        # The device with the largest id is away for now (its row stays until a walk is sure).
        RETURNING[:] = [devices[-1]]
        workspace.delete_central_devices([devices[-1]["id"]])
        missed = devices[50]["id"]  # page 2 will start one later, at what was position 51
        simulator.state.faults.replace(
            [FaultRule(kind="shift_central_page", family="central", after=1, count=1)]
        )

        result = await sync(pool, simulator, central_page_size=50)
        requests = simulator.state.stats.count(INVENTORY)

    central = result.source("central")
    assert central.state is SourceState.SUCCEEDED
    assert (central.fetched, central.deleted) == (89, 0)  # the total matched, no duplicate
    assert central.deletion_skipped == (
        "1 items missing from the walk still exist upstream (items shifted between pages)"
    )
    assert missed in await live_central_ids(pool)
    assert requests == 2 + 2 + 2  # the first run, the shifted walk, the walk that confirmed


async def test_a_device_gone_upstream_is_soft_deleted_after_a_confirming_walk(
    pool: asyncpg.Pool,
) -> None:
    with start_in_thread(SimulatorConfig.small(scale=0.01)) as simulator:
        await sync(pool, simulator, central_page_size=50)
        gone = simulator.state.workspace().central_devices()[7]["id"]
        simulator.state.workspace().delete_central_devices([gone])

        result = await sync(pool, simulator, central_page_size=50)

    central = result.source("central")
    assert (central.deleted, central.deletion_skipped) == (1, None)
    assert gone not in await live_central_ids(pool)
