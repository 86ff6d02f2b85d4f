"""Connection pool creation for the store layer; the one seam to PostgreSQL."""

from __future__ import annotations

import asyncpg

from inventory_sync.errors import StoreError
from inventory_sync.store.migrating import migrate


async def open_pool(url: str, *, max_size: int = 10, apply_migrations: bool = True) -> asyncpg.Pool:
    """Connect, migrate (under the advisory lock) and return a pool.

    The error names the host but never the password: a DSN can carry one.
    """
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=max_size,
            server_settings={"application_name": "inventory-sync"},
        )
    except (OSError, asyncpg.PostgresError, ValueError) as error:
        raise StoreError(f"cannot connect to PostgreSQL at {redact_url(url)}: {error}") from error
    assert pool is not None
    if apply_migrations:
        async with pool.acquire() as connection:
            await migrate(connection)
    return pool


def redact_url(url: str) -> str:
    """postgresql://user:secret@host/db → postgresql://user:***@host/db."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
