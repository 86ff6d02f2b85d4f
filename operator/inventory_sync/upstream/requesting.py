"""One authorized, paced and retried GET: the path every upstream client request takes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx

from inventory_sync.errors import UpstreamAuthError
from inventory_sync.upstream.offloading import Offload
from inventory_sync.upstream.paging import Answer
from inventory_sync.upstream.ratelimit import RateLimiter, window_headers
from inventory_sync.upstream.retrying import (
    AttemptRecord,
    RequestStats,
    RetryPolicy,
    Sleep,
    TokenRejected,
    safe_url,
    send_and_read,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

Params = Mapping[str, str | int]


class BearerTokens(Protocol):
    """Where bearer tokens come from: TokenProvider (client credentials) or
    RefreshTokenProvider (classic Central's rotating refresh tokens)."""

    async def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class Budget(Protocol):
    """What paces requests: a RateLimiter, or several budgets drawn on together."""

    async def acquire(self) -> float: ...

    def pause_for(self, seconds: float) -> None: ...


class Requester:
    """Sends GETs with a bearer token, each attempt paced by a rate limiter, and retries.

    On 401 the token is invalidated and the request is retried once with a fresh one
    (tokens expire mid-walk); a second 401 is an UpstreamAuthError. A 429 whose headers say
    when the window resets pauses the whole limiter, so every fetcher sharing the budget
    backs off, not only the one that was refused. Every answer's rate-limit headers correct
    the limiter's count (a fresh process learns what earlier ones spent). `gate` caps the
    requests in flight per API client (the upstream refuses more); it is taken after the rate
    limiter, so a request waiting for its budget never holds a slot another source could use.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        tokens: BearerTokens,
        policy: RetryPolicy,
        request_timeout: float,
        sleep: Sleep = asyncio.sleep,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self._http = http
        self._gate = gate
        self._tokens = tokens
        self._policy = policy
        self._timeout = request_timeout
        self._sleep = sleep
        self.stats = RequestStats()

    async def get(
        self,
        url: str,
        *,
        params: Params,
        limiter: Budget,
        read: Callable[[Answer], _T],
        observe: Callable[[httpx.Response], None] | None = None,
        offload: Offload | None = None,
    ) -> _T:
        """GET `url` and `read` the 2xx answer (read may raise UpstreamProtocolError to retry).

        `observe` sees every response first, whatever its status (e.g. quota headers); an
        error it raises ends the request at once, without retries. `offload` runs `read` off
        the event loop (a page's decoding).
        """
        describe = f"GET {safe_url(url)}"
        reading = _Reading(read, describe, observe, offload)
        token = await self._tokens.token()
        try:
            return await self._attempts(url, params, token, limiter, reading)
        except TokenRejected:
            log.info("%s: token refused, refreshing it once", describe)
            self._tokens.invalidate(token)
        token = await self._tokens.token()
        try:
            return await self._attempts(url, params, token, limiter, reading)
        except TokenRejected as exc:
            raise UpstreamAuthError(
                f"{describe}: bearer token refused again after a refresh (HTTP 401)"
            ) from exc

    async def _attempts(
        self,
        url: str,
        params: Params,
        token: str,
        limiter: Budget,
        reading: _Reading[_T],
    ) -> _T:
        headers = {"Authorization": f"Bearer {token}"}
        observe = reading.observe

        async def send() -> httpx.Response:
            ticket = None
            window = limiter if isinstance(limiter, RateLimiter) else None
            if window is not None:
                ticket = await window.admit()
                self.stats.record_rate_limit_wait(ticket.waited)
            else:
                self.stats.record_rate_limit_wait(await limiter.acquire())
            async with self._gate or contextlib.nullcontext():
                if ticket is not None:
                    ticket.sending()
                try:
                    response = await self._http.get(
                        url, params=params, headers=headers, timeout=self._timeout
                    )
                finally:
                    if ticket is not None:
                        ticket.answered()
            if window is not None and ticket is not None:
                server_limit, remaining, reset = window_headers(response.headers)
                if remaining is not None:
                    used = (server_limit or window.limit) - remaining
                    window.observe(used=used, reset=reset)
            if observe is not None:
                observe(response)
            return response

        def on_attempt(record: AttemptRecord) -> None:
            self.stats.record(record)
            if record.status_code == 429 and record.server_hinted and record.retry_in:
                limiter.pause_for(record.retry_in)

        return await send_and_read(
            send,
            read=reading.read,
            policy=self._policy,
            describe=reading.describe,
            on_attempt=on_attempt,
            sleep=self._sleep,
            offload=reading.offload,
        )


@dataclass(frozen=True)
class _Reading(Generic[_T]):
    """How one GET's answer is read: the same for its retries and its second token."""

    read: Callable[[Answer], _T]
    describe: str
    observe: Callable[[httpx.Response], None] | None
    offload: Offload | None
