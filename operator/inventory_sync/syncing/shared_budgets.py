"""Upstream budgets shared between processes: other processes' windows in before a run, ours out
while it runs and after it (syncing layer; the rows are store/rate_windows.py's)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from inventory_sync.store import rate_windows
from inventory_sync.upstream import RateLimiterRegistry

logger = logging.getLogger(__name__)

#: A budget exchange is a courtesy to the upstream, never a reason to delay or fail a run:
#: a database that cannot answer this fast fails the run's own statements anyway.
EXCHANGE_TIMEOUT_SECONDS = 5.0

#: How often a running run saves its windows and takes in the others': a process that dies
#: mid-run (an OOM kill, a drained node) leaves at most this much of its window unsaved for its
#: successor, and processes whose runs overlap hold each other's requests this soon.
EXCHANGE_EVERY_SECONDS = 10.0

_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@contextlib.asynccontextmanager
async def exchanged(pool: asyncpg.Pool, limiters: RateLimiterRegistry) -> AsyncIterator[None]:
    """Around a run: the others' windows in before it, ours out (and theirs in) every
    EXCHANGE_EVERY_SECONDS while it runs, and ours out when it ends, however it ends."""
    await take_in_others(pool, limiters)
    keeper = asyncio.create_task(_keep_exchanging(pool, limiters), name="rate-window exchange")
    try:
        yield
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await hand_out_ours(pool, limiters)


async def _keep_exchanging(pool: asyncpg.Pool, limiters: RateLimiterRegistry) -> None:
    while True:
        await asyncio.sleep(EXCHANGE_EVERY_SECONDS)
        await hand_out_ours(pool, limiters)
        await take_in_others(pool, limiters)


async def take_in_others(pool: asyncpg.Pool, limiters: RateLimiterRegistry) -> None:
    """Hold the slots other processes' requests still take in each budget, so the run's first
    request waits for them instead of meeting a 429."""
    try:
        async with asyncio.timeout(EXCHANGE_TIMEOUT_SECONDS), pool.acquire() as connection:
            windows = await rate_windows.load_others(connection, writer=limiters.writer)
    except _DATABASE_ERRORS as error:
        logger.warning("could not read other processes' rate-limit windows: %r", error)
        return
    limiters.share(windows)


async def hand_out_ours(pool: asyncpg.Pool, limiters: RateLimiterRegistry) -> None:
    """Save the slots this process's requests still take, for the next process to hold."""
    windows = limiters.held()
    try:
        async with asyncio.timeout(EXCHANGE_TIMEOUT_SECONDS), pool.acquire() as connection:
            await rate_windows.save(connection, writer=limiters.writer, windows=windows)
    except _DATABASE_ERRORS as error:
        logger.warning("could not save this process's rate-limit windows: %r", error)
