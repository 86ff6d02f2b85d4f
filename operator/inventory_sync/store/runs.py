"""The sync_runs history: one row per run, claimed before it starts (store layer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from inventory_sync.results import RunResult


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
    trigger: str,
    started_at: datetime,
) -> int | None:
    """Insert the run row; None when another replica already claimed this scheduled run."""
    value = await pool.fetchval(
        """INSERT INTO sync_runs (resource_kind, resource_namespace, resource_name, resource_uid,
                                  scheduled_at, trigger, started_at, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'Running')
           ON CONFLICT (resource_uid, scheduled_at) DO NOTHING
           RETURNING id""",
        resource.kind,
        resource.namespace,
        resource.name,
        resource.uid,
        scheduled_at,
        trigger,
        started_at,
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


async def cancel_run(pool: asyncpg.Pool, run_id: int, *, finished_at: datetime) -> None:
    """A run cut short by Replace or by the resource's deletion."""
    await pool.execute(
        """UPDATE sync_runs SET finished_at = $2, state = 'Cancelled',
                  error = 'cancelled: replaced by a newer run or the resource was deleted'
           WHERE id = $1""",
        run_id,
        finished_at,
    )
