"""Executing one due run for a tracked resource: claim it, run it, write status and an Event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from inventory_sync.errors import (
    InventorySyncError,
    KubeConfigError,
    KubeNotFound,
    SpecError,
    public_message,
)
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.metrics import Metrics
from inventory_sync.models import GROUP, VERSION, FabricSpec, SyncScheduleSpec
from inventory_sync.operating import kinds
from inventory_sync.operating.kinds import AnySpec, Tracked
from inventory_sync.operating.secrets import KubeSecrets
from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.conditions import find
from inventory_sync.reconciling.due import Due, Trigger
from inventory_sync.results import RunResult, RunState
from inventory_sync.store import runs
from inventory_sync.syncing import preflight
from inventory_sync.syncing.fabric import check_kinds, fabric_connection, run_fabric_sync
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# The misspelt-kind check runs in the scheduler's tick, before a run is claimed: a fabric that
# is slow or down must not hold the tick up (the run then reports it, with retries).
FABRIC_CHECK_SECONDS = 2.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class AlreadyClaimed(InventorySyncError):
    """Another replica holds this scheduled run (or held it and has not released it yet)."""


@dataclass
class RunnerDeps:
    """What runs need from the operator; one instance per operator process."""

    pool: asyncpg.Pool
    kube: KubeClient
    connection: KubeConnection  # the operator's own, for Fabrics without a kubeconfig Secret
    session: UpstreamSession
    metrics: Metrics
    instance: str  # this replica's name, for Events
    clock: Clock = utcnow
    #: This cluster's identity as a Fabric owner (fabric_retirement.cluster_owner); runs
    #: register their Fabric under it so that a deleted Fabric's rows are retired. None until
    #: known: the retirement loop registers live Fabrics then.
    fabric_owner: str | None = None


class Runner:
    """Runs one resource once; every outcome ends in a status patch, never an exception."""

    def __init__(self, deps: RunnerDeps) -> None:
        self._deps = deps
        #: Told the body each status patch returned (the scheduler keeps it as the latest view).
        self.on_status: Callable[[Tracked, dict[str, Any]], None] = lambda tracked, body: None

    async def patch_status(self, tracked: Tracked, patch: dict[str, Any]) -> None:
        """Merge-patch the status subresource (never spec, never a whole-object replace)."""
        try:
            body = await self._deps.kube.patch_status(
                group=GROUP,
                version=VERSION,
                plural=tracked.kind.plural,
                namespace=tracked.namespace,
                name=tracked.name,
                patch={"status": patch},
            )
        except KubeNotFound:
            return  # deleted meanwhile: nothing to report on
        self.on_status(tracked, body)

    async def event(self, tracked: Tracked, *, warning: bool, reason: str, message: str) -> None:
        try:
            await self._deps.kube.create_event(
                involved=tracked.reference,
                type="Warning" if warning else "Normal",
                reason=reason,
                message=message,
                action="Sync",
                reporting_instance=self._deps.instance,
            )
        except InventorySyncError as error:  # an Event is a courtesy; never fail a run for it
            logger.warning(
                "could not post an Event for %s/%s: %s",
                tracked.namespace,
                tracked.name,
                public_message(error),
            )

    async def stall(self, tracked: Tracked, *, reason: str, message: str) -> None:
        """A problem a retry will not fix (bad spec, missing Secret): Stalled=True."""
        await self._problem(tracked, st.stalled, "Stalled", "True", reason=reason, message=message)

    async def not_ready(self, tracked: Tracked, *, reason: str, message: str) -> None:
        """A run could not start or finish (database down, API refused); it is retried."""
        await self._problem(tracked, st.not_ready, "Ready", "False", reason=reason, message=message)

    async def _problem(
        self,
        tracked: Tracked,
        build: st.ProblemPatch,
        condition: str,
        value: str,
        *,
        reason: str,
        message: str,
    ) -> None:
        """Patch status and post an Event once per distinct problem: the scheduler rechecks
        every few seconds, and that must not flood status or Events."""
        current = find(tracked.status.get("conditions") or [], condition)
        if current and (current.get("status"), current.get("reason"), current.get("message")) == (
            value,
            reason,
            message,
        ):
            return
        logger.warning(
            "%s %s/%s: %s: %s", tracked.kind.kind, tracked.namespace, tracked.name, reason, message
        )
        patch = build(
            tracked.status,
            reason=reason,
            message=message,
            generation=tracked.generation,
            now=self._deps.clock(),
        )
        await self.patch_status(tracked, patch)
        await self.event(tracked, warning=True, reason=reason, message=message)

    def forget(self, tracked: Tracked) -> None:
        self._deps.metrics.forget(
            kind=tracked.kind.kind, namespace=tracked.namespace, name=tracked.name
        )

    async def preflight(self, tracked: Tracked, spec: AnySpec) -> None:
        """Check endpoints, credentials and (classic Central) the permission to save rotated
        refresh tokens before claiming a run: what fails here becomes Stalled. A Fabric's
        kubeconfig Secret is checked, and so are its kinds: a kind the fabric's discovery shows
        to be misspelt is a SpecError."""
        if isinstance(spec, SyncScheduleSpec):
            await preflight.check_schedule(
                spec, secrets=KubeSecrets(self._deps.kube), namespace=tracked.namespace,
                policy=self._deps.session.endpoint_policy,
            )  # fmt: skip
        else:
            await self._check_fabric_kinds(tracked, spec)

    async def _check_fabric_kinds(self, tracked: Tracked, spec: FabricSpec) -> None:
        connection = await self._fabric_connection(tracked, spec)
        local = connection is self._deps.kube.connection
        client = (
            self._deps.kube
            if local
            else KubeClient(connection, timeout=FABRIC_CHECK_SECONDS, get_retries=0)
        )
        try:
            async with asyncio.timeout(FABRIC_CHECK_SECONDS):
                await check_kinds(spec, client=client)
        except TimeoutError:
            pass  # the run finds out what is wrong with the fabric, and reports it
        finally:
            if not local:
                await client.aclose()

    async def run(self, tracked: Tracked, spec: AnySpec, due: Due) -> RunResult | None:
        """Claim, run and report. Returns None when another replica had claimed the run."""
        deps = self._deps
        assert due.trigger is not None
        started = deps.clock()
        run_id = await runs.claim_run(
            deps.pool, resource=tracked.identity, scheduled_at=due.scheduled_at, claim_key=due.claim_key,
            trigger=due.trigger.value, started_at=started,
        )  # fmt: skip
        if run_id is None:
            raise AlreadyClaimed(f"the run {due.claim_key!r} is running elsewhere")
        deps.metrics.in_flight.inc()
        try:
            await self.patch_status(
                tracked,
                st.started(
                    tracked.status, generation=tracked.generation, trigger=due.trigger, now=started
                ),
            )
            result = await self._execute(tracked, spec, due.trigger)
        except asyncio.CancelledError:
            await runs.end_run(deps.pool, run_id, state="Cancelled", finished_at=deps.clock(),
                               message="cancelled: replaced by a newer run or the resource was deleted")  # fmt: skip
            raise
        except BaseException as error:
            # Never leave the claim 'Running': the same scheduled run could not be retried.
            await runs.end_run(deps.pool, run_id, state="Abandoned", finished_at=deps.clock(),
                               message=public_message(error))  # fmt: skip
            raise
        finally:
            deps.metrics.in_flight.dec()
        await runs.finish_run(deps.pool, run_id, result)
        await self._report(tracked, spec, due, result)
        return result

    async def _execute(self, tracked: Tracked, spec: AnySpec, trigger: Trigger) -> RunResult:
        deps = self._deps
        if isinstance(spec, SyncScheduleSpec):
            return await run_sync(
                spec,
                clock=deps.clock, pool=deps.pool, session=deps.session, secrets=KubeSecrets(deps.kube),
                namespace=tracked.namespace, trigger=trigger.value,
            )  # fmt: skip
        connection = await self._fabric_connection(tracked, spec)
        fabric_client = deps.kube if connection is deps.kube.connection else KubeClient(connection)
        started = deps.clock()
        try:
            async with asyncio.timeout(kinds.timeout_of(spec).total_seconds()):
                return await run_fabric_sync(
                    spec, fabric=tracked.identity, client=fabric_client, pool=deps.pool,
                    trigger=trigger.value, clock=deps.clock, owner=deps.fabric_owner,
                )  # fmt: skip
        except TimeoutError:
            return RunResult(
                state=RunState.TIMED_OUT, trigger=trigger.value, started_at=started,
                finished_at=deps.clock(), seconds=(deps.clock() - started).total_seconds(),
                message="run exceeded its timeout",
            )  # fmt: skip
        finally:
            if fabric_client is not deps.kube:
                await fabric_client.aclose()

    async def _fabric_connection(self, tracked: Tracked, spec: FabricSpec) -> KubeConnection:
        try:
            return await fabric_connection(spec, namespace=tracked.namespace, local=self._deps.kube)
        except (
            KubeConfigError
        ) as error:  # the Secret holds something that is not a usable kubeconfig
            ref = spec.kubeconfig_secret_ref
            where = f"Secret {tracked.namespace}/{ref.name if ref else '?'}"
            raise SpecError(f"{where}: {public_message(error)}") from None

    async def _report(self, tracked: Tracked, spec: AnySpec, due: Due, result: RunResult) -> None:
        deps = self._deps
        now = deps.clock()
        patch = st.finished(
            tracked.status, result, generation=tracked.generation, interval=spec.interval,
            history_limit=kinds.history_limit(spec), requested_at=due.requested_at,
            next_sync=None if spec.suspend else result.finished_at + spec.interval, now=now,
        )  # fmt: skip
        await self.patch_status(tracked, patch)
        deps.metrics.record(
            kind=tracked.kind.kind, namespace=tracked.namespace, name=tracked.name, result=result
        )
        if result.succeeded:
            await self.event(
                tracked, warning=False, reason="Synced", message=st.ready_message(result)
            )
        else:
            reason = "TimedOut" if result.state is RunState.TIMED_OUT else "SyncFailed"
            await self.event(tracked, warning=True, reason=reason, message=st.ready_message(result))
