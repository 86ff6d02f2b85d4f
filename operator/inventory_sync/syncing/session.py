"""Long-lived upstream plumbing shared by runs: HTTP clients, tokens and rate limiters (syncing layer)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from inventory_sync.upstream import (
    ClientCredentials,
    RateLimiterRegistry,
    RetryPolicy,
    TokenProvider,
    build_http_client,
)


@dataclass
class UpstreamSession:
    """One httpx client per upstream host and one token per (token URL, client), reused across
    runs; the limiter registry makes every source on a workspace share that workspace's budget."""

    request_timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiters: RateLimiterRegistry = field(default_factory=RateLimiterRegistry)
    transport: httpx.AsyncBaseTransport | None = None  # the test seam
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    _tokens: dict[tuple[str, str, str], TokenProvider] = field(default_factory=dict)

    def http_for(self, url: str) -> httpx.AsyncClient:
        host = urlsplit(url).netloc
        client = self._clients.get(host)
        if client is None:
            client = build_http_client(timeout=self.request_timeout, transport=self.transport)
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

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._tokens.clear()
