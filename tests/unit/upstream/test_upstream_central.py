"""CentralClient: page 1, then concurrent page numbers under the budget; cursors tolerated."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from inventory_sync.errors import (
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamRequestError,
    UpstreamUnavailable,
)
from inventory_sync.upstream import (
    CentralClient,
    CentralLimits,
    Page,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
)

INVENTORY = "/network-monitoring/v1/device-inventory"
INVENTORY_V1ALPHA1 = "/network-monitoring/v1alpha1/device-inventory"


@pytest.fixture
def make_central(
    http: httpx.AsyncClient,
    server: Any,
    tokens: TokenProvider,
    registry: RateLimiterRegistry,
    policy: RetryPolicy,
    sleeps: Any,
) -> Any:
    def make(**overrides: Any) -> CentralClient:
        options: dict[str, Any] = {
            "base_url": server.central_url,
            "tokens": tokens,
            "limiters": registry,
            "workspace_id": "ws-1",
            "policy": policy,
            "sleep": sleeps,
        }
        options.update(overrides)
        return CentralClient(http, **options)

    return make


async def walk(client: CentralClient) -> list[Page]:
    return [page async for page in client.pages()]


def page_numbers(server: Any, path: str = INVENTORY) -> list[str | None]:
    return sorted(r.url.params.get("next") for r in server.api_requests(path))


async def test_page_one_then_the_other_pages_concurrently(server: Any, make_central: Any) -> None:
    server.central = server.items(2500, prefix="ap")
    server.latency = lambda _request: 0.01  # long enough for the fetchers to overlap
    pages = await walk(make_central())

    assert pages[0].number == 0  # page 1 always comes first: it tells the total
    assert sorted(p.number for p in pages) == [0, 1, 2]
    assert sorted(len(p.items) for p in pages) == [500, 1000, 1000]
    assert {p.total for p in pages} == {2500}
    requests = server.api_requests(INVENTORY)
    assert requests[0].url.params["next"] == "1"
    assert page_numbers(server) == ["1", "2", "3"]
    assert {r.url.params["limit"] for r in requests} == {"1000"}  # the largest accepted
    assert server.max_in_flight == 2  # pages 2 and 3 at once


async def test_concurrency_is_bounded_by_max_concurrent_pages(
    server: Any, make_central: Any
) -> None:
    server.central = server.items(1000, prefix="ap")
    server.latency = lambda _request: 0.01
    pages = await walk(make_central(page_size=50, max_concurrent_pages=3))
    assert sum(len(p.items) for p in pages) == 1000
    assert server.max_in_flight == 3


async def test_every_page_waits_for_the_workspace_budget(
    server: Any, make_central: Any, clock: Any
) -> None:
    server.central = server.items(100, prefix="ap")
    server.clock = clock
    registry = RateLimiterRegistry(clock=clock, sleep=clock.sleep)
    client = make_central(
        page_size=10, limiters=registry, limits=CentralLimits(requests=4, period_seconds=1)
    )
    assert sum(len(p.items) for p in await walk(client)) == 100
    times = server.request_times[1:]  # after the token request
    assert len(times) == 10
    assert all(b - a >= 1 for a, b in zip(times, times[4:], strict=False))  # 4 per second
    assert client.stats.rate_limit_wait_seconds > 0


async def test_v1alpha1_is_the_same_walk_on_the_older_path(server: Any, make_central: Any) -> None:
    server.central = server.items(30, prefix="sw")
    pages = await walk(make_central(api_version="v1alpha1", page_size=10))
    assert sum(len(p.items) for p in pages) == 30
    assert page_numbers(server, INVENTORY_V1ALPHA1) == ["1", "2", "3"]
    assert not server.api_requests(INVENTORY)


async def test_custom_path_and_page_size(server: Any, make_central: Any) -> None:
    server.central = server.items(3, prefix="sw")
    client = make_central(page_size=2, path="network-monitoring/v1/device-inventory")
    assert len(await walk(client)) == 2
    assert {r.url.params["limit"] for r in server.api_requests(INVENTORY)} == {"2"}


async def test_an_opaque_cursor_is_followed_one_page_at_a_time(
    server: Any, make_central: Any
) -> None:
    server.central_next = "cursor"
    server.central = server.items(250, prefix="ap")
    server.latency = lambda _request: 0.01
    pages = await walk(make_central(page_size=100))

    assert [p.number for p in pages] == [0, 1, 2]
    assert [r.url.params["next"] for r in server.api_requests(INVENTORY)] == ["1", "c100", "c200"]
    assert server.max_in_flight == 1  # each page names the next


async def test_a_short_page_in_a_page_number_walk_is_retried(
    server: Any, make_central: Any
) -> None:
    server.central = server.items(300, prefix="ap")
    short = {"items": server.items(60, prefix="ap"), "total": 300, "count": 60, "next": 3}
    server.inject(lambda r: r.url.params.get("next") == "2", httpx.Response(200, json=short))
    client = make_central(page_size=100)
    pages = await walk(client)
    assert sorted(len(p.items) for p in pages) == [100, 100, 100]
    assert client.stats.retries == 1


async def test_retry_and_401_refresh_during_the_walk(server: Any, make_central: Any) -> None:
    server.central = server.items(300, prefix="ap")
    server.inject(
        lambda r: r.url.params.get("next") == "2",
        httpx.Response(502),
        httpx.Response(200, content=b'{"items": [{"id": "ap-001'),
        httpx.Response(401),
    )
    client = make_central(page_size=100)
    pages = await walk(client)
    assert sum(len(p.items) for p in pages) == 300
    assert server.tokens_issued == 2
    assert client.stats.retries == 2
    assert client.stats.by_status == {200: 4, 502: 1, 401: 1}


async def test_a_repeated_cursor_stops_the_walk(server: Any, make_central: Any) -> None:
    looping = {"items": [{"id": "a"}], "total": 9, "count": 1, "next": "again"}
    server.inject(server.path_is(INVENTORY), *[httpx.Response(200, json=looping) for _ in range(3)])
    with pytest.raises(UpstreamProtocolError, match="repeats an earlier 'next'") as caught:
        await walk(make_central())
    assert "again" not in str(caught.value)


async def test_central_budget_is_configurable_and_shared_per_workspace(
    make_central: Any,
) -> None:
    first = make_central(limits=CentralLimits(requests=5, period_seconds=1))
    second = make_central()
    assert first.limiter is second.limiter
    assert first.limiter.limit == 5
    assert make_central(workspace_id="ws-2").limiter is not first.limiter


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(lambda _r: httpx.Response(401), UpstreamAuthError, id="401 twice"),
        pytest.param(
            httpx.ConnectError("[Errno 111] Connection refused"), UpstreamUnavailable, id="refused"
        ),
        pytest.param(
            lambda _r: httpx.Response(404, json={"message": "no such workspace"}),
            UpstreamRequestError,
            id="404",
        ),
        pytest.param(
            lambda _r: httpx.Response(200, content=b"{"), UpstreamProtocolError, id="truncated"
        ),
    ],
)
async def test_no_secret_token_or_query_string_in_any_error_message(
    server: Any, make_central: Any, policy: Any, failure: Any, error: type[Exception]
) -> None:
    server.inject(lambda r: r.url.path == INVENTORY, *[failure] * policy.max_attempts * 2)
    with pytest.raises(error) as caught:
        await walk(make_central())
    message = str(caught.value)
    for forbidden in (server.secret, "token-1", "token-2", "Bearer", "limit=", "?"):
        assert forbidden not in message
    assert "https://central.example.test/network-monitoring/v1/device-inventory" in message


def prepare_counting(page: Page) -> Page:
    """A picklable prepare: says which process ran it and how many items it saw."""
    return Page(
        items=[], total=page.total, number=page.number, prepared=(os.getpid(), len(page.items))
    )


async def test_prepare_sees_every_page_of_a_page_number_walk(
    server: Any, make_central: Any
) -> None:
    server.central = server.items(25, prefix="ap")
    client = make_central(page_size=10)

    pages = [page async for page in client.pages(prepare=prepare_counting)]

    assert sorted(p.prepared[1] for p in pages) == [5, 10, 10]  # type: ignore[index]
    assert all(p.items == [] for p in pages)
    assert os.getpid() not in {p.prepared[0] for p in pages}  # type: ignore[index]
