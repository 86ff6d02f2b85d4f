"""One run of each SyncSchedule in a manifest, outside Kubernetes: what `inventory-sync sync` does."""

from __future__ import annotations

import asyncpg

from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.models import SyncSchedule
from inventory_sync.results import RunResult
from inventory_sync.store import runs
from inventory_sync.syncing import preflight as checks
from inventory_sync.syncing.credentials import SecretReader
from inventory_sync.syncing.pipeline import run_sync, utcnow
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.syncing.session import UpstreamSession


async def preflight(
    schedule: SyncSchedule, secrets: SecretReader, *, policy: EndpointPolicy | None = None
) -> None:
    """Check endpoints and resolve every source's credentials before anything is written."""
    await checks.check_schedule(
        schedule.spec,
        secrets=secrets,
        namespace=schedule.metadata.namespace,
        policy=policy or EndpointPolicy(),
    )


def identity_of(schedule: SyncSchedule) -> runs.ResourceIdentity:
    meta = schedule.metadata
    # Outside a cluster there is no uid; the namespaced name stands in for it.
    return runs.ResourceIdentity(
        kind="SyncSchedule",
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid or f"cli:{meta.namespace}/{meta.name}",
    )


async def run_once(
    schedule: SyncSchedule,
    *,
    pool: asyncpg.Pool,
    session: UpstreamSession,
    secrets: SecretReader,
    progress: ProgressListener | None = None,
    trigger: str = "cli",
) -> RunResult:
    """Claim a sync_runs row, run the pipeline, record the outcome."""
    now = utcnow()
    run_id = await runs.claim_run(
        pool,
        resource=identity_of(schedule),
        scheduled_at=now,
        claim_key=f"{trigger}:{now.isoformat()}",
        trigger=trigger,
        started_at=now,
    )
    result = await run_sync(
        schedule.spec,
        pool=pool,
        session=session,
        secrets=secrets,
        namespace=schedule.metadata.namespace,
        trigger=trigger,
        progress=progress,
    )
    if run_id is not None:
        await runs.finish_run(pool, run_id, result)
    return result
