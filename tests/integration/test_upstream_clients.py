"""The upstream clients against the simulator over real HTTP: paging, faults, token expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from inventory_sync.errors import UpstreamAuthError
from inventory_sync.simulator.config import LatencyConfig, LatencyModel, SimulatorConfig
from inventory_sync.simulator.server import ThreadedSimulator, start_in_thread
from inventory_sync.upstream import (
    CentralClient,
    ClientCredentials,
    GreenLakeClient,
    Page,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)

pytestmark = pytest.mark.integration


class Sleeps:
    """Backoff that records instead of sleeping: fault tests stay fast."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def simulator() -> Iterator[ThreadedSimulator]:
    # A little latency on device pages, so the server sees concurrent requests overlap.
    latency = LatencyConfig(
        glp_devices=LatencyModel(base_seconds=0.05),
        glp_subscriptions=LatencyModel(),
        central=LatencyModel(),
    )
    with start_in_thread(SimulatorConfig.small(scale=0.01, latency=latency)) as sim:
        yield sim


@pytest.fixture
async def http(simulator: ThreadedSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(timeout=5) as client:
        # Fresh data, tokens, quotas, statistics and no faults for every test.
        (await client.post(f"{simulator.url}/_simulator/reset")).raise_for_status()
        yield client


@pytest.fixture
def workspace(simulator: ThreadedSimulator) -> Any:
    return simulator.state.config.workspaces[0]


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def tokens(
    http: httpx.AsyncClient, simulator: ThreadedSimulator, workspace: Any, sleeps: Sleeps
) -> TokenProvider:
    credentials = ClientCredentials.model_validate(
        {"client_id": workspace.client_id, "client_secret": workspace.client_secret}
    )
    return TokenProvider(http, token_url=simulator.token_url, credentials=credentials, sleep=sleeps)


@pytest.fixture
def greenlake(
    http: httpx.AsyncClient,
    simulator: ThreadedSimulator,
    tokens: TokenProvider,
    workspace: Any,
    sleeps: Sleeps,
) -> GreenLakeClient:
    return GreenLakeClient(
        http,
        base_url=simulator.url,
        tokens=tokens,
        limiters=RateLimiterRegistry(),
        workspace_id=workspace.workspace_id,
        policy=RetryPolicy(max_attempts=6),
        page_size=20,
        max_concurrent_pages=4,
        request_timeout=1,
        sleep=sleeps,
    )


async def admin(http: httpx.AsyncClient, sim: ThreadedSimulator, path: str, body: Any) -> Any:
    response = await http.post(f"{sim.url}/_simulator/{path}", json=body)
    response.raise_for_status()
    return response.json()


async def walk(client: GreenLakeClient, resource: Any = "devices") -> list[Page]:
    return [page async for page in client.pages(resource)]


def ids(pages: list[Page]) -> list[str]:
    return [item["id"] for page in pages for item in page.items]


async def test_greenlake_walk_returns_every_device_once_fetching_concurrently(
    greenlake: GreenLakeClient,
    http: httpx.AsyncClient,
    simulator: ThreadedSimulator,
    workspace: Any,
) -> None:
    pages = await walk(greenlake)
    expected = simulator.state.workspace(workspace.workspace_id).counts()
    devices = ids(pages)
    assert len(devices) == len(set(devices)) == pages[0].total
    assert len(devices) == expected["glp_devices"]
    peaks = simulator.state.snapshot()["max_concurrency"]
    assert max(peaks.values()) > 1, peaks


async def test_subscriptions_and_central_walks(
    greenlake: GreenLakeClient,
    http: httpx.AsyncClient,
    simulator: ThreadedSimulator,
    tokens: TokenProvider,
    workspace: Any,
) -> None:
    subscriptions = ids(await walk(greenlake, "subscriptions"))
    central = CentralClient(
        http,
        base_url=simulator.url,
        tokens=tokens,
        limiters=RateLimiterRegistry(),
        workspace_id=workspace.workspace_id,
        policy=RetryPolicy(),
        page_size=25,
    )
    pages = [page async for page in central.pages()]
    counts = simulator.state.workspace(workspace.workspace_id).counts()
    assert len(subscriptions) == counts["subscriptions"]
    assert len(ids(pages)) == len(set(ids(pages))) == pages[0].total
    assert [p.number for p in pages] == list(range(len(pages)))
    assert len(pages) > 1


async def test_walk_survives_every_kind_of_injected_fault(
    greenlake: GreenLakeClient, http: httpx.AsyncClient, simulator: ThreadedSimulator
) -> None:
    rules = [
        {"kind": "status", "family": "glp_devices", "status": 503, "count": 2},
        {"kind": "rate_limit", "family": "glp_devices", "retry_after_seconds": 1, "count": 1},
        {"kind": "reset", "family": "glp_devices", "count": 1, "after": 1},
        {"kind": "truncated_json", "family": "glp_devices", "count": 1, "after": 2},
        {"kind": "malformed_json", "family": "glp_devices", "count": 1, "after": 3},
        {"kind": "partial_page", "family": "glp_devices", "count": 1, "after": 4},
        {"kind": "delay", "family": "glp_devices", "delay_seconds": 1.5, "count": 1, "after": 5},
    ]
    await admin(http, simulator, "faults", rules)
    pages = await walk(greenlake)
    devices = ids(pages)
    assert len(devices) == len(set(devices)) == pages[0].total
    fired = [
        rule["fired"] for rule in (await http.get(f"{simulator.url}/_simulator/faults")).json()
    ]
    assert fired == [2, 1, 1, 1, 1, 1, 1]
    assert greenlake.stats.retries == 8


async def test_tokens_expiring_mid_sync_are_refreshed_once(
    greenlake: GreenLakeClient, http: httpx.AsyncClient, simulator: ThreadedSimulator
) -> None:
    await walk(greenlake, "subscriptions")
    await admin(http, simulator, "expire-tokens", {})
    pages = await walk(greenlake)
    assert len(ids(pages)) == pages[0].total
    assert simulator.state.snapshot()["tokens_issued"] == 2


async def test_fetch_by_ids_confirms_which_devices_still_exist(
    greenlake: GreenLakeClient, http: httpx.AsyncClient, simulator: ThreadedSimulator
) -> None:
    known = ids(await walk(greenlake))[:60]
    deleted = (
        await admin(
            http,
            simulator,
            "mutate",
            {"action": "delete", "target": "glp_devices", "ids": known[:5]},
        )
    )["ids"]
    found = await greenlake.fetch_by_ids("devices", [*known, "no-such-device"], chunk_size=25)
    assert sorted(item["id"] for item in found) == sorted(set(known) - set(deleted))


async def test_wrong_secret_is_an_auth_error_that_never_shows_the_secret(
    http: httpx.AsyncClient, simulator: ThreadedSimulator, workspace: Any
) -> None:
    wrong = ClientCredentials.model_validate(
        {"client_id": workspace.client_id, "client_secret": "not-the-secret-4711"}
    )
    provider = TokenProvider(http, token_url=simulator.token_url, credentials=wrong)
    with pytest.raises(UpstreamAuthError) as caught:
        await provider.token()
    assert "invalid_client" in str(caught.value)
    assert "not-the-secret-4711" not in str(caught.value)
