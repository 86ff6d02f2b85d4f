"""Classic Central: RefreshTokenProvider (rotation saved before use) and ClassicCentralClient
(offset pages, one refresh on invalid_token, the per-second and per-day quotas)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from inventory_sync.errors import (
    RefreshTokenNotSaved,
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from inventory_sync.upstream import (
    ClassicCentralClient,
    ClassicCentralLimits,
    RateLimiterRegistry,
    RefreshTokenProvider,
    RetryPolicy,
    build_http_client,
)

GATEWAY = "https://apigw.example.test"
TOKEN_URL = f"{GATEWAY}/oauth2/token"
DEVICES = "/platform/device_inventory/v1/devices"
CLIENT_SECRET = "classic-client-secret-do-not-leak"
FIRST_REFRESH = "refresh-0-do-not-leak"


@dataclass
class FakeClassic:
    """Classic Central's token endpoint and inventory in memory (MockTransport)."""

    devices: list[dict[str, Any]] = field(default_factory=list)
    refresh_token: str = FIRST_REFRESH
    valid_access: set[str] = field(default_factory=set)
    rotations: int = 0
    remaining_day: int = 5000
    #: Answers queued per path, used before the normal behaviour.
    queued: dict[str, list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    token_latency: float = 0.0

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == DEVICES]

    def quota_headers(self, *, second: int = 6) -> dict[str, str]:
        return {
            "X-RateLimit-Limit-day": "5000",
            "X-RateLimit-Remaining-day": str(self.remaining_day),
            "X-RateLimit-Limit-second": "7",
            "X-RateLimit-Remaining-second": str(second),
        }

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.queued.get(request.url.path)
        if queued:
            return queued.pop(0)
        if request.url.path == "/oauth2/token":
            if self.token_latency:
                await asyncio.sleep(self.token_latency)
            return self._token(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in (
            self.valid_access
        ):
            return httpx.Response(401, json={"error": "invalid_token"})
        self.remaining_day -= 1
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        body = {"devices": self.devices[offset : offset + limit], "total": len(self.devices)}
        return httpx.Response(200, json=body, headers=self.quota_headers())

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("client_secret") != CLIENT_SECRET:
            return httpx.Response(401, json={"error": "invalid_client"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != (
            self.refresh_token
        ):
            return httpx.Response(
                400, json={"error": "invalid_grant", "error_description": "Invalid refresh token"}
            )
        self.rotations += 1
        self.refresh_token = f"refresh-{self.rotations}-do-not-leak"
        access = f"access-{self.rotations}"
        self.valid_access.add(access)
        body = {
            "access_token": access,
            "refresh_token": self.refresh_token,
            "expires_in": 7200,
            "token_type": "bearer",
        }
        return httpx.Response(200, json=body)


def devices(count: int) -> list[dict[str, Any]]:
    return [{"serial": f"CN{n:08d}", "device_type": "iap"} for n in range(count)]


@dataclass
class Saved:
    """An on_rotate that records what it was given (or fails when told to)."""

    values: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    async def __call__(self, value: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.values.append(value)


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def server() -> FakeClassic:
    return FakeClassic(devices=devices(120))


@pytest.fixture
async def http(server: FakeClassic) -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(timeout=5, transport=httpx.MockTransport(server.handle)) as client:
        yield client


@pytest.fixture
def saved() -> Saved:
    return Saved()


POLICY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02, random=lambda: 0.5)


@pytest.fixture
def provider(http: httpx.AsyncClient, saved: Saved) -> RefreshTokenProvider:
    return RefreshTokenProvider(
        http,
        token_url=TOKEN_URL,
        client_id="classic-client",
        client_secret=SecretStr(CLIENT_SECRET),
        refresh_token=SecretStr(FIRST_REFRESH),
        on_rotate=saved,
        policy=POLICY,
        sleep=NoSleep(),
    )


@pytest.fixture
def make_client(
    http: httpx.AsyncClient, provider: RefreshTokenProvider
) -> Callable[..., ClassicCentralClient]:
    def make(**overrides: Any) -> ClassicCentralClient:
        options: dict[str, Any] = {
            "base_url": GATEWAY,
            "tokens": provider,
            "limiters": RateLimiterRegistry(),
            "account_id": "customer-1",
            "policy": POLICY,
            "sleep": NoSleep(),
        }
        options.update(overrides)
        return ClassicCentralClient(http, **options)

    return make


async def walk(client: ClassicCentralClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    async for page in client.pages():
        items.extend(page.items)
    return items


# --------------------------------------------------------------------------- the provider


async def test_a_refresh_saves_the_rotated_token_before_handing_out_the_access_token(
    provider: RefreshTokenProvider, server: FakeClassic, saved: Saved
) -> None:
    token = await provider.token()

    assert token == "access-1"
    assert saved.values == [server.refresh_token]  # the live one, saved
    assert provider.holds(FIRST_REFRESH)
    assert provider.holds(server.refresh_token)
    (request,) = server.requests
    form = parse_qs(request.content.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == [FIRST_REFRESH]
    assert "refresh_token" not in str(request.url)  # a form body: nothing secret in the URL


async def test_no_access_token_is_handed_out_while_the_save_is_pending(
    provider: RefreshTokenProvider, saved: Saved
) -> None:
    release = asyncio.Event()

    async def slow_save(value: str) -> None:
        await release.wait()
        await saved(value)

    provider.on_rotate = slow_save
    waiting = asyncio.create_task(provider.token())
    await asyncio.sleep(0.01)

    assert not waiting.done()
    release.set()
    assert await waiting == "access-1"
    assert len(saved.values) == 1


async def test_concurrent_callers_share_one_refresh_and_spend_the_token_once(
    provider: RefreshTokenProvider, server: FakeClassic, saved: Saved
) -> None:
    server.token_latency = 0.01
    tokens = await asyncio.gather(*(provider.token() for _ in range(10)))

    assert set(tokens) == {"access-1"}
    assert server.rotations == 1
    assert len(saved.values) == 1


async def test_a_failed_save_raises_and_the_next_call_saves_before_handing_out(
    provider: RefreshTokenProvider, server: FakeClassic, saved: Saved, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    saved.fail_with = OSError(28, "No space left on device")

    with pytest.raises(RefreshTokenNotSaved) as caught:
        await provider.token()

    message = str(caught.value)
    assert "could not be persisted" in message
    assert "a restart would lose access" in message
    assert "No space left on device" in message
    saved.fail_with = None
    assert await provider.token() == "access-1"  # no second refresh: the first token is saved
    assert server.rotations == 1
    assert saved.values == [server.refresh_token]
    for text in (message, caplog.text):
        for secret in (FIRST_REFRESH, server.refresh_token, CLIENT_SECRET, "access-1"):
            assert secret not in text


async def test_a_save_retried_after_the_access_token_expired_then_refreshes_with_the_saved_token(
    http: httpx.AsyncClient, server: FakeClassic, saved: Saved
) -> None:
    now = [1000.0]
    provider = RefreshTokenProvider(
        http,
        token_url=TOKEN_URL,
        client_id="classic-client",
        client_secret=SecretStr(CLIENT_SECRET),
        refresh_token=SecretStr(FIRST_REFRESH),
        on_rotate=saved,
        policy=POLICY,
        clock=lambda: now[0],
    )
    saved.fail_with = RuntimeError("api server down")
    with pytest.raises(RefreshTokenNotSaved):
        await provider.token()
    saved.fail_with = None
    now[0] += 7200  # hours later: the access token from that refresh has expired

    assert await provider.token() == "access-2"
    assert saved.values == ["refresh-1-do-not-leak", "refresh-2-do-not-leak"]


async def test_a_spent_refresh_token_is_a_permanent_auth_error_that_says_why(
    http: httpx.AsyncClient, server: FakeClassic, saved: Saved
) -> None:
    server.refresh_token = "someone-else-rotated-it"
    provider = RefreshTokenProvider(
        http,
        token_url=TOKEN_URL,
        client_id="classic-client",
        client_secret=SecretStr(CLIENT_SECRET),
        refresh_token=SecretStr(FIRST_REFRESH),
        on_rotate=saved,
        policy=POLICY,
    )

    with pytest.raises(UpstreamAuthError) as caught:
        await provider.token()

    assert caught.value.permanent
    assert "invalid_grant" in str(caught.value)
    assert "already used or revoked" in str(caught.value)
    assert FIRST_REFRESH not in str(caught.value)
    assert len(server.requests) == 1  # 400 is not retried
    assert saved.values == []


async def test_an_answer_without_a_new_refresh_token_keeps_the_old_one_and_saves_nothing(
    provider: RefreshTokenProvider, server: FakeClassic, saved: Saved
) -> None:
    server.queued["/oauth2/token"] = [
        httpx.Response(200, json={"access_token": "access-x", "expires_in": 7200})
    ]
    server.valid_access.add("access-x")

    assert await provider.token() == "access-x"
    assert saved.values == []
    assert provider.holds(FIRST_REFRESH)


# --------------------------------------------------------------------------- the client


async def test_pages_walk_every_offset_of_fifty_concurrently_after_the_first(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    items = await walk(make_client())

    assert sorted(d["serial"] for d in items) == [d["serial"] for d in server.devices]
    requests = server.api_requests()
    assert requests[0].url.params["offset"] == "0"
    assert {r.url.params["offset"] for r in requests} == {"0", "50", "100"}
    assert {r.url.params["limit"] for r in requests} == {"50"}


async def test_an_expired_access_token_is_refreshed_once_and_the_page_retried(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic, saved: Saved
) -> None:
    client = make_client()
    await walk(client)
    server.valid_access.clear()  # every access token expires

    items = await walk(client)

    assert len(items) == 120
    assert server.rotations == 2
    assert saved.values == ["refresh-1-do-not-leak", "refresh-2-do-not-leak"]


async def test_a_429_with_the_day_spent_fails_at_once_without_retries(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    server.queued[DEVICES] = [
        httpx.Response(
            429,
            json={"message": "API rate limit exceeded"},
            headers={"X-RateLimit-Remaining-day": "0", "X-RateLimit-Remaining-second": "5"},
        )
    ]

    with pytest.raises(UpstreamUnavailable) as caught:
        await walk(make_client())

    assert "daily API quota is used up" in str(caught.value)
    assert len(server.api_requests()) == 1


async def test_a_429_for_this_second_is_retried_after_the_pause_it_asks_for(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    server.queued[DEVICES] = [
        httpx.Response(
            429,
            json={"message": "API rate limit exceeded"},
            headers={**server.quota_headers(second=0), "Retry-After": "1"},
        )
    ]
    client = make_client()

    assert len(await walk(client)) == 120
    assert client.stats.retries == 1
    assert client.stats.by_status[429] == 1


async def test_a_walk_the_remaining_daily_quota_cannot_finish_stops_after_the_first_page(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    server.remaining_day = 2  # one call for the first page leaves 1; two more are needed

    with pytest.raises(UpstreamUnavailable) as caught:
        await walk(make_client())

    assert "needs 2 more calls" in str(caught.value)
    assert "has 1 left" in str(caught.value)
    assert len(server.api_requests()) == 1


async def test_our_own_day_budget_refuses_before_sending(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    client = make_client(limits=ClassicCentralLimits(per_second=7, per_day=1))

    with pytest.raises(UpstreamUnavailable, match="needs 2 more calls"):
        await walk(client)
    with pytest.raises(UpstreamUnavailable, match="daily API quota is used up"):
        await walk(client)
    assert len(server.api_requests()) == 1


async def test_a_short_page_is_refused_and_retried(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    server.queued[DEVICES] = [
        httpx.Response(200, json={"devices": server.devices[:10], "total": 120})
    ]
    client = make_client()

    assert len(await walk(client)) == 120
    assert client.stats.errors["protocol"] == 1


async def test_a_body_without_devices_is_a_protocol_error_after_the_retries(
    make_client: Callable[..., ClassicCentralClient], server: FakeClassic
) -> None:
    server.queued[DEVICES] = [httpx.Response(200, json={"items": []}) for _ in range(4)]

    with pytest.raises(UpstreamProtocolError, match="no 'devices' list"):
        await walk(make_client())


@pytest.mark.parametrize("size", [0, 51])
def test_a_page_size_beyond_fifty_is_refused(
    make_client: Callable[..., ClassicCentralClient], size: int
) -> None:
    with pytest.raises(ValueError, match="between 1 and 50"):
        make_client(page_size=size)
