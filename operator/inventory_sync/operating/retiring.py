"""The operator's fabric retirement loop: reconcile stored fabric rows against the live Fabrics at start, every period, and when a Fabric is deleted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.running.steps import RunDeps
from inventory_sync.syncing.fabric_retirement import (
    RetirementReport,
    cluster_owner,
    reconcile_fabrics,
)

logger = logging.getLogger(__name__)

# After a failed reconciliation (API or database down) try again sooner than a whole period.
RETRY_AFTER = timedelta(seconds=30)


class FabricRetirement:
    """One background task per operator; `wake()` asks for a reconciliation now."""

    def __init__(self, *, deps: RunDeps, namespaces: Sequence[str], interval: timedelta) -> None:
        self._deps = deps
        self._namespaces = list(namespaces)
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="fabric-retirement")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reconcile_once(self) -> RetirementReport:
        """Learn this cluster's owner identity once (runs register under it from then on),
        then reconcile."""
        deps = self._deps
        assert deps.kube is not None
        assert deps.pool is not None
        if deps.fabric_owner is None:
            deps.fabric_owner = await cluster_owner(deps.kube)
        return await reconcile_fabrics(
            kube=deps.kube, pool=deps.pool, owner=deps.fabric_owner,
            namespaces=self._namespaces, now=deps.clock(),
        )  # fmt: skip

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            wait = self._interval
            try:
                await self.reconcile_once()
            except InventorySyncError as error:
                logger.warning("fabric retirement skipped: %s", public_message(error))
                wait = min(wait, RETRY_AFTER)
            except Exception:  # a bug must not end the loop, nor the operator
                logger.exception("fabric retirement failed")
                wait = min(wait, RETRY_AFTER)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait.total_seconds()):
                    await self._wake.wait()
