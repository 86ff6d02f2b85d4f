"""The sync_runs history: one row per run, claimed before it starts (store layer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from inventory_sync.results import RunResult

# Longer than any run may take (the CRD caps timeout at the interval; runs default to ≤ 10 m).
STALE_CLAIM = timedelta(hours=1)


@dataclass(frozen=True)
class ResourceIdentity:
    """Which custom resource a run belongs to; the uid survives renames, the names help humans."""

    kind: str
    namespace: str
    name: str
    uid: str


async def claim_run(
    pool: asyncpg.Pool,
    *,
    resource: ResourceIdentity,
    scheduled_at: datetime,
    claim_key: str,
    trigger: str,
    started_at: datetime,
    stale_after: timedelta = STALE_CLAIM,
) -> int | None:
    """Insert the run row; None when another replica holds this run.

    `claim_key` names what the run answers ("schedule:<due>", "manual:<requestedAt>",
    "generation:<n>"…): every replica derives the same key, so each request runs once.

    A run that ended without a result, or a claim older than `stale_after` that never
    finished (its holder crashed), is taken over: otherwise that scheduled run could never
    happen again.
    """
    value = await pool.fetchval(
        """INSERT INTO sync_runs (resource_kind, resource_namespace, resource_name, resource_uid,
                                  scheduled_at, trigger, started_at, state, claim_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'Running', $9)
           ON CONFLICT (resource_uid, claim_key) DO UPDATE
               SET started_at = excluded.started_at, trigger = excluded.trigger,
                   state = 'Running', finished_at = NULL, error = NULL
               -- A claim whose holder died (still 'Running' long past any run's timeout) or
               -- that ended without a result may be taken over; a live one never is.
               WHERE (sync_runs.state = 'Running' AND sync_runs.started_at < $7 - $8::interval)
                  OR sync_runs.state IN ('Abandoned', 'Cancelled')
           RETURNING id""",
        resource.kind,
        resource.namespace,
        resource.name,
        resource.uid,
        scheduled_at,
        trigger,
        started_at,
        stale_after,
        claim_key,
    )
    return None if value is None else int(value)


async def finish_run(pool: asyncpg.Pool, run_id: int, result: RunResult) -> None:
    """Record the outcome; sources are stored as the same JSON the status shows."""
    sources = [s.model_dump(mode="json", by_alias=True) for s in result.sources]
    await pool.execute(
        """UPDATE sync_runs SET finished_at = $2, state = $3, error = $4, sources = $5::jsonb
           WHERE id = $1""",
        run_id,
        result.finished_at,
        result.state.value,
        result.message,
        json.dumps(sources),
    )


async def end_run(
    pool: asyncpg.Pool, run_id: int, *, state: str, finished_at: datetime, message: str
) -> None:
    """A run that ended without a result: cancelled (Replace, deletion) or broken off."""
    await pool.execute(
        "UPDATE sync_runs SET finished_at = $2, state = $3, error = $4 WHERE id = $1",
        run_id,
        finished_at,
        state,
        message,
    )
