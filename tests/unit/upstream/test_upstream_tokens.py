"""TokenProvider: cached tokens, early refresh, one shared refresh, credentials never shown."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from inventory_sync.errors import UpstreamAuthError, UpstreamUnavailable
from inventory_sync.upstream import ClientCredentials, RetryPolicy, TokenProvider

TOKEN_PATH = "/as/token.oauth2"


@pytest.fixture
def provider(http: httpx.AsyncClient, server: Any, clock: Any, sleeps: Any) -> TokenProvider:
    return TokenProvider(
        http,
        token_url=server.token_url,
        credentials=server.credentials,
        refresh_margin_seconds=60,
        policy=RetryPolicy(max_attempts=3, random=lambda: 0.5),
        clock=clock,
        sleep=sleeps,
    )


async def test_token_is_cached_until_the_refresh_margin_then_refreshed(
    provider: TokenProvider, server: Any, clock: Any
) -> None:
    server.token_lifetime = 600
    first = await provider.token()
    clock.now += 539  # 600 s lifetime - 60 s margin: still good
    assert await provider.token() == first
    assert server.tokens_issued == 1
    clock.now += 1
    second = await provider.token()
    assert second != first
    assert server.tokens_issued == 2


async def test_token_request_is_a_client_credentials_form(
    provider: TokenProvider, server: Any
) -> None:
    await provider.token()
    (request,) = server.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"grant_type=client_credentials" in request.content
    assert b"client_id=client-a" in request.content


async def test_margin_longer_than_the_lifetime_still_caches_for_half_of_it(
    provider: TokenProvider, server: Any, clock: Any
) -> None:
    server.token_lifetime = 30  # shorter than the 60 s margin
    first = await provider.token()
    clock.now += 14
    assert await provider.token() == first
    clock.now += 1
    assert await provider.token() != first


async def test_concurrent_callers_share_one_refresh(provider: TokenProvider, server: Any) -> None:
    server.latency = lambda _request: 0.01
    tokens = await asyncio.gather(*(provider.token() for _ in range(20)))
    assert set(tokens) == {"token-1"}
    assert server.tokens_issued == 1


async def test_invalidate_forces_a_refresh_only_for_the_current_token(
    provider: TokenProvider, server: Any
) -> None:
    first = await provider.token()
    provider.invalidate(first)
    second = await provider.token()
    assert second != first
    provider.invalidate(first)  # a stale 401 must not throw away the newer token
    assert await provider.token() == second
    assert server.tokens_issued == 2


async def test_token_endpoint_5xx_and_timeouts_are_retried(
    provider: TokenProvider, server: Any, sleeps: Any
) -> None:
    server.inject(server.path_is(TOKEN_PATH), httpx.Response(503), httpx.ConnectTimeout("slow"))
    assert await provider.token() == "token-1"
    assert len(sleeps.delays) == 2


async def test_token_endpoint_down_for_good_is_unavailable_not_auth(
    provider: TokenProvider, server: Any
) -> None:
    server.inject(server.path_is(TOKEN_PATH), *[httpx.Response(502) for _ in range(3)])
    with pytest.raises(UpstreamUnavailable) as caught:
        await provider.token()
    assert not isinstance(caught.value, UpstreamAuthError)


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), id="401"),
        pytest.param(httpx.Response(400, json={"error": "invalid_client"}), id="400"),
    ],
)
async def test_bad_credentials_raise_auth_error_without_secret_or_query(
    provider: TokenProvider, server: Any, refusal: httpx.Response
) -> None:
    server.inject(server.path_is(TOKEN_PATH), refusal)
    with pytest.raises(UpstreamAuthError) as caught:
        await provider.token()
    message = str(caught.value)
    assert "https://sso.example.test/as/token.oauth2" in message
    assert "invalid_client" in message
    assert server.secret not in message
    assert "private-tenant-hint" not in message  # the token URL's query string
    assert caught.value.permanent


async def test_wrong_secret_fails_every_concurrent_caller_with_one_request(
    http: httpx.AsyncClient, server: Any
) -> None:
    wrong = ClientCredentials(client_id="client-a", client_secret=SecretStr("wrong-secret-xyz"))
    provider = TokenProvider(http, token_url=server.token_url, credentials=wrong)
    results = await asyncio.gather(*(provider.token() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, UpstreamAuthError) for r in results)
    assert all("wrong-secret-xyz" not in str(r) for r in results)
    assert len(server.requests) == 1


def test_credentials_repr_hides_the_secret(server: Any) -> None:
    assert server.secret not in repr(server.credentials)
    assert server.secret not in str(server.credentials)
    assert server.secret not in str(server.credentials.model_dump())
