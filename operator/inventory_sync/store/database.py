"""Connection pool creation for the store layer; the one seam to PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from inventory_sync.errors import StoreError
from inventory_sync.store.migrating import migrate

#: What a PostgreSQL restart or outage looks like from asyncpg: a server error, a connection
#: that died under a statement (InterfaceError), a refused or reset socket, a timed-out call.
STORE_FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


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


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn asyncpg's and the socket's failures into StoreError naming `what` failed, so
    callers see one retryable error of ours rather than "internal error: InterfaceError"."""
    try:
        yield
    except StoreError:
        raise
    except STORE_FAILURES as error:
        raise StoreError(f"{what}: {describe_failure(error)}") from error


def describe_failure(error: BaseException) -> str:
    """A short text for a database failure (never the DSN, which can carry a password)."""
    if isinstance(error, TimeoutError):
        return "PostgreSQL did not answer in time"
    if isinstance(error, OSError | asyncpg.InterfaceError):
        return f"PostgreSQL unreachable ({type(error).__name__}: {error})"
    return f"PostgreSQL error: {error}"


def redact_url(url: str) -> str:
    """postgresql://user:secret@host/db → postgresql://user:***@host/db."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
