"""The change log written by the merges themselves (real PostgreSQL): each operation, the
columns and values of an update, bounded values, atomicity with the data, fabric retirement,
the consumer views, and pruning."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from inventory_sync.errors import StoreError
from inventory_sync.operating.pruning import ChangeLogPruning
from inventory_sync.store import fabric_lifecycle
from inventory_sync.store.changes import Provenance, prune
from inventory_sync.store.merging import ScopeMerge
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.store.tables import (
    CENTRAL_DEVICES,
    FABRIC_OBJECTS,
    GLP_DEVICES,
    TableSpec,
)
from inventory_sync.syncing.fabric import stage_object

pytestmark = pytest.mark.integration

WS = "ws-log"
T0 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
FABRIC = ResourceIdentity(kind="Fabric", namespace="ops", name="dc1", uid="fabric-uid-1")


def device(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"dev-{n}",
        "serialNumber": f"SN{n:04d}",
        "assignedState": "ASSIGNED_TO_SERVICE",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "subscription": [],
        **fields,
    }


async def merge(
    pool: asyncpg.Pool,
    items: list[dict[str, Any]],
    *,
    at: datetime,
    spec: TableSpec = GLP_DEVICES,
    scope: str = WS,
    run_id: int | None = 7,
    delete: bool = True,
) -> ScopeMerge:
    provenance = Provenance(run_id, "devices")
    async with ScopeMerge(
        pool, spec=spec, workspace_id=scope, now=at, provenance=provenance
    ) as session:
        await session.merge_page(items)
        if delete:
            await session.mark_deleted(await session.missing_ids())
        return session


async def log(pool: asyncpg.Pool, since_id: int = 0) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM inventory_changes WHERE id > $1 ORDER BY id", since_id)
    found = []
    for row in rows:
        entry = dict(row)
        if entry["changes"] is not None:
            entry["changes"] = json.loads(entry["changes"])
        found.append(entry)
    return found


async def last_id(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM inventory_changes"))


async def test_inserts_updates_deletes_and_undeletes_are_each_logged_once(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, [device(n) for n in range(5)], at=T0)
    inserts = await log(pool)
    assert [(e["operation"], e["key"]) for e in inserts] == [
        ("insert", f"dev-{n}") for n in range(5)
    ]
    assert {(e["run_id"], e["source"], e["table_name"], e["scope"]) for e in inserts} == {
        (7, "devices", "glp_devices", WS)
    }
    assert all(e["changes"] is None and e["changed_columns"] is None for e in inserts)
    assert all(e["changed_at"] == T0 for e in inserts)

    mark = await last_id(pool)
    await merge(pool, [device(n) for n in range(5)], at=T0 + timedelta(hours=1), run_id=8)
    assert await log(pool, mark) == []  # a resync that changes nothing logs nothing

    at = T0 + timedelta(hours=2)
    changed = [device(n) for n in range(4)]  # dev-4 is gone upstream
    changed[1]["assignedState"] = "UNASSIGNED"
    changed[2]["subscription"] = [{"id": "sub-x", "resourceUri": "/subscriptions/sub-x"}]
    await merge(pool, changed, at=at, run_id=9)
    entries = await log(pool, mark)
    assert [(e["operation"], e["key"], e["run_id"]) for e in entries] == [
        ("update", "dev-1", 9), ("update", "dev-2", 9), ("delete", "dev-4", 9),
    ]  # fmt: skip
    state, link, gone = entries
    assert state["changed_columns"] == ["assigned_state"]
    assert state["changes"] == {
        "assignedState": {"old": "ASSIGNED_TO_SERVICE", "new": "UNASSIGNED"}
    }
    # A link change is logged as the device's own field (no typed column changed).
    assert link["changed_columns"] == []
    assert link["changes"] == {
        "subscription": {"old": [], "new": [{"id": "sub-x", "resourceUri": "/subscriptions/sub-x"}]}
    }
    assert (gone["reason"], gone["changes"], gone["changed_at"]) == ("deleted", None, at)

    mark = await last_id(pool)
    back = T0 + timedelta(hours=3)
    await merge(pool, [*changed, device(4, assignedState="UNASSIGNED")], at=back, run_id=10)
    [revived] = await log(pool, mark)
    assert (revived["operation"], revived["key"], revived["changed_columns"]) == (
        "undelete", "dev-4", ["assigned_state"],
    )  # fmt: skip
    assert revived["changes"] == {
        "assignedState": {"old": "ASSIGNED_TO_SERVICE", "new": "UNASSIGNED"}
    }


async def test_every_logged_change_agrees_with_the_rows_changed_at(pool: asyncpg.Pool) -> None:
    await merge(pool, [device(n) for n in range(20)], at=T0)
    await merge(pool, [device(n, model=f"m{n % 3}") for n in range(15)], at=T0 + timedelta(1))

    disagreeing = await pool.fetchval(
        """SELECT count(*) FROM glp_devices d
           WHERE d.changed_at IS DISTINCT FROM (
               SELECT max(c.changed_at) FROM inventory_changes c
               WHERE c.table_name = 'glp_devices' AND c.scope = d.workspace_id AND c.key = d.id)"""
    )
    assert disagreeing == 0
    ops = await pool.fetch(
        "SELECT operation, count(*) AS n FROM inventory_changes GROUP BY 1 ORDER BY 1"
    )
    assert [(r["operation"], r["n"]) for r in ops] == [
        ("delete", 5),
        ("insert", 20),
        ("update", 15),
    ]


async def test_a_page_statement_that_fails_logs_nothing_and_writes_nothing(
    pool: asyncpg.Pool,
) -> None:
    # A trigger of the test's own making refuses one row: the whole statement rolls back.
    await pool.execute(
        """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.id = 'dev-3' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
           CREATE TRIGGER refuse BEFORE INSERT ON glp_devices
           FOR EACH ROW EXECUTE FUNCTION refuse();"""
    )
    with pytest.raises(StoreError):
        await merge(pool, [device(n) for n in range(5)], at=T0, delete=False)

    assert await pool.fetchval("SELECT count(*) FROM glp_devices") == 0
    assert await log(pool) == []


async def test_a_large_value_is_logged_by_size_and_digest_not_whole(pool: asyncpg.Pool) -> None:
    await merge(pool, [device(1, tags={"note": "a"})], at=T0)
    big = {"note": "x" * 5000}
    mark = await last_id(pool)

    await merge(pool, [device(1, tags=big)], at=T0 + timedelta(hours=1))

    [entry] = await log(pool, mark)
    new = entry["changes"]["tags"]["new"]
    assert new["truncated"] is True
    assert new["bytes"] > 5000
    assert len(new["md5"]) == 32
    assert entry["changes"]["tags"]["old"] == {"note": "a"}


async def test_a_row_rewritten_only_to_record_its_first_hash_is_not_a_change(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, [device(n) for n in range(3)], at=T0)
    await pool.execute("UPDATE glp_devices SET content_hash = NULL")  # as stored before 0007
    mark = await last_id(pool)

    again = await merge(pool, [device(n) for n in range(3)], at=T0 + timedelta(hours=1))

    assert (again.counts.updated, again.counts.unchanged) == (0, 3)
    assert await log(pool, mark) == []


def fabric_item(name: str, *, status: dict[str, Any], version: str) -> dict[str, Any]:
    body = {
        "apiVersion": "agent.githedgehog.com/v1beta1",
        "kind": "Agent",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                     "resourceVersion": version},
        "spec": {"role": "leaf"},
        "status": status,
    }  # fmt: skip
    return stage_object(body, api_version=body["apiVersion"], kind="Agent", fabric=FABRIC)


async def test_fabric_objects_log_content_changes_not_version_bumps_and_retirements(
    pool: asyncpg.Pool,
) -> None:
    scope = f"{FABRIC.uid}/agent.githedgehog.com/Agent"
    first = [fabric_item(f"leaf-{n}", status={"heartbeat": 1}, version="1") for n in range(3)]
    await merge(pool, first, at=T0, spec=FABRIC_OBJECTS, scope=scope)
    mark = await last_id(pool)
    bumped = [fabric_item(f"leaf-{n}", status={"heartbeat": 1}, version="2") for n in range(3)]
    bumped[0] = fabric_item("leaf-0", status={"heartbeat": 2}, version="3")

    await merge(pool, bumped, at=T0 + timedelta(minutes=5), spec=FABRIC_OBJECTS, scope=scope)

    [entry] = await log(pool, mark)
    assert (entry["operation"], entry["key"]) == ("update", "uid-leaf-0")
    assert entry["changes"] == {"status": {"old": {"heartbeat": 1}, "new": {"heartbeat": 2}}}
    assert sorted(entry["changed_columns"]) == ["resource_version", "status"]

    mark = await last_id(pool)
    retired = await fabric_lifecycle.retire_scope(
        pool, scope=scope, reason=fabric_lifecycle.CRD_REMOVED, now=T0 + timedelta(hours=1),
        run_id=42,
    )  # fmt: skip
    entries = await log(pool, mark)
    assert retired == len(entries) == 3
    assert {(e["operation"], e["source"], e["reason"], e["run_id"]) for e in entries} == {
        ("delete", "Agent", "crd-removed", 42)
    }
    # Retiring again finds nothing live: nothing more is logged.
    assert (
        await fabric_lifecycle.retire_scope(
            pool, scope=scope, reason=fabric_lifecycle.CRD_REMOVED, now=T0 + timedelta(hours=2)
        )
        == 0
    )
    assert len(await log(pool, mark)) == 3


async def test_the_views_show_changes_since_a_time_and_one_devices_history(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute(
        """INSERT INTO sync_runs (id, resource_kind, resource_namespace, resource_name,
               resource_uid, scheduled_at, trigger, started_at, state, claim_key)
           VALUES (7, 'SyncSchedule', 'team-a', 'inventory', 'uid-7', now(), 'schedule',
                   now(), 'Succeeded', 'k7')"""
    )
    await merge(pool, [device(1), device(2)], at=T0)  # run 7
    await merge(
        pool, [{"serialNumber": "SN0001", "status": "ONLINE"}], at=T0, spec=CENTRAL_DEVICES,
        run_id=None, delete=False,
    )  # fmt: skip
    await pool.execute("UPDATE inventory_changes SET recorded_at = now() - interval '2 days'")
    await merge(pool, [device(1, assignedState="UNASSIGNED"), device(2)], at=T0 + timedelta(1))

    recent = await pool.fetch("SELECT * FROM inventory_changes_since(now() - interval '1 day')")
    assert [(r["operation"], r["key"], r["resource_name"]) for r in recent] == [
        ("update", "dev-1", "inventory")
    ]
    history = await pool.fetch("SELECT * FROM device_history('SN0001')")
    assert [(r["table_name"], r["operation"], r["key"]) for r in history] == [
        ("glp_devices", "insert", "dev-1"),
        ("central_devices", "insert", "SN0001"),
        ("glp_devices", "update", "dev-1"),
    ]
    assert {r["serial_number"] for r in history} == {"SN0001"}


async def test_pruning_deletes_only_rows_older_than_the_retention(pool: asyncpg.Pool) -> None:
    await merge(pool, [device(n) for n in range(30)], at=T0)
    await pool.execute(
        "UPDATE inventory_changes SET recorded_at = now() - interval '40 days' WHERE key < 'dev-2'"
    )
    old = await pool.fetchval(
        "SELECT count(*) FROM inventory_changes WHERE recorded_at < now() - interval '30 days'"
    )
    assert old > 0

    pruning = ChangeLogPruning(pool, retention=timedelta(days=30))
    assert await pruning.prune_once() == old
    assert await pool.fetchval("SELECT count(*) FROM inventory_changes") == 30 - old
    assert await prune(pool, older_than=timedelta(days=30)) == 0


async def test_pruning_works_through_a_backlog_in_batches(pool: asyncpg.Pool) -> None:
    await merge(pool, [device(n) for n in range(25)], at=T0)
    await pool.execute("UPDATE inventory_changes SET recorded_at = now() - interval '2 days'")

    assert await prune(pool, older_than=timedelta(days=1), batch=4) == 25
    assert await pool.fetchval("SELECT count(*) FROM inventory_changes") == 0
