"""Fixtures for the upstream client tests: a scripted upstream behind httpx.MockTransport."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from inventory_sync.upstream import (
    ClientCredentials,
    GreenLakeClient,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)

API = "https://glp.example.test"
CENTRAL = "https://central.example.test"
# A query string on the token URL: messages must never show it.
TOKEN_URL = "https://sso.example.test/as/token.oauth2?tenant=private-tenant-hint"
SECRET = "s3cr3t-do-not-leak"
CREDENTIALS = ClientCredentials(client_id="client-a", client_secret=SecretStr(SECRET))

Outcome = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class Rule:
    """Answer requests matching `when` with `outcomes`, one per request, before the real routes."""

    when: Callable[[httpx.Request], bool]
    outcomes: list[Outcome]


@dataclass
class FakeUpstream:
    """GreenLake + New Central + HPE SSO, in memory, behind httpx.MockTransport."""

    devices: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    central: list[dict[str, Any]] = field(default_factory=list)
    #: New Central's `next`: page numbers (as v1 sends them) or opaque cursors (tolerated).
    central_next: str = "page"
    token_lifetime: float = 7200
    latency: Callable[[httpx.Request], float] = lambda _request: 0.0
    #: Called after each API page is built (e.g. to insert devices mid-walk).
    after_page: Callable[[httpx.Request], None] | None = None
    clock: Callable[[], float] | None = None
    rules: list[Rule] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    # Test modules cannot import this conftest (--import-mode=importlib), so the constants
    # and helpers they need travel on the fixture.
    api = API
    central_url = CENTRAL
    token_url = TOKEN_URL
    secret = SECRET
    credentials = CREDENTIALS

    @staticmethod
    def items(count: int, prefix: str = "dev") -> list[dict[str, Any]]:
        return [{"id": f"{prefix}-{n:05d}", "serialNumber": f"SN{n:05d}"} for n in range(count)]

    @staticmethod
    def offset_of(request: httpx.Request) -> int:
        return int(request.url.params.get("offset", "0"))

    @staticmethod
    def path_is(path: str) -> Callable[[httpx.Request], bool]:
        return lambda request: request.url.path == path

    def inject(self, when: Callable[[httpx.Request], bool], *outcomes: Outcome) -> None:
        self.rules.append(Rule(when, list(outcomes)))

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def api_requests(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.clock is not None:
            self.request_times.append(self.clock())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self.latency(request)
            if delay:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            for rule in self.rules:
                if rule.outcomes and rule.when(request):
                    outcome = rule.outcomes.pop(0)
                    if isinstance(outcome, Exception):
                        raise outcome
                    if isinstance(outcome, httpx.Response):
                        return outcome
                    return outcome(request)
            return self._route(request)
        finally:
            self.in_flight -= 1

    def _route(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/as/token.oauth2":
            return self._token(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in (
            self.valid_tokens
        ):
            return httpx.Response(401, json={"httpStatusCode": 401, "message": "Unauthorized"})
        params = request.url.params
        if request.url.path == "/devices/v1/devices":
            response = self._offset_page(self.devices, params)
        elif request.url.path == "/subscriptions/v1/subscriptions":
            response = self._offset_page(self.subscriptions, params)
        elif request.url.path in (
            "/network-monitoring/v1/device-inventory",
            "/network-monitoring/v1alpha1/device-inventory",
        ):
            response = self._central_page(params)
        else:
            response = httpx.Response(404, json={"message": "no such path"})
        if self.after_page is not None:
            self.after_page(request)
        return response

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != CREDENTIALS.client_id
            or form.get("client_secret") != SECRET
        ):
            return httpx.Response(401, json={"error": "invalid_client"})
        self.tokens_issued += 1
        token = f"token-{self.tokens_issued}"
        self.valid_tokens.add(token)
        return httpx.Response(
            200,
            json={"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
        )

    def _offset_page(self, rows: list[dict[str, Any]], params: httpx.QueryParams) -> httpx.Response:
        limit = int(params.get("limit", "2000"))
        offset = int(params.get("offset", "0"))
        selected = rows
        if "filter" in params:
            match = re.fullmatch(r"id in \((.*)\)", params["filter"])
            if match is None:
                return httpx.Response(400, json={"errorCode": "HPE_GL_ERROR_BAD_REQUEST"})
            wanted = {m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", match[1])}
            selected = [row for row in rows if row["id"] in wanted]
        page = selected[offset : offset + limit]
        body = {"items": page, "count": len(page), "offset": offset, "total": len(selected)}
        return httpx.Response(200, json=body)

    def _central_page(self, params: httpx.QueryParams) -> httpx.Response:
        limit = int(params.get("limit", "100"))
        marker = params.get("next", "1")
        if self.central_next == "page":
            start = (int(marker) - 1) * limit
        else:  # an opaque cursor: "c" + the offset, and page 1 without one
            start = 0 if marker == "1" else int(marker.removeprefix("c"))
        page = self.central[start : start + limit]
        more = start + limit < len(self.central)
        following: int | str | None = None
        if more:
            following = start // limit + 2 if self.central_next == "page" else f"c{start + limit}"
        body = {"items": page, "total": len(self.central), "count": len(page), "next": following}
        return httpx.Response(200, json=body)


class FakeClock:
    """Monotonic time that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Let every runnable task run at the old time first, as a real sleep would.
        await asyncio.sleep(0)
        self.now += seconds


class Sleeps:
    """An injected `sleep` that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def server() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy() -> RetryPolicy:
    # Jitter pinned at half the ceiling so delays are predictable.
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30, random=lambda: 0.5)


@pytest.fixture
async def http(server: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(timeout=5, transport=httpx.MockTransport(server.handle)) as client:
        yield client


@pytest.fixture
def tokens(http: httpx.AsyncClient, policy: RetryPolicy, sleeps: Sleeps) -> TokenProvider:
    return TokenProvider(
        http, token_url=TOKEN_URL, credentials=CREDENTIALS, policy=policy, sleep=sleeps
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> RateLimiterRegistry:
    return RateLimiterRegistry()


@pytest.fixture
def make_greenlake(
    http: httpx.AsyncClient,
    tokens: TokenProvider,
    registry: RateLimiterRegistry,
    policy: RetryPolicy,
    sleeps: Sleeps,
) -> Callable[..., GreenLakeClient]:
    def make(**overrides: Any) -> GreenLakeClient:
        options: dict[str, Any] = {
            "base_url": API,
            "tokens": tokens,
            "limiters": registry,
            "workspace_id": "ws-1",
            "policy": policy,
            "sleep": sleeps,
        }
        options.update(overrides)
        return GreenLakeClient(http, **options)

    return make
