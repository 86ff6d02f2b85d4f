"""The change log: the SQL that records row changes inside the statements that make them, and its pruning (store layer).

Every write of an inventory row that a consumer would call a change — insert, content update,
soft delete, undelete — appends one row to `inventory_changes` from a data-modifying CTE of
the very statement that writes the row (migration 0009). The log therefore commits and rolls
back with the data: it cannot miss a change nor record one that did not happen. A write that
changes nothing (an unchanged resync) logs nothing.

What the log does not record, on purpose: GreenLake device↔subscription links. They are
derived from the device's own `subscription` field, so a link that appears or goes is logged
as an update of that device (`changes.subscription`); a link kept aside until its
subscription is synced, then resolved, follows the subscription's own insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from inventory_sync.store.tables import DELETED_UPSTREAM, TableSpec

#: Rows deleted per statement when pruning: short transactions, so a large backlog never
#: holds locks or a snapshot for long.
PRUNE_BATCH = 10_000


@dataclass(frozen=True)
class Provenance:
    """Who makes the changes of a merge: the run (sync_runs.id; None outside a run) and the
    name of its source (a Fabric: the Kind)."""

    run_id: int | None
    source: str


def page_log_ctes(spec: TableSpec, *, run: int, source: int) -> str:
    """CTEs for the page statement (store/statements.py) that log what its `written` CTE did.

    They rely on the statement's `stored` (the page's rows before the statement), `changed`
    (`id`, `d`: the new document) and `written` (`id`, `inserted`, `changed`, `new_<column>`)
    CTEs; `run` and `source` are the positions of the run id and source name parameters.
    Every CTE of one statement sees the table as it was before the statement, so `before`
    holds the old values of exactly the rows being rewritten.
    """
    table, scope = spec.table, spec.scope_column
    columns = list(spec.columns)
    old = ", ".join(f"t.{c}" for c in columns)
    differs = ", ".join(
        f"CASE WHEN w.new_{c} IS DISTINCT FROM b.{c} THEN '{c}' END" for c in columns
    )
    ignored = "ARRAY[" + ", ".join(f"'{k}'" for k in spec.volatile_keys) + "]::text[]"
    return f"""before AS MATERIALIZED (
    -- Old values, read only for rows whose content changed: an unchanged page reads nothing.
    SELECT t.id, t.deleted_at, t.data, {old} FROM {table} t
    WHERE t.{scope} = $1
      AND t.id = ANY(ARRAY(SELECT c.id FROM changed c JOIN stored s ON s.id = c.id))),
logged AS (
    INSERT INTO inventory_changes
        (run_id, source, table_name, scope, key, operation, changed_columns, changes, changed_at)
    SELECT ${run}::bigint, ${source}::text, '{table}', $1, w.id,
           CASE WHEN w.inserted THEN 'insert'
                WHEN b.deleted_at IS NOT NULL THEN 'undelete' ELSE 'update' END,
           CASE WHEN NOT w.inserted THEN array_remove(ARRAY[{differs}]::text[], NULL) END,
           diff.changes, $2
    FROM written w
    JOIN changed c ON c.id = w.id
    LEFT JOIN before b ON b.id = w.id
    LEFT JOIN LATERAL (
        -- The top-level fields of the document that differ, each value bounded. Inline rather
        -- than a function: measured at about half the cost per changed row.
        SELECT jsonb_object_agg(coalesce(n.key, o.key), jsonb_build_object(
                   'old', inventory_change_value(o.value),
                   'new', inventory_change_value(n.value)) ORDER BY coalesce(n.key, o.key))
               AS changes
        FROM jsonb_each(b.data) o FULL JOIN jsonb_each(c.d) n ON n.key = o.key
        WHERE NOT w.inserted  -- a gate: an insert's subquery is never run
          AND o.value IS DISTINCT FROM n.value AND coalesce(n.key, o.key) <> ALL({ignored})
    ) diff ON true
    -- A row rewritten only to record its first content hash (migration 0007) did not change.
    WHERE w.inserted OR w.changed)"""


def returned_columns(spec: TableSpec) -> str:
    """The new typed values the `written` CTE returns for `page_log_ctes` to compare."""
    return "".join(f", t.{c} AS new_{c}" for c in spec.columns)


def mark_deleted_statement(spec: TableSpec) -> str:
    """Soft-delete rows of one scope and log each one, in one statement.

    Parameters: $1 scope, $2 the ids, $3 now, $4 run id, $5 source. Returns one row: the
    number of rows deleted (already deleted ones are left alone and not logged).
    """
    table, scope = spec.table, spec.scope_column
    reason = f", deleted_reason = '{DELETED_UPSTREAM}'" if spec.has_deleted_reason else ""
    return f"""WITH gone AS (
    UPDATE {table} SET deleted_at = $3, changed_at = $3{reason}
    WHERE {scope} = $1 AND id = ANY($2::text[]) AND deleted_at IS NULL
    RETURNING id),
logged AS (
    INSERT INTO inventory_changes
        (run_id, source, table_name, scope, key, operation, reason, changed_at)
    SELECT $4::bigint, $5::text, '{table}', $1, id, 'delete', '{DELETED_UPSTREAM}', $3
    FROM gone)
SELECT count(*) FROM gone"""


def retire_fabric_rows_statement(where: str, *, first: int) -> str:
    """Soft-delete live fabric_objects rows matching `where` with a reason, logging each as a
    delete whose source is the row's Kind.

    `where` uses parameters $1..$(first-1); then ${first} now, ${first+1} the reason,
    ${first+2} the run id (NULL outside a run). Returns one row: how many were retired.
    """
    now, reason, run = first, first + 1, first + 2
    return f"""WITH gone AS (
    UPDATE fabric_objects
    SET deleted_at = ${now}, changed_at = ${now}, deleted_reason = ${reason}
    WHERE deleted_at IS NULL AND {where}
    RETURNING scope, id, kind),
logged AS (
    INSERT INTO inventory_changes
        (run_id, source, table_name, scope, key, operation, reason, changed_at)
    SELECT ${run}::bigint, kind, 'fabric_objects', scope, id, 'delete', ${reason}::text, ${now}
    FROM gone)
SELECT count(*) FROM gone"""


async def prune(pool: asyncpg.Pool, *, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete log rows recorded more than `older_than` ago (database clock), `batch` rows per
    statement; returns how many."""
    total = 0
    while True:
        deleted = await pool.fetchval(
            """WITH doomed AS (
                   SELECT id FROM inventory_changes
                   WHERE recorded_at < now() - $1::interval LIMIT $2),
               gone AS (
                   DELETE FROM inventory_changes c USING doomed d WHERE c.id = d.id RETURNING 1)
               SELECT count(*) FROM gone""",
            older_than,
            batch,
        )
        total += int(deleted)
        if int(deleted) < batch:
            return total
