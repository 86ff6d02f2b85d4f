"""What a database consumer sees of an operator's runs (real kube-apiserver, PostgreSQL and
simulator): one `NOTIFY inventory_sync` per run, the run's changes, and the change log pruned
at start."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from inventory_sync.kube import KubeClient
from inventory_sync.simulator import ThreadedSimulator

from .harness import eventually
from .operator_fixtures import create_secret, path, ready, schedule

pytestmark = pytest.mark.controlplane


async def test_an_operator_run_notifies_listeners_once_and_old_changes_are_pruned_at_start(
    operator: Any, admin: KubeClient, test_namespace: str, simulator: ThreadedSimulator,
    pool: asyncpg.Pool, database_url: str,
) -> None:  # fmt: skip
    # A change-log row past the retention, and one within it, before the operator starts.
    await pool.execute(
        """INSERT INTO inventory_changes
               (run_id, source, table_name, scope, key, operation, changed_at, recorded_at)
           VALUES (NULL, 'devices', 'glp_devices', 'ws', 'old', 'insert', now(),
                   now() - interval '8 days'),
                  (NULL, 'devices', 'glp_devices', 'ws', 'recent', 'insert', now(),
                   now() - interval '6 days')"""
    )
    received: list[str] = []
    listening = await asyncpg.connect(database_url)
    await listening.add_listener("inventory_sync", lambda *args: received.append(args[-1]))
    try:
        await create_secret(admin, test_namespace, simulator)
        operator(change_log_retention_days=7)
        created = await admin.create(path(test_namespace), schedule(simulator))
        await eventually(lambda: ready(admin, test_namespace), what="first run")
        await asyncio.sleep(1)  # a second notification, were there one, would be here by now
    finally:
        await listening.close()

    run_id = await pool.fetchval(
        "SELECT id FROM sync_runs WHERE resource_uid = $1", created["metadata"]["uid"]
    )
    [payload] = [json.loads(text) for text in received]
    assert (payload["runId"], payload["name"], payload["namespace"], payload["state"]) == (
        run_id, "inventory", test_namespace, "Succeeded",
    )  # fmt: skip
    logged = await pool.fetchval("SELECT count(*) FROM inventory_changes WHERE run_id = $1", run_id)
    assert payload["changes"] == logged == payload["counts"]["inserted"] > 0

    async def pruned() -> list[str] | None:
        rows = await pool.fetch("SELECT key FROM inventory_changes WHERE run_id IS NULL")
        return [r["key"] for r in rows] if len(rows) == 1 else None

    assert await eventually(pruned, within=10, what="the old row pruned") == ["recent"]
