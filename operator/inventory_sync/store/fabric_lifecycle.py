"""Which Fabrics exist and retiring the rows that outlived their source (store layer).

A retired row is soft-deleted with a reason (fabric_objects.deleted_reason) and logged as a
delete in inventory_changes by the same statement (store/changes.py); its scope loses its
sync_scopes entry, because it is no longer being synced. A later listing of the same object
brings the row back (the merge clears deleted_at and deleted_reason).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from inventory_sync.store import changes
from inventory_sync.store.runs import ResourceIdentity

logger = logging.getLogger(__name__)

KIND_DROPPED = "kind-dropped"  # no longer in the Fabric's spec.kinds
CRD_REMOVED = "crd-removed"  # the fabric serves the kind at no version any more
FABRIC_DELETED = "fabric-deleted"  # the Fabric resource is gone


@dataclass(frozen=True)
class RegisteredFabric:
    uid: str
    namespace: str
    name: str


async def register_fabric(
    pool: asyncpg.Pool, *, fabric: ResourceIdentity, owner: str, now: datetime
) -> None:
    """Record that `owner`'s operator runs this Fabric (again, if it had been retired)."""
    await pool.execute(
        """INSERT INTO fabrics (fabric_uid, owner, namespace, name, first_seen, last_seen)
           VALUES ($1, $2, $3, $4, $5, $5)
           ON CONFLICT (fabric_uid) DO UPDATE
               SET owner = excluded.owner, namespace = excluded.namespace,
                   name = excluded.name, last_seen = excluded.last_seen,
                   deleted_at = NULL, deleted_reason = NULL""",
        fabric.uid,
        owner,
        fabric.namespace,
        fabric.name,
        now,
    )


async def registered_fabrics(
    pool: asyncpg.Pool, *, owner: str, namespaces: Collection[str] | None
) -> list[RegisteredFabric]:
    """Live Fabrics `owner` registered, in `namespaces` (None: every namespace)."""
    rows = await pool.fetch(
        """SELECT fabric_uid, namespace, name FROM fabrics
           WHERE owner = $1 AND deleted_at IS NULL
             AND ($2::text[] IS NULL OR namespace = ANY($2::text[]))
           ORDER BY namespace, name""",
        owner,
        None if namespaces is None else list(namespaces),
    )
    return [RegisteredFabric(r["fabric_uid"], r["namespace"], r["name"]) for r in rows]


async def retire_other_scopes(
    pool: asyncpg.Pool,
    *,
    fabric_uid: str,
    keep: Collection[str],
    now: datetime,
    run_id: int | None = None,
) -> int:
    """Retire the Fabric's live rows outside the scopes of the kinds it still lists; `run_id`
    is the run doing it (None: the retirement loop between runs)."""
    async with pool.acquire() as connection, connection.transaction():
        count = await _retire(
            connection,
            "fabric_uid = $1 AND NOT (scope = ANY($2::text[]))",
            [fabric_uid, list(keep)],
            reason=KIND_DROPPED,
            now=now,
            run_id=run_id,
        )
        await connection.execute(
            """DELETE FROM sync_scopes WHERE source_kind = 'fabric'
               AND left(workspace_id, length($1) + 1) = $1 || '/' AND NOT (workspace_id = ANY($2::text[]))""",
            fabric_uid,
            list(keep),
        )
    return count


async def retire_scope(
    pool: asyncpg.Pool, *, scope: str, reason: str, now: datetime, run_id: int | None = None
) -> int:
    """Retire every live row of one scope (one kind of one Fabric), within run `run_id`."""
    async with pool.acquire() as connection, connection.transaction():
        count = await _retire(
            connection, "scope = $1", [scope], reason=reason, now=now, run_id=run_id
        )
        await connection.execute(
            "DELETE FROM sync_scopes WHERE source_kind = 'fabric' AND workspace_id = $1", scope
        )
    return count


async def retire_fabric(pool: asyncpg.Pool, *, fabric_uid: str, now: datetime) -> int:
    """The Fabric is gone: retire it and every live row it synced."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """UPDATE fabrics SET deleted_at = $2, deleted_reason = $3
               WHERE fabric_uid = $1 AND deleted_at IS NULL""",
            fabric_uid,
            now,
            FABRIC_DELETED,
        )
        # No run retires a deleted Fabric: its log rows have no run id.
        count = await _retire(
            connection, "fabric_uid = $1", [fabric_uid], reason=FABRIC_DELETED, now=now,
            run_id=None,
        )  # fmt: skip
        await connection.execute(
            "DELETE FROM sync_scopes WHERE source_kind = 'fabric'"
            " AND left(workspace_id, length($1) + 1) = $1 || '/'",
            fabric_uid,
        )
    return count


async def refresh_statistics(pool: asyncpg.Pool) -> None:
    """ANALYZE fabric_objects now rather than when autovacuum gets to it: the typed views join
    the table to itself, and with statistics from before a bulk insert PostgreSQL plans nested
    loops over thousands of rows (measured with 4,367 objects: 0.76 s for fabric_vpc_attachments
    before, 0.03 s after). Only the table owner may; anyone else keeps autovacuum's timing."""
    try:
        await pool.execute("ANALYZE fabric_objects")
    except asyncpg.InsufficientPrivilegeError:
        logger.info("not allowed to ANALYZE fabric_objects; autovacuum will")


async def _retire(
    connection: asyncpg.Connection,
    where: str,
    args: list[object],
    *,
    reason: str,
    now: datetime,
    run_id: int | None,
) -> int:
    sql = changes.retire_fabric_rows_statement(where, first=len(args) + 1)
    count = await connection.fetchval(sql, *args, now, reason, run_id)
    return int(count)
