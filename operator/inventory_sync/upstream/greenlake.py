"""The HPE GreenLake client: devices and subscriptions as a stream of concurrently fetched pages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from inventory_sync.upstream.paging import Page, chunked, decode_offset_page
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry
from inventory_sync.upstream.requesting import Requester
from inventory_sync.upstream.retrying import RequestStats, RetryPolicy, Sleep, safe_url
from inventory_sync.upstream.tokens import TokenProvider

log = logging.getLogger(__name__)

Resource = Literal["devices", "subscriptions"]

_PATHS: dict[Resource, str] = {
    "devices": "/devices/v1/devices",
    "subscriptions": "/subscriptions/v1/subscriptions",
}
# Devices allow 2000 per page (the documented maximum); clients in the wild ask for 50
# subscriptions, the only size known to be accepted.
_DEFAULT_PAGE_SIZES: dict[Resource, int] = {"devices": 2000, "subscriptions": 50}
# Ids per `id in (...)` filter: keeps the query string far below URL length limits
# (50 uuids quoted ≈ 2 KB).
_IDS_PER_FILTER = 50


@dataclass(frozen=True)
class GreenLakeLimits:
    """Per-workspace request budgets GreenLake enforces (documented: 160 and 60 per minute)."""

    devices: int = 160
    subscriptions: int = 60
    period_seconds: float = 60.0

    def for_resource(self, resource: Resource) -> int:
        return self.devices if resource == "devices" else self.subscriptions


class GreenLakeClient:
    """Lists GreenLake devices or subscriptions of one workspace, page by page."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        tokens: TokenProvider,
        limiters: RateLimiterRegistry,
        workspace_id: str,
        policy: RetryPolicy,
        page_size: int | None = None,
        max_concurrent_pages: int = 4,
        request_timeout: float = 30,
        limits: GreenLakeLimits | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_concurrent_pages < 1:
            raise ValueError("max_concurrent_pages must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._limiters = limiters
        self._workspace_id = workspace_id
        self._page_size = page_size
        self._max_concurrent = max_concurrent_pages
        self._limits = limits or GreenLakeLimits()
        self._requester = Requester(
            http, tokens=tokens, policy=policy, request_timeout=request_timeout, sleep=sleep
        )

    @property
    def stats(self) -> RequestStats:
        """Request counters across every call this client made."""
        return self._requester.stats

    def page_size(self, resource: Resource) -> int:
        return self._page_size or _DEFAULT_PAGE_SIZES[resource]

    def limiter(self, resource: Resource) -> RateLimiter:
        """The workspace's budget for listing `resource`, shared with every other client."""
        return self._limiters.get(
            f"greenlake:{self._workspace_id}:{resource}",
            limit=self._limits.for_resource(resource),
            period=self._limits.period_seconds,
        )

    async def pages(
        self, resource: Resource, *, filter: str | None = None, sort: str | None = None
    ) -> AsyncGenerator[Page, None]:
        """Every page of `resource`, each yielded as soon as it arrives (maybe out of order).

        The first page (offset 0) tells `total`; the remaining offsets are then fetched by
        up to `max_concurrent_pages` fetchers through a bounded queue, so at most about
        twice that many pages are ever held in memory. If a later page reports a larger
        total (inserts during the walk), the walk extends to cover it; each page's own
        `total` is exposed so callers can tell the data moved. When any page fails after
        its retries the iterator cancels the other fetchers and raises that error.
        Close the iterator (`contextlib.aclosing`) if you stop early.
        """
        size = self.page_size(resource)
        first = await self._fetch(resource, offset=0, size=size, filter=filter, sort=sort)
        walk = _Walk(page_size=size, end=first.total or 0)
        remaining = walk.remaining_pages()
        if remaining == 0:
            yield first
            return
        queue: asyncio.Queue[Page | None] = asyncio.Queue(maxsize=self._max_concurrent)
        fetchers = [
            asyncio.create_task(
                self._fetcher(resource, walk, queue, size=size, filter=filter, sort=sort),
                name=f"greenlake {resource} page fetcher {index}",
            )
            for index in range(min(self._max_concurrent, remaining))
        ]
        try:
            yield first
            running = len(fetchers)
            while running:
                page = await queue.get()
                if walk.failure is not None:
                    raise walk.failure
                if page is None:
                    running -= 1
                else:
                    yield page
        finally:
            for fetcher in fetchers:
                fetcher.cancel()
            await asyncio.gather(*fetchers, return_exceptions=True)

    async def fetch_by_ids(
        self, resource: Resource, ids: Sequence[str], *, chunk_size: int = _IDS_PER_FILTER
    ) -> list[dict[str, Any]]:
        """The items among `ids` that still exist (to confirm absences before soft deletes).

        Ids are asked for `chunk_size` at a time with the filter `id in ('a','b',…)`;
        chunks run up to `max_concurrent_pages` at once. Unknown ids are simply absent.
        """
        unique = list(dict.fromkeys(ids))
        gate = asyncio.Semaphore(self._max_concurrent)

        async def one_chunk(chunk: list[str]) -> list[dict[str, Any]]:
            async with gate:
                found: list[dict[str, Any]] = []
                async for page in self.pages(resource, filter=id_filter(chunk)):
                    found.extend(page.items)
                return found

        # Not a TaskGroup: it would wrap the first UpstreamError in an ExceptionGroup.
        tasks = [asyncio.create_task(one_chunk(chunk)) for chunk in chunked(unique, chunk_size)]
        try:
            results = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return [item for found in results for item in found]

    async def _fetcher(
        self,
        resource: Resource,
        walk: _Walk,
        queue: asyncio.Queue[Page | None],
        *,
        size: int,
        filter: str | None,
        sort: str | None,
    ) -> None:
        try:
            while (offset := walk.next_offset()) is not None:
                page = await self._fetch(
                    resource, offset=offset, size=size, filter=filter, sort=sort
                )
                walk.saw_total(page.total or 0)
                await queue.put(page)
        except asyncio.CancelledError:
            raise  # the consumer is gone: nobody waits for the sentinel
        except Exception as exc:  # handed to the consumer, which raises it
            walk.fail(exc)
        await queue.put(None)

    async def _fetch(
        self, resource: Resource, *, offset: int, size: int, filter: str | None, sort: str | None
    ) -> Page:
        url = f"{self._base_url}{_PATHS[resource]}"
        params: dict[str, str | int] = {"limit": size, "offset": offset}
        if filter is not None:
            params["filter"] = filter
        if sort is not None:
            params["sort"] = sort
        describe = f"GET {safe_url(url)}"

        def read(response: httpx.Response) -> Page:
            return decode_offset_page(response, describe=describe, offset=offset, limit=size)

        return await self._requester.get(
            url, params=params, limiter=self.limiter(resource), read=read
        )


class _Walk:
    """Hands out the offsets after the first page; stops handing them out after a failure."""

    def __init__(self, *, page_size: int, end: int) -> None:
        self._page_size = page_size
        self._next = page_size
        self._end = end
        self.failure: Exception | None = None

    def remaining_pages(self) -> int:
        return max(0, -(-(self._end - self._next) // self._page_size))

    def next_offset(self) -> int | None:
        if self.failure is not None or self._next >= self._end:
            return None
        offset = self._next
        self._next += self._page_size
        return offset

    def saw_total(self, total: int) -> None:
        if total > self._end:
            log.info("total grew from %d to %d during the walk; extending it", self._end, total)
            self._end = total

    def fail(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = error


def id_filter(ids: Sequence[str]) -> str:
    """The GreenLake filter selecting `ids`: `id in ('a','b')`, quotes doubled inside ids."""
    quoted = ",".join("'" + value.replace("'", "''") + "'" for value in ids)
    return f"id in ({quoted})"
