"""Access tokens by refresh-token grant (classic Central), persisting every rotated refresh token.

Classic Central answers each refresh with a new access token AND a new refresh token; the old
refresh token stops working at once. A client that keeps the new one only in memory loses
access at its next restart, so no access token is handed out before `on_rotate` has saved it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from inventory_sync.errors import (
    RefreshTokenNotSaved,
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamRequestError,
    public_message,
)
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

#: Saves a rotated refresh token where the next run (or process) will read it.
OnRotate = Callable[[str], Awaitable[None]]

# Documented: 2 h. Assumed when the answer omits expires_in.
_DEFAULT_LIFETIME_SECONDS = 7200.0
# Room left for the cause in a message capped at 256 characters (errors.public_message).
_CAUSE_LIMIT = 120


@dataclass(frozen=True)
class _Grant:
    access_token: str
    refresh_token: str | None
    lifetime: float


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RefreshTokenProvider:
    """Hands out access tokens obtained with `grant_type=refresh_token`.

    Concurrent callers share one refresh (one task behind `asyncio.shield`, as TokenProvider
    does), so the refresh token is spent once. After each successful refresh `on_rotate(new
    refresh token)` is awaited before the access token is handed out; when it fails, the new
    refresh token is kept in memory, RefreshTokenNotSaved is raised, and the next call tries
    to save it again before anything else. Tokens never appear in logs or messages.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        on_rotate: OnRotate,
        refresh_margin_seconds: float = 60,
        policy: RetryPolicy | None = None,
        request_timeout: float = 30,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        #: Awaited with every new refresh token; replaceable (each run brings its writer).
        self.on_rotate = on_rotate
        self._margin = refresh_margin_seconds
        self._policy = policy or RetryPolicy()
        self._timeout = request_timeout
        self._clock = clock
        self._sleep = sleep
        self._access: str | None = None
        self._refresh_at = float("-inf")
        self._unsaved = False
        self._known = {_digest(refresh_token.get_secret_value())}
        self._refreshing = SingleFlight(self._refresh, name="upstream refresh-token grant")
        self.stats = RequestStats()
        #: Refreshes done and rotated tokens saved: for metrics and tests.
        self.refreshes = 0
        self.saved = 0

    @property
    def token_url(self) -> str:
        """The token endpoint without query string, fit for messages."""
        return safe_url(self._token_url)

    def holds(self, refresh_token: str) -> bool:
        """Whether `refresh_token` is this provider's current one or one it rotated away.

        A stored copy that lags behind (the save failed, or a run read it before the rotation)
        still belongs to this provider, whose current token is the live one; a value it never
        held was put there by someone else (a new authorization) and needs a new provider.
        """
        return _digest(refresh_token) in self._known

    async def token(self) -> str:
        """An access token valid for at least the refresh margin, its refresh token saved."""
        if self._access is not None and not self._unsaved and self._clock() < self._refresh_at:
            return self._access
        return await self._refreshing.run()

    def invalidate(self, token: str) -> None:
        """Forget the access token `token` (the server answered 401 to it) unless replaced."""
        if token == self._access:
            self._access = None

    async def _refresh(self) -> str:
        if self._unsaved:  # an earlier save failed: that token is the only live one
            await self._save()
            if self._access is not None and self._clock() < self._refresh_at:
                return self._access
        started = self._clock()
        grant = await self._request_grant()
        self._access = grant.access_token
        self._refresh_at = started + grant.lifetime - min(self._margin, grant.lifetime / 2)
        self.refreshes += 1
        log.debug("refreshed an access token at %s", self.token_url)
        current = self._refresh_token.get_secret_value()
        if grant.refresh_token is not None and grant.refresh_token != current:
            # From here on the old refresh token is dead upstream: only this one works.
            self._refresh_token = SecretStr(grant.refresh_token)
            self._known.add(_digest(grant.refresh_token))
            self._unsaved = True
            await self._save()
        return grant.access_token

    async def _save(self) -> None:
        try:
            await self.on_rotate(self._refresh_token.get_secret_value())
        except Exception as exc:
            cause = public_message(exc, limit=_CAUSE_LIMIT)
            raise RefreshTokenNotSaved(
                "the rotated refresh token could not be persisted, so a restart would lose "
                f"access (it is kept in memory and saved on the next try): {cause}"
            ) from exc
        self._unsaved = False
        self.saved += 1
        log.info("saved the rotated refresh token for %s", self.token_url)

    async def _request_grant(self) -> _Grant:
        describe = f"POST {self.token_url}"
        # A form body, not the query string classic clients often use: URLs end up in logs.
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "refresh_token": self._refresh_token.get_secret_value(),
        }

        async def send() -> httpx.Response:
            return await self._http.post(self._token_url, data=form, timeout=self._timeout)

        def read(response: Answer) -> _Grant:
            return _read_grant(decode_json(response, describe=describe), describe=describe)

        try:
            return await send_and_read(
                send,
                read=read,
                policy=self._policy,
                describe=describe,
                on_attempt=self.stats.record,
                sleep=self._sleep,
            )
        except (TokenRejected, UpstreamRequestError) as exc:
            # 400 invalid_grant: the refresh token was already used (rotated) or revoked;
            # 401 invalid_client: wrong client. Neither heals by retrying.
            reason = str(exc).removeprefix(f"{describe}: ")
            raise UpstreamAuthError(
                f"{describe}: refresh refused ({reason}); if invalid_grant, the stored refresh "
                "token was already used or revoked: store a newly issued one"
            ) from exc


def _read_grant(body: Any, *, describe: str) -> _Grant:
    if not isinstance(body, dict):
        raise UpstreamProtocolError(f"{describe}: token answer is not a JSON object")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise UpstreamProtocolError(f"{describe}: token answer has no access_token")
    refresh_token = body.get("refresh_token")
    if refresh_token is not None and (not isinstance(refresh_token, str) or not refresh_token):
        raise UpstreamProtocolError(f"{describe}: token answer has an unusable refresh_token")
    lifetime = _DEFAULT_LIFETIME_SECONDS
    raw = body.get("expires_in")
    if raw is not None:
        try:
            lifetime = float(raw)
        except (TypeError, ValueError):
            raise UpstreamProtocolError(f"{describe}: expires_in is not a number") from None
        if not (lifetime > 0 and math.isfinite(lifetime)):
            raise UpstreamProtocolError(f"{describe}: expires_in is not a positive number")
    return _Grant(access_token=access_token, refresh_token=refresh_token, lifetime=lifetime)
