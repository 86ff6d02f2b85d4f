"""Read-only queries that verify the store: counts, orphans, and rows written since a marker."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

INVENTORY_TABLES = (
    "glp_subscriptions",
    "glp_devices",
    "glp_device_subscriptions",
    "glp_unresolved_subscription_links",
    "central_devices",
    "central_classic_devices",
    "fabric_objects",
)


@dataclass(frozen=True)
class InventoryCounts:
    subscriptions: int
    glp_devices: int
    links: int
    unresolved_links: int
    central_devices: int


async def inventory_counts(pool: asyncpg.Pool, workspace_id: str | None = None) -> InventoryCounts:
    """Live (not soft-deleted) rows per table, optionally for one workspace."""
    row = await pool.fetchrow(
        """SELECT
             (SELECT count(*) FROM glp_subscriptions
               WHERE deleted_at IS NULL AND ($1::text IS NULL OR workspace_id = $1)) AS subscriptions,
             (SELECT count(*) FROM glp_devices
               WHERE deleted_at IS NULL AND ($1::text IS NULL OR workspace_id = $1)) AS glp_devices,
             (SELECT count(*) FROM glp_device_subscriptions
               WHERE $1::text IS NULL OR workspace_id = $1) AS links,
             (SELECT count(*) FROM glp_unresolved_subscription_links
               WHERE $1::text IS NULL OR workspace_id = $1) AS unresolved_links,
             (SELECT count(*) FROM central_devices
               WHERE deleted_at IS NULL AND ($1::text IS NULL OR workspace_id = $1)) AS central_devices""",
        workspace_id,
    )
    assert row is not None
    return InventoryCounts(**{k: int(v) for k, v in row.items()})


async def orphaned_links(pool: asyncpg.Pool) -> int:
    """Links naming a device or subscription that is not stored, in both link tables. The
    merge writes links only with their rows (migration 0012): this must be 0."""
    value = await pool.fetchval(
        """SELECT (SELECT count(*) FROM glp_device_subscriptions l
                   LEFT JOIN glp_devices d
                          ON d.workspace_id = l.workspace_id AND d.id = l.device_id
                   LEFT JOIN glp_subscriptions s
                          ON s.workspace_id = l.workspace_id AND s.id = l.subscription_id
                   WHERE d.id IS NULL OR s.id IS NULL)
                + (SELECT count(*) FROM glp_unresolved_subscription_links u
                   WHERE NOT EXISTS (SELECT 1 FROM glp_devices d
                                     WHERE d.workspace_id = u.workspace_id AND d.id = u.device_id))"""
    )
    return int(value)


async def write_marker(pool: asyncpg.Pool) -> int:
    """The current transaction id: every row version written later has a larger xmin."""
    return int(await pool.fetchval("SELECT pg_current_xact_id()::text::bigint"))


async def rows_written_since(pool: asyncpg.Pool, marker: int) -> int:
    """Row versions in the inventory tables created after `marker` (inserts and updates alike).

    xmin is the 32-bit id of the transaction that wrote the row version; comparing within one
    epoch is exact for the short spans tests and the demo measure.
    """
    low = marker % 2**32
    total = 0
    for table in INVENTORY_TABLES:
        total += int(
            await pool.fetchval(f"SELECT count(*) FROM {table} WHERE xmin::text::bigint > $1", low)
        )
    return total
