"""Real sockets: dropped connections, cut bodies and slow answers from a local aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inventory_sync.upstream import (
    USER_AGENT,
    GreenLakeClient,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)

ITEMS = [{"id": f"dev-{n}"} for n in range(3)]


class Behaviour:
    """What the next device-list requests suffer, in order; then they succeed."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.user_agents: list[str] = []


async def token(_request: web.Request) -> web.Response:
    return web.json_response({"access_token": "t", "token_type": "Bearer", "expires_in": 3600})


def devices_handler(behaviour: Behaviour) -> Any:
    async def devices(request: web.Request) -> web.StreamResponse:
        behaviour.user_agents.append(request.headers.get("User-Agent", ""))
        fault = behaviour.plan.pop(0) if behaviour.plan else "ok"
        assert request.transport is not None
        if fault == "reset":
            request.transport.abort()  # no status line at all
            return web.Response()
        if fault == "cut":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = 500
            await response.prepare(request)
            await response.write(b'{"items": [{"id": "dev-0"}')
            request.transport.abort()
            return response
        if fault == "slow":
            await asyncio.sleep(0.3)
        body = {"items": ITEMS, "count": len(ITEMS), "offset": 0, "total": len(ITEMS)}
        return web.json_response(body)

    return devices


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour()


@pytest.fixture
async def base_url(behaviour: Behaviour) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/as/token.oauth2", token)
    app.router.add_get("/devices/v1/devices", devices_handler(behaviour))
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(["reset"], id="connection dropped before answering"),
        pytest.param(["cut"], id="body cut short"),
        pytest.param(["slow"], id="read timeout"),
        pytest.param(["reset", "cut", "slow"], id="all three in a row"),
    ],
)
async def test_real_network_failures_are_retried(
    base_url: str, behaviour: Behaviour, server: Any, sleeps: Any, faults: list[str]
) -> None:
    behaviour.plan = list(faults)
    policy = RetryPolicy(max_attempts=4, random=lambda: 0.0)
    async with build_http_client(timeout=0.1) as http:
        tokens = TokenProvider(
            http, token_url=f"{base_url}/as/token.oauth2", credentials=server.credentials
        )
        client = GreenLakeClient(
            http,
            base_url=base_url,
            tokens=tokens,
            limiters=RateLimiterRegistry(),
            workspace_id="ws",
            policy=policy,
            request_timeout=0.1,
            sleep=sleeps,
        )
        pages = [page async for page in client.pages("devices")]
    assert [item["id"] for page in pages for item in page.items] == ["dev-0", "dev-1", "dev-2"]
    assert client.stats.retries == len(faults)
    expected = {"reset": "RemoteProtocolError", "cut": "RemoteProtocolError", "slow": "ReadTimeout"}
    assert sorted(client.stats.errors.elements()) == sorted(expected[f] for f in faults)
    assert set(behaviour.user_agents) == {USER_AGENT}
