"""`devices_unified` on the seed dataset: one row per serial known to GreenLake, New Central or
classic Central, with overlaps, subscriptions, status and site as the simulator's dataset says
(computed here from the simulator's own lists, never from the store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from inventory_sync.models import parse_sync_schedule_spec
from inventory_sync.results import RunState
from inventory_sync.simulator import (
    LatencyConfig,
    SimulatorConfig,
    ThreadedSimulator,
    start_in_thread,
)
from inventory_sync.syncing.credentials import StaticSecrets
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

from .test_classic_central import WritableSecrets

pytestmark = pytest.mark.integration

WORKSPACE = "3f1c2a4e-demo-workspace"
ACCOUNT = "demo-classic-customer"
#: A fifth of the seed account, in the seed's proportions (overlaps, links): the classic walk
#: alone, at the documented 7 calls a second, would take 15 s at full size.
SCALE = 0.2


@pytest.fixture
def seed_simulator() -> Iterator[ThreadedSimulator]:
    config = SimulatorConfig.for_profile("seed", latency=LatencyConfig.none())
    with start_in_thread(config.scaled(dataset=SCALE)) as simulator:
        yield simulator


def secrets(simulator: ThreadedSimulator) -> StaticSecrets:
    client_id, client_secret = simulator.state.credentials()
    classic = simulator.state.classic.account()
    found = WritableSecrets(
        {
            "client_id": "demo-classic-client",
            "client_secret": "demo-classic-secret-not-real",
            "refresh_token": classic.refresh_token,
        }
    )
    found.add("default", "glp", {"client_id": client_id, "client_secret": client_secret})
    return found


async def sync_everything(pool: asyncpg.Pool, simulator: ThreadedSimulator) -> None:
    glp = {
        "workspaceId": WORKSPACE,
        "endpoint": simulator.url,
        "tokenUrl": simulator.token_url,
        "credentialsSecretRef": {"name": "glp"},
    }
    classic = {
        "endpoint": simulator.url,
        "accountId": ACCOUNT,
        "credentialsSecretRef": {"name": "classic-credentials"},
    }
    spec = parse_sync_schedule_spec(
        {
            "interval": "15m",
            "sources": [
                {"name": "subscriptions", "greenlake": {"resource": "subscriptions", **glp}},
                {"name": "devices", "greenlake": {"resource": "devices", **glp}},
                {"name": "central", "arubaCentral": {**glp, "pageSize": 1000}},
                {"name": "classic", "arubaCentralClassic": classic},
            ],
        }
    )
    session = UpstreamSession(policy=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05))
    try:
        result = await run_sync(
            spec, pool=pool, session=session, secrets=secrets(simulator), namespace="default",
            trigger="test",
        )  # fmt: skip
    finally:
        await session.aclose()
    assert result.state is RunState.SUCCEEDED, result.message


def dataset(simulator: ThreadedSimulator) -> dict[str, Any]:
    """What the simulator serves, read from its own state."""
    workspace = simulator.state.workspace()
    glp = {d["serialNumber"]: d for d in workspace.glp_devices()}
    central = {d["serialNumber"]: d for d in workspace.central_devices()}
    classic = {d["serial"]: d for d in simulator.state.classic.account().devices()}
    return {"glp": glp, "central": central, "classic": classic}


async def test_overlap_counts_match_the_seed_dataset(
    pool: asyncpg.Pool, seed_simulator: ThreadedSimulator
) -> None:
    await sync_everything(pool, seed_simulator)
    data = dataset(seed_simulator)
    g, c, k = (set(data[name]) for name in ("glp", "central", "classic"))
    # The dataset has every case: shared and own serials on each side.
    assert all((g & c, c & k, g - c, c - g, k - c))

    counts = await pool.fetchrow(
        """SELECT count(*) AS total,
                  count(*) FILTER (WHERE in_greenlake) AS glp,
                  count(*) FILTER (WHERE in_central) AS central,
                  count(*) FILTER (WHERE in_central_classic) AS classic,
                  count(*) FILTER (WHERE in_greenlake AND in_central) AS glp_central,
                  count(*) FILTER (WHERE in_central AND in_central_classic) AS central_classic,
                  count(*) FILTER (WHERE in_greenlake AND in_central_classic) AS glp_classic,
                  count(*) FILTER (WHERE in_greenlake AND in_central AND in_central_classic)
                      AS everywhere,
                  count(*) FILTER (WHERE in_greenlake AND NOT in_central
                                   AND NOT in_central_classic) AS glp_only,
                  count(DISTINCT serial_number) AS serials
           FROM devices_unified"""
    )
    assert counts is not None
    assert dict(counts) == {
        "total": len(g | c | k),
        "glp": len(g),
        "central": len(c),
        "classic": len(k),
        "glp_central": len(g & c),
        "central_classic": len(c & k),
        "glp_classic": len(g & k),
        "everywhere": len(g & c & k),
        "glp_only": len(g - c - k),
        "serials": len(g | c | k),
    }


async def test_each_fact_comes_from_its_source_subscriptions_status_and_site_included(
    pool: asyncpg.Pool, seed_simulator: ThreadedSimulator
) -> None:
    await sync_everything(pool, seed_simulator)
    data = dataset(seed_simulator)
    keys = {s["id"]: s["key"] for s in seed_simulator.state.workspace().subscriptions()}

    rows = {r["serial_number"]: r for r in await pool.fetch("SELECT * FROM devices_unified")}

    assert set(rows) == set(data["glp"]) | set(data["central"]) | set(data["classic"])
    for serial, row in rows.items():
        glp, central, classic = (data[n].get(serial) for n in ("glp", "central", "classic"))
        expected_sources = [
            name
            for name, item in (
                ("greenlake", glp),
                ("central", central),
                ("central-classic", classic),
            )
            if item is not None
        ]
        assert row["sources"] == expected_sources, serial
        if glp is not None:
            assert (row["mac_address"], row["mac_address_from"]) == (
                glp["macAddress"], "glp_devices",
            )  # fmt: skip
            assert row["glp_device_id"] == glp["id"]
            linked = sorted(s["id"] for s in glp["subscription"])
            subscriptions = json.loads(row["subscriptions"])
            assert [s["id"] for s in subscriptions] == linked, serial
            assert row["subscription_keys"] == [keys[i] for i in linked]
        else:
            assert (row["subscriptions"], row["glp_device_id"]) == ("[]", None)
            source = "central_devices" if central is not None else "central_classic_devices"
            assert row["mac_address_from"] == source
        if central is not None:
            assert (row["central_status"], row["central_site_name"], row["central_site_id"]) == (
                central["status"], central["siteName"], central["siteId"],
            )  # fmt: skip
        else:
            assert (row["central_status"], row["central_site_name"]) == (None, None)
        assert (row["classic_account_id"] is not None) == (classic is not None)
    linked_devices = sum(1 for d in data["glp"].values() if d["subscription"])
    assert sum(1 for r in rows.values() if r["subscription_keys"]) == linked_devices > 0


async def test_a_lookup_by_serial_uses_the_serial_indexes(
    pool: asyncpg.Pool, seed_simulator: ThreadedSimulator
) -> None:
    await sync_everything(pool, seed_simulator)
    await pool.execute("ANALYZE")
    serial = next(iter(dataset(seed_simulator)["glp"]))

    plan = "\n".join(
        r[0]
        for r in await pool.fetch(
            "EXPLAIN SELECT * FROM devices_unified WHERE serial_number = $1", serial
        )
    )

    for index in ("glp_devices_serial", "central_devices_serial", "central_classic_devices_serial"):
        assert index in plan, plan
    assert "Seq Scan on glp_devices" not in plan, plan
