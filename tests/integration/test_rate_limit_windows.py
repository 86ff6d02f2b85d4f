"""Rate-limit windows over real HTTP: a fresh process starts from what the server already
counted, and a walk paced at the limit meets no 429 at the window's edge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from inventory_sync.simulator import RateLimitConfig, SimulatorConfig, start_in_thread
from inventory_sync.simulator.config import LatencyConfig, LatencyModel
from inventory_sync.simulator.server import ThreadedSimulator
from inventory_sync.syncing import shared_budgets
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import (
    ClientCredentials,
    GreenLakeClient,
    GreenLakeLimits,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)

from .conftest import schedule_spec, secrets_for

pytestmark = pytest.mark.integration

LIMIT, WINDOW = 6, 2.0  # a short window keeps the test fast; the logic is the 160/min one
SLOW_WINDOW = 6.0


def simulator_with_window(seconds: float) -> Iterator[ThreadedSimulator]:
    limits = RateLimitConfig(window_seconds=seconds, glp_devices=LIMIT)
    with start_in_thread(SimulatorConfig.small(scale=0.01, rate_limits=limits)) as sim:
        yield sim


@pytest.fixture
def simulator() -> Iterator[ThreadedSimulator]:
    yield from simulator_with_window(WINDOW)


async def walk_in_a_fresh_process(
    simulator: ThreadedSimulator,
    *,
    page_size: int,
    limiters: RateLimiterRegistry | None = None,
    window: float = WINDOW,
) -> int:
    """One walk of the devices with a new HTTP client and token and, unless given, a new limiter
    registry (a new CLI process); returns how many pages it fetched."""
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
            limiters=limiters or RateLimiterRegistry(),
            workspace_id=simulator.state.workspace().workspace_id,
            policy=RetryPolicy(),
            page_size=page_size,
            limits=GreenLakeLimits(devices=LIMIT, period_seconds=window),
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


@pytest.fixture
def slow_window_simulator() -> Iterator[ThreadedSimulator]:
    """A window long enough that a whole walk fits in it with every slot still held."""
    yield from simulator_with_window(SLOW_WINDOW)


async def test_a_process_that_takes_in_the_last_ones_window_waits_instead_of_meeting_a_429(
    slow_window_simulator: ThreadedSimulator, pool: asyncpg.Pool
) -> None:
    """The first process spends the whole window and hands its slots out through PostgreSQL; the
    second takes them in before its first request, which would otherwise meet a 429 (no answer
    can have told it yet that the window is spent)."""
    simulator = slow_window_simulator
    first = RateLimiterRegistry()
    assert (
        await walk_in_a_fresh_process(simulator, page_size=20, limiters=first, window=SLOW_WINDOW)
        == LIMIT
    )
    await shared_budgets.hand_out_ours(pool, first)
    [key] = first.held()

    own = first.get(key, limit=LIMIT, period=SLOW_WINDOW)
    before = own.in_window
    assert before == LIMIT  # the window is spent: a request now would meet a 429
    await shared_budgets.take_in_others(pool, first)  # its own window is not held twice
    assert own.in_window == before

    second = RateLimiterRegistry()
    await shared_budgets.take_in_others(pool, second)
    assert (
        await walk_in_a_fresh_process(simulator, page_size=60, limiters=second, window=SLOW_WINDOW)
        == 2
    )
    route = "GET /devices/v1/devices"
    assert simulator.state.stats.count(route, 429) == 0
    assert simulator.state.stats.count(route, 200) == LIMIT + 2


async def test_every_run_hands_its_window_to_the_next_process_s_runs(
    simulator: ThreadedSimulator, pool: asyncpg.Pool
) -> None:
    """run_sync saves what its requests hold and takes in the others' before its first request:
    the second process's device budget holds the first's requests as well as its own."""
    spec = schedule_spec(simulator, page_size=20)
    sessions = [UpstreamSession(), UpstreamSession()]
    try:
        results = [
            await run_sync(spec, pool=pool, session=session, secrets=secrets_for(simulator),
                           namespace="default", trigger="schedule")
            for session in sessions
        ]  # fmt: skip
    finally:
        for session in sessions:
            await session.aclose()
    assert all(r.succeeded for r in results), [r.message for r in results]
    [devices_key] = [k for k in sessions[0].limiters.held() if k.endswith(":devices")]
    first, second = (len(s.limiters.held()[devices_key]) for s in sessions)
    # The first run walks every page; the second is incremental (a few requests).
    assert (first, second) == tuple(r.source("devices").requests for r in results)
    assert first > 1
    async with pool.acquire() as connection:
        saved = await connection.fetch(
            "SELECT writer, cardinality(frees_at) AS slots FROM upstream_rate_windows"
            " WHERE budget_key = $1",
            devices_key,
        )
    assert {r["writer"]: r["slots"] for r in saved} == {
        sessions[0].limiters.writer: first,
        sessions[1].limiters.writer: second,
    }
    # The documented window is a minute long: the second process still holds the first's slots.
    in_window = sessions[1].limiters.get(devices_key, limit=160, period=60).in_window
    assert in_window == first + second


@pytest.fixture
def slow_pages_simulator() -> Iterator[ThreadedSimulator]:
    latency = LatencyConfig(glp_devices=LatencyModel(base_seconds=0.5))
    with start_in_thread(SimulatorConfig.small(scale=0.01, latency=latency)) as sim:
        yield sim


async def test_a_running_run_has_already_saved_its_window_for_a_successor(
    slow_pages_simulator: ThreadedSimulator, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed mid-run (no `finally` runs) must not leave its successor blind: the
    window its requests hold is in the database while the run is still going."""
    monkeypatch.setattr(shared_budgets, "EXCHANGE_EVERY_SECONDS", 0.1)
    session = UpstreamSession()
    spec = schedule_spec(slow_pages_simulator, page_size=20)
    run = asyncio.create_task(
        run_sync(spec, pool=pool, session=session, secrets=secrets_for(slow_pages_simulator),
                 namespace="default", trigger="schedule")
    )  # fmt: skip
    saved_mid_run = 0
    try:
        while not run.done() and not saved_mid_run:
            async with pool.acquire() as connection:
                saved_mid_run = await connection.fetchval(
                    "SELECT coalesce(max(cardinality(frees_at)), 0) FROM upstream_rate_windows"
                    " WHERE writer = $1 AND budget_key LIKE '%:devices'",
                    session.limiters.writer,
                )
            saved_mid_run = saved_mid_run if not run.done() else 0
            await asyncio.sleep(0.02)
        result = await run
    finally:
        run.cancel()
        await session.aclose()
    assert result.succeeded, result.message
    assert saved_mid_run >= 1
