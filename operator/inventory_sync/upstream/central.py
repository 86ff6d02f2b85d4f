"""The HPE Aruba Networking Central (new generation) client: the device inventory by page number."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal

import httpx

from inventory_sync.errors import UpstreamProtocolError
from inventory_sync.upstream.offloading import Offload, WalkWorker
from inventory_sync.upstream.paging import (
    Answer,
    NextMarker,
    Page,
    Prepare,
    decode_central_page,
    require_whole,
)
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry, budget_host
from inventory_sync.upstream.requesting import Requester
from inventory_sync.upstream.retrying import RequestStats, RetryPolicy, Sleep, safe_url
from inventory_sync.upstream.tokens import TokenProvider
from inventory_sync.upstream.walking import walk_concurrently

log = logging.getLogger(__name__)

ApiVersion = Literal["v1", "v1alpha1"]
#: The device inventory (onboarded or not) per API version, relative to the cluster's host.
#: v1 is what pycentral (2.0a15 on) and other public clients call; v1alpha1 came before it.
CENTRAL_INVENTORY_PATHS: dict[ApiVersion, str] = {
    "v1": "/network-monitoring/v1/device-inventory",
    "v1alpha1": "/network-monitoring/v1alpha1/device-inventory",
}
#: The largest `limit` known to be accepted (pycentral pages device lists by 1000): fewer,
#: larger pages cost fewer requests of the workspace's budget.
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class CentralLimits:
    """Central's request budget per workspace; undocumented upstream, so configurable."""

    requests: int = 600
    period_seconds: float = 60.0


class CentralClient:
    """Walks New Central's device inventory: page 1, then the other pages concurrently.

    `next` is a 1-based page number, so once the first page tells `total` every later page
    can be asked for at once (up to `max_concurrent_pages`, each paced by the workspace's
    rate limiter). Like offsets, page numbers shift when devices come and go between pages:
    the caller must judge the walk (totals, duplicates, missed items) before deleting.
    A server that answers with an opaque cursor instead is followed one page at a time.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        tokens: TokenProvider,
        limiters: RateLimiterRegistry,
        workspace_id: str,
        policy: RetryPolicy,
        api_version: ApiVersion = "v1",
        page_size: int = MAX_PAGE_SIZE,
        max_concurrent_pages: int = 8,
        request_timeout: float = 30,
        path: str | None = None,
        limits: CentralLimits | None = None,
        sleep: Sleep = asyncio.sleep,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_concurrent_pages < 1:
            raise ValueError("max_concurrent_pages must be at least 1")
        path = path or CENTRAL_INVENTORY_PATHS[api_version]
        self._url = base_url.rstrip("/") + "/" + path.lstrip("/")
        self._describe = f"GET {safe_url(self._url)}"
        self._limiters = limiters
        self._workspace_id = workspace_id
        self._page_size = page_size
        self._max_concurrent = max_concurrent_pages
        self._limits = limits or CentralLimits()
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

    @property
    def limiter(self) -> RateLimiter:
        """The workspace's Central budget, shared with every other Central client on it."""
        return self._limiters.get(
            f"central:{budget_host(self._url)}:{self._workspace_id}",
            limit=self._limits.requests,
            period=self._limits.period_seconds,
        )

    async def pages(self, *, prepare: Prepare | None = None) -> AsyncGenerator[Page, None]:
        """Every page, page 1 first, the others as they arrive (maybe out of order), each
        decoded and passed through `prepare` (which must be picklable) in a page worker
        process, off the event loop (see `offloading`).

        Close the iterator (`contextlib.aclosing`) if you stop early.
        """
        async with aclosing(self._walk(_PageWork(prepare, WalkWorker()))) as pages:
            async for page in pages:
                yield page

    async def _walk(self, work: _PageWork) -> AsyncGenerator[Page, None]:
        first, marker = await self._fetch(1, number=0, numbered=None, work=work)
        if marker is None:
            yield first
            return
        if marker == 2:
            size = self._page_size

            async def fetch(offset: int) -> Page:
                page, _ = await self._fetch(offset // size + 1, number=offset // size, work=work)
                return page

            walk = walk_concurrently(
                fetch,
                first=first,
                page_size=size,
                max_concurrent=self._max_concurrent,
                name="central",
            )
            # aclosing: closing this generator must stop the fetchers now, not at collection.
            async with aclosing(walk) as pages:
                async for page in pages:
                    yield page
            return
        yield first
        async with aclosing(self._follow_cursors(marker, work)) as followed:
            async for page in followed:
                yield page

    async def _follow_cursors(
        self, marker: NextMarker, work: _PageWork
    ) -> AsyncGenerator[Page, None]:
        """Tolerated: a server whose `next` is not the following page number is followed one
        page at a time, passing `next` back verbatim; each page is asked for as soon as the
        one before it arrived, so it travels while that one merges. A marker seen twice would
        loop forever, so it raises UpstreamProtocolError instead."""
        seen: set[str] = set()
        number = 1

        def ask(value: NextMarker) -> asyncio.Task[tuple[Page, NextMarker]] | None:
            if value is None:
                return None
            key = str(value)
            if key in seen:
                # The marker may be an opaque token: name the page, not the marker.
                raise UpstreamProtocolError(
                    f"{self._describe}: page {number} repeats an earlier 'next'"
                )
            seen.add(key)
            return asyncio.create_task(self._fetch(value, number=number, numbered=False, work=work))

        pending = ask(marker)
        try:
            while pending is not None:
                page, following = await pending
                number += 1
                pending = ask(following)
                yield page
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def _fetch(
        self, marker: int | str, *, number: int, work: _PageWork, numbered: bool | None = True
    ) -> tuple[Page, NextMarker]:
        """One page. `numbered`: True in a page-number walk (the page must be whole, or it is
        retried), False when following cursors, None for page 1 (its own `next` tells)."""
        size = self._page_size
        params: dict[str, str | int] = {"limit": size, "next": marker}

        # Plain data around a module-level function: it may be sent to a worker process.
        read = functools.partial(
            _read_page,
            describe=self._describe,
            number=number,
            size=size,
            numbered=numbered,
            prepare=work.prepare,
        )
        return await self._requester.get(
            self._url, params=params, limiter=self.limiter, read=read, offload=work.offload
        )


def _read_page(
    answer: Answer,
    *,
    describe: str,
    number: int,
    size: int,
    numbered: bool | None,
    prepare: Prepare | None,
) -> tuple[Page, NextMarker]:
    page, following = decode_central_page(answer, describe=describe, number=number)
    whole = numbered
    if whole is None:  # page 1: a page-number server, or a single page with a total
        whole = isinstance(following, int) or (following is None and page.total is not None)
    if whole:
        require_whole(page, describe=describe, offset=number * size, limit=size)
    return (page if prepare is None else prepare(page)), following


@dataclass(frozen=True)
class _PageWork:
    """What a walk does with each answer besides decoding it, and where (see `pages`)."""

    prepare: Prepare | None
    offload: Offload
