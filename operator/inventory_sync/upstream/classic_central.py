"""The classic Aruba Central client: the device inventory by offset, under two account quotas."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from inventory_sync.errors import UpstreamProtocolError, UpstreamUnavailable
from inventory_sync.upstream.paging import Answer, Page, decode_json
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry, budget_host
from inventory_sync.upstream.requesting import BearerTokens, Requester
from inventory_sync.upstream.retrying import RequestStats, RetryPolicy, Sleep, safe_url

log = logging.getLogger(__name__)

CLASSIC_INVENTORY_PATH = "/platform/device_inventory/v1/devices"
#: The inventory API refuses a larger `limit` (400).
MAX_PAGE_SIZE = 50
_DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class ClassicCentralLimits:
    """An account's documented default budgets: 7 calls a second and 5,000 a day."""

    per_second: int = 7
    per_day: int = 5000


def _header_int(headers: httpx.Headers, name: str) -> int | None:
    try:
        value = int(headers[name])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None


class AccountBudget:
    """One account's per-second and per-day limiters drawn on together (a requesting.Budget),
    corrected by what the server's X-RateLimit-* headers say is left."""

    def __init__(self, *, second: RateLimiter, day: RateLimiter, account_id: str) -> None:
        self.second = second
        self.day = day
        self._account = account_id
        #: The server's X-RateLimit-Remaining-day after the latest answer (other clients on
        #: the account spend it too); None until an answer said.
        self.remaining_day: int | None = None

    def _day_exhausted(self) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"classic Central account {self._account}: the daily API quota is used up; "
            "the walk resumes on a later run (a longer interval spends less of it)"
        )

    async def acquire(self) -> float:
        """Wait for a slot in this second; refuse at once when today's quota is spent (waiting
        for it could take hours)."""
        if self.remaining_day == 0 or self.day.in_window >= self.day.limit:
            raise self._day_exhausted()
        waited = await self.second.acquire()
        return waited + await self.day.acquire()

    def calls_left_today(self) -> int:
        """The fewer of what the server last said is left and what our own day window allows."""
        ours = max(0, self.day.limit - self.day.in_window)
        return ours if self.remaining_day is None else min(ours, self.remaining_day)

    def pause_for(self, seconds: float) -> None:
        """A 429 said when to come back: every request on the account waits."""
        self.second.pause_for(seconds)

    def observe(self, response: httpx.Response) -> None:
        """Honour the quota headers of any answer: no retries once the day is spent, and a
        one-second pause when this second's calls are."""
        remaining_day = _header_int(response.headers, "x-ratelimit-remaining-day")
        if remaining_day is not None:
            self.remaining_day = remaining_day
        if response.status_code == 429 and remaining_day == 0:
            raise self._day_exhausted()
        if _header_int(response.headers, "x-ratelimit-remaining-second") == 0:
            self.second.pause_for(1.0)


def decode_classic_page(response: Answer, *, describe: str, offset: int, limit: int) -> Page:
    """A `{devices, total}` page asked for at `offset`; it must hold min(limit, total - offset)
    devices (a short page mid-walk would silently drop devices, so it is retried)."""
    body = decode_json(response, describe=describe)
    if not isinstance(body, dict):
        raise UpstreamProtocolError(f"{describe}: envelope is {type(body).__name__}, not an object")
    devices = body.get("devices")
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        raise UpstreamProtocolError(f"{describe}: envelope has no 'devices' list of objects")
    total = body.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise UpstreamProtocolError(f"{describe}: envelope has no valid 'total' ({total!r})")
    expected = max(0, min(limit, total - offset))
    if len(devices) != expected:
        raise UpstreamProtocolError(
            f"{describe}: page at offset {offset} holds {len(devices)} devices, "
            f"expected {expected} (limit {limit}, total {total})"
        )
    return Page(items=devices, total=total, number=offset // limit)


class ClassicCentralClient:
    """Lists a classic Central account's device inventory, page by page.

    Items have no `id`: `serial` identifies a device.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        tokens: BearerTokens,
        limiters: RateLimiterRegistry,
        account_id: str,
        policy: RetryPolicy,
        page_size: int = MAX_PAGE_SIZE,
        max_concurrent_pages: int = 4,
        request_timeout: float = 30,
        limits: ClassicCentralLimits | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if max_concurrent_pages < 1:
            raise ValueError("max_concurrent_pages must be at least 1")
        self._url = base_url.rstrip("/") + CLASSIC_INVENTORY_PATH
        self._page_size = page_size
        self._max_concurrent = max_concurrent_pages
        limits = limits or ClassicCentralLimits()
        # Keyed by account: every source and schedule on it shares the two budgets.
        key = f"classic-central:{budget_host(base_url)}:{account_id}"
        self.budget = AccountBudget(
            second=limiters.get(f"{key}:second", limit=limits.per_second, period=1.0),
            day=limiters.get(f"{key}:day", limit=limits.per_day, period=_DAY_SECONDS),
            account_id=account_id,
        )
        self._requester = Requester(
            http, tokens=tokens, policy=policy, request_timeout=request_timeout, sleep=sleep
        )

    @property
    def stats(self) -> RequestStats:
        """Request counters across every call this client made."""
        return self._requester.stats

    async def pages(self) -> AsyncGenerator[Page, None]:
        """Every page, each yielded as soon as it arrives (maybe out of order).

        The first page tells `total`; if the account's remaining daily quota (from the
        headers) cannot cover the rest, the walk stops here rather than spend it on a walk
        that cannot finish. The remaining offsets are fetched by up to `max_concurrent_pages`
        fetchers; the first failure cancels the others and is raised.
        Close the iterator (`contextlib.aclosing`) if you stop early.
        """
        size = self._page_size
        first = await self._fetch(0)
        total = first.total or 0
        offsets = list(range(size, total, size))
        left = self.budget.calls_left_today()
        if left < len(offsets):
            raise UpstreamUnavailable(
                f"GET {safe_url(self._url)}: the walk needs {len(offsets)} more calls but the "
                f"account's daily API quota has {left} left; it resumes on a later run"
            )
        yield first
        if not offsets:
            return
        async for page in _concurrently(self._fetch, offsets, limit=self._max_concurrent):
            yield page

    async def _fetch(self, offset: int) -> Page:
        describe = f"GET {safe_url(self._url)}"
        size = self._page_size

        def read(response: Answer) -> Page:
            return decode_classic_page(response, describe=describe, offset=offset, limit=size)

        return await self._requester.get(
            self._url,
            params={"limit": size, "offset": offset},
            limiter=self.budget,
            read=read,
            observe=self.budget.observe,
        )


async def _concurrently(
    fetch: Callable[[int], Coroutine[Any, Any, Page]], offsets: list[int], *, limit: int
) -> AsyncGenerator[Page, None]:
    """fetch(offset) for every offset, `limit` at a time, yielding pages as they complete."""
    pending = iter(offsets)
    running: set[asyncio.Task[Page]] = set()

    def start_next() -> None:
        offset = next(pending, None)
        if offset is not None:
            running.add(asyncio.create_task(fetch(offset), name=f"classic page {offset}"))

    for _ in range(min(limit, len(offsets))):
        start_next()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
                page = task.result()  # raises the first failure; `finally` cancels the rest
                start_next()
                yield page
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
