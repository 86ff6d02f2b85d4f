"""CentralClient: sequential cursor walk, retries and token refresh on the way."""

from __future__ import annotations

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

INVENTORY = "/network-monitoring/v1alpha1/device-inventory"


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


async def test_cursor_walk_follows_next_until_null(server: Any, make_central: Any) -> None:
    server.central = server.items(250, prefix="ap")
    pages = await walk(make_central())

    assert [p.number for p in pages] == [0, 1, 2]
    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert {p.total for p in pages} == {250}
    requests = server.api_requests(INVENTORY)
    assert [r.url.params.get("next") for r in requests] == [None, "100", "200"]
    assert {r.url.params["limit"] for r in requests} == {"100"}
    assert server.max_in_flight == 1  # a cursor walk is sequential


async def test_custom_path_and_page_size(server: Any, make_central: Any) -> None:
    server.central = server.items(3, prefix="sw")
    client = make_central(page_size=2, path="network-monitoring/v1alpha1/device-inventory")
    assert len(await walk(client)) == 2
    assert {r.url.params["limit"] for r in server.api_requests(INVENTORY)} == {"2"}


async def test_retry_and_401_refresh_during_the_walk(server: Any, make_central: Any) -> None:
    server.central = server.items(300, prefix="ap")
    server.inject(
        lambda r: r.url.params.get("next") == "100",
        httpx.Response(502),
        httpx.Response(200, content=b'{"items": [{"id": "ap-001'),
        httpx.Response(401),
    )
    client = make_central()
    pages = await walk(client)
    assert sum(len(p.items) for p in pages) == 300
    assert server.tokens_issued == 2
    assert client.stats.retries == 2
    assert client.stats.by_status == {200: 4, 502: 1, 401: 1}


async def test_a_repeated_cursor_stops_the_walk(server: Any, make_central: Any) -> None:
    looping = {"items": [{"id": "a"}], "total": 9, "count": 1, "next": "again"}
    server.inject(server.path_is(INVENTORY), *[httpx.Response(200, json=looping) for _ in range(3)])
    with pytest.raises(UpstreamProtocolError, match="repeats an earlier cursor") as caught:
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
    assert "https://central.example.test/network-monitoring/v1alpha1/device-inventory" in message
