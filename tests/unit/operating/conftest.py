"""Fakes for the scheduler and the run boundary without a cluster or a database.

* ``FakeApi``: the few API server paths the operator uses, in memory, behind the real
  KubeClient through ``httpx.MockTransport``; faults are injected per request.
* ``FakeStore``: store.runs.RunStore's contract (leases with expiry by a database clock,
  claim keys unique among answered runs) in memory. tests/integration/test_run_store.py
  holds the real one to the same contract.
* ``FakeClock``: the operator's clock and the fake database's, moved by hand.
* ``Work``: the executor: each run waits until the test lets it finish.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from inventory_sync.errors import StoreError
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.metrics import Metrics
from inventory_sync.models import GROUP, VERSION
from inventory_sync.operating.scheduler import Scheduler
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState
from inventory_sync.running.resource import SYNC_SCHEDULE, ResourceKind, Tracked
from inventory_sync.running.runner import Runner
from inventory_sync.running.sinks import KubeEventSink, KubeStatusSink, merge_patch
from inventory_sync.running.steps import Backoff, Run, RunDeps
from inventory_sync.store.runs import (
    AbandonedRun,
    Answered,
    Busy,
    Claim,
    Claimed,
    ResourceIdentity,
    RunRecord,
)
from inventory_sync.syncing.credentials import StaticSecrets
from inventory_sync.syncing.session import UpstreamSession

START = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
SECRET = {"client_id": "id", "client_secret": "s3cret"}


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


# --------------------------------------------------------------------------- the API server

Fault = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class FakeApi:
    """Objects by path; status PATCHes merge into .status and bump resourceVersion."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    version: int = 100

    def handler(self, request: httpx.Request) -> httpx.Response:
        for fault in list(self.faults):
            answer = fault(request)
            if answer is not None:
                return answer
        path = request.url.path
        if request.method == "POST" and path.endswith("/events"):
            self.events.append(json.loads(request.content))
            return httpx.Response(201, json=self.events[-1])
        target = path.removesuffix("/status")
        found = self.objects.get(target)
        if found is None:
            return httpx.Response(404, json={"kind": "Status", "code": 404, "message": "not found"})
        if request.method == "GET":
            return httpx.Response(200, json=found)
        if request.method == "PATCH":
            patch = json.loads(request.content)
            self.patches.append((path, patch))
            if path.endswith("/status"):
                found["status"] = merge_patch(found.get("status") or {}, patch.get("status") or {})
            else:
                found.update(merge_patch(found, patch))
            self.version += 1
            found["metadata"]["resourceVersion"] = str(self.version)
            return httpx.Response(200, json=found)
        return httpx.Response(405)

    def add(self, body: dict[str, Any], plural: str = "syncschedules") -> dict[str, Any]:
        meta = body["metadata"]
        self.version += 1
        meta.setdefault("resourceVersion", str(self.version))
        self.objects[path_of(plural, meta["namespace"], meta["name"])] = body
        return body

    def add_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        import base64

        self.objects[f"/api/v1/namespaces/{namespace}/secrets/{name}"] = {
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }

    def body(
        self, name: str, namespace: str = "ns", plural: str = "syncschedules"
    ) -> dict[str, Any]:
        return copy.deepcopy(self.objects[path_of(plural, namespace, name)])

    def status(self, name: str, namespace: str = "ns") -> dict[str, Any]:
        status: dict[str, Any] = self.body(name, namespace).get("status") or {}
        return status

    def delete(self, name: str, namespace: str = "ns", plural: str = "syncschedules") -> None:
        del self.objects[path_of(plural, namespace, name)]

    def reasons(self) -> list[str]:
        return [str(e.get("reason")) for e in self.events]

    def fail(self, method: str, pattern: str, status: int, *, times: int | None = None) -> None:
        """Answer `status` to requests matching (method, regex on the path), `times` times."""
        left = [times]

        def fault(request: httpx.Request) -> httpx.Response | None:
            if request.method != method or not re.search(pattern, request.url.path):
                return None
            if left[0] is not None:
                if left[0] <= 0:
                    return None
                left[0] -= 1
            if status == 0:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(status, json={"kind": "Status", "code": status, "message": "no"})

        self.faults.append(fault)


def path_of(plural: str, namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}"


def schedule_body(
    name: str = "inventory",
    *,
    uid: str | None = None,
    generation: int = 1,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    created: datetime = START - timedelta(hours=1),
    **spec: Any,
) -> dict[str, Any]:
    connection = {"workspaceId": "ws", "endpoint": "https://glp.invalid",
                  "tokenUrl": "https://sso.invalid/token", "credentialsSecretRef": {"name": "creds"}}  # fmt: skip
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncSchedule",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid or f"uid-{name}",
            "generation": generation,
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "annotations": annotations or {},
        },
        "spec": {
            "interval": "15m",
            "sources": [{"name": "central", "arubaCentral": connection}],
            **spec,
        },
        "status": status or {},
    }


