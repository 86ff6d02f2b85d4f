"""The sync_runs history and the claim of a run under its resource's lease (store layer).

A claim is one transaction: take the resource's lease (store/leases.py), mark any run the
dead previous holder left `Running` as `Abandoned`, then insert the run's row, unique per
(resource uid, claim key) among runs that produced or may still produce a result. So a
resource runs at most once at a time cluster-wide, and each request (a due time, a manual
request, a generation) is answered once; a cancelled or abandoned attempt keeps its row.

Whichever statement moves a run's row out of `Running` also sends its one
`NOTIFY inventory_sync` (store/notifications.py), delivered when that statement commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from inventory_sync.results import RunResult
from inventory_sync.store import leases, notifications
from inventory_sync.store.database import store_errors
from inventory_sync.store.notifications import MOVED_COLUMNS, notify_sql

# Terminal states that do not answer the request: the same claim key may run again.
UNANSWERED = ("Cancelled", "Abandoned")


@dataclass(frozen=True)
class ResourceIdentity:
    """Which custom resource a run belongs to; the uid survives renames, the names help humans."""

    kind: str
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class RunRecord:
    """A sync_runs row, enough to rebuild the status its run should have written."""

    id: int
    claim_key: str
    trigger: str
    state: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    sources: list[dict[str, Any]]
    generation: int | None
    seconds: float | None
    #: Seconds since its status landed (database clock); None when it never did.
    status_written_age: float | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None and self.state not in ("Running", *UNANSWERED)


@dataclass(frozen=True)
class AbandonedRun:
    """A run found `Running` under an expired lease (or none): its holder is gone."""

    id: int
    claim_key: str
    holder: str | None


@dataclass(frozen=True)
class Claimed:
    """The lease is ours and the run's row exists."""

    run_id: int
    abandoned: tuple[AbandonedRun, ...] = ()
    took_over_from: str | None = None


@dataclass(frozen=True)
class Busy:
    """A live holder has the resource's lease; look again after `retry_in` seconds."""

    holder: str
    retry_in: float


@dataclass(frozen=True)
class Answered:
    """The request already has a finished run. With `restate`, its status never landed (or was
    lost): the lease is ours and the caller writes the status from `record`, then releases."""

    record: RunRecord
    restate: bool
    abandoned: tuple[AbandonedRun, ...] = field(default=())


Claim = Claimed | Busy | Answered


