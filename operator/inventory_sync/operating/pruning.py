"""The operator's change-log pruning loop: rows older than the retention are deleted at start and every hour."""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg

from inventory_sync.operating.periodic import PeriodicTask
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
        self._loop = PeriodicTask(
            self.prune_once, name="change-log pruning", every=every, retry_after=RETRY_AFTER
        )
        self.pruned = 0  # rows deleted since start, for tests and the log
        self.passes = 0  # passes that finished

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def prune_once(self) -> int:
        """Delete the rows recorded more than the retention ago; returns how many."""
        with store_errors("pruning the change log"):
            deleted = await changes.prune(self._pool, older_than=self._retention)
        self.pruned += deleted
        self.passes += 1
        if deleted:
            logger.info("change log: pruned %d rows older than %s", deleted, self._retention)
        return deleted
