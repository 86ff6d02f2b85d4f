"""The run store on a real PostgreSQL: leases, takeovers and claim keys (the contract the unit
tests' FakeStore imitates)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from inventory_sync.errors import StoreError
from inventory_sync.results import RunResult, RunState
from inventory_sync.store.runs import Answered, Busy, Claimed, ResourceIdentity, RunStore

pytestmark = pytest.mark.integration

RESOURCE = ResourceIdentity(kind="SyncSchedule", namespace="ns", name="inventory", uid="uid-1")
NOW = datetime.now(UTC)


async def claim(store: RunStore, key: str = "startup") -> Claimed | Busy | Answered:
    return await store.claim(
        resource=RESOURCE, claim_key=key, scheduled_at=NOW, trigger="startup", started_at=NOW,
        generation=3,
    )  # fmt: skip


def result(state: RunState = RunState.SUCCEEDED) -> RunResult:
    return RunResult(state=state, trigger="startup", started_at=NOW, finished_at=NOW, seconds=2.5)


async def rows(pool: asyncpg.Pool) -> list[tuple[str, str, int | None]]:
    found = await pool.fetch("SELECT claim_key, state, generation FROM sync_runs ORDER BY id")
    return [(r["claim_key"], r["state"], r["generation"]) for r in found]


async def test_a_live_lease_keeps_every_other_holder_out_whatever_the_key(
    pool: asyncpg.Pool,
) -> None:
    a = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30))
    b = RunStore(pool, holder="b/1", lease_ttl=timedelta(seconds=30))
    assert isinstance(await claim(a, "startup"), Claimed)

    busy = await claim(b, "manual:now")
    assert isinstance(busy, Busy)
    assert (busy.holder, 25 < busy.retry_in <= 30) == ("a/1", True)
    assert await rows(pool) == [("startup", "Running", 3)]


async def test_an_expired_lease_is_taken_over_and_the_dead_run_abandoned(
    pool: asyncpg.Pool,
) -> None:
    dead = RunStore(pool, holder="dead/1", lease_ttl=timedelta(seconds=0.3))
    alive = RunStore(pool, holder="alive/1", lease_ttl=timedelta(seconds=30))
    await claim(dead, "startup")
    assert not await alive.renew("uid-1")  # not its lease
    await asyncio.sleep(0.4)  # expiry is the database's now(), not ours

    taken = await claim(alive, "startup")

    assert isinstance(taken, Claimed)
    assert taken.took_over_from == "dead/1"
    assert [(a.claim_key, a.holder) for a in taken.abandoned] == [("startup", "dead/1")]
    assert await rows(pool) == [("startup", "Abandoned", 3), ("startup", "Running", 3)]
    assert not await dead.renew("uid-1")  # the dead holder, had it lived, learns it lost it
    assert not await dead.finish(1, result())  # and cannot overwrite the abandoned row


async def test_a_finished_request_is_answered_and_its_unlanded_status_restated(
    pool: asyncpg.Pool,
) -> None:
    store = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30))
    claimed = await claim(store)
    assert isinstance(claimed, Claimed)
    assert await store.finish(claimed.run_id, result())
    await store.release("uid-1")

    again = await claim(store)  # its status never landed: write it from the row

    assert isinstance(again, Answered)
    assert again.restate
    assert (again.record.state, again.record.generation, again.record.seconds) == (
        "Succeeded",
        3,
        2.5,
    )
    await store.status_written(claimed.run_id)
    await store.release("uid-1")
    landed = await claim(store)
    assert isinstance(landed, Answered)
    assert not landed.restate  # it landed a moment ago: the watch is just behind
    assert await pool.fetchval("SELECT count(*) FROM run_leases") == 0


async def test_cancelled_and_abandoned_runs_keep_their_rows_and_the_request_runs_again(
    pool: asyncpg.Pool,
) -> None:
    store = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30))
    first = await claim(store)
    assert isinstance(first, Claimed)
    assert await store.end(first.run_id, state="Cancelled", finished_at=NOW, message="replaced")
    await store.release("uid-1")
    second = await claim(store)
    assert isinstance(second, Claimed)
    assert await store.end(second.run_id, state="Abandoned", finished_at=NOW, message="no lease")
    await store.release("uid-1")
    third = await claim(store)
    assert isinstance(third, Claimed)

    assert await rows(pool) == [
        ("startup", "Cancelled", 3), ("startup", "Abandoned", 3), ("startup", "Running", 3),
    ]  # fmt: skip


async def test_a_database_that_is_gone_raises_store_error_not_asyncpg_errors(
    database_url: str,
) -> None:
    from inventory_sync.store.database import open_pool

    pool = await open_pool(database_url, max_size=2)
    store = RunStore(pool, holder="a/1", lease_ttl=timedelta(seconds=30), timeout=2)
    await pool.close()
    with pytest.raises(StoreError, match="claiming a run of ns/inventory"):
        await claim(store)
    with pytest.raises(StoreError, match="renewing a run lease"):
        await store.renew("uid-1")
