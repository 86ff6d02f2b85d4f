"""Which schema version a database is at, read without changing anything (store layer; `inventory-sync doctor`).

`migrating.migrate` applies what is pending; this only compares what the database recorded in
`schema_migrations` with the migrations this build ships. It never creates the table, takes
no lock and opens a single connection, so it can point at a production database.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from inventory_sync.errors import StoreError
from inventory_sync.store.database import redact_url
from inventory_sync.store.migrating import Migration, available_migrations


@dataclass(frozen=True)
class SchemaState:
    """What the database recorded against what this build ships."""

    server_version: str
    #: The versions in schema_migrations; None when the table does not exist (never migrated).
    applied: frozenset[int] | None
    shipped: tuple[Migration, ...]

    @property
    def missing(self) -> list[Migration]:
        """Shipped migrations the database lacks: it is behind this build."""
        applied = self.applied or frozenset()
        return [m for m in self.shipped if m.version not in applied]

    @property
    def unknown(self) -> list[int]:
        """Versions the database has that this build does not ship: a newer build migrated it."""
        shipped = {m.version for m in self.shipped}
        return sorted(v for v in self.applied or () if v not in shipped)

    @property
    def current(self) -> int | None:
        """The highest version applied, or None."""
        return max(self.applied) if self.applied else None


async def read_schema_state(url: str, *, seconds: float) -> SchemaState:
    """Connect once, read schema_migrations, disconnect. StoreError names the host, never the
    password, when the server cannot be reached or refuses the login."""
    try:
        connection = await asyncpg.connect(
            url, timeout=seconds, server_settings={"application_name": "inventory-sync-doctor"}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, ValueError) as error:
        raise StoreError(f"cannot connect to PostgreSQL at {redact_url(url)}: {error}") from error
    try:
        server_version = str(await connection.fetchval("SHOW server_version"))
        exists = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        applied: frozenset[int] | None = None
        if exists:
            rows = await connection.fetch("SELECT version FROM schema_migrations")
            applied = frozenset(int(row["version"]) for row in rows)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise StoreError(f"reading schema_migrations at {redact_url(url)}: {error}") from error
    finally:
        await connection.close()
    return SchemaState(
        server_version=server_version, applied=applied, shipped=tuple(available_migrations())
    )
