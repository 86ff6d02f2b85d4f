"""Shared fixtures: a real PostgreSQL for the whole session and a fresh, migrated database per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from inventory_sync.store.database import open_pool
from inventory_sync.store.embedded import start_embedded, stop_embedded


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """INVENTORY_SYNC_TEST_DATABASE_URL (a server we may create databases on), else a private
    embedded PostgreSQL in a temporary directory for this session."""
    external = os.environ.get("INVENTORY_SYNC_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="inventory-sync-pg-") as directory:
        data = Path(directory) / "data"
        yield start_embedded(data)
        stop_embedded(data)  # before the directory goes: no server left running after pytest


def _with_database(url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A new empty database per test, dropped afterwards: tests never see each other's rows."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield _with_database(postgres_server_url, name)
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated pool on the test's own database."""
    created = await open_pool(database_url, max_size=8)
    yield created
    await created.close()