# --------------------------------------------------------------------------- the store


@dataclass
class Row:
    id: int
    uid: str
    claim_key: str
    trigger: str
    scheduled_at: datetime
    started_at: datetime
    generation: int | None
    holder: str
    state: str = "Running"
    finished_at: datetime | None = None
    error: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    seconds: float | None = None
    status_written_at: datetime | None = None


@dataclass
class Lease:
    holder: str
    expires_at: datetime
    run_id: int | None = None


@dataclass
class Shared:
    """What several FakeStores (replicas) share: the rows, the leases, the database clock."""

    clock: FakeClock
    rows: list[Row] = field(default_factory=list)
    leases: dict[str, Lease] = field(default_factory=dict)
    down: bool = False  # every statement raises StoreError
    fail_claims: int = 0  # the next claims raise StoreError


class FakeStore:
    def __init__(
        self, shared: Shared, *, holder: str = "replica-a/1", lease_ttl: float = 30.0,
        restate_after: float = 60.0,
    ) -> None:  # fmt: skip
        self.shared = shared
        self.holder = holder
        self.lease_ttl = timedelta(seconds=lease_ttl)
        self.restate_after = timedelta(seconds=restate_after)
        self.renewals = 0

    def _check(self) -> None:
        if self.shared.down:
            raise StoreError("PostgreSQL unreachable (ConnectionRefusedError)")

    @property
    def _now(self) -> datetime:
        return self.shared.clock()

    async def claim(
        self, *, resource: ResourceIdentity, claim_key: str, scheduled_at: datetime,
        trigger: str, started_at: datetime, generation: int | None,
    ) -> Claim:  # fmt: skip
        self._check()
        if self.shared.fail_claims:
            self.shared.fail_claims -= 1
            raise StoreError("claiming a run: PostgreSQL unreachable (ConnectionResetError)")
        shared, uid, now = self.shared, resource.uid, self._now
        found = shared.leases.get(uid)
        if found and found.expires_at > now and found.holder != self.holder:
            return Busy(found.holder, (found.expires_at - now).total_seconds())
        took_over = found.holder if found and found.holder != self.holder else None
        shared.leases[uid] = Lease(self.holder, now + self.lease_ttl)
        abandoned = []
        for row in shared.rows:
            if row.uid == uid and row.state == "Running":
                row.state, row.finished_at = "Abandoned", now
                row.error = f"abandoned: replica {row.holder} stopped before finishing it"
                abandoned.append(AbandonedRun(row.id, row.claim_key, row.holder))
        answered = next(
            (
                r for r in shared.rows
                if r.uid == uid and r.claim_key == claim_key
                and r.state not in ("Cancelled", "Abandoned")
            ),
            None,
        )  # fmt: skip
        if answered is None:
            row = Row(len(shared.rows) + 1, uid, claim_key, trigger, scheduled_at, started_at,
                      generation, self.holder)  # fmt: skip
            shared.rows.append(row)
            shared.leases[uid].run_id = row.id
            return Claimed(row.id, tuple(abandoned), took_over)
        age = None
        if answered.status_written_at is not None:
            age = (now - answered.status_written_at).total_seconds()
        record = RunRecord(
            id=answered.id, claim_key=answered.claim_key, trigger=answered.trigger,
            state=answered.state, scheduled_at=answered.scheduled_at,
            started_at=answered.started_at, finished_at=answered.finished_at,
            error=answered.error, sources=answered.sources, generation=answered.generation,
            seconds=answered.seconds, status_written_age=age,
        )  # fmt: skip
        restate = record.finished and (age is None or age > self.restate_after.total_seconds())
        if not restate:
            del shared.leases[uid]
        return Answered(record, restate, tuple(abandoned))

    async def renew(self, resource_uid: str) -> bool:
        self._check()
        self.renewals += 1
        lease = self.shared.leases.get(resource_uid)
        if lease is None or lease.holder != self.holder:
            return False
        lease.expires_at = self._now + self.lease_ttl
        return True

    async def release(self, resource_uid: str) -> None:
        self._check()
        lease = self.shared.leases.get(resource_uid)
        if lease is not None and lease.holder == self.holder:
            del self.shared.leases[resource_uid]

    async def finish(self, run_id: int, result: RunResult) -> bool:
        self._check()
        row = self.shared.rows[run_id - 1]
        if row.state != "Running":
            return False
        row.state, row.finished_at, row.error = (
            result.state.value,
            result.finished_at,
            result.message,
        )
        row.sources = [s.model_dump(mode="json", by_alias=True) for s in result.sources]
        row.seconds = result.seconds
        return True

    async def end(self, run_id: int, *, state: str, finished_at: datetime, message: str) -> bool:
        self._check()
        row = self.shared.rows[run_id - 1]
        if row.state != "Running":
            return False
        row.state, row.finished_at, row.error = state, finished_at, message
        return True

    async def status_written(self, run_id: int) -> None:
        self._check()
        self.shared.rows[run_id - 1].status_written_at = self._now

    def rows_of(self, uid: str) -> list[Row]:
        return [r for r in self.shared.rows if r.uid == uid]


