"""Keeping a run's lease alive, and stopping the run the moment it cannot be (running layer).

The lease expires `ttl` after the database last renewed it, by the database's clock. This
side cannot read that clock, so it counts conservatively on its own monotonic clock from
the moment each renewal was *sent* (the database renewed it no earlier than that) and gives
up a margin before `ttl`: past that point another replica may already hold the lease, and
a run going on would be the "two runs at once" the lease exists to prevent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from inventory_sync.errors import InventorySyncError, public_message

logger = logging.getLogger(__name__)

T = TypeVar("T")
Renew = Callable[[], Awaitable[bool]]
Monotonic = Callable[[], float]


class LeaseLost(InventorySyncError):
    """The run's lease could not be kept: the run was stopped."""


class LeaseKeeper:
    """Renews one lease every `every` seconds until stopped; sets `lost` when it cannot."""

    def __init__(
        self,
        renew: Renew,
        *,
        ttl: float,
        every: float,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        if not 0 < every < ttl:
            raise ValueError("renew more often than the lease lasts")
        self._renew = renew
        self._ttl = ttl
        self._every = every
        self._monotonic = monotonic
        # Stop a renewal interval before expiry: time for the run to wind down first.
        self._margin = min(every, ttl / 3)
        self._deadline = monotonic() + ttl - self._margin
        self.lost = asyncio.Event()
        self.reason = ""
        self._last_failure = ""
        self._task: asyncio.Task[None] | None = None

    def start(self, *, acquired_at: float | None = None) -> None:
        """Begin renewing; `acquired_at` is when the claim that took the lease was sent."""
        if acquired_at is not None:
            self._deadline = acquired_at + self._ttl - self._margin
        self._task = asyncio.create_task(self._keep(), name="lease-keeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep(self) -> None:
        while True:
            wait = min(self._every, max(self._deadline - self._monotonic(), 0.0))
            await asyncio.sleep(wait)
            if self._monotonic() >= self._deadline:
                self._give_up("its lease could not be renewed before it expired")
                return
            sent = self._monotonic()
            try:
                async with asyncio.timeout(max(self._deadline - sent, 0.01)):
                    still_ours = await self._renew()
            except (InventorySyncError, TimeoutError) as error:
                detail = public_message(error) if str(error) else "the database did not answer"
                logger.warning("lease renewal failed (will retry): %s", detail)
                self._last_failure = detail
                continue
            if not still_ours:
                self._give_up("another replica took its lease over")
                return
            self._deadline = sent + self._ttl - self._margin

    def _give_up(self, why: str) -> None:
        hint = f" ({self._last_failure})" if self._last_failure else ""
        self.reason = f"run stopped: {why}{hint}"
        logger.error("%s", self.reason)
        self.lost.set()

    async def guard(self, work: Awaitable[T]) -> T:
        """Await `work` unless the lease is lost first: then cancel it and raise LeaseLost."""
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        finally:
            watcher.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise LeaseLost(self.reason)
