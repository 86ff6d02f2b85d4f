"""A walk's CPU work (decoding each page, then preparing it) in a worker process.

Decoding and staging a 2,000-item page takes about 30 ms of CPU. On the event loop it held
every other source's answers and merges; in a thread of the walk's own it still held the GIL:
orjson keeps it for a whole 1.7 MB body, and a thread the OS preempted while holding it
stopped the loop for a time slice. Beside a 200,000-device walk (bench/floor.py `beside`,
5 repeats each, alternating) the event loop's lag fell from p99 79-100 ms (max 151-179 ms)
with the work in a thread to 22-24 ms (max 34-64 ms) with it in a worker process. What
crosses is the body (bytes) one way and the prepared page (strings and hashes) the other.

Workers are started with `spawn` (a fork would copy locks other threads hold), which imports
the parent's main module again as `__mp_main__`: a script that runs syncs must keep its work
under `if __name__ == "__main__":` (console scripts and `python -m` packages do).

The worker is shared by every walk of this process (started when a run begins), and each walk
has at most one page with it at a time, as it had one thread: a walk with 8 fetchers never
queues 8 pages ahead of a small source's page (which waits for one page at most, ~30 ms).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, TypeVar

from inventory_sync.errors import UpstreamProtocolError

_T = TypeVar("_T")

log = logging.getLogger(__name__)

#: Worker processes for the whole process. One: decoding is ~0.1 of a walk's client CPU, a
#: worker's peak RSS is ~78 MB (a page's decoded dicts), and a second one changed neither the
#: seed-sized run (2.65-2.83 s either way) nor Central beside a walk, within the noise.
PAGE_WORKERS = 1


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
                    initializer=_serve_parent,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def warm_up(self, modules: Sequence[str]) -> None:
        """Start every worker now, each importing `modules` (what its pages' work unpickles
        into): a worker takes about a second to start, which a run's first page would wait
        for. Returns at once; a second call does nothing while the workers live."""
        with self._lock:
            if self._warm is not None and self._warm is self._executor:
                return
        try:
            executor = self.executor()
            with self._lock:
                self._warm = executor
            # While no worker is idle, each submission starts another one, up to the maximum.
            for _ in range(self._workers):
                executor.submit(_import, tuple(modules))
        except (AssertionError, OSError) as exc:  # no process can start here: see WalkWorker
            _warn_once(exc)

    def pids(self) -> list[int]:
        """The process ids of the workers running now (for diagnostics and benchmarks)."""
        with self._lock:
            executor = self._executor
        # ProcessPoolExecutor names its workers nowhere public; `_processes` is stable since 3.2.
        return list(getattr(executor, "_processes", None) or {})

    def discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the workers (the next use starts new ones); waits for the page in hand."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)


def _serve_parent(parent: int) -> None:
    """A worker's start: it lives exactly as long as the process that started it."""
    # Ctrl-C reaches the whole process group: the parent decides what stops, not its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker waits for pages on a queue it holds both ends of, so a parent killed without
    # shutting the pool down (SIGKILL, OOM) never closes it: the worker would wait forever.
    # Outside a container (tests, a service) such orphans piled up; now they notice.
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


#: How often a worker checks that its parent still lives.
PARENT_CHECK_SECONDS = 1.0


SHARED_WORKERS = PageWorkers(PAGE_WORKERS)


class WalkWorker:
    """One walk's way into the page workers: its pages go there one at a time.

    `work` must be picklable (a module-level function, or a `functools.partial` of one over
    plain data). A worker that dies fails the page with UpstreamProtocolError, which the
    request's retries treat like a truncated body; the next page starts a new worker. Where
    no worker process can start at all (inside a daemonic process, without /dev/shm for its
    semaphores), pages are prepared on a thread instead, as before workers, and a warning
    says so once.
    """

    def __init__(self, workers: PageWorkers | None = None) -> None:
        self._workers = workers or SHARED_WORKERS
        self._turn = asyncio.Lock()

    async def __call__(self, work: Callable[[], _T], /) -> _T:
        async with self._turn:
            loop = asyncio.get_running_loop()
            try:
                executor = self._workers.executor()
                # Submitting starts a worker when none is idle: where that cannot happen, it
                # raises here, before any work was sent.
                pending = loop.run_in_executor(executor, work)
            except (AssertionError, OSError) as exc:
                _warn_once(exc)
                return await asyncio.to_thread(work)
            try:
                return await pending
            except BrokenProcessPool as exc:
                self._workers.discard(executor)
                raise UpstreamProtocolError(f"the page worker process stopped ({exc})") from exc


_warned: list[str] = []


def _warn_once(error: BaseException) -> None:
    if not _warned:
        _warned.append(str(error))
        log.warning(
            "page worker processes cannot start here (%s: %s); pages are prepared on a thread",
            type(error).__name__,
            error,
        )
