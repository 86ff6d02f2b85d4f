"""Offset-like walks fetched concurrently: after the first page tells the total, the other pages
are asked for a few at a time (GreenLake offsets, New Central page numbers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from inventory_sync.upstream.paging import Page

log = logging.getLogger(__name__)

#: Fetches the page starting at a zero-based item offset (a page number is offset // size + 1).
FetchAt = Callable[[int], Awaitable[Page]]


async def walk_concurrently(
    fetch: FetchAt,
    *,
    first: Page,
    page_size: int,
    max_concurrent: int,
    name: str,
    start: int | None = None,
) -> AsyncGenerator[Page, None]:
    """`first` (the page at offset 0), then every later page, each yielded as soon as it arrives.

    Later pages hold `page_size` items from offset `start` on (default: `page_size`, when the
    first page was as large as the others).

    Up to `max_concurrent` fetchers take the next offset in turn through a bounded queue, so at
    most about twice that many pages are held in memory; each request is still paced by the
    fetch's own rate limiter. If a later page reports a larger total (inserts during the walk)
    the walk extends to cover it; every page keeps its own `total`, so callers can tell the
    data moved. When a page fails after its retries the other fetchers are cancelled and that
    error is raised. Close the iterator (`contextlib.aclosing`) if you stop early.
    """
    if page_size < 1 or max_concurrent < 1:
        raise ValueError("page_size and max_concurrent must be at least 1")
    walk = _Walk(
        page_size=page_size, start=page_size if start is None else start, end=first.total or 0
    )
    remaining = walk.remaining_pages()
    if remaining == 0:
        yield first
        return
    queue: asyncio.Queue[Page | None] = asyncio.Queue(maxsize=max_concurrent)
    fetchers = [
        asyncio.create_task(_fetcher(fetch, walk, queue), name=f"{name} page fetcher {index}")
        for index in range(min(max_concurrent, remaining))
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


async def _fetcher(fetch: FetchAt, walk: _Walk, queue: asyncio.Queue[Page | None]) -> None:
    try:
        while (offset := walk.next_offset()) is not None:
            page = await fetch(offset)
            walk.saw_total(page.total or 0)
            await queue.put(page)
    except asyncio.CancelledError:
        raise  # the consumer is gone: nobody waits for the sentinel
    except Exception as exc:  # handed to the consumer, which raises it
        walk.fail(exc)
    await queue.put(None)


class _Walk:
    """Hands out the offsets after the first page; stops handing them out after a failure."""

    def __init__(self, *, page_size: int, start: int, end: int) -> None:
        self._page_size = page_size
        self._next = start
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
