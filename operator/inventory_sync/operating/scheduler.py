"""The scheduler: on every tick or wake-up, decide for each watched resource whether it runs now.

A tick is synchronous and pure (no API call, no database): per resource it parses the spec,
reads the status through `reconciling.due.decide`, and hands anything that needs I/O (a run,
a status refresh, a problem report) to a task of that resource. So one resource's problem
(an exception, a slow API call) never delays or stops another's, and the loop itself cannot
die of one: each resource is considered inside its own try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inventory_sync import logs
from inventory_sync.errors import SpecError
from inventory_sync.models import ConcurrencyPolicy, SyncScheduleSpec
from inventory_sync.reconciling import reasons
from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.conditions import rfc3339
from inventory_sync.reconciling.due import Due, Trigger, decide, phase_of
from inventory_sync.running import resource as kinds
from inventory_sync.running.report import Ending, RunEnd
from inventory_sync.running.resource import AnySpec, ResourceKind, Tracked
from inventory_sync.running.runner import Runner
from inventory_sync.running.steps import Clock

logger = logging.getLogger(__name__)

# Housekeeping between due times (OutOfSync ageing in, a fixed stall) needs no more than a
# look per second; due times themselves wake the loop exactly (see `_sleep`).
TICK_SECONDS = 1.0
# After a problem before or during a run (database down, RBAC missing, Secret missing), the
# resource is looked at again after this long, doubling per consecutive problem up to
# MAX_RECHECK, instead of every tick.
RECHECK_AFTER_ERROR = timedelta(seconds=10)
MAX_RECHECK = timedelta(minutes=5)
# A request another replica already answered: its status arrives by watch in a moment.
ANSWERED_RECHECK = timedelta(seconds=5)
# A fresh LIST of both kinds catches a missed watch event (a DELETED never seen would keep
# a dead resource scheduled; a missed ADDED would never run).
RELIST_EVERY = timedelta(minutes=5)

RunningKey = tuple[Trigger, str | None, int | None]


@dataclass(frozen=True)
class Listing:
    """A fresh LIST of both kinds: the bodies and the oldest list's resourceVersion."""

    items: list[tuple[ResourceKind, dict[str, Any]]]
    resource_version: int | None


Lister = Callable[[], Awaitable[Listing]]


@dataclass
class Slot:
    """The scheduler's memory of one resource; lost on restart, which is fine: due times come
    from status."""

    tracked: Tracked
    task: asyncio.Task[None] | None = None  # the run in flight (or the one replacing it)
    chore: asyncio.Task[None] | None = None  # a status refresh or problem report
    #: What the run in flight answers: (trigger, requestedAt, generation); Replace compares it.
    running_key: RunningKey | None = None
    not_before: datetime | None = None
    #: not_before ends early when the resource changes (another replica's run wrote status).
    until_changed: bool = False
    problems: int = 0  # consecutive, for the recheck backoff
    noticed: tuple[str, ...] = ()  # the status problems already reported
    wake_at: datetime | None = None  # the next due time, for the loop's sleep
    #: The parsed spec of the generation it was parsed from: a tick parses each spec once.
    parsed: tuple[int | None, AnySpec] | None = None

    def spec(self) -> AnySpec:
        """The spec, parsed once per generation (SpecError names the field)."""
        tracked = self.tracked
        if self.parsed is None or self.parsed[0] != tracked.generation:
            self.parsed = (tracked.generation, tracked.kind.parse(tracked.body.get("spec") or {}))
        return self.parsed[1]

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def busy(self) -> bool:
        return self.chore is not None and not self.chore.done()


