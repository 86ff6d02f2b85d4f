"""New Central rows keyed by serial number: migration 0008 re-keys older rows; either version
field fills the typed column (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from inventory_sync.store.merging import ScopeMerge
from inventory_sync.store.migrating import migrate
from inventory_sync.store.tables import CENTRAL_DEVICES

pytestmark = pytest.mark.integration

WS = "ws-central"
T0 = datetime(2026, 1, 13, tzinfo=UTC)


async def test_migration_0008_rekeys_central_rows_by_serial_keeping_history(
    database_url: str,
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection, up_to=7)
        insert = """INSERT INTO central_devices
                        (workspace_id, id, serial_number, data, first_seen, changed_at, deleted_at)
                    VALUES ($1, $2, $3, '{}', $4, $4, $5)"""
        first = datetime(2025, 1, 1, tzinfo=UTC)
        await connection.execute(insert, WS, "uuid-a", "SN-A", first, None)
        # Two rows with one serial (an old soft-deleted id, then a new one): the live one wins.
        await connection.execute(insert, WS, "uuid-b-old", "SN-B", first, T0)
        await connection.execute(insert, WS, "uuid-b-new", "SN-B", T0, None)
        await connection.execute(insert, WS, "SN-C", "SN-C", first, None)  # already keyed
        await connection.execute(insert, WS, "uuid-d", None, first, None)  # no serial: kept
        await connection.execute(insert, "other-ws", "uuid-a2", "SN-A", first, None)
        assert await migrate(connection, up_to=8) == [8]
        rows = await connection.fetch(
            "SELECT workspace_id, id, serial_number, first_seen, deleted_at IS NULL AS live"
            " FROM central_devices ORDER BY workspace_id, id"
        )
    finally:
        await connection.close()
    table = {(r["workspace_id"], r["id"]): (r["serial_number"], r["live"]) for r in rows}
    assert table == {
        ("other-ws", "SN-A"): ("SN-A", True),
        (WS, "SN-A"): ("SN-A", True),
        (WS, "SN-B"): ("SN-B", True),
        (WS, "uuid-b-old"): ("SN-B", False),
        (WS, "SN-C"): ("SN-C", True),
        (WS, "uuid-d"): (None, True),
    }
    first_seen = {(r["workspace_id"], r["id"]): r["first_seen"] for r in rows}
    assert first_seen[(WS, "SN-A")] == datetime(2025, 1, 1, tzinfo=UTC)  # history kept


async def test_central_items_merge_by_serial_and_either_version_field(pool: asyncpg.Pool) -> None:
    items = [
        {"serialNumber": "SN1", "softwareVersion": "10.7.0.0", "deviceName": "ap-1"},
        # pycentral's device model names the version firmwareVersion and reads no id.
        {"serialNumber": "SN2", "firmwareVersion": "FL.10.14", "deviceFunction": "Access Switch"},
        {"id": "no-serial", "deviceName": "rejected"},
    ]
    async with ScopeMerge(pool, spec=CENTRAL_DEVICES, workspace_id=WS, now=T0) as merge:
        await merge.merge_page(items)
        await merge.flush()
    assert (merge.counts.inserted, merge.counts.rejected) == (2, 1)
    rows = await pool.fetch(
        "SELECT id, software_version, data->>'deviceFunction' AS function"
        " FROM central_devices ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("SN1", "10.7.0.0", None),
        ("SN2", "FL.10.14", "Access Switch"),
    ]
