"""OAuth2 client-credentials tokens for the upstream clients: cached, shared, refreshed early."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from inventory_sync.errors import UpstreamAuthError, UpstreamProtocolError, UpstreamRequestError
from inventory_sync.upstream.credentials import ClientCredentials
from inventory_sync.upstream.paging import Answer, decode_json
from inventory_sync.upstream.retrying import (
    RequestStats,
    RetryPolicy,
    Sleep,
    TokenRejected,
    safe_url,
    send_and_read,
)
from inventory_sync.upstream.singleflight import SingleFlight

log = logging.getLogger(__name__)

# HPE does not document the lifetime; when the answer omits `expires_in`, assume a short
# one so a wrong guess costs an extra token request, not a 401 in the middle of a walk.
_DEFAULT_LIFETIME_SECONDS = 600.0


@dataclass(frozen=True)
class _Grant:
    access_token: str
    lifetime: float


class TokenProvider:
    """Hands out a bearer token, refreshing it `refresh_margin_seconds` before it expires.

    Concurrent callers that find the token stale share one in-flight refresh (one task,
    awaited through `asyncio.shield`), so a burst of page fetchers makes one token request,
    a failed refresh fails them all at once, and one caller being cancelled does not
    abort the refresh the others are waiting for.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        credentials: ClientCredentials,
        refresh_margin_seconds: float = 60,
        policy: RetryPolicy | None = None,
        request_timeout: float = 30,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._credentials = credentials
        self._margin = refresh_margin_seconds
        self._policy = policy or RetryPolicy()
        self._timeout = request_timeout
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._refresh_at = float("-inf")
        self._refreshing = SingleFlight(self._refresh, name="upstream token refresh")
        self.stats = RequestStats()
        #: How many tokens were obtained: for metrics and tests.
        self.refreshes = 0

    @property
    def token_url(self) -> str:
        """The token endpoint without query string, fit for messages."""
        return safe_url(self._token_url)

    async def token(self) -> str:
        """A token that is valid for at least the refresh margin (or half its lifetime)."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return await self._refreshing.run()

    def invalidate(self, token: str) -> None:
        """Forget `token` (the server answered 401 to it) unless a newer one replaced it."""
        if token == self._token:
            self._token = None

    async def _refresh(self) -> str:
        describe = f"POST {self.token_url}"
        started = self._clock()
        form = {
            "grant_type": "client_credentials",
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret.get_secret_value(),
        }

        async def send() -> httpx.Response:
            return await self._http.post(self._token_url, data=form, timeout=self._timeout)

        def read(response: Answer) -> _Grant:
            return _read_grant(decode_json(response, describe=describe), describe=describe)

        try:
            grant = await send_and_read(
                send,
                read=read,
                policy=self._policy,
                describe=describe,
                on_attempt=self.stats.record,
                sleep=self._sleep,
            )
        except (TokenRejected, UpstreamRequestError) as exc:
            # 400 invalid_client and 401 both mean the credentials are wrong: permanent.
            reason = str(exc).removeprefix(f"{describe}: ")
            raise UpstreamAuthError(f"{describe}: client credentials refused: {reason}") from exc
        margin = min(self._margin, grant.lifetime / 2)
        self._token = grant.access_token
        self._refresh_at = started + grant.lifetime - margin
        self.refreshes += 1
        log.debug("got a token from %s valid for %.0fs", self.token_url, grant.lifetime)
        return grant.access_token


def _read_grant(body: Any, *, describe: str) -> _Grant:
    if not isinstance(body, dict):
        raise UpstreamProtocolError(f"{describe}: token answer is not a JSON object")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise UpstreamProtocolError(f"{describe}: token answer has no access_token")
    lifetime = _DEFAULT_LIFETIME_SECONDS
    raw = body.get("expires_in")
    if raw is not None:
        try:
            lifetime = float(raw)
        except (TypeError, ValueError):
            raise UpstreamProtocolError(f"{describe}: expires_in is not a number") from None
        if not (lifetime > 0 and math.isfinite(lifetime)):
            raise UpstreamProtocolError(f"{describe}: expires_in is not a positive number")
    return _Grant(access_token=access_token, lifetime=lifetime)