@dataclass
class Scheduler:
    runner: Runner
    clock: Clock
    recheck_after_error: timedelta = RECHECK_AFTER_ERROR
    lister: Lister | None = None
    relist_every: timedelta = RELIST_EVERY
    slots: dict[str, Slot] = field(default_factory=dict)
    last_tick: datetime | None = None
    #: The loop has ended (its runs may still be winding down).
    ended: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    # -- fed by the kopf layer -------------------------------------------------------------

    def observe(self, kind: ResourceKind, body: dict[str, Any]) -> None:
        """A watch event (or a fresh list) brought a body."""
        uid = str((body.get("metadata") or {}).get("uid"))
        slot = self.slots.get(uid)
        if slot is None:
            self.slots[uid] = Slot(Tracked(kind, body))
        elif kinds.newer(body, slot.tracked.body):
            slot.tracked.body = body
            if slot.until_changed:
                slot.not_before, slot.until_changed = None, False
        self._wake.set()

    def forget(self, uid: str) -> None:
        """The resource was deleted: cancel its run; nothing waits on upstreams or the database."""
        slot = self.slots.pop(uid, None)
        if slot is None:
            return
        for task in (slot.task, slot.chore):
            if task is not None and not task.done():
                task.cancel("the resource was deleted")
        self.runner.forget(slot.tracked)

    def reconcile(self, listing: Listing) -> None:
        """Align the slots with a fresh list: drop resources it no longer has, add missed ones."""
        seen = set()
        for kind, body in listing.items:
            seen.add(str((body.get("metadata") or {}).get("uid")))
            self.observe(kind, body)
        for uid, slot in list(self.slots.items()):
            if uid in seen or _created_after(slot.tracked, listing.resource_version):
                continue
            logger.info(
                "%s %s/%s is gone from a fresh list: forgetting it",
                slot.tracked.kind.kind, slot.tracked.namespace, slot.tracked.name,
            )  # fmt: skip
            self.forget(uid)

    # -- the loop ----------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        relisting = asyncio.create_task(self._relist_forever(stop), name="relist")
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    self.tick()
                    await self._sleep(stop)
                except Exception:  # a bug here must not end scheduling for every resource
                    logger.exception("the scheduler's loop failed; going on")
                    await asyncio.sleep(TICK_SECONDS)
        finally:
            self.ended = True  # no more ticks, however long the runs take to wind down
            relisting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relisting
            await self.shutdown()

    async def shutdown(self) -> None:
        tasks = [t for s in self.slots.values() for t in (s.task, s.chore) if t and not t.done()]
        tasks += [t for t in self._background if not t.done()]
        for task in tasks:
            task.cancel("the operator is stopping")
        await asyncio.gather(*tasks, return_exceptions=True)

    def tick(self) -> None:
        now = self.clock()
        self.last_tick = now
        for slot in list(self.slots.values()):
            tracked = slot.tracked
            try:
                # Every line logged while considering it, or by the run task started here
                # (tasks copy the context), carries the resource as fields.
                with logs.about(kind=tracked.kind.kind, namespace=tracked.namespace,
                                name=tracked.name, uid=tracked.uid):  # fmt: skip
                    self._consider(slot, now)
            except Exception:  # a bug in one resource's decision must not stop the others
                logger.exception(
                    "%s %s/%s: could not be scheduled",
                    tracked.kind.kind, tracked.namespace, tracked.name,
                )  # fmt: skip
                slot.not_before = now + self.recheck_after_error

    async def _sleep(self, stop: asyncio.Event) -> None:
        """Until the next tick, the next due time (to the millisecond), a wake-up, or stop."""
        now, wait = self.clock(), TICK_SECONDS
        for slot in list(self.slots.values()):
            if slot.running or slot.busy:
                continue
            for moment in (slot.not_before, slot.wake_at):
                if moment is not None and moment > now:
                    wait = min(wait, (moment - now).total_seconds())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(wait, 0.001)):
                await _first(self._wake.wait(), stop.wait())

    async def _relist_forever(self, stop: asyncio.Event) -> None:
        if self.lister is None:
            return
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.relist_every.total_seconds()):
                    await stop.wait()
                    return
            try:
                self.reconcile(await self.lister())
            except Exception as error:  # the watch still works; try again next time
                logger.warning("relisting the resources failed: %s", error)

    # -- one resource ----------------------------------------------------------------------

    def _consider(self, slot: Slot, now: datetime) -> None:
        if slot.busy or (slot.not_before is not None and now < slot.not_before):
            return
        slot.not_before, slot.until_changed = None, False
        tracked = slot.tracked
        try:
            spec = slot.spec()
        except SpecError as error:
            if not slot.running:  # a run in flight finishes with the spec it started with
                slot.chore = self._spawn(slot, self._problem(slot, error))
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
            phase=phase_of(tracked.uid, spec.interval),
        )
        if due.problems and due.problems != slot.noticed:
            slot.noticed = due.problems
            self._background_task(self.runner.notice(tracked, due.problems))
        slot.wake_at = None if due.now else due.scheduled_at
        if slot.running:
            key = _key(due, tracked)
            fresh = due.trigger in (Trigger.MANUAL, Trigger.SPEC_CHANGE) and key != slot.running_key
            if fresh and _replaces(spec):
                previous = slot.task
                assert previous is not None
                previous.cancel("replaced by a newer request")
                slot.running_key = key
                slot.task = self._spawn(slot, self._run(slot, spec, due, after=previous))
            return  # Forbid (or the same request): the run in flight finishes first
        if due.now:
            slot.running_key = _key(due, tracked)
            slot.task = self._spawn(slot, self._run(slot, spec, due))
            return
        patch = self._refresh_patch(tracked, spec, due, now)
        if patch:
            slot.chore = self._spawn(slot, self._refresh(slot, patch))

    async def _run(
        self, slot: Slot, spec: AnySpec, due: Due, *, after: asyncio.Task[None] | None = None
    ) -> None:
        if after is not None:  # Replace: the cancelled run reports first, then this one starts
            await asyncio.wait([after])
        try:
            end = await self.runner.run(slot.tracked, spec, due)
        finally:
            if slot.task is asyncio.current_task():
                slot.running_key = None
            self._wake.set()
        self._after(slot, end)

    async def _problem(self, slot: Slot, error: SpecError) -> None:
        self._after(slot, await self.runner.problem(slot.tracked, error))

    async def _refresh(self, slot: Slot, patch: dict[str, Any]) -> None:
        end = await self.runner.refresh(slot.tracked, patch)
        if end.ending is Ending.PROBLEM:  # the API server refused it: not every tick again
            slot.not_before = self.clock() + self.recheck_after_error
            end = RunEnd(Ending.FINISHED, end.body)
        self._after(slot, end)

    def _after(self, slot: Slot, end: RunEnd) -> None:
        """What a run (or chore) told us: a newer body, when to look again, or that it is gone."""
        slot.tracked.take_newer(end.body)
        uid, now = slot.tracked.uid, self.clock()
        if end.gone:
            if self.slots.get(uid) is slot:
                self.forget(uid)
            return
        if end.ending is Ending.PROBLEM:
            slot.problems += 1
            backoff = self.recheck_after_error * 2 ** min(slot.problems - 1, 10)
            slot.not_before = now + min(backoff, max(MAX_RECHECK, self.recheck_after_error))
        elif end.ending is Ending.BUSY:
            wait = min(max(end.retry_in or 0.0, 1.0), self.recheck_after_error.total_seconds() * 3)
            slot.not_before, slot.until_changed = now + timedelta(seconds=wait), True
        elif end.ending is Ending.ANSWERED:
            slot.not_before, slot.until_changed = now + ANSWERED_RECHECK, True
        elif end.ending is Ending.LEASE_LOST:
            slot.not_before = now + self.recheck_after_error
        else:
            slot.problems = 0
        self._wake.set()

    def _refresh_patch(
        self, tracked: Tracked, spec: AnySpec, due: Due, now: datetime
    ) -> dict[str, Any]:
        """Between runs: keep observedGeneration, nextSyncTime and syncStatus truthful, writing
        only when a value actually changes (OutOfSync ages in without a run)."""
        status = tracked.status
        wanted: dict[str, Any] = {
            "observedGeneration": tracked.generation,
            "nextSyncTime": None if spec.suspend else rfc3339(due.scheduled_at),
            "syncStatus": st.sync_status(status, interval=spec.interval, now=now),
        }
        patch = {k: v for k, v in wanted.items() if status.get(k) != v}
        conditions = status.get("conditions")
        if _stalled_on_spec(conditions):  # the spec parses (we got this far): clear it
            patch.update(st.cleared_stall(status, generation=tracked.generation, now=now))
        elif not spec.suspend and not status.get("lastSyncTime") and not _has_ready(conditions):
            # Never run and not due yet: say so, or kstatus reads the resource as done.
            patch.update(
                st.awaiting_first_run(
                    status, generation=tracked.generation, due_at=due.scheduled_at, now=now
                )
            )
        return patch

    def _spawn(self, slot: Slot, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        tracked = slot.tracked

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:  # never lose a resource to a bug in its own task
                logger.exception(
                    "%s %s/%s: task failed", tracked.kind.kind, tracked.namespace, tracked.name
                )
                slot.not_before = self.clock() + self.recheck_after_error

        return asyncio.create_task(guarded(), name=f"{tracked.namespace}/{tracked.name}")

    def _background_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _key(due: Due, tracked: Tracked) -> RunningKey | None:
    return (due.trigger, due.requested_at, tracked.generation) if due.trigger else None


def _replaces(spec: AnySpec) -> bool:
    return (
        isinstance(spec, SyncScheduleSpec) and spec.concurrency_policy is ConcurrencyPolicy.REPLACE
    )


def _stalled_on_spec(conditions: Any) -> bool:
    """Stalled=True for a spec the operator refused to parse. Parsing is the check for that one
    only; a missing Secret, a denied verb or a spec problem a run found (a Fabric kind its API
    server does not serve) stays Stalled until a run gets past it."""
    return isinstance(conditions, list) and any(
        isinstance(c, dict) and c.get("type") == "Stalled" and c.get("status") == "True"
        and c.get("reason") == reasons.INVALID_SPEC and not st.is_rechecked_by_run(c)
        for c in conditions
    )  # fmt: skip


def _has_ready(conditions: Any) -> bool:
    return isinstance(conditions, list) and any(
        isinstance(c, dict) and c.get("type") == "Ready" for c in conditions
    )


def _created_after(tracked: Tracked, resource_version: int | None) -> bool:
    """Seen by watch after the list was taken: a list cannot know it yet."""
    try:
        return resource_version is not None and int(tracked.resource_version) > resource_version
    except ValueError:
        return False


async def _first(*waits: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
