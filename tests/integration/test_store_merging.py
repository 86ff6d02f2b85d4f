"""Staged merges against a real PostgreSQL: idempotence, deletion, links and open-ended values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from inventory_sync.store import inspection
from inventory_sync.store.merging import ScopeMerge
from inventory_sync.store.tables import GLP_DEVICES, GLP_SUBSCRIPTIONS, TableSpec

pytestmark = pytest.mark.integration

WS = "ws-test"
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
