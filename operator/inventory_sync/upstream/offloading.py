"""A walk's CPU work (decoding each page, then preparing it) in a worker process.

Decoding and staging a 2,000-item page takes about 30 ms of CPU. On the event loop it held
every other source's answers and merges; in a thread of the walk's own it still held the GIL:
orjson keeps it for a whole 1.7 MB body, and a thread the OS preempted while holding it
stopped the loop for a time slice. Beside a 200,000-device walk the Central source took 1.53x
its time alone with the walk's work in a thread, 1.38x with it in worker processes (event-loop
lag p99 64 -> 28 ms), 0.9-1.1x beside the same walk in another process (bench/floor.py
`beside`). What crosses is the body (bytes) one way and the prepared page (strings and
hashes) the other.

Workers are started with `spawn` (a fork would copy locks other threads hold), which imports
the parent's main module again as `__mp_main__`: a script that runs syncs must keep its work
under `if __name__ == "__main__":` (console scripts and `python -m` packages do).

The workers are shared by every walk of this process (started on first use, two at most:
decoding is a small share of a walk), and each walk has at most one page with them at a time,
as it had one thread: a walk with 8 fetchers never queues 8 pages ahead of a small source's.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, TypeVar

from inventory_sync.errors import UpstreamProtocolError

_T = TypeVar("_T")

#: Worker processes for the whole process: enough for two walks' pages at once on a machine
#: with the cores for it. Beyond that the event loop, not decoding, is what a walk waits for.
MAX_WORKERS = 2


class Offload(Protocol):
    """Runs `work` somewhere other than the event loop and returns its result."""

    async def __call__(self, work: Callable[[], _T], /) -> _T: ...


class PageWorkers:
    """A process pool started on first use; after a worker dies it is replaced on next use."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._warm: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # spawn: forking a process with threads (kopf's, asyncpg's) can copy a held lock.
                self._executor = ProcessPoolExecutor(
                    self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_ignore_interrupts,
                )
            return self._executor

    def warm_up(self, modules: Sequence[str]) -> None:
        """Start every worker now, each importing `modules` (what its pages' work unpickles
        into): a worker takes about a second to start, which a run's first page would wait
        for. Returns at once; a second call does nothing while the workers live."""
        with self._lock:
            if self._warm is not None and self._warm is self._executor:
                return
        executor = self.executor()
        with self._lock:
            self._warm = executor
        # While no worker is idle, each submission starts another one, up to the maximum.
        for _ in range(self._workers):
            executor.submit(_import, tuple(modules))

    def discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent decides what stops, not its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


SHARED_WORKERS = PageWorkers(max(1, min(MAX_WORKERS, os.cpu_count() or 1)))


class WalkWorker:
    """One walk's way into the page workers: its pages go there one at a time.

    `work` must be picklable (a module-level function, or a `functools.partial` of one over
    plain data). A worker that dies fails the page with UpstreamProtocolError, which the
    request's retries treat like a truncated body; the next page starts a new worker.
    """

    def __init__(self, workers: PageWorkers = SHARED_WORKERS) -> None:
        self._workers = workers
        self._turn = asyncio.Lock()

    async def __call__(self, work: Callable[[], _T], /) -> _T:
        async with self._turn:
            executor = self._workers.executor()
            try:
                return await asyncio.get_running_loop().run_in_executor(executor, work)
            except BrokenProcessPool as exc:
                self._workers.discard(executor)
                raise UpstreamProtocolError(f"the page worker process stopped ({exc})") from exc
