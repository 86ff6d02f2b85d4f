"""Two schedules sharing one API client stay within the client's concurrency cap (issue 10, defect 7).

The upstream counts requests in flight per API client (the simulator refuses the 9th with
429, as configured by default). Two schedules that each stay under it can exceed it
together, and then both fail each other; the cap is the client's, so it is shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.simulator.config import LatencyConfig
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession

from .conftest import schedule_spec, secrets_for

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_simulator() -> Iterator[ThreadedSimulator]:
    """5 % of the seed volumes at the default latency: pages overlap as they do upstream."""
    config = SimulatorConfig.small(scale=0.05, latency=LatencyConfig())
    with start_in_thread(config) as simulator:
        yield simulator


async def test_two_schedules_on_one_client_never_exceed_its_concurrency(
    pool: asyncpg.Pool, slow_simulator: ThreadedSimulator
) -> None:
    session = UpstreamSession()
    secrets = secrets_for(slow_simulator)
    spec = schedule_spec(slow_simulator, page_size=40)
    try:
        results = await asyncio.gather(
            *(
                run_sync(spec, pool=pool, session=session, secrets=secrets,
                         namespace="default", trigger="schedule")
                for _ in range(2)
            )
        )  # fmt: skip
    finally:
        await session.aclose()

    client_id, _ = slow_simulator.state.credentials()
    peak = slow_simulator.state.snapshot()["max_concurrency"][client_id]
    limit = slow_simulator.state.concurrency.limit
    assert peak <= limit, f"{peak} requests in flight at once; the upstream allows {limit}"
    assert all(r.succeeded for r in results), [r.message for r in results]
    refused = sum(s.status_codes.get("429", 0) for r in results for s in r.sources)
    assert refused == 0
