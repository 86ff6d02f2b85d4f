"""Long-lived upstream plumbing shared by runs: HTTP clients, tokens and rate limiters (syncing layer)."""

from __future__ import annotations

import asyncio
import hashlib
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

#: Requests one API client may have in flight: the upstreams refuse more with a 429 (the
#: simulator's max_concurrent_requests_per_client). Shared by every source using the client.
MAX_IN_FLIGHT_PER_CLIENT = 8


@dataclass(frozen=True)
class PageConcurrency:
    """How many pages of one walk are fetched at once, per upstream; each request still waits
    for its rate limiter and for a slot of its API client (MAX_IN_FLIGHT_PER_CLIENT). 1 makes a
    walk sequential (what a cursor walk was). Classic Central allows 7 calls a second."""

    greenlake: int = MAX_IN_FLIGHT_PER_CLIENT
    central: int = MAX_IN_FLIGHT_PER_CLIENT
    classic: int = 4


@dataclass
class UpstreamSession:
    """One httpx client per upstream host and one token per (token URL, client), reused across
    runs; the limiter registry makes every source on a workspace share that workspace's budget."""

    request_timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiters: RateLimiterRegistry = field(default_factory=RateLimiterRegistry)
    concurrency: PageConcurrency = field(default_factory=PageConcurrency)
    transport: httpx.AsyncBaseTransport | None = None  # the test seam
    #: Where credentials may go: the in-cluster allow-list (settings.endpoint_policy).
    endpoint_policy: EndpointPolicy = field(default_factory=EndpointPolicy)
    #: The in-flight cap of one API client (settings.upstream_concurrency_per_client).
    concurrency_per_client: int = MAX_IN_FLIGHT_PER_CLIENT
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    _tokens: dict[tuple[str, str, str], TokenProvider] = field(default_factory=dict)
    _gates: dict[tuple[str, str], asyncio.Semaphore] = field(default_factory=dict)
    _refreshing: dict[tuple[str, str, str, str], RefreshTokenProvider] = field(default_factory=dict)

    def http_for(self, url: str) -> httpx.AsyncClient:
        host = urlsplit(url).netloc
        client = self._clients.get(host)
        if client is None:
            client = build_http_client(
                timeout=self.request_timeout, transport=self.transport, policy=self.endpoint_policy
            )
            self._clients[host] = client
        return client

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

    def gate_for(self, token_url: str, client_id: str) -> asyncio.Semaphore:
        """The in-flight cap of one API client, shared by every source that uses it."""
        key = (token_url, client_id)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(self.concurrency_per_client)
        return gate

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
        self._gates.clear()
