"""`NOTIFY inventory_sync` from the run store (real PostgreSQL, a real LISTEN connection): one
per run whichever way it leaves Running, none for a write that moves nothing, and a payload
under PostgreSQL's limit for the longest names."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from inventory_sync.results import RunResult, RunState, SourceOutcome
from inventory_sync.store.notifications import CHANNEL, PAYLOAD_LIMIT
from inventory_sync.store.runs import Claimed, ResourceIdentity, RunStore

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
RESOURCE = ResourceIdentity(kind="SyncSchedule", namespace="ns", name="inventory", uid="uid-1")


class Inbox:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.arrived = asyncio.Event()

    def __call__(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.texts.append(payload)
        self.arrived.set()

    async def settle(self, pool: asyncpg.Pool) -> list[dict[str, Any]]:
        """Everything committed so far (delivery follows commit order: a marker sent now
        arrives after every earlier notification)."""
        await pool.execute(f"SELECT pg_notify('{CHANNEL}', 'marker')")
        for _ in range(100):
            if self.texts and self.texts[-1] == "marker":
                break
            await asyncio.sleep(0.05)
        found = [json.loads(t) for t in self.texts if t != "marker"]
        self.texts.clear()
        return found


@pytest.fixture
async def inbox(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Inbox]:
    connection = await asyncpg.connect(database_url)
    found = Inbox()
    await connection.add_listener(CHANNEL, found)
    yield found
    await connection.close()


async def claim(store: RunStore, resource: ResourceIdentity = RESOURCE, key: str = "k") -> int:
    claimed = await store.claim(
        resource=resource, claim_key=key, scheduled_at=NOW, trigger="schedule",
        started_at=NOW, generation=1,
    )  # fmt: skip
    assert isinstance(claimed, Claimed)
    return claimed.run_id


def result(state: RunState = RunState.SUCCEEDED) -> RunResult:
    sources = [
        SourceOutcome(name="devices", kind="greenlake/devices", inserted=3, updated=2, fetched=9),
        SourceOutcome(name="central", kind="arubaCentral", deleted=1, unchanged=4, fetched=5),
    ]
    return RunResult(
        state=state, trigger="schedule", started_at=NOW, finished_at=NOW, seconds=1.0,
        sources=sources,
    )  # fmt: skip


async def test_a_finished_run_notifies_once_with_its_counts_and_only_after_commit(
    pool: asyncpg.Pool, inbox: Inbox
) -> None:
    store = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30))
    run_id = await claim(store)
    assert await inbox.settle(pool) == []  # claiming is not finishing

    assert await store.finish(run_id, result())
    assert not await store.finish(run_id, result())  # a second write moves nothing

    [note] = await inbox.settle(pool)
    assert (note["runId"], note["kind"], note["namespace"], note["name"], note["uid"]) == (
        run_id, "SyncSchedule", "ns", "inventory", "uid-1",
    )  # fmt: skip
    assert note["state"] == "Succeeded"
    assert note["changes"] == 0
    assert note["counts"] == {
        "inserted": 3, "updated": 2, "deleted": 1, "unchanged": 4, "fetched": 14, "errors": 0,
        "sources": 2,
    }  # fmt: skip


async def test_cancelled_and_abandoned_runs_notify_once_without_counts(
    pool: asyncpg.Pool, inbox: Inbox
) -> None:
    store = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30))
    cancelled = await claim(store, key="first")
    assert await store.end(cancelled, state="Cancelled", finished_at=NOW, message="replaced")
    assert not await store.end(cancelled, state="Abandoned", finished_at=NOW, message="again")
    await store.release(RESOURCE.uid)

    # A holder that dies mid-run never ends its row: the replica taking over abandons it.
    dead = RunStore(pool, holder="dead/1", lease_ttl=timedelta(seconds=0.2))
    abandoned = await claim(dead, key="second")
    await asyncio.sleep(0.3)
    await claim(store, key="third")

    notes = await inbox.settle(pool)
    assert [(n["runId"], n["state"], n["counts"]) for n in notes] == [
        (cancelled, "Cancelled", None),
        (abandoned, "Abandoned", None),
    ]


async def test_the_payload_stays_under_the_limit_for_the_longest_names(
    pool: asyncpg.Pool, inbox: Inbox
) -> None:
    # Four-byte characters in every text field: the worst case of the character cut-off.
    wide = "\U0001d538" * 400
    resource = ResourceIdentity(kind=wide, namespace=wide, name=wide, uid=wide)
    store = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30))
    run_id = await claim(store, resource)

    assert await store.finish(run_id, result())  # PostgreSQL refuses a payload too long

    [note] = await inbox.settle(pool)
    assert note["runId"] == run_id
    assert len(note["name"]) == 253
    assert len(json.dumps(note, ensure_ascii=False).encode()) < PAYLOAD_LIMIT
