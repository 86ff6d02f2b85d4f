"""A walk's CPU work (decoding each page, then preparing it) in a thread of the walk's own.

Decoding and staging a 2,000-item page takes about 100 ms of CPU. Done in a fetcher task it
held the event loop, so every other source's answers and merges waited behind each device
page (asyncio's debug mode measured steps of 0.1 to 0.4 s). In a thread, the interpreter hands
the loop the GIL back every `sys.getswitchinterval()` (5 ms), so a small source beside a large
walk keeps moving. One thread per walk: its pages are decoded one after the other, as before
(the GIL would serialise more threads anyway), and a `Prepare` with state (a high-water mark)
never runs twice at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

_T = TypeVar("_T")


class Offload(Protocol):
    """Runs `work` somewhere other than the event loop and returns its result."""

    async def __call__(self, work: Callable[[], _T], /) -> _T: ...


class WalkThread:
    """One worker thread for one walk's pages; `close` when the walk ends (it does not wait
    for a page being decoded: that page is dropped with the walk)."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def __call__(self, work: Callable[[], _T], /) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
