"""Runs one resource once: the steps, then the report, then the lease let go (running layer).

The scheduler calls `run` (and `problem`, `refresh`, `notice` between runs) and reads what
happened from the returned `RunEnd`; nothing here calls back into the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.reconciling import reasons
from inventory_sync.reconciling.due import Due
from inventory_sync.running import report
from inventory_sync.running.leasing import LeaseLost
from inventory_sync.running.report import Ending, RunEnd
from inventory_sync.running.resource import AnySpec, Tracked
from inventory_sync.running.steps import STEPS, Run, RunDeps, Stop
from inventory_sync.syncing.progress import ProgressListener

logger = logging.getLogger(__name__)


class Runner:
    """Every outcome of a run ends in a report, never in an exception (cancellation aside)."""

    def __init__(self, deps: RunDeps) -> None:
        self.deps = deps

    async def run(
        self,
        resource: Tracked,
        spec: AnySpec,
        due: Due,
        *,
        progress: ProgressListener | None = None,
    ) -> RunEnd:
        """Resolve, claim, mark, execute, then report however that went."""
        run = Run(self.deps, resource, spec, due, progress=progress)
        try:
            try:
                async with self.deps.limit or contextlib.nullcontext():
                    for step in STEPS:
                        await step(run)
            except Stop as stop:
                return await report.stopped(run, stop)
            except LeaseLost as lost:
                return await report.lease_lost(run, str(lost))
            except asyncio.CancelledError as cancel:
                why = str(cancel.args[0]) if cancel.args else "the operator is stopping"
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(report.RELEASE_TIMEOUT.total_seconds()):
                        await report.cancelled(run, why)
                raise
            except Exception as error:  # every error of a run is reported, none escapes
                return await report.problem(run, error)
            return await report.finished(run)
        finally:
            await self._let_go(run)

    async def problem(
        self, resource: Tracked, error: BaseException, *, due: Due | None = None
    ) -> RunEnd:
        """A problem found before any run could start (a spec the schema let through)."""
        return await report.problem(Run(self.deps, resource, None, due), error)

    async def refresh(self, resource: Tracked, patch: dict[str, Any]) -> RunEnd:
        """Keep status truthful between runs (nextSyncTime, syncStatus, a cleared stall)."""
        return await report.refresh(Run(self.deps, resource, None, None), patch)

    async def notice(self, resource: Tracked, problems: tuple[str, ...]) -> None:
        """Status fields the scheduler had to ignore: said once, as an Event and in the log."""
        message = "; ".join(problems)
        logger.warning(
            "%s %s/%s: %s", resource.kind.kind, resource.namespace, resource.name, message
        )
        await report.event(
            Run(self.deps, resource, None, None),
            warning=True, reason=reasons.INVALID_STATUS, message=message[:1024],
        )  # fmt: skip

    def forget(self, resource: Tracked) -> None:
        """A deleted resource stops exporting its per-resource metrics."""
        if self.deps.metrics is not None:
            self.deps.metrics.forget(
                kind=resource.kind.kind, namespace=resource.namespace, name=resource.name
            )

    async def _let_go(self, run: Run) -> None:
        """Stop renewing and give the lease back, so another replica need not wait it out."""
        keeper = run.keeper
        if keeper is None:
            return
        run.keeper = None
        await keeper.stop()
        if keeper.lost.is_set():
            return  # not ours any more
        try:
            async with asyncio.timeout(report.RELEASE_TIMEOUT.total_seconds()):
                await self.deps.store.release(run.resource.uid)
        except (InventorySyncError, TimeoutError) as error:  # it expires on its own
            logger.warning("lease not released (it will expire): %s", public_message(error))


__all__ = ["Ending", "RunEnd", "Runner"]
