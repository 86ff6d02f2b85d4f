"""What a database consumer sees of whole runs: the change log of each run and one
`NOTIFY inventory_sync` per run, received by a real LISTEN connection (simulator over HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from inventory_sync.models import SyncSchedule
from inventory_sync.oneshot import run_once
from inventory_sync.results import RunResult, RunState
from inventory_sync.simulator import ThreadedSimulator
from inventory_sync.store.notifications import CHANNEL
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

from .conftest import schedule_spec, secrets_for

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
SENTINEL = "sentinel"


@dataclass
class Listener:
    """A LISTEN connection of its own, as a consumer would hold; collects every payload."""

    connection: asyncpg.Connection
    payloads: list[dict[str, Any]] = field(default_factory=list)
    _sentinel: asyncio.Event = field(default_factory=asyncio.Event)

    def received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == SENTINEL:
            self._sentinel.set()
        else:
            self.payloads.append(json.loads(payload))

    async def drain(self, pool: asyncpg.Pool) -> list[dict[str, Any]]:
        """Every notification committed so far: PostgreSQL delivers notifications in commit
        order, so once a sentinel sent now arrives, all earlier ones have."""
        self._sentinel.clear()
        await pool.execute(f"SELECT pg_notify('{CHANNEL}', '{SENTINEL}')")
        await asyncio.wait_for(self._sentinel.wait(), timeout=10)
        taken, self.payloads = self.payloads, []
        return taken


@pytest.fixture
async def listener(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Listener]:
    connection = await asyncpg.connect(database_url)
    found = Listener(connection)
    await connection.add_listener(CHANNEL, found.received)
    yield found
    await connection.close()


def schedule(simulator: ThreadedSimulator) -> SyncSchedule:
    return SyncSchedule.model_validate(
        {
            "apiVersion": "inventorysync.dev/v1alpha1",
            "kind": "SyncSchedule",
            "metadata": {"name": "feed", "namespace": "default"},
            "spec": schedule_spec(simulator),
        }
    )


async def run(pool: asyncpg.Pool, simulator: ThreadedSimulator) -> RunResult:
    session = UpstreamSession(policy=FAST)
    try:
        return await run_once(
            schedule(simulator), pool=pool, session=session, secrets=secrets_for(simulator)
        )
    finally:
        await session.aclose()


async def last_run_id(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT max(id) FROM sync_runs"))


async def logged(pool: asyncpg.Pool, run_id: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM inventory_changes WHERE run_id = $1 ORDER BY table_name, key", run_id
    )


async def admin(simulator: ThreadedSimulator, path: str, body: Any) -> Any:
    """The simulator's control API, over HTTP as a test harness would use it."""
    async with httpx.AsyncClient(base_url=simulator.url) as client:
        answer = await client.post(f"/_simulator/{path}", json=body)
    answer.raise_for_status()
    return answer.json()


async def touch(simulator: ThreadedSimulator, count: int) -> list[str]:
    found = await admin(
        simulator, "mutate", {"action": "touch", "target": "glp_devices", "count": count}
    )
    ids: list[str] = found["ids"]
    return ids


async def test_a_run_that_changes_10_devices_logs_exactly_those_10_and_notifies_once(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator, listener: Listener
) -> None:
    first = await run(pool, small_simulator)
    first_id = await last_run_id(pool)
    second = await run(pool, small_simulator)  # nothing changed upstream
    second_id = await last_run_id(pool)
    touched = await touch(small_simulator, 10)
    third = await run(pool, small_simulator)
    third_id = await last_run_id(pool)

    assert [r.state for r in (first, second, third)] == [RunState.SUCCEEDED] * 3
    # The first run logs one insert per stored row, and nothing else.
    inserted = sum(s.inserted for s in first.sources)
    first_log = await logged(pool, first_id)
    assert len(first_log) == inserted > 0
    assert {r["operation"] for r in first_log} == {"insert"}
    assert await logged(pool, second_id) == []
    # The third run: exactly the 10 touched devices, as updates of their tags and updatedAt.
    third_log = await logged(pool, third_id)
    assert sorted(r["key"] for r in third_log) == sorted(touched)
    for row in third_log:
        assert (row["table_name"], row["source"], row["operation"], row["scope"]) == (
            "glp_devices", "devices", "update", "3f1c2a4e-demo-workspace",
        )  # fmt: skip
        assert row["changed_columns"] == ["upstream_updated_at"]
        changes = json.loads(row["changes"])
        assert set(changes) == {"tags", "updatedAt"}
        assert changes["tags"]["new"]["simulatorTouch"] != changes["tags"]["old"].get(
            "simulatorTouch"
        )
        stored = await pool.fetchrow(
            "SELECT data, changed_at FROM glp_devices WHERE id = $1", row["key"]
        )
        assert stored is not None
        assert changes["updatedAt"]["new"] == json.loads(stored["data"])["updatedAt"]
        assert row["changed_at"] == stored["changed_at"]

    notes = await listener.drain(pool)
    assert [n["runId"] for n in notes] == [first_id, second_id, third_id]
    assert [n["changes"] for n in notes] == [inserted, 0, 10]
    assert {(n["kind"], n["namespace"], n["name"], n["state"]) for n in notes} == {
        ("SyncSchedule", "default", "feed", "Succeeded")
    }
    assert notes[2]["counts"]["updated"] == 10
    assert notes[0]["counts"]["inserted"] == inserted
    assert all(len(json.dumps(n)) < 8000 for n in notes)


async def test_a_failed_run_notifies_once_with_its_state_and_the_changes_it_committed(
    pool: asyncpg.Pool, small_simulator: ThreadedSimulator, listener: Listener
) -> None:
    # New Central refuses every request: that source fails, the GreenLake ones still merge.
    rule = {"kind": "status", "route": "/network-monitoring/*", "status": 400, "count": None}
    await admin(small_simulator, "faults", [rule])

    failed = await run(pool, small_simulator)
    run_id = await last_run_id(pool)

    assert failed.state is RunState.FAILED
    assert failed.source("central").state.value == "Failed"
    merged = sum(s.inserted for s in failed.sources)
    assert merged > 0
    notes = await listener.drain(pool)
    assert [(n["runId"], n["state"], n["changes"]) for n in notes] == [(run_id, "Failed", merged)]
    assert len(await logged(pool, run_id)) == merged
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM inventory_changes WHERE table_name = 'central_devices'"
        )
        == 0
    )
