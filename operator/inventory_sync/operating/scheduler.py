"""The scheduler: on every tick or wake-up, decide for each watched resource whether it runs now."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inventory_sync import logs
from inventory_sync.errors import (
    CredentialsError,
    InventorySyncError,
    KubeForbidden,
    SpecError,
    public_message,
)
from inventory_sync.models import ConcurrencyPolicy, SyncScheduleSpec
from inventory_sync.operating import kinds
from inventory_sync.operating.kinds import AnySpec, ResourceKind, Tracked
from inventory_sync.operating.runner import AlreadyClaimed, Clock, Runner
from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.conditions import rfc3339
from inventory_sync.reconciling.due import Due, Trigger, decide

logger = logging.getLogger(__name__)

# A manual trigger must start within 2 s; a 1 s tick plus the wake-up on every watch event
# meets that with room to spare, and a tick costs no API call unless something changed.
TICK_SECONDS = 1.0
# After an error before a run could start (database down, RBAC missing, Secret missing), the
# resource is looked at again after this long instead of every tick.
RECHECK_AFTER_ERROR = timedelta(seconds=10)


@dataclass
class Slot:
    """The scheduler's memory of one resource; lost on restart, which is fine: due times come
    from status."""

    tracked: Tracked
    task: asyncio.Task[None] | None = None
    #: What the run in flight answers: (trigger, requestedAt, generation); Replace compares it.
    running_key: tuple[Trigger, str | None, int | None] | None = None
    not_before: datetime | None = None


@dataclass
class Scheduler:
    runner: Runner
    clock: Clock
    max_concurrent_runs: int = 4
    recheck_after_error: timedelta = RECHECK_AFTER_ERROR
    slots: dict[str, Slot] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _limit: asyncio.Semaphore | None = None
    last_tick: datetime | None = None

    def __post_init__(self) -> None:
        self.runner.on_status = self.status_written

    # -- fed by the kopf layer -------------------------------------------------------------

    def observe(self, kind: ResourceKind, body: dict[str, Any]) -> None:
        """A watch event (or our own patch response) brought a newer body."""
        uid = str((body.get("metadata") or {}).get("uid"))
        slot = self.slots.get(uid)
        if slot is None:
            self.slots[uid] = Slot(Tracked(kind, body))
        elif _newer(body, slot.tracked.body):
            slot.tracked.body = body
        self._wake.set()

    def forget(self, uid: str) -> None:
        """The resource was deleted: cancel its run; nothing waits on upstreams or the database."""
        slot = self.slots.pop(uid, None)
        if slot and slot.task and not slot.task.done():
            slot.task.cancel()
        if slot:
            self.runner.forget(slot.tracked)

    def status_written(self, tracked: Tracked, body: dict[str, Any]) -> None:
        slot = self.slots.get(tracked.uid)
        if slot is not None and _newer(body, slot.tracked.body):
            slot.tracked.body = body

    # -- the loop ----------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._limit = asyncio.Semaphore(self.max_concurrent_runs)
        while not stop.is_set():
            self._wake.clear()
            await self.tick()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_SECONDS):
                    await _first(self._wake.wait(), stop.wait())
        await self.shutdown()

    async def shutdown(self) -> None:
        tasks = [s.task for s in self.slots.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self) -> None:
        self.last_tick = self.clock()
        for slot in list(self.slots.values()):
            tracked = slot.tracked
            try:
                # Every line logged while considering it, or by the run task started here
                # (tasks copy the context), carries the resource as fields.
                with logs.about(kind=tracked.kind.kind, namespace=tracked.namespace,
                                name=tracked.name, uid=tracked.uid):  # fmt: skip
                    await self._consider(slot)
            except InventorySyncError as error:  # e.g. the API refused a status patch
                logger.warning(
                    "%s/%s: %s", slot.tracked.namespace, slot.tracked.name, public_message(error)
                )
                slot.not_before = self.clock() + self.recheck_after_error

    async def _consider(self, slot: Slot) -> None:
        tracked, now = slot.tracked, self.clock()
        if slot.not_before and now < slot.not_before:
            return
        slot.not_before = None
        try:
            spec = tracked.kind.parse(tracked.body.get("spec") or {})
        except SpecError as error:
            await self.runner.stall(tracked, reason="InvalidSpec", message=str(error))
            return
        due = decide(
            interval=spec.interval,
            suspend=spec.suspend,
            run_on_startup=kinds.run_on_startup(spec),
            generation=tracked.generation,
            created_at=tracked.created_at,
            status=tracked.status,
            annotations=tracked.annotations,
            now=now,
        )
        running = slot.task is not None and not slot.task.done()
        if running:
            key = (due.trigger, due.requested_at, tracked.generation) if due.trigger else None
            fresh_request = (
                due.trigger in (Trigger.MANUAL, Trigger.SPEC_CHANGE) and key != slot.running_key
            )
            if fresh_request and _replaces(spec):
                assert slot.task is not None
                slot.task.cancel()  # Replace: the newer request wins
                with contextlib.suppress(asyncio.CancelledError):
                    await slot.task
            else:
                return  # Forbid (or the same request): let the run in flight finish
        if due.now:
            await self._start(slot, spec, due)
        else:
            await self._refresh(slot, spec, due, now)

    async def _start(self, slot: Slot, spec: AnySpec, due: Due) -> None:
        tracked = slot.tracked
        try:
            await self.runner.preflight(tracked, spec)
        except InventorySyncError as error:
            # Missing Secret, a Secret the operator may not read, an unusable kubeconfig:
            # shown in status (Stalled when a retry cannot help), rechecked in a few seconds.
            report = self.runner.stall if error.permanent else self.runner.not_ready
            await report(
                tracked, reason=problem_reason(error), message=public_message(error, limit=1024)
            )
            slot.not_before = self.clock() + self.recheck_after_error
            return
        assert due.trigger is not None
        slot.running_key = (due.trigger, due.requested_at, tracked.generation)
        slot.task = asyncio.create_task(
            self._guarded_run(slot, spec, due), name=f"run:{tracked.namespace}/{tracked.name}"
        )

    async def _guarded_run(self, slot: Slot, spec: AnySpec, due: Due) -> None:
        assert self._limit is not None
        tracked = slot.tracked
        try:
            async with self._limit:  # the global cap on concurrent runs
                await self.runner.run(tracked, spec, due)
        except asyncio.CancelledError:
            raise
        except AlreadyClaimed as error:  # another replica runs it; its status will tell
            logger.debug("%s/%s: %s", tracked.namespace, tracked.name, error)
            slot.not_before = self.clock() + self.recheck_after_error
        except InventorySyncError as error:
            message = public_message(error)
            logger.warning(
                "run of %s/%s could not complete: %s", tracked.namespace, tracked.name, message
            )
            slot.not_before = self.clock() + self.recheck_after_error
            with contextlib.suppress(InventorySyncError):
                await self.runner.not_ready(tracked, reason=problem_reason(error), message=message)
        except Exception:
            logger.exception("run of %s/%s crashed", tracked.namespace, tracked.name)
            slot.not_before = self.clock() + self.recheck_after_error
        finally:
            slot.running_key = None
            self._wake.set()

    async def _refresh(self, slot: Slot, spec: AnySpec, due: Due, now: datetime) -> None:
        """Between runs: keep observedGeneration, nextSyncTime and syncStatus truthful, writing
        only when a value actually changes (OutOfSync ages in without a run)."""
        tracked = slot.tracked
        status = tracked.status
        wanted: dict[str, Any] = {
            "observedGeneration": tracked.generation,
            "nextSyncTime": None if spec.suspend else rfc3339(due.scheduled_at),
            "syncStatus": st.sync_status(status, interval=spec.interval, now=now),
        }
        patch = {k: v for k, v in wanted.items() if status.get(k) != v}
        stalled = any(
            c.get("type") == "Stalled" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if stalled:  # the problem is gone (we got this far): clear it
            patch.update(st.cleared_stall(status, generation=tracked.generation, now=now))
        if patch:
            await self.runner.patch_status(tracked, patch)


def problem_reason(error: InventorySyncError) -> str:
    """The condition/Event reason for an error that kept a run from starting or finishing."""
    if isinstance(error, CredentialsError):
        return "MissingCredentials"
    if isinstance(error, SpecError):
        return "InvalidSpec"
    if isinstance(error, KubeForbidden):
        return "Forbidden"
    return type(error).__name__


def _replaces(spec: AnySpec) -> bool:
    return (
        isinstance(spec, SyncScheduleSpec) and spec.concurrency_policy is ConcurrencyPolicy.REPLACE
    )


def _newer(body: dict[str, Any], than: dict[str, Any]) -> bool:
    """resourceVersion is opaque, but etcd's are integers; equal or unparsable → take the new."""
    try:
        return int(body["metadata"]["resourceVersion"]) >= int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
