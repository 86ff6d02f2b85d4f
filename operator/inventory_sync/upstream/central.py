"""The HPE Aruba Networking Central (new generation) client: device inventory by cursor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import httpx

from inventory_sync.errors import UpstreamProtocolError
from inventory_sync.upstream.httpclient import CENTRAL_INVENTORY_PATH
from inventory_sync.upstream.paging import Page, decode_cursor_page
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry
from inventory_sync.upstream.requesting import Requester
from inventory_sync.upstream.retrying import RequestStats, RetryPolicy, Sleep, safe_url
from inventory_sync.upstream.tokens import TokenProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CentralLimits:
    """Central's request budget per workspace; undocumented upstream, so configurable."""

    requests: int = 600
    period_seconds: float = 60.0


class CentralClient:
    """Walks New Central's device inventory one cursor page at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        tokens: TokenProvider,
        limiters: RateLimiterRegistry,
        workspace_id: str,
        policy: RetryPolicy,
        page_size: int = 100,
        request_timeout: float = 30,
        path: str = CENTRAL_INVENTORY_PATH,
        limits: CentralLimits | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._url = base_url.rstrip("/") + "/" + path.lstrip("/")
        self._limiters = limiters
        self._workspace_id = workspace_id
        self._page_size = page_size
        self._limits = limits or CentralLimits()
        self._requester = Requester(
            http, tokens=tokens, policy=policy, request_timeout=request_timeout, sleep=sleep
        )

    @property
    def stats(self) -> RequestStats:
        """Request counters across every call this client made."""
        return self._requester.stats

    @property
    def limiter(self) -> RateLimiter:
        """The workspace's Central budget, shared with every other Central client on it."""
        return self._limiters.get(
            f"central:{self._workspace_id}",
            limit=self._limits.requests,
            period=self._limits.period_seconds,
        )

    async def pages(self) -> AsyncGenerator[Page, None]:
        """Every page, in order, following `next` until the server returns none.

        A cursor walk cannot be parallelised: each page names the next. A cursor seen
        twice would loop forever, so it raises UpstreamProtocolError instead.
        """
        describe = f"GET {safe_url(self._url)}"
        cursor: str | None = None
        seen: set[str] = set()
        number = 0
        while True:
            params: dict[str, str | int] = {"limit": self._page_size}
            if cursor is not None:
                params["next"] = cursor

            def read(response: httpx.Response, number: int = number) -> tuple[Page, str | None]:
                return decode_cursor_page(response, describe=describe, number=number)

            page, cursor = await self._requester.get(
                self._url, params=params, limiter=self.limiter, read=read
            )
            yield page
            if cursor is None:
                return
            if cursor in seen:
                # The cursor itself may be an opaque token: name the page, not the cursor.
                raise UpstreamProtocolError(f"{describe}: page {number} repeats an earlier cursor")
            seen.add(cursor)
            number += 1
