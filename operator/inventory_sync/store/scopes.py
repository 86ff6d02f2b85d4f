"""What the store remembers about each synced scope between runs: high-water marks, full walks,
live counts (store layer; read by incremental sync, written after a walk it can trust)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from inventory_sync.store.tables import TableSpec


@dataclass(frozen=True)
class ScopeState:
    """A scope's sync history: when a consistent full walk last finished, and the newest
    upstream change (`updatedAt`) the walks since have seen."""

    last_full_at: datetime | None
    high_water_mark: datetime | None


async def read_scope(
    connection: asyncpg.Connection | asyncpg.Pool, *, source_kind: str, scope: str
) -> ScopeState | None:
    """The stored state of one scope, or None when no walk of it ever finished."""
    row = await connection.fetchrow(
        """SELECT last_full_at, high_water_mark FROM sync_scopes
           WHERE source_kind = $1 AND workspace_id = $2""",
        source_kind,
        scope,
    )
    if row is None:
        return None
    return ScopeState(last_full_at=row["last_full_at"], high_water_mark=row["high_water_mark"])


async def live_count(
    connection: asyncpg.Connection | asyncpg.Pool, spec: TableSpec, scope: str
) -> int:
    """Rows of `scope` not soft-deleted: what the upstream's `total` must equal."""
    count = await connection.fetchval(
        f"SELECT count(*) FROM {spec.table} WHERE {spec.scope_column} = $1 AND deleted_at IS NULL",
        scope,
    )
    return int(count)


async def record_full_walk(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    source_kind: str,
    scope: str,
    at: datetime,
    high_water_mark: datetime | None,
) -> None:
    """A consistent full walk finished at `at`: incremental runs may follow until the next one
    is due. Its mark replaces the old one (a full walk also corrects a mark set too high)."""
    await connection.execute(
        """INSERT INTO sync_scopes
               (source_kind, workspace_id, last_complete_at, last_full_at, high_water_mark)
           VALUES ($1, $2, $3, $3, $4)
           ON CONFLICT (source_kind, workspace_id) DO UPDATE
           SET last_full_at = excluded.last_full_at, high_water_mark = excluded.high_water_mark""",
        source_kind,
        scope,
        at,
        high_water_mark,
    )


async def advance_high_water_mark(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    source_kind: str,
    scope: str,
    high_water_mark: datetime,
) -> None:
    """An incremental run passed its count check: later runs ask for changes after this mark.
    The mark only moves forward."""
    await connection.execute(
        """UPDATE sync_scopes
           SET high_water_mark = greatest(high_water_mark, $3)
           WHERE source_kind = $1 AND workspace_id = $2""",
        source_kind,
        scope,
        high_water_mark,
    )


async def resolve_pending_links(
    connection: asyncpg.Connection | asyncpg.Pool, *, workspace_id: str, now: datetime
) -> int:
    """Move device links whose subscription has since been synced out of the unresolved table.

    A full walk does this as it re-merges every device; an incremental run re-merges only the
    devices that changed, so it resolves the waiting links here, set-based. Returns how many.
    """
    # One statement: the delete and the insert commit together.
    moved = await connection.fetchval(
        """WITH ready AS (
               DELETE FROM glp_unresolved_subscription_links u
               USING glp_subscriptions s
               WHERE u.workspace_id = $1 AND s.workspace_id = $1
                 AND s.id = u.subscription_id
               RETURNING u.device_id, u.subscription_id),
           ins AS (
               INSERT INTO glp_device_subscriptions
                   (workspace_id, device_id, subscription_id, first_seen)
               SELECT $1, device_id, subscription_id, $2 FROM ready
               ON CONFLICT DO NOTHING RETURNING 1)
           SELECT count(*) FROM ins""",
        workspace_id,
        now,
    )
    return int(moved)
