"""Per-resource run leases: one run of a resource at a time, cluster-wide (store layer).

A replica holds a resource's lease while its run lives and renews it every few seconds; a
lease whose holder stopped renewing (SIGKILL, a node gone, a database outage on its side)
expires and may be taken over. Every time comparison uses the database clock (`now()`), so
replicas whose clocks are skewed cannot disagree about expiry. The statements here run
inside the claim transaction (runs.py) or alone (renew, release).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg


@dataclass(frozen=True)
class LeaseState:
    """The lease row as found before taking it: who held it and whether that has expired."""

    holder: str
    run_id: int | None
    expired: bool
    #: Seconds until it expires by the database clock (negative once expired).
    remaining: float
    expires_at: datetime


async def current(connection: asyncpg.Connection, resource_uid: str) -> LeaseState | None:
    """The lease of `resource_uid`, locked for the rest of the transaction; None when free."""
    row = await connection.fetchrow(
        """SELECT holder, run_id, expires_at, expires_at <= now() AS expired,
                  extract(epoch FROM expires_at - now())::float8 AS remaining
           FROM run_leases WHERE resource_uid = $1 FOR UPDATE""",
        resource_uid,
    )
    if row is None:
        return None
    return LeaseState(
        holder=row["holder"], run_id=row["run_id"], expired=row["expired"],
        remaining=float(row["remaining"]), expires_at=row["expires_at"],
    )  # fmt: skip


async def take(
    connection: asyncpg.Connection,
    *,
    resource_uid: str,
    holder: str,
    claim_key: str,
    ttl: timedelta,
) -> bool:
    """Take the lease if it is free, expired or already ours; False when a live holder has it
    (including one that inserted it a moment ago, after `current` found none)."""
    value = await connection.fetchval(
        """INSERT INTO run_leases (resource_uid, holder, claim_key, expires_at)
           VALUES ($1, $2, $3, now() + $4::interval)
           ON CONFLICT (resource_uid) DO UPDATE
               SET holder = excluded.holder, claim_key = excluded.claim_key, run_id = NULL,
                   acquired_at = now(), renewed_at = now(), expires_at = excluded.expires_at
               WHERE run_leases.expires_at <= now() OR run_leases.holder = excluded.holder
           RETURNING 1""",
        resource_uid,
        holder,
        claim_key,
        ttl,
    )
    return value is not None


async def attach_run(connection: asyncpg.Connection, *, resource_uid: str, run_id: int) -> None:
    await connection.execute(
        "UPDATE run_leases SET run_id = $2 WHERE resource_uid = $1", resource_uid, run_id
    )


async def renew(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    resource_uid: str,
    holder: str,
    ttl: timedelta,
) -> bool:
    """Push expiry `ttl` past the database's now; False when the lease is no longer ours."""
    value = await connection.fetchval(
        """UPDATE run_leases SET renewed_at = now(), expires_at = now() + $3::interval
           WHERE resource_uid = $1 AND holder = $2 RETURNING 1""",
        resource_uid,
        holder,
        ttl,
    )
    return value is not None


async def release(
    connection: asyncpg.Connection | asyncpg.Pool, *, resource_uid: str, holder: str
) -> None:
    """Drop the lease if it is still ours (a takeover may already have replaced it)."""
    await connection.execute(
        "DELETE FROM run_leases WHERE resource_uid = $1 AND holder = $2", resource_uid, holder
    )
