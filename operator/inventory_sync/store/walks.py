"""The ids one walk has delivered, kept in PostgreSQL between pages (store layer).

A source borrows a pooled connection only while a page merges, so connection-local temp
tables cannot carry state across pages. Each walk gets its own UNLOGGED table in the
`sync_walks` schema (migration 0007): no WAL, no index, appended to by the page statement,
read once by the deletion judgement and dropped whole at the end. Its name carries its
creation time, so tables left by a process that died mid-walk are dropped by a later walk.
"""

from __future__ import annotations

import secrets
import time

import asyncpg

SCHEMA = "sync_walks"

#: A walk table older than this belongs to a process that died: no run lasts a week (a run's
#: timeout is at most its interval, and fabric walks are minutes).
STALE_AFTER_SECONDS = 7 * 24 * 3600


def _table_name(created: int) -> str:
    return f"seen_{created}_{secrets.token_hex(6)}"


async def create_seen_table(connection: asyncpg.Connection) -> str:
    """A new, empty walk table; returns its quoted, schema-qualified name."""
    now = int(time.time())
    await _drop_stale(connection, now=now)
    name = f'{SCHEMA}."{_table_name(now)}"'
    await connection.execute(f"CREATE UNLOGGED TABLE {name} (id text NOT NULL)")
    return name


async def drop_seen_table(connection: asyncpg.Connection, name: str) -> None:
    await connection.execute(f"DROP TABLE IF EXISTS {name}")


async def _drop_stale(connection: asyncpg.Connection, *, now: int) -> None:
    rows = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'seen\\_%'",
        SCHEMA,
    )
    for row in rows:
        parts = str(row["tablename"]).split("_")
        created = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else now
        if now - created > STALE_AFTER_SECONDS:
            await connection.execute(f'DROP TABLE IF EXISTS {SCHEMA}."{row["tablename"]}"')
