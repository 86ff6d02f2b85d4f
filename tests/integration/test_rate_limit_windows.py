"""Rate-limit windows over real HTTP: a fresh process starts from what the server already
counted, and a walk paced at the limit meets no 429 at the window's edge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inventory_sync.simulator import RateLimitConfig, SimulatorConfig, start_in_thread
from inventory_sync.simulator.server import ThreadedSimulator
from inventory_sync.upstream import (
    ClientCredentials,
    GreenLakeClient,
    GreenLakeLimits,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)

pytestmark = pytest.mark.integration

LIMIT, WINDOW = 6, 2.0  # a short window keeps the test fast; the logic is the 160/min one


@pytest.fixture
def simulator() -> Iterator[ThreadedSimulator]:
    limits = RateLimitConfig(window_seconds=WINDOW, glp_devices=LIMIT)
    with start_in_thread(SimulatorConfig.small(scale=0.01, rate_limits=limits)) as sim:
        yield sim


async def walk_in_a_fresh_process(simulator: ThreadedSimulator, *, page_size: int) -> int:
    """One walk of the devices with a new HTTP client, token and limiter registry (a new CLI
    process); returns how many pages it fetched."""
    client_id, secret = simulator.state.credentials()
    async with build_http_client(timeout=5) as http:
        client = GreenLakeClient(
            http,
            base_url=simulator.url,
            tokens=TokenProvider(
                http,
                token_url=simulator.token_url,
                credentials=ClientCredentials(client_id=client_id, client_secret=secret),
            ),
            limiters=RateLimiterRegistry(),
            workspace_id=simulator.state.workspace().workspace_id,
            policy=RetryPolicy(),
            page_size=page_size,
            limits=GreenLakeLimits(devices=LIMIT, period_seconds=WINDOW),
        )
        pages = [page async for page in client.pages("devices")]
    return len(pages)


async def test_back_to_back_processes_meet_no_429(simulator: ThreadedSimulator) -> None:
    """The first process spends 4 of the window's 6 requests; the second starts at once with an
    empty limiter of its own, learns from its first answer that 5 are spent, and waits."""
    first = await walk_in_a_fresh_process(simulator, page_size=30)
    second = await walk_in_a_fresh_process(simulator, page_size=10)
    assert (first, second) == (4, 12)
    route = "GET /devices/v1/devices"
    assert simulator.state.stats.count(route, 429) == 0
    assert simulator.state.stats.count(route, 200) == 16


async def test_a_walk_paced_at_the_limit_meets_no_429_at_the_windows_edge(
    simulator: ThreadedSimulator,
) -> None:
    assert await walk_in_a_fresh_process(simulator, page_size=10) == 12  # two windows' worth
    assert simulator.state.stats.count("GET /devices/v1/devices", 429) == 0
