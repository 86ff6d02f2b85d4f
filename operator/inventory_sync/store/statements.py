"""The SQL of one page's merge, built once per table (store layer).

One statement per page: the page arrives as arrays (ids, hashes, JSON texts, links), and
data-modifying CTEs upsert the rows whose hash differs, re-derive the links of exactly those
rows and record the ids the walk has seen. One round trip, one implicit transaction, no temp
tables, and every step is bounded by the page (index probes by primary key), never by the
size of the workspace.
"""

from __future__ import annotations

from inventory_sync.store import changes
from inventory_sync.store.tables import TableSpec


def page_statement(spec: TableSpec, seen_table: str, *, log_changes: bool = True) -> str:
    """The merge of one page into `spec.table`; `seen_table` (quoted) records the page's ids.

    Parameters: $1 scope, $2 now, then `StagedPage.arguments`: $3 the ids (a JSON array),
    $4 their hashes (16 bytes each, concatenated), $5 their documents (newline-separated);
    for GreenLake devices $6 the links (a JSON array of [device, subscription, URI]); then
    the ids repeated within the page (a JSON array), recorded in `seen_table`. With
    `log_changes` (always, but for the benchmark's baseline), two more: the run id and the
    source name, and every row written is logged in inventory_changes (store/changes.py).

    Returns one row: inserted, updated (content changed or undeleted), and for GreenLake
    devices links_added, links_removed and unresolved (the page's links whose subscription is
    unknown). A row rewritten only to record its first hash counts as neither.
    """
    scope, table = spec.scope_column, spec.table
    names = ", ".join(spec.columns)
    exprs = ", ".join(spec.columns.values())
    sets = ", ".join(f"{c} = excluded.{c}" for c in spec.columns)
    old, new = "t.data", "excluded.data"
    if spec.volatile_keys:
        keys = ", ".join(f"'{k}'" for k in spec.volatile_keys)
        old, new = f"({old} - ARRAY[{keys}])", f"({new} - ARRAY[{keys}])"
    # A row from before content hashes (migration 0007) whose content is unchanged: record its
    # hash, keep its changed_at, and do not count it as updated.
    revive = ", deleted_reason = NULL" if spec.has_deleted_reason else ""
    first_hash = f"(t.content_hash IS NULL AND t.deleted_at IS NULL AND {old} = {new})"
    repeated = 7 if spec.has_subscription_links else 6
    seen = f"""seen AS (
    INSERT INTO {seen_table} (id)
    SELECT id FROM page UNION ALL SELECT json_array_elements_text(${repeated}::json)),"""
    returned, log = "", ""
    if log_changes:
        returned = changes.returned_columns(spec)
        log = ",\n" + changes.page_log_ctes(spec, run=repeated + 1, source=repeated + 2)
    sql = f"""WITH settings AS MATERIALIZED (
    -- This transaction's commit need not wait for its WAL to reach disk: a crash loses at most
    -- the last moments of merges, which the next run redoes, and the run record written
    -- after them (synchronous) flushes every earlier commit with its own.
    SELECT set_config('synchronous_commit', 'off', true)),
page AS MATERIALIZED (
    SELECT p.id, substring($4::bytea FROM p.n::int * 16 - 15 FOR 16) AS hash, p.data
    FROM ROWS FROM (json_array_elements_text($3::json), string_to_table($5::text, E'\\n'))
         WITH ORDINALITY AS p(id, data, n)),
{seen}
stored AS MATERIALIZED (
    -- Probes by primary key, whatever the planner believes about the table: a join here could
    -- hash the whole scope once per page when statistics lag behind a large first sync.
    SELECT t.id, t.content_hash, t.deleted_at FROM {table} t
    WHERE t.{scope} = $1 AND t.id = ANY(ARRAY(SELECT id FROM page))),
changed AS MATERIALIZED (
    -- Only rows whose hash differs (or that are new or deleted) are parsed as JSON at all.
    SELECT p.id, p.hash, p.data::jsonb AS d
    FROM page p LEFT JOIN stored t ON t.id = p.id
    WHERE t.id IS NULL OR t.deleted_at IS NOT NULL OR t.content_hash IS DISTINCT FROM p.hash),
written AS (
    INSERT INTO {table} AS t
        ({scope}, id, {names}, data, content_hash, first_seen, changed_at, deleted_at)
    SELECT $1, id, {exprs}, d, hash, $2, $2, NULL FROM changed
    ORDER BY id  -- one lock order for every page statement: two in flight never deadlock
    ON CONFLICT ({scope}, id) DO UPDATE
        SET {sets}, data = excluded.data, content_hash = excluded.content_hash,
            changed_at = CASE WHEN {first_hash} THEN t.changed_at ELSE excluded.changed_at END,
            deleted_at = NULL{revive}
        -- Repeated here for a concurrent writer of the same scope: never rewrite an equal row.
        WHERE t.content_hash IS DISTINCT FROM excluded.content_hash OR t.deleted_at IS NOT NULL
    RETURNING t.id, (xmax = 0) AS inserted, t.changed_at = $2 AS changed{returned}){log}"""
    counts = """(SELECT count(*) FROM written WHERE inserted) AS inserted,
       (SELECT count(*) FROM written WHERE changed AND NOT inserted) AS updated"""
    if not spec.has_subscription_links:
        return f"{sql}\nSELECT {counts} FROM settings"
    return f"""{sql},
{_LINK_CTES}
SELECT {counts},
       (SELECT count(*) FROM links_added) AS links_added,
       (SELECT count(*) FROM links_removed) AS links_removed,
       (SELECT count(*) FROM links WHERE NOT known) AS unresolved
FROM settings"""


