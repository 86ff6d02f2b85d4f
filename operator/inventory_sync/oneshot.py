"""One run of each SyncSchedule in a manifest, outside Kubernetes: what `inventory-sync sync` does.

It takes the operator's steps (running.steps) and report (running.report): credentials
resolved once, the lease and claim in sync_runs, the pipeline under the same timeout, the
outcome recorded. Status goes to memory instead of the API server, so the CLI can print
the status the operator would have written.
"""

from __future__ import annotations

import secrets as tokens
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.errors import InventorySyncError
from inventory_sync.models import SyncSchedule
from inventory_sync.reconciling.due import Due, Trigger
from inventory_sync.results import RunResult
from inventory_sync.running import credentials
from inventory_sync.running.report import Ending
from inventory_sync.running.resource import SYNC_SCHEDULE, Tracked
from inventory_sync.running.runner import Runner
from inventory_sync.running.sinks import MemoryEventSink, MemoryStatusSink
from inventory_sync.running.steps import RunDeps
from inventory_sync.store.runs import ResourceIdentity, RunStore
from inventory_sync.syncing.credentials import SecretReader
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.syncing.session import UpstreamSession

# A CLI run renews its lease like the operator's; nobody else runs "cli:<namespace>/<name>".
LEASE = timedelta(seconds=30)


async def preflight(
    schedule: SyncSchedule, secrets: SecretReader, *, policy: EndpointPolicy | None = None
) -> None:
    """Check endpoints and resolve every source's credentials before anything is written: the
    run's first step, taken for every schedule of a manifest before the first run."""
    await credentials.resolve_schedule(
        schedule.spec, namespace=schedule.metadata.namespace, source=secrets,
        policy=policy or EndpointPolicy(),
    )  # fmt: skip


def identity_of(schedule: SyncSchedule) -> ResourceIdentity:
    meta = schedule.metadata
    # Outside a cluster there is no uid; the namespaced name stands in for it.
    return ResourceIdentity(
        kind="SyncSchedule",
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid or f"cli:{meta.namespace}/{meta.name}",
    )


@dataclass
class OneShot:
    """The sinks of CLI runs: the status the operator would have written, and its Events."""

    status: MemoryStatusSink = field(default_factory=MemoryStatusSink)
    events: MemoryEventSink = field(default_factory=MemoryEventSink)


async def run_once(
    schedule: SyncSchedule,
    *,
    pool: asyncpg.Pool,
    session: UpstreamSession,
    secrets: SecretReader,
    progress: ProgressListener | None = None,
    trigger: Trigger = Trigger.CLI,
    sinks: OneShot | None = None,
) -> RunResult:
    """Resolve, claim, run and record one run, exactly as the operator would; errors that kept
    it from finishing are raised (the CLI turns them into its exit code)."""
    sinks = sinks or OneShot()
    deps = RunDeps(
        store=RunStore(pool, holder=f"cli/{tokens.token_hex(4)}", lease_ttl=LEASE),
        pool=pool, session=session, secrets=secrets, status=sinks.status, events=sinks.events,
    )  # fmt: skip
    resource = tracked(schedule)
    now = datetime.now(UTC)
    due = Due(trigger, now, claim_key=f"{trigger.value}:{now.isoformat()}", anchor=now)
    end = await Runner(deps).run(resource, schedule.spec, due, progress=progress)
    if end.ending is Ending.FINISHED and end.result is not None:
        return end.result
    if end.error is not None:
        raise end.error
    raise InventorySyncError(f"the run did not take place: {end.ending.value}")


def tracked(schedule: SyncSchedule) -> Tracked:
    """The schedule as the operator would see it, had it been applied (generation 1, no status)."""
    identity = identity_of(schedule)
    body: dict[str, Any] = {
        "metadata": {
            "name": identity.name,
            "namespace": identity.namespace,
            "uid": identity.uid,
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "status": {},
    }
    return Tracked(SYNC_SCHEDULE, body)
