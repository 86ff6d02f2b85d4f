"""The operator's change-log pruning loop: rows older than the retention are deleted at start and every hour."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import asyncpg

from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.store import changes
from inventory_sync.store.database import store_errors

logger = logging.getLogger(__name__)

#: Retention is counted in days: pruning hourly keeps the log within an hour of it, and each
#: pass deletes about an hour's worth of rows, in short batches.
PRUNE_EVERY = timedelta(hours=1)
# After a failed pass (the database away) try again sooner than a whole period.
RETRY_AFTER = timedelta(seconds=60)


class ChangeLogPruning:
    """One background task per operator. Several replicas prune the same rows harmlessly: a
    row already deleted by one is simply not found by the other."""

    def __init__(
        self, pool: asyncpg.Pool, *, retention: timedelta, every: timedelta = PRUNE_EVERY
    ) -> None:
        self._pool = pool
        self._retention = retention
        self._every = every
        self._task: asyncio.Task[None] | None = None
        self.pruned = 0  # rows deleted since start, for tests and the log
        self.passes = 0  # passes that finished

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="change-log-pruning")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def prune_once(self) -> int:
        """Delete the rows recorded more than the retention ago; returns how many."""
        with store_errors("pruning the change log"):
            deleted = await changes.prune(self._pool, older_than=self._retention)
        self.pruned += deleted
        self.passes += 1
        if deleted:
            logger.info("change log: pruned %d rows older than %s", deleted, self._retention)
        return deleted

    async def _loop(self) -> None:
        while True:
            wait = self._every
            try:
                await self.prune_once()
            except InventorySyncError as error:
                logger.warning("change log not pruned (will retry): %s", public_message(error))
                wait = min(wait, RETRY_AFTER)
            except Exception:  # a bug must not end the loop, nor the operator
                logger.exception("change log pruning failed")
                wait = min(wait, RETRY_AFTER)
            await asyncio.sleep(wait.total_seconds())