class RunStore:
    """Claims, leases and run rows on one pool, as one holder (this process)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        holder: str,
        lease_ttl: timedelta,
        restate_after: timedelta = timedelta(seconds=60),
        timeout: float = 10.0,
    ) -> None:
        self.pool = pool
        self.holder = holder
        self.lease_ttl = lease_ttl
        #: A finished run whose status landed this long ago, yet the resource's status still
        #: asks for the same request, had its status lost or rolled back: write it again.
        self.restate_after = restate_after
        self._timeout = timeout  # every statement: a database that hangs is a failed one

    async def claim(
        self,
        *,
        resource: ResourceIdentity,
        claim_key: str,
        scheduled_at: datetime,
        trigger: str,
        started_at: datetime,
        generation: int | None,
    ) -> Claim:
        """Take the lease and insert the run's row, in one transaction (see the module doc)."""
        with store_errors(f"claiming a run of {resource.namespace}/{resource.name}"):
            async with (
                self.pool.acquire(timeout=self._timeout) as connection,
                connection.transaction(),
            ):
                return await self._claim(
                    connection, resource=resource, claim_key=claim_key,
                    scheduled_at=scheduled_at, trigger=trigger, started_at=started_at,
                    generation=generation,
                )  # fmt: skip

    async def _claim(
        self,
        connection: asyncpg.Connection,
        *,
        resource: ResourceIdentity,
        claim_key: str,
        scheduled_at: datetime,
        trigger: str,
        started_at: datetime,
        generation: int | None,
    ) -> Claim:
        uid = resource.uid
        found = await leases.current(connection, uid)
        if found is not None and not found.expired and found.holder != self.holder:
            return Busy(found.holder, max(found.remaining, 0.0))
        taken = await leases.take(
            connection, resource_uid=uid, holder=self.holder, claim_key=claim_key,
            ttl=self.lease_ttl,
        )  # fmt: skip
        if not taken:  # someone inserted it between our look and our take
            return Busy("another replica", self.lease_ttl.total_seconds())
        took_over = found.holder if found is not None and found.holder != self.holder else None
        # We hold the lease and run nothing of this resource: whatever still says Running is
        # the corpse of a holder that died (or of an operator from before leases existed).
        abandoned = await _abandon_running(connection, uid, found.expires_at if found else None)
        run_id = await connection.fetchval(
            """INSERT INTO sync_runs (resource_kind, resource_namespace, resource_name,
                   resource_uid, scheduled_at, trigger, started_at, state, claim_key,
                   generation, holder)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'Running', $8, $9, $10)
               ON CONFLICT (resource_uid, claim_key)
                   WHERE state NOT IN ('Cancelled', 'Abandoned') DO NOTHING
               RETURNING id""",
            resource.kind, resource.namespace, resource.name, uid, scheduled_at, trigger,
            started_at, claim_key, generation, self.holder,
        )  # fmt: skip
        if run_id is not None:
            await leases.attach_run(connection, resource_uid=uid, run_id=int(run_id))
            return Claimed(int(run_id), abandoned, took_over)
        record = await _answered(connection, uid, claim_key)
        age = record.status_written_age
        restate = record.finished and (age is None or age > self.restate_after.total_seconds())
        if not restate:
            await leases.release(connection, resource_uid=uid, holder=self.holder)
        return Answered(record, restate, abandoned)

    async def renew(self, resource_uid: str) -> bool:
        """Extend our lease; False when it is no longer ours (taken over after expiry)."""
        with store_errors("renewing a run lease"):
            return await leases.renew(
                self.pool, resource_uid=resource_uid, holder=self.holder, ttl=self.lease_ttl
            )

    async def release(self, resource_uid: str) -> None:
        with store_errors("releasing a run lease"):
            await leases.release(self.pool, resource_uid=resource_uid, holder=self.holder)

    async def finish(self, run_id: int, result: RunResult) -> bool:
        """Record the outcome and notify; False when the row is no longer ours to finish (a
        replica that took the lease over has marked it Abandoned). Sources are the JSON status
        shows."""
        sources = [s.model_dump(mode="json", by_alias=True) for s in result.sources]
        with store_errors("recording a run"):
            value = await self.pool.fetchval(
                f"""WITH moved AS (
                       UPDATE sync_runs SET finished_at = $2, state = $3, error = $4,
                           sources = $5::jsonb, seconds = $6
                       WHERE id = $1 AND state = 'Running'
                       RETURNING {MOVED_COLUMNS}, $7::json AS counts)
                   {notify_sql("moved")}""",
                run_id, result.finished_at, result.state.value, result.message,
                json.dumps(sources), result.seconds, notifications.counts_json(result),
                timeout=self._timeout,
            )  # fmt: skip
        return value is not None

    async def end(self, run_id: int, *, state: str, finished_at: datetime, message: str) -> bool:
        """A run that ended without a result: `Cancelled` (Replace, deletion, shutdown) or
        `Abandoned` (it could not go on); the same request may then run again. Notifies (with
        no counts): pages merged before the end stay merged, and their changes logged."""
        assert state in UNANSWERED
        with store_errors("recording the end of a run"):
            value = await self.pool.fetchval(
                f"""WITH moved AS (
                       UPDATE sync_runs SET finished_at = $2, state = $3, error = $4
                       WHERE id = $1 AND state = 'Running'
                       RETURNING {MOVED_COLUMNS}, NULL::json AS counts)
                   {notify_sql("moved")}""",
                run_id, finished_at, state, message, timeout=self._timeout,
            )  # fmt: skip
        return value is not None

    async def status_written(self, run_id: int) -> None:
        """The run's status landed: nobody needs to restate it from this row."""
        with store_errors("recording that a run's status landed"):
            await self.pool.execute(
                "UPDATE sync_runs SET status_written_at = now() WHERE id = $1",
                run_id,
                timeout=self._timeout,
            )


async def _abandon_running(
    connection: asyncpg.Connection, uid: str, lease_expired_at: datetime | None
) -> tuple[AbandonedRun, ...]:
    # It ended no later than its lease ran out (its holder may have died any time before).
    # Its holder never sent its notification: the takeover sends it.
    rows = await connection.fetch(
        f"""WITH moved AS (
               UPDATE sync_runs
               SET state = 'Abandoned', finished_at = least(now(), coalesce($2, now())),
                   error = 'abandoned: ' || coalesce('replica ' || holder, 'an earlier operator')
                           || ' stopped before finishing it (its lease expired)'
               WHERE resource_uid = $1 AND state = 'Running'
               RETURNING {MOVED_COLUMNS}, claim_key, holder, NULL::json AS counts)
           {notify_sql("moved", returning="m.id, m.claim_key, m.holder")}""",
        uid,
        lease_expired_at,
    )
    return tuple(AbandonedRun(int(r["id"]), r["claim_key"], r["holder"]) for r in rows)


async def _answered(connection: asyncpg.Connection, uid: str, claim_key: str) -> RunRecord:
    row = await connection.fetchrow(
        """SELECT id, claim_key, trigger, state, scheduled_at, started_at, finished_at, error,
                  sources, generation, seconds,
                  extract(epoch FROM now() - status_written_at)::float8 AS status_written_age
           FROM sync_runs
           WHERE resource_uid = $1 AND claim_key = $2 AND state NOT IN ('Cancelled', 'Abandoned')""",
        uid,
        claim_key,
    )
    assert row is not None, "the insert conflicted with this very row"
    sources = row["sources"]
    return RunRecord(
        id=int(row["id"]), claim_key=row["claim_key"], trigger=row["trigger"],
        state=row["state"], scheduled_at=row["scheduled_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], error=row["error"],
        sources=json.loads(sources) if isinstance(sources, str) else list(sources or []),
        generation=row["generation"], seconds=row["seconds"],
        status_written_age=row["status_written_age"],
    )  # fmt: skip
