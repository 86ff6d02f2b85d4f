"""A background loop of the operator (operating layer): one step at start, then every period,
sooner after a failure or when woken; the change-log pruning and fabric retirement use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from inventory_sync.errors import InventorySyncError, public_message

logger = logging.getLogger(__name__)


class PeriodicTask:
    """Runs `step` at start and every `every`; after a failure again within `retry_after`.

    A failure of ours (database or API away) is a warning; anything else is logged with its
    traceback. Neither ends the loop, nor the operator. `wake()` runs the next step now.
    """

    def __init__(
        self,
        step: Callable[[], Awaitable[Any]],
        *,
        name: str,
        every: timedelta,
        retry_after: timedelta,
    ) -> None:
        self._step = step
        self._name = name
        self._every = every
        self._retry_after = retry_after
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    def wake(self) -> None:
        self._wake.set()

    #: How long `stop` lets a step in flight finish before cancelling it.
    STOP_GRACE_SECONDS = 5.0

    async def stop(self) -> None:
        """Let the step in flight finish (bounded), then end. Cancelled mid-request, an HTTP
        connection being set up (TLS handshake) was dropped without being closed, and its
        socket outlived the operator's event loop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        _, pending = await asyncio.wait([self._task], timeout=self.STOP_GRACE_SECONDS)
        if pending:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = self._every
            try:
                await self._step()
            except InventorySyncError as error:
                logger.warning("%s failed (will retry): %s", self._name, public_message(error))
                wait = min(wait, self._retry_after)
            except Exception:  # a bug must not end the loop, nor the operator
                logger.exception("%s failed", self._name)
                wait = min(wait, self._retry_after)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait.total_seconds()):
                    await self._wake.wait()
