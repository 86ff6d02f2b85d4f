"""Long-lived upstream plumbing shared by runs: HTTP clients, tokens and rate limiters (syncing layer)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.syncing.credentials import RefreshCredentials
from inventory_sync.upstream import (
    ClientCredentials,
    OnRotate,
    RateLimiterRegistry,
    RefreshTokenProvider,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)

# Upstreams cap the requests one API client may have in flight (beyond it: 429). The cap is
# the client's, whichever run or source sends them, so it is shared like the rate budget.
DEFAULT_CONCURRENCY_PER_CLIENT = 6


@dataclass(frozen=True)
class PageConcurrency:
    """How many pages of one walk are fetched at once, per upstream; each request still waits
    for its rate limiter. 1 makes a walk sequential (what a cursor walk was)."""

    greenlake: int = 4
    central: int = 4
    classic: int = 4


@dataclass
class UpstreamSession:
    """One httpx client per upstream host and API client, one token per (token URL, client),
    reused across runs. Shared across runs, too: the limiter registry (every source on a
    workspace shares that workspace's budget) and a concurrency gate per (host, client)."""

    request_timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiters: RateLimiterRegistry = field(default_factory=RateLimiterRegistry)
    concurrency: PageConcurrency = field(default_factory=PageConcurrency)
    transport: httpx.AsyncBaseTransport | None = None  # the test seam
    #: Where credentials may go: the in-cluster allow-list (settings.endpoint_policy).
    endpoint_policy: EndpointPolicy = field(default_factory=EndpointPolicy)
    concurrency_per_client: int = DEFAULT_CONCURRENCY_PER_CLIENT
    _clients: dict[tuple[str, str], httpx.AsyncClient] = field(default_factory=dict)
    _tokens: dict[tuple[str, str, str], TokenProvider] = field(default_factory=dict)
    _refreshing: dict[tuple[str, str, str, str], RefreshTokenProvider] = field(default_factory=dict)

    def http_for(self, url: str, *, client: str | None = None) -> httpx.AsyncClient:
        """The HTTP client for `url`'s host; with `client` (the API client id the requests
        authenticate as) every request waits for a slot of that client's concurrency cap,
        shared by every run and source using the client."""
        key = (urlsplit(url).netloc, client or "")
        found = self._clients.get(key)
        if found is None:
            found = build_http_client(
                timeout=self.request_timeout, transport=self.transport, policy=self.endpoint_policy
            )
            if client is not None:
                _gate(found, asyncio.Semaphore(self.concurrency_per_client))
            self._clients[key] = found
        return found

    def tokens_for(self, token_url: str, credentials: ClientCredentials) -> TokenProvider:
        # Keyed by a digest of the secret too: a rotated Secret must get a fresh token.
        digest = hashlib.sha256(credentials.client_secret.get_secret_value().encode()).hexdigest()
        key = (token_url, credentials.client_id, digest)
        provider = self._tokens.get(key)
        if provider is None:
            provider = TokenProvider(
                self.http_for(token_url), token_url=token_url, credentials=credentials
            )
            self._tokens[key] = provider
        return provider

    def refresh_tokens_for(
        self,
        token_url: str,
        credentials: RefreshCredentials,
        *,
        stored_at: str,
        on_rotate: OnRotate,
    ) -> RefreshTokenProvider:
        """The one provider for the refresh token stored at `stored_at` (namespace/Secret/key).

        One per storage place, so sources sharing a Secret spend its refresh token once. It is
        kept while the stored value is one it held (the copy may lag: a run read it before
        the rotation, or the save failed); a value it never held is a new authorization and
        gets a new provider. `on_rotate` is the current run's writer.
        """
        secret = credentials.client_secret.get_secret_value()
        digest = hashlib.sha256(secret.encode()).hexdigest()  # a new client: a new provider
        key = (token_url, credentials.client_id, digest, stored_at)
        provider = self._refreshing.get(key)
        stored = credentials.refresh_token.get_secret_value()
        if provider is None or not provider.holds(stored):
            provider = RefreshTokenProvider(
                self.http_for(token_url),
                token_url=token_url,
                client_id=credentials.client_id,
                client_secret=credentials.client_secret,
                refresh_token=credentials.refresh_token,
                on_rotate=on_rotate,
                policy=self.policy,
                request_timeout=self.request_timeout,
            )
            self._refreshing[key] = provider
        provider.on_rotate = on_rotate
        return provider

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._tokens.clear()
        self._refreshing.clear()


def _gate(client: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
    """Put `gate` in front of every transport of `client` (its own and the proxies httpx
    mounted from the environment), around the ones built_http_client set up: a transport
    handed to httpx instead would lose the environment's proxies and the egress guard."""
    client._transport = GatedTransport(client._transport, gate)
    client._mounts = {
        pattern: None if transport is None else GatedTransport(transport, gate)
        for pattern, transport in client._mounts.items()
    }


class GatedTransport(httpx.AsyncBaseTransport):
    """Holds a slot of `gate` from sending a request until its response body is closed."""

    def __init__(self, inner: httpx.AsyncBaseTransport, gate: asyncio.Semaphore) -> None:
        self._inner = inner
        self._gate = gate

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._gate.acquire()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._gate.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Releasing(response.stream, self._gate),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Releasing(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, gate: asyncio.Semaphore) -> None:
        self._inner = inner
        self._gate: asyncio.Semaphore | None = gate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            gate, self._gate = self._gate, None
            if gate is not None:  # exactly once, however often it is closed
                gate.release()
