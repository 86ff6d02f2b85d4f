"""Migration 0012 on a database that has links: the foreign keys go, the links stay, and a
linked row still cannot be hard-deleted (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from inventory_sync.store import inspection
from inventory_sync.store.database import open_pool
from inventory_sync.store.migrating import migrate

pytestmark = pytest.mark.integration

WS = "ws-links"
T0 = datetime(2026, 1, 13, tzinfo=UTC)


async def test_migration_0012_keeps_the_links_and_still_refuses_deleting_a_linked_row(
    database_url: str,
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection, up_to=11)
        await connection.execute(
            """INSERT INTO glp_subscriptions (workspace_id, id, data, first_seen, changed_at)
               VALUES ($1, 'sub-1', '{}', $2, $2)""",
            WS,
            T0,
        )
        await connection.executemany(
            """INSERT INTO glp_devices (workspace_id, id, data, first_seen, changed_at)
               VALUES ($1, $2, '{}', $3, $3)""",
            [(WS, "dev-1", T0), (WS, "dev-2", T0)],
        )
        await connection.execute(
            """INSERT INTO glp_device_subscriptions
                   (workspace_id, device_id, subscription_id, first_seen)
               VALUES ($1, 'dev-1', 'sub-1', $2)""",
            WS,
            T0,
        )

        assert (await migrate(connection))[0] == 12  # this upgrade, then any later one

        foreign_keys = await connection.fetchval(
            """SELECT count(*) FROM pg_constraint
               WHERE contype = 'f' AND conrelid IN ('glp_device_subscriptions'::regclass,
                                                    'glp_unresolved_subscription_links'::regclass)"""
        )
        assert foreign_keys == 0
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="glp_devices row dev-1"):
            await connection.execute("DELETE FROM glp_devices WHERE workspace_id = $1", WS)
        await connection.execute("DELETE FROM glp_devices WHERE id = 'dev-2'")
    finally:
        await connection.close()
    pool = await open_pool(database_url, max_size=2)
    try:
        counts = await inspection.inventory_counts(pool, WS)
        assert (counts.glp_devices, counts.links) == (1, 1)
        assert await inspection.orphaned_links(pool) == 0
    finally:
        await pool.close()
