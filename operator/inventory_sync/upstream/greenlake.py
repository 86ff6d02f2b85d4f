"""The HPE GreenLake client: devices and subscriptions as a stream of concurrently fetched pages."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from inventory_sync.errors import UpstreamProtocolError
from inventory_sync.upstream.offloading import Offload, WalkWorker
from inventory_sync.upstream.paging import Answer, Page, Prepare, chunked, decode_offset_page
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry, budget_host
from inventory_sync.upstream.requesting import Requester
from inventory_sync.upstream.retrying import RequestStats, RetryPolicy, Sleep, safe_url
from inventory_sync.upstream.tokens import TokenProvider
from inventory_sync.upstream.walking import FetchAt, walk_concurrently

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
        max_concurrent_pages: int = 8,
        request_timeout: float = 30,
        limits: GreenLakeLimits | None = None,
        sleep: Sleep = asyncio.sleep,
        gate: asyncio.Semaphore | None = None,
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
            http,
            tokens=tokens,
            policy=policy,
            request_timeout=request_timeout,
            sleep=sleep,
            gate=gate,
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
            f"greenlake:{budget_host(self._base_url)}:{self._workspace_id}:{resource}",
            limit=self._limits.for_resource(resource),
            period=self._limits.period_seconds,
        )

    async def pages(
        self,
        resource: Resource,
        *,
        filter: str | None = None,
        sort: str | None = None,
        prepare: Prepare | None = None,
    ) -> AsyncGenerator[Page, None]:
        """Every page of `resource`, each yielded as soon as it arrives (maybe out of order).

        The first page (offset 0, at most FIRST_PAGE_ITEMS items: the answer's latency grows
        with its items, and nothing else can be asked before it tells `total`) tells `total`;
        the rest is then spread over up to `max_concurrent_pages` fetchers in pages of at most
        the page size (see `spread_page_size` and `walking.walk_concurrently`). Each page is
        decoded and passed through `prepare` (which must be picklable) in a page worker
        process, off the event loop (see `offloading`). Close the iterator
        (`contextlib.aclosing`) if you stop early.
        """
        size = self.page_size(resource)
        first_size = min(size, FIRST_PAGE_ITEMS)
        worker = WalkWorker()

        def fetcher(limit: int) -> FetchAt:
            async def fetch(offset: int) -> Page:
                return await self._fetch(
                    resource, offset=offset, size=limit, filter=filter, sort=sort,
                    prepare=prepare, offload=worker,
                )  # fmt: skip

            return fetch

        first = await fetcher(first_size)(0)
        rest_size = spread_page_size(
            (first.total or 0) - first_size, page_size=size, fetchers=self._max_concurrent
        )
        walk = walk_concurrently(
            fetcher(rest_size),
            first=first,
            page_size=rest_size,
            start=first_size,
            max_concurrent=self._max_concurrent,
            name=f"greenlake {resource}",
        )
        # aclosing: closing this generator must stop the fetchers now, not at collection.
        async with aclosing(walk) as pages:
            async for page in pages:
                yield page

    async def count(self, resource: Resource, *, filter: str | None = None) -> int:
        """How many items `resource` holds now (with `filter`: how many match), for one request:
        the `total` of a one-item page."""
        page = await self._fetch(resource, offset=0, size=1, filter=filter, sort=None)
        if page.total is None:
            raise UpstreamProtocolError(f"GET {self._base_url}{_PATHS[resource]}: no 'total'")
        return page.total

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

    async def _fetch(
        self,
        resource: Resource,
        *,
        offset: int,
        size: int,
        filter: str | None,
        sort: str | None,
        prepare: Prepare | None = None,
        offload: Offload | None = None,
    ) -> Page:
        url = f"{self._base_url}{_PATHS[resource]}"
        params: dict[str, str | int] = {"limit": size, "offset": offset}
        if filter is not None:
            params["filter"] = filter
        if sort is not None:
            params["sort"] = sort
        describe = f"GET {safe_url(url)}"

        # Plain data around a module-level function: it may be sent to a worker process.
        read = functools.partial(
            _read_page, describe=describe, offset=offset, limit=size, prepare=prepare
        )
        return await self._requester.get(
            url, params=params, limiter=self.limiter(resource), read=read, offload=offload
        )


def _read_page(
    answer: Answer, *, describe: str, offset: int, limit: int, prepare: Prepare | None
) -> Page:
    page = decode_offset_page(answer, describe=describe, offset=offset, limit=limit)
    return page if prepare is None else prepare(page)


#: The first page of a walk: small, because its answer must arrive before anything else can be
#: asked (it tells the total), and GreenLake's latency grows with the items in an answer.
FIRST_PAGE_ITEMS = 100

#: The fewest items a page spread over the fetchers holds: below it, the requests a walk spends
#: (from the workspace's budget, shared with every other client) outweigh the latency saved.
MIN_SPREAD_ITEMS = 500


def spread_page_size(rest: int, *, page_size: int, fetchers: int) -> int:
    """The page size for the `rest` of a walk after its first page: the page size when the
    fetchers are busy with it anyway, else smaller pages, so that every fetcher has one and the
    walk ends a round sooner (a round costs a fixed latency plus one per item)."""
    if rest <= 0:
        return page_size
    per_fetcher = -(-rest // fetchers)
    return min(page_size, max(per_fetcher, MIN_SPREAD_ITEMS))


def id_filter(ids: Sequence[str]) -> str:
    """The GreenLake filter selecting `ids`: `id in ('a','b')`, quotes doubled inside ids."""
    quoted = ",".join("'" + value.replace("'", "''") + "'" for value in ids)
    return f"id in ({quoted})"
