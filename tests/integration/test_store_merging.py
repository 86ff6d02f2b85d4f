"""Staged merges against a real PostgreSQL: idempotence, deletion, links and open-ended values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from inventory_sync.errors import StoreError
from inventory_sync.results import SourceOutcome
from inventory_sync.store import inspection, walks
from inventory_sync.store.database import open_pool
from inventory_sync.store.merging import ScopeMerge
from inventory_sync.store.tables import GLP_DEVICES, GLP_SUBSCRIPTIONS, TableSpec
from inventory_sync.syncing import streaming
from inventory_sync.syncing.progress import NoProgress

pytestmark = pytest.mark.integration

WS = "ws-test"


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int | None


T0 = datetime(2026, 1, 13, 22, 16, 37, tzinfo=UTC)


def subscription(n: int) -> dict[str, Any]:
    return {
        "id": f"sub-{n}",
        "key": f"KEY{n}",
        "subscriptionType": "CENTRAL_AP",
        "subscriptionStatus": "STARTED",
        "quantity": "100",
        "availableQuantity": "n/a",  # a string that is not a number must not fail the merge
        "updatedAt": "2025-12-01T10:00:00.000Z",
    }


def device(
    n: int, *, subs: list[str] | None = None, state: str = "ASSIGNED_TO_SERVICE"
) -> dict[str, Any]:
    return {
        "id": f"dev-{n}",
        "serialNumber": f"SN{n:06d}",
        "assignedState": state,
        "archived": False,
        "updatedAt": "2025-12-01T10:00:00.000Z",
        "subscription": [
            {"id": s, "resourceUri": f"/subscriptions/v1/subscriptions/{s}"} for s in subs or []
        ],
    }


async def merge(
    pool: asyncpg.Pool,
    spec: TableSpec,
    pages: list[list[dict[str, Any]]],
    *,
    at: datetime = T0,
    delete: bool = True,
) -> ScopeMerge:
    async with ScopeMerge(pool, spec=spec, workspace_id=WS, now=at) as session:
        for page in pages:
            await session.merge_page(page)
        if delete:
            await session.mark_deleted(await session.missing_ids())
        return session


async def test_a_second_identical_merge_writes_no_row_versions(pool: asyncpg.Pool) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(n) for n in range(5)]])
    await merge(
        pool,
        GLP_DEVICES,
        [[device(n, subs=["sub-1"]) for n in range(50)], [device(n) for n in range(50, 80)]],
    )
    marker = await inspection.write_marker(pool)

    again = await merge(
        pool,
        GLP_DEVICES,
        [[device(n, subs=["sub-1"]) for n in range(50)], [device(n) for n in range(50, 80)]],
        at=T0 + timedelta(hours=1),
    )

    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 80)
    assert again.counts.links_added == again.counts.links_removed == 0
    assert await inspection.rows_written_since(pool, marker) == 0


async def test_a_changed_item_is_updated_and_only_it(pool: asyncpg.Pool) -> None:
    await merge(pool, GLP_DEVICES, [[device(n) for n in range(10)]])
    changed = [device(n) for n in range(10)]
    changed[3]["assignedState"] = "UNASSIGNED"
    marker = await inspection.write_marker(pool)

    again = await merge(pool, GLP_DEVICES, [changed], at=T0 + timedelta(hours=1))

    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 1, 9)
    assert await inspection.rows_written_since(pool, marker) == 1
    row = await pool.fetchrow(
        "SELECT assigned_state, first_seen, changed_at FROM glp_devices WHERE id = 'dev-3'"
    )
    assert row is not None
    assert row["assigned_state"] == "UNASSIGNED"
    assert row["first_seen"] == T0
    assert row["changed_at"] == T0 + timedelta(hours=1)


async def test_open_ended_enum_values_and_odd_strings_are_stored(pool: asyncpg.Pool) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1)]])
    await merge(pool, GLP_DEVICES, [[device(1, state="ASSIGNED_TO_SOMETHING_NEW_IN_2027")]])

    assert (
        await pool.fetchval("SELECT assigned_state FROM glp_devices")
        == "ASSIGNED_TO_SOMETHING_NEW_IN_2027"
    )
    row = await pool.fetchrow(
        "SELECT quantity, available_quantity, data->>'availableQuantity' AS raw FROM glp_subscriptions"
    )
    assert row is not None
    assert (row["quantity"], row["available_quantity"], row["raw"]) == (100, None, "n/a")


async def test_links_to_unknown_subscriptions_are_kept_aside_not_violating_fks(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1)]])

    session = await merge(
        pool, GLP_DEVICES, [[device(1, subs=["sub-1"]), device(2, subs=["sub-unknown"]), device(3)]]
    )

    assert session.counts.unresolved_links == 1
    counts = await inspection.inventory_counts(pool)
    assert (counts.links, counts.unresolved_links) == (1, 1)
    assert await inspection.orphaned_links(pool) == 0


async def test_an_unresolved_link_resolves_once_its_subscription_arrives(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1)]])
    await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-2"])]])
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1), subscription(2)]])

    await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-2"])]])

    counts = await inspection.inventory_counts(pool)
    assert (counts.links, counts.unresolved_links) == (1, 0)


async def test_a_link_removed_upstream_is_removed(pool: asyncpg.Pool) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1), subscription(2)]])
    await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-1", "sub-2"])]])

    session = await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-2"])]])

    assert session.counts.links_removed == 1
    rows = await pool.fetch("SELECT subscription_id FROM glp_device_subscriptions")
    assert [r["subscription_id"] for r in rows] == ["sub-2"]


async def test_a_hard_delete_of_a_linked_row_is_refused_and_of_an_unlinked_one_allowed(
    pool: asyncpg.Pool,
) -> None:
    # Migration 0012 replaced the links' foreign keys by statement-level checks on delete.
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1), subscription(2)]])
    pages = [[device(1, subs=["sub-1"]), device(2, subs=["sub-unknown"]), device(3)]]
    await merge(pool, GLP_DEVICES, pages)

    refused = [
        ("glp_devices", "dev-1"),  # a resolved link names it
        ("glp_devices", "dev-2"),  # a link kept aside names it
        ("glp_subscriptions", "sub-1"),
    ]
    for table, key in refused:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"{table} row {key}"):
            await pool.execute(f"DELETE FROM {table} WHERE id = $1", key)
    await pool.execute("DELETE FROM glp_devices WHERE id = 'dev-3'")
    await pool.execute("DELETE FROM glp_subscriptions WHERE id = 'sub-2'")

    counts = await inspection.inventory_counts(pool)
    assert (counts.glp_devices, counts.links, counts.unresolved_links) == (2, 1, 1)
    assert await inspection.orphaned_links(pool) == 0


async def test_a_vanished_item_is_soft_deleted_and_comes_back_when_it_reappears(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, GLP_DEVICES, [[device(n) for n in range(5)]])

    await merge(pool, GLP_DEVICES, [[device(n) for n in range(4)]], at=T0 + timedelta(hours=1))
    assert await pool.fetchval(
        "SELECT deleted_at FROM glp_devices WHERE id = 'dev-4'"
    ) == T0 + timedelta(hours=1)
    assert (await inspection.inventory_counts(pool)).glp_devices == 4

    back = await merge(
        pool, GLP_DEVICES, [[device(n) for n in range(5)]], at=T0 + timedelta(hours=2)
    )
    assert back.counts.updated == 1
    assert await pool.fetchval("SELECT deleted_at FROM glp_devices WHERE id = 'dev-4'") is None


async def test_items_without_an_id_are_counted_not_stored(pool: asyncpg.Pool) -> None:
    session = await merge(
        pool, GLP_DEVICES, [[device(1), {"serialNumber": "X"}, "not an object"]], delete=False
    )

    assert session.counts.rejected == 2
    assert (await inspection.inventory_counts(pool)).glp_devices == 1


async def test_workspaces_never_clobber_each_other(pool: asyncpg.Pool) -> None:
    await merge(pool, GLP_DEVICES, [[device(n) for n in range(3)]])
    async with ScopeMerge(pool, spec=GLP_DEVICES, workspace_id="other", now=T0) as other:
        await other.merge_page([device(1)])
        await other.mark_deleted(await other.missing_ids())

    assert (await inspection.inventory_counts(pool, WS)).glp_devices == 3
    assert (await inspection.inventory_counts(pool, "other")).glp_devices == 1


async def test_an_unchanged_resync_still_reports_its_unresolved_links(pool: asyncpg.Pool) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1)]])
    pages = [[device(1, subs=["sub-1"]), device(2, subs=["sub-unknown"])]]
    await merge(pool, GLP_DEVICES, pages)

    again = await merge(pool, GLP_DEVICES, pages, at=T0 + timedelta(hours=1))

    assert (again.counts.unchanged, again.counts.unresolved_links) == (2, 1)


async def test_a_changed_device_moves_its_link_between_resolved_and_unresolved(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, GLP_SUBSCRIPTIONS, [[subscription(1)]])
    await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-1"])]])

    moved = await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-unknown"])]])

    assert (moved.counts.links_removed, moved.counts.unresolved_links) == (1, 1)
    counts = await inspection.inventory_counts(pool)
    assert (counts.links, counts.unresolved_links) == (0, 1)

    back = await merge(pool, GLP_DEVICES, [[device(1, subs=["sub-1"])]])

    assert (back.counts.links_added, back.counts.unresolved_links) == (1, 0)
    counts = await inspection.inventory_counts(pool)
    assert (counts.links, counts.unresolved_links) == (1, 0)
    assert await inspection.orphaned_links(pool) == 0


async def test_rows_stored_before_content_hashes_are_not_rewritten_as_changes(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, GLP_DEVICES, [[device(n) for n in range(3)]])
    # As migration 0007 leaves rows written by older releases: no hash.
    await pool.execute("UPDATE glp_devices SET content_hash = NULL")
    changed = [device(n) for n in range(3)]
    changed[2]["assignedState"] = "UNASSIGNED"

    first = await merge(pool, GLP_DEVICES, [changed], at=T0 + timedelta(hours=1))

    assert (first.counts.updated, first.counts.unchanged) == (1, 2)
    rows = await pool.fetch("SELECT id, changed_at, content_hash FROM glp_devices ORDER BY id")
    assert [r["changed_at"] for r in rows] == [T0, T0, T0 + timedelta(hours=1)]
    assert all(r["content_hash"] is not None for r in rows)

    marker = await inspection.write_marker(pool)
    again = await merge(pool, GLP_DEVICES, [changed], at=T0 + timedelta(hours=2))

    assert again.counts.unchanged == 3
    assert await inspection.rows_written_since(pool, marker) == 0


async def test_a_source_waiting_between_pages_holds_no_connection(database_url: str) -> None:
    # One connection, two sources: the first waits on its "upstream" until the second has
    # finished. Had it kept the connection for its walk, the second would wait for it forever.
    single = await open_pool(database_url, max_size=1)
    other_done = asyncio.Event()

    async def waiting_walk() -> AsyncGenerator[Page, None]:
        yield Page([device(1)], total=2)
        await other_done.wait()
        yield Page([device(2)], total=2)

    async def other_walk() -> AsyncGenerator[Page, None]:
        yield Page([device(n) for n in range(5, 8)], total=3)

    async def stream(pages: AsyncGenerator[Page, None], scope: str) -> SourceOutcome:
        outcome = SourceOutcome(name=scope, kind="greenlake/devices")
        await streaming.stream_into_scope(
            pages, pool=single, spec=GLP_DEVICES, scope=scope, outcome=outcome,
            progress=NoProgress(), now=T0,
        )  # fmt: skip
        return outcome

    async def other() -> SourceOutcome:
        try:
            return await stream(other_walk(), "ws-other")
        finally:
            other_done.set()

    try:
        async with asyncio.timeout(20):
            waited, done = await asyncio.gather(stream(waiting_walk(), WS), other())
    finally:
        await single.close()
    assert (waited.inserted, done.inserted) == (2, 3)


async def test_a_walk_leaves_no_table_behind_and_clears_stale_ones(pool: asyncpg.Pool) -> None:
    stale = f"seen_{int(time.time()) - walks.STALE_AFTER_SECONDS - 60}_0123456789ab"
    recent = f"seen_{int(time.time()) - 60}_0123456789ab"
    for name in (stale, recent):
        await pool.execute(f'CREATE UNLOGGED TABLE sync_walks."{name}" (id text)')

    await merge(pool, GLP_DEVICES, [[device(1)]])

    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'sync_walks'")
    assert [t["tablename"] for t in tables] == [recent]


async def test_a_failed_page_fails_the_walk_and_stores_nothing_of_it(pool: asyncpg.Pool) -> None:
    # A NUL character is valid JSON but not storable in jsonb: the page's statement fails.
    with pytest.raises(StoreError, match="merge into glp_devices failed"):
        await merge(pool, GLP_DEVICES, [[device(1)], [device(2), device(3, state="bad\u0000")]])

    assert await pool.fetchval("SELECT array_agg(id ORDER BY id) FROM glp_devices") == ["dev-1"]
    tables = await pool.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'sync_walks'")
    assert tables == 0


async def test_a_cancelled_walk_counts_the_page_whose_statement_was_already_running(
    pool: asyncpg.Pool,
) -> None:
    # The page statement waits on a lock held elsewhere while the walk is cancelled (a run
    # timeout). Cancelling the statement too would race its commit: rows could stay while
    # their counts are lost. The merge lets it finish, so rows and counts agree.
    page_started = asyncio.Event()

    async def walk() -> AsyncGenerator[Page, None]:
        yield Page([device(n) for n in range(3)], total=6)
        page_started.set()
        await asyncio.Event().wait()  # the upstream never answers: only a cancel ends this
        yield Page([], total=6)

    outcome = SourceOutcome(name=WS, kind="greenlake/devices")
    blocker = await pool.acquire()
    try:
        locking = blocker.transaction()
        await locking.start()
        await blocker.execute("LOCK TABLE glp_devices IN SHARE ROW EXCLUSIVE MODE")
        stream = streaming.stream_into_scope(
            walk(), pool=pool, spec=GLP_DEVICES, scope=WS, outcome=outcome,
            progress=NoProgress(), now=T0,
        )  # fmt: skip
        streamed = asyncio.create_task(stream)
        await page_started.wait()
        await asyncio.sleep(0.2)  # the page's statement is now waiting on the lock
        streamed.cancel()
        await asyncio.sleep(0.2)
        await locking.rollback()  # the statement may proceed and commit
    finally:
        await pool.release(blocker)
    with pytest.raises(asyncio.CancelledError):
        await streamed

    assert await pool.fetchval("SELECT count(*) FROM glp_devices") == 3
    assert outcome.inserted == 3