# The links of the rows written above, and only those: an unchanged device's links are what
# its unchanged document says, already stored. Resolved and unresolved links are kept in step
# by subscription: known ones in glp_device_subscriptions, the others aside until their
# subscription is synced (then `RESOLVE_PENDING_LINKS` moves them). These CTEs are why the
# link tables need no foreign keys (migration 0012): they link only rows written here and
# subscriptions found here.
_LINK_CTES = """links AS MATERIALIZED (
    SELECT l.device_id, l.subscription_id, l.resource_uri, s.id IS NOT NULL AS known
    FROM (SELECT e->>0 AS device_id, e->>1 AS subscription_id, e->>2 AS resource_uri
          FROM json_array_elements($6::json) AS e) l
    LEFT JOIN glp_subscriptions s ON s.workspace_id = $1 AND s.id = l.subscription_id),
relinked AS MATERIALIZED (
    SELECT l.* FROM links l JOIN written w ON w.id = l.device_id),
written_ids AS MATERIALIZED (
    -- As an array: the deletes below probe by primary key (see `stored`). Only rewritten rows:
    -- a row inserted just now has no links stored (links are written only with their device,
    -- and a linked device cannot be deleted: migration 0012), and probing for them cost a
    -- fresh page ~5 % of its statement.
    SELECT coalesce(array_agg(id) FILTER (WHERE NOT inserted), '{}') AS ids FROM written),
links_removed AS (
    DELETE FROM glp_device_subscriptions x
    WHERE x.workspace_id = $1 AND x.device_id = ANY((SELECT ids FROM written_ids)::text[])
      AND NOT EXISTS (SELECT 1 FROM relinked r
                      WHERE r.known AND r.device_id = x.device_id
                        AND r.subscription_id = x.subscription_id)
    RETURNING 1),
links_added AS (
    INSERT INTO glp_device_subscriptions (workspace_id, device_id, subscription_id, first_seen)
    SELECT $1, device_id, subscription_id, $2 FROM relinked WHERE known
    ORDER BY device_id, subscription_id
    ON CONFLICT DO NOTHING
    RETURNING 1),
unresolved_removed AS (
    DELETE FROM glp_unresolved_subscription_links u
    WHERE u.workspace_id = $1 AND u.device_id = ANY((SELECT ids FROM written_ids)::text[])
      AND NOT EXISTS (SELECT 1 FROM relinked r
                      WHERE NOT r.known AND r.device_id = u.device_id
                        AND r.subscription_id = u.subscription_id)),
unresolved_added AS (
    INSERT INTO glp_unresolved_subscription_links
        (workspace_id, device_id, subscription_id, resource_uri, first_seen)
    SELECT $1, device_id, subscription_id, resource_uri, $2 FROM relinked WHERE NOT known
    ON CONFLICT DO NOTHING)"""

#: Links kept aside whose subscription has since been synced become real links: once per
#: walk, bounded by the links that move (an unchanged device is not re-examined per page).
RESOLVE_PENDING_LINKS = """WITH moved AS (
    DELETE FROM glp_unresolved_subscription_links u USING glp_subscriptions s
    WHERE u.workspace_id = $1 AND s.workspace_id = $1 AND s.id = u.subscription_id
    RETURNING u.device_id, u.subscription_id),
added AS (
    INSERT INTO glp_device_subscriptions (workspace_id, device_id, subscription_id, first_seen)
    SELECT $1, device_id, subscription_id, $2 FROM moved
    ON CONFLICT DO NOTHING
    RETURNING 1)
SELECT count(*) FROM added"""
