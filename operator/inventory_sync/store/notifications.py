"""`NOTIFY inventory_sync` as a run's row leaves `Running`: the SQL that sends it and its payload (store layer).

A run's row leaves `Running` exactly once — finished (Succeeded, Failed, TimedOut), cancelled,
or abandoned (by itself, or by the replica that took its lease over) — and every statement
that moves it out (store/runs.py) selects `pg_notify` over the rows it moved. PostgreSQL
delivers a notification when, and only if, its transaction commits: a consumer that LISTENs
gets exactly one notification per run, after the run's changes and its row are visible.
docs/database.md shows the payload and how to consume it.
"""

from __future__ import annotations

import json
from typing import Any

from inventory_sync.results import RunResult

CHANNEL = "inventory_sync"

#: PostgreSQL refuses a payload of 8000 bytes or more. Ours is bounded well below: text from
#: the run row is cut to Kubernetes' longest name (253), the rest are numbers and timestamps.
PAYLOAD_LIMIT = 8000
_NAME = 253


def notify_sql(moved: str, *, returning: str = "m.id") -> str:
    """A SELECT that sends one notification per row of the CTE `moved` and returns
    `returning` (columns of `m`) for each.

    `moved` is the UPDATE that took sync_runs rows out of Running; it must return id,
    resource_kind, resource_namespace, resource_name, resource_uid, state, finished_at and
    `counts` (json from `counts_json`, or NULL for a run that ended without a result).
    """
    return f"""SELECT {returning}, pg_notify('{CHANNEL}', json_build_object(
           'runId', m.id,
           'kind', left(m.resource_kind, {_NAME}),
           'namespace', left(m.resource_namespace, {_NAME}),
           'name', left(m.resource_name, {_NAME}),
           'uid', left(m.resource_uid, {_NAME}),
           'state', left(m.state, 32),
           'finishedAt', m.finished_at,
           -- What a consumer reads next: inventory_changes WHERE run_id = runId.
           'changes', (SELECT count(*) FROM inventory_changes c WHERE c.run_id = m.id),
           'counts', m.counts)::text) AS notified
FROM {moved} m"""


#: What `moved` returns besides the caller's own columns.
MOVED_COLUMNS = (
    "id, resource_kind, resource_namespace, resource_name, resource_uid, state, finished_at"
)


def counts_json(result: RunResult | None) -> str | None:
    """The run's row counts summed over its sources (inserted, updated, deleted, unchanged,
    fetched, errors) as JSON, or None for a run that ended without a result."""
    if result is None:
        return None
    totals: dict[str, Any] = {
        name: sum(int(getattr(s, name)) for s in result.sources)
        for name in ("inserted", "updated", "deleted", "unchanged", "fetched", "errors")
    }
    totals["sources"] = len(result.sources)
    return json.dumps(totals)
