"""Staged merges of upstream pages into inventory tables: COPY, then upsert only what changed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import asyncpg

from inventory_sync.errors import StoreError
from inventory_sync.store.tables import DELETED_UPSTREAM, TableSpec


@dataclass
class MergeCounts:
    """What the merges of one source did, summed over its pages."""

    staged: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0  # items without a usable `id`
    links_added: int = 0
    links_removed: int = 0
    unresolved_links: int = 0  # links staged whose subscription is unknown
    rejected_examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WalkShape:
    """How many items a walk delivered and how many distinct ids: the consistency evidence."""

    delivered: int
    distinct: int


class ScopeMerge:
    """One source's merge session on one connection: pages in, then (maybe) deletions.

    Ids seen so far are kept in a temp table on the session's connection, so deletion can be
    judged after the last page without holding the dataset in memory.
    """

    def __init__(
        self, connection: asyncpg.Connection, *, spec: TableSpec, workspace_id: str, now: datetime
    ) -> None:
        self._conn = connection
        self._spec = spec
        self._workspace = workspace_id
        self._now = now
        self.counts = MergeCounts()

    async def __aenter__(self) -> ScopeMerge:
        await self._conn.execute(
            """CREATE TEMP TABLE IF NOT EXISTS stage_items (id text, data text) ON COMMIT DELETE ROWS;
               CREATE TEMP TABLE IF NOT EXISTS stage_links
                   (device_id text, subscription_id text, resource_uri text) ON COMMIT DELETE ROWS;
               CREATE TEMP TABLE IF NOT EXISTS seen_ids (id text);
               TRUNCATE seen_ids;"""
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The connection goes back to a pool: leave no temp tables for the next borrower.
        if not self._conn.is_closed():
            # A broken connection is discarded by the pool anyway.
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await self._conn.execute("DROP TABLE IF EXISTS stage_items, stage_links, seen_ids")

    async def merge_page(self, items: Sequence[Any]) -> None:
        """Upsert one page in one transaction; counts accumulate in `self.counts`."""
        records: list[tuple[str, str]] = []
        id_field = self._spec.id_field
        for item in items:
            item_id = item.get(id_field) if isinstance(item, dict) else None
            if not isinstance(item_id, str) or not item_id:
                self.counts.rejected += 1
                if len(self.counts.rejected_examples) < 3:
                    self.counts.rejected_examples.append(json.dumps(item)[:120])
                continue
            records.append((item_id, json.dumps(item, separators=(",", ":"))))
        if not records:
            return
        try:
            async with self._conn.transaction():
                await self._conn.copy_records_to_table(
                    "stage_items", records=records, columns=["id", "data"]
                )
                rows = await self._conn.fetch(self._upsert_sql(), self._workspace, self._now)
                if self._spec.has_subscription_links:
                    await self._merge_links()
                await self._conn.execute("INSERT INTO seen_ids (id) SELECT id FROM stage_items")
        except asyncpg.PostgresError as error:
            raise StoreError(f"merge into {self._spec.table} failed: {error}") from error
        inserted = sum(1 for row in rows if row["inserted"])
        distinct = len({r[0] for r in records})
        self.counts.staged += len(records)
        self.counts.inserted += inserted
        self.counts.updated += len(rows) - inserted
        self.counts.unchanged += distinct - len(rows)

    def _upsert_sql(self) -> str:
        spec = self._spec
        names = ", ".join(spec.columns)
        exprs = ", ".join(spec.columns.values())
        sets = ", ".join(f"{c} = excluded.{c}" for c in spec.columns)
        scope = spec.scope_column
        revive = ", deleted_reason = NULL" if spec.has_deleted_reason else ""
        old, new = "t.data", "excluded.data"
        if spec.volatile_keys:
            keys = ", ".join(f"'{k}'" for k in spec.volatile_keys)
            old, new = f"({old} - ARRAY[{keys}])", f"({new} - ARRAY[{keys}])"
        # The WHERE makes an unchanged row a no-op: no new tuple, no WAL, no trigger.
        return f"""
            INSERT INTO {spec.table} AS t
                ({scope}, id, {names}, data, first_seen, changed_at, deleted_at)
            SELECT $1, s.id, {exprs}, d, $2, $2, NULL
            FROM (SELECT DISTINCT ON (id) id, data::jsonb AS d FROM stage_items ORDER BY id) s
            ON CONFLICT ({scope}, id) DO UPDATE
                SET {sets}, data = excluded.data, changed_at = excluded.changed_at,
                    deleted_at = NULL{revive}
                WHERE {old} IS DISTINCT FROM {new} OR t.deleted_at IS NOT NULL
            RETURNING (xmax = 0) AS inserted"""

    async def _merge_links(self) -> None:
        """Replace the links of this page's devices with what the page says, touching only
        links that changed; links to unknown subscriptions go to the unresolved table."""
        conn, ws, now = self._conn, self._workspace, self._now
        await conn.execute(
            """INSERT INTO stage_links (device_id, subscription_id, resource_uri)
               SELECT DISTINCT s.id, l->>'id', l->>'resourceUri'
               FROM stage_items s,
                    jsonb_array_elements(CASE WHEN jsonb_typeof(s.data::jsonb->'subscription')
                        = 'array' THEN s.data::jsonb->'subscription' ELSE '[]'::jsonb END) l
               WHERE jsonb_typeof(l) = 'object' AND coalesce(l->>'id', '') <> ''"""
        )
        added = await conn.fetchval(
            """WITH ins AS (
                   INSERT INTO glp_device_subscriptions
                       (workspace_id, device_id, subscription_id, first_seen)
                   SELECT $1, l.device_id, l.subscription_id, $2
                   FROM stage_links l
                   JOIN glp_subscriptions s ON s.workspace_id = $1 AND s.id = l.subscription_id
                   ON CONFLICT DO NOTHING RETURNING 1)
               SELECT count(*) FROM ins""",
            ws,
            now,
        )
        removed = await conn.fetchval(
            """WITH del AS (
                   DELETE FROM glp_device_subscriptions d
                   WHERE d.workspace_id = $1
                     AND d.device_id IN (SELECT id FROM stage_items)
                     AND NOT EXISTS (SELECT 1 FROM stage_links l
                                     WHERE l.device_id = d.device_id
                                       AND l.subscription_id = d.subscription_id)
                   RETURNING 1)
               SELECT count(*) FROM del""",
            ws,
        )
        await conn.execute(
            """DELETE FROM glp_unresolved_subscription_links u
               WHERE u.workspace_id = $1
                 AND u.device_id IN (SELECT id FROM stage_items)
                 AND (NOT EXISTS (SELECT 1 FROM stage_links l
                                  WHERE l.device_id = u.device_id
                                    AND l.subscription_id = u.subscription_id)
                      OR EXISTS (SELECT 1 FROM glp_subscriptions s
                                 WHERE s.workspace_id = $1 AND s.id = u.subscription_id))""",
            ws,
        )
        unresolved = await conn.fetchval(
            """WITH unknown AS (
                   SELECT l.* FROM stage_links l
                   WHERE NOT EXISTS (SELECT 1 FROM glp_subscriptions s
                                     WHERE s.workspace_id = $1 AND s.id = l.subscription_id)),
               ins AS (
                   INSERT INTO glp_unresolved_subscription_links
                       (workspace_id, device_id, subscription_id, resource_uri, first_seen)
                   SELECT $1, device_id, subscription_id, resource_uri, $2 FROM unknown
                   ON CONFLICT DO NOTHING)
               SELECT count(*) FROM unknown""",
            ws,
            now,
        )
        self.counts.links_added += int(added)
        self.counts.links_removed += int(removed)
        self.counts.unresolved_links += int(unresolved)

    async def walk_shape(self) -> WalkShape:
        row = await self._conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT id) AS d FROM seen_ids"
        )
        assert row is not None
        return WalkShape(delivered=int(row["n"]), distinct=int(row["d"]))

    async def missing_ids(self) -> list[str]:
        """Live rows of this scope that the walk did not deliver: deletion candidates."""
        rows = await self._conn.fetch(
            f"""SELECT t.id FROM {self._spec.table} t
                WHERE t.{self._spec.scope_column} = $1 AND t.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM seen_ids s WHERE s.id = t.id)
                ORDER BY t.id""",
            self._workspace,
        )
        return [row["id"] for row in rows]

    async def mark_deleted(self, ids: Sequence[str]) -> int:
        """Soft-delete rows confirmed gone upstream and record the scope as completely seen."""
        reason = f", deleted_reason = '{DELETED_UPSTREAM}'" if self._spec.has_deleted_reason else ""
        async with self._conn.transaction():
            status = await self._conn.execute(
                f"""UPDATE {self._spec.table} SET deleted_at = $3, changed_at = $3{reason}
                    WHERE {self._spec.scope_column} = $1 AND id = ANY($2::text[])
                      AND deleted_at IS NULL""",
                self._workspace,
                list(ids),
                self._now,
            )
            await self._conn.execute(
                """INSERT INTO sync_scopes (source_kind, workspace_id, last_complete_at)
                   VALUES ($1, $2, $3)
                   ON CONFLICT (source_kind, workspace_id)
                   DO UPDATE SET last_complete_at = excluded.last_complete_at""",
                self._spec.source_kind,
                self._workspace,
                self._now,
            )
        return int(status.split()[-1])