# --------------------------------------------------------------------------- the work


class Work:
    """The executor: every run waits until `release()`; records who ran what, and when."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.gate = asyncio.Event()
        self.gate.set()  # runs finish at once unless a test holds them
        self.started: list[tuple[str, str, int | None]] = []  # (uid, claim key, generation)
        self.active: dict[str, int] = {}
        self.overlaps = 0
        self.outcome = RunState.SUCCEEDED

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    async def __call__(self, run: Run) -> RunResult:
        uid = run.resource.uid
        assert run.due is not None
        self.started.append((uid, run.due.claim_key, run.generation))
        self.active[uid] = self.active.get(uid, 0) + 1
        if self.active[uid] > 1:
            self.overlaps += 1
        try:
            started = self.clock()
            await self.gate.wait()
            source = SourceOutcome(name="central", kind="arubaCentral", state=SourceState.SUCCEEDED,
                                   inserted=3)  # fmt: skip
            if self.outcome is not RunState.SUCCEEDED:
                source.state, source.message = SourceState.FAILED, "upstream said no"
            return RunResult(
                state=self.outcome, trigger=run.trigger.value, started_at=started,
                finished_at=self.clock(), seconds=1.0, sources=[source],
                message=None if self.outcome is RunState.SUCCEEDED else "central: upstream said no",
            )  # fmt: skip
        finally:
            self.active[uid] -= 1


# --------------------------------------------------------------------------- an operator


@dataclass
class Replica:
    """One operator's scheduler and runner over the fakes."""

    api: FakeApi
    store: FakeStore
    work: Work
    clock: FakeClock
    scheduler: Scheduler
    runner: Runner
    kube: KubeClient

    def observe(self, body: dict[str, Any], kind: ResourceKind = SYNC_SCHEDULE) -> None:
        self.scheduler.observe(kind, copy.deepcopy(body))

    def sync_from_api(self) -> None:
        """The watch delivering the API server's current bodies (our patches included)."""
        for path, body in self.api.objects.items():
            if "/syncschedules/" in path:
                self.scheduler.observe(SYNC_SCHEDULE, copy.deepcopy(body))

    async def settle(self, *, rounds: int = 200) -> None:
        """Let every task of this replica run until none is left or all wait on something."""
        for _ in range(rounds):
            await asyncio.sleep(0)
        pending = [
            t for s in self.scheduler.slots.values() for t in (s.task, s.chore)
            if t is not None and not t.done()
        ]  # fmt: skip
        if pending:
            await asyncio.wait(pending, timeout=0.05)
            for _ in range(rounds):
                await asyncio.sleep(0)

    async def finish(self, *, within: float = 5.0) -> None:
        """Wait until every task of this replica is done (the runs must not be held)."""
        pending = [
            t for s in self.scheduler.slots.values() for t in (s.task, s.chore)
            if t is not None and not t.done()
        ]  # fmt: skip
        if pending:
            await asyncio.wait(pending, timeout=within)
        await self.settle()

    async def step(self) -> None:
        """One tick and everything it started."""
        self.scheduler.tick()
        await self.settle()

    def tracked(self, uid: str) -> Tracked:
        return self.scheduler.slots[uid].tracked


def make_replica(
    api: FakeApi, shared: Shared, *, holder: str = "replica-a/1", lease_ttl: float = 30.0,
    renew_every: float = 10.0, work: Work | None = None, secrets: dict[str, str] | None = None,
) -> Replica:  # fmt: skip
    clock = shared.clock
    kube = KubeClient(
        KubeConnection(server="https://api.invalid", token="t"),
        transport=httpx.MockTransport(api.handler), get_retries=0,
    )  # fmt: skip
    store = FakeStore(shared, holder=holder, lease_ttl=lease_ttl)
    work = work or Work(clock)
    deps = RunDeps(
        store=store, pool=None, session=UpstreamSession(),
        secrets=StaticSecrets({("ns", "creds"): dict(secrets or SECRET)}),
        status=KubeStatusSink(kube), events=KubeEventSink(kube, instance=holder), kube=kube,
        metrics=Metrics(), clock=clock, executor=work, renew_every=renew_every,
        status_retry=Backoff(first=0.001, most=0.005),
    )  # fmt: skip
    runner = Runner(deps)
    scheduler = Scheduler(runner=runner, clock=clock, recheck_after_error=timedelta(seconds=10))
    return Replica(api, store, work, clock, scheduler, runner, kube)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def shared(clock: FakeClock) -> Shared:
    return Shared(clock)


@pytest.fixture
async def replica(api: FakeApi, shared: Shared) -> Any:
    made = make_replica(api, shared)
    yield made
    await made.scheduler.shutdown()
    await made.kube.aclose()
