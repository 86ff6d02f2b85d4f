"""The operator's fabric retirement loop: reconcile stored fabric rows against the live Fabrics at start, every period, and when a Fabric is deleted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from inventory_sync.operating.periodic import PeriodicTask
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
        self._loop = PeriodicTask(
            self.reconcile_once, name="fabric retirement", every=interval, retry_after=RETRY_AFTER
        )

    def start(self) -> None:
        self._loop.start()

    def wake(self) -> None:
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()

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
