"""The typed fabric views on every Connection type and on partial data, straight from merged objects (real PostgreSQL, no API server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from inventory_sync.store.merging import ScopeMerge
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.store.tables import FABRIC_OBJECTS
from inventory_sync.syncing.fabric import stage_object

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 13, 22, 16, 37, tzinfo=UTC)
FABRIC = ResourceIdentity(kind="Fabric", namespace="ops", name="dc1", uid="fabric-uid-1")
WIRING = "wiring.githedgehog.com"


def end(port: str, ip: str | None = None) -> dict[str, str]:
    return {"port": port, **({"ip": ip} if ip else {})}


CONNECTIONS: dict[str, dict[str, Any]] = {
    "c-unbundled": {"unbundled": {"link": {"server": end("srv-1/enp2s1"), "switch": end("leaf-1/E1/1")}}},
    "c-bundled": {"bundled": {"links": [{"server": end("srv-2/p1"), "switch": end("leaf-1/E1/2")},
                                        {"server": end("srv-2/p2"), "switch": end("leaf-1/E1/3")}]}},
    "c-eslag": {"eslag": {"links": [{"server": end("srv-3/p1"), "switch": end("leaf-1/E1/4")},
                                    {"server": end("srv-3/p2"), "switch": end("leaf-2/E1/4")}]}},
    "c-mesh": {"mesh": {"links": [{"leaf1": end("leaf-1/E1/50", "172.30.1.0/31"),
                                   "leaf2": end("leaf-2/E1/50", "172.30.1.1/31")}]}},
    "c-gateway": {"gateway": {"links": [{"switch": end("spine-1/E1/9", "172.30.2.0/31"),
                                         "gateway": end("gw-1/enp2s1", "172.30.2.1/31")}]}},
    "c-loopback": {"vpcLoopback": {"links": [{"switch1": end("leaf-1/E1/60"), "switch2": end("leaf-1/E1/61")}]}},
    "c-external": {"external": {"link": {"switch": end("leaf-2/E1/5")}}},
    "c-static": {"staticExternal": {"link": {"switch": {"port": "leaf-2/E1/6", "ip": "10.9.0.1/24",
                                                        "nextHop": "10.9.0.254", "vlan": 100}},
                                    "withinVPC": "vpc-1"}},
}  # fmt: skip


def item(kind: str, name: str, spec: dict[str, Any] | None, status: dict[str, Any] | None = None,
         group: str = WIRING) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "apiVersion": f"{group}/v1beta1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
    }
    if spec is not None:
        body["spec"] = spec
    if status is not None:
        body["status"] = status
    return stage_object(body, api_version=body["apiVersion"], kind=kind, fabric=FABRIC)


async def merge(
    pool: asyncpg.Pool, kind: str, items: list[dict[str, Any]], group: str = WIRING
) -> None:
    scope = f"{FABRIC.uid}/{group}/{kind}"
    async with ScopeMerge(pool, spec=FABRIC_OBJECTS, workspace_id=scope, now=T0) as session:
        await session.merge_page(items)
        await session.mark_deleted([])  # records the complete listing (sync_scopes)


async def test_every_connection_type_yields_one_row_per_link_end_with_its_peer(
    pool: asyncpg.Pool,
) -> None:
    await merge(pool, "Connection", [item("Connection", n, s) for n, s in CONNECTIONS.items()])

    rows = await pool.fetch(
        "SELECT connection, connection_type, link_set, link_index, end_role, device_type, device,"
        " port, host(ip) AS ip, peer_role, peer_device, peer_port FROM fabric_connection_ends"
        " ORDER BY connection, link_set, link_index, end_role"
    )

    assert [tuple(r) for r in rows] == [
        ("c-bundled", "bundled", "links", 0, "server", "server", "srv-2", "p1", None, "switch", "leaf-1", "E1/2"),
        ("c-bundled", "bundled", "links", 0, "switch", "switch", "leaf-1", "E1/2", None, "server", "srv-2", "p1"),
        ("c-bundled", "bundled", "links", 1, "server", "server", "srv-2", "p2", None, "switch", "leaf-1", "E1/3"),
        ("c-bundled", "bundled", "links", 1, "switch", "switch", "leaf-1", "E1/3", None, "server", "srv-2", "p2"),
        ("c-eslag", "eslag", "links", 0, "server", "server", "srv-3", "p1", None, "switch", "leaf-1", "E1/4"),
        ("c-eslag", "eslag", "links", 0, "switch", "switch", "leaf-1", "E1/4", None, "server", "srv-3", "p1"),
        ("c-eslag", "eslag", "links", 1, "server", "server", "srv-3", "p2", None, "switch", "leaf-2", "E1/4"),
        ("c-eslag", "eslag", "links", 1, "switch", "switch", "leaf-2", "E1/4", None, "server", "srv-3", "p2"),
        ("c-external", "external", "link", 0, "switch", "switch", "leaf-2", "E1/5", None, None, None, None),
        ("c-gateway", "gateway", "links", 0, "gateway", "gateway", "gw-1", "enp2s1", "172.30.2.1", "switch", "spine-1", "E1/9"),
        ("c-gateway", "gateway", "links", 0, "switch", "switch", "spine-1", "E1/9", "172.30.2.0", "gateway", "gw-1", "enp2s1"),
        ("c-loopback", "vpc-loopback", "links", 0, "switch1", "switch", "leaf-1", "E1/60", None, "switch2", "leaf-1", "E1/61"),
        ("c-loopback", "vpc-loopback", "links", 0, "switch2", "switch", "leaf-1", "E1/61", None, "switch1", "leaf-1", "E1/60"),
        ("c-mesh", "mesh", "links", 0, "leaf1", "switch", "leaf-1", "E1/50", "172.30.1.0", "leaf2", "leaf-2", "E1/50"),
        ("c-mesh", "mesh", "links", 0, "leaf2", "switch", "leaf-2", "E1/50", "172.30.1.1", "leaf1", "leaf-1", "E1/50"),
        ("c-static", "static-external", "link", 0, "switch", "switch", "leaf-2", "E1/6", "10.9.0.1", None, None, None),
        ("c-unbundled", "unbundled", "link", 0, "server", "server", "srv-1", "enp2s1", None, "switch", "leaf-1", "E1/1"),
        ("c-unbundled", "unbundled", "link", 0, "switch", "switch", "leaf-1", "E1/1", None, "server", "srv-1", "enp2s1"),
    ]  # fmt: skip


async def test_views_tolerate_missing_and_malformed_values(pool: asyncpg.Pool) -> None:
    await merge(pool, "Switch", [
        item("Switch", "leaf-1", {"role": "server-leaf", "asn": "not-a-number", "ip": "nonsense"}),
        item("Switch", "leaf-2", None),
    ])  # fmt: skip
    await merge(pool, "Connection", [item("Connection", "odd", {"unbundled": "not-an-object"})])
    await merge(pool, "VPCAttachment", [item("VPCAttachment", "att", {"subnet": "vpc-x"},
                                             group="vpc.githedgehog.com")], group="vpc.githedgehog.com")  # fmt: skip

    switches = await pool.fetch(
        "SELECT name, role, asn, ip, groups, agent_synced FROM fabric_switches ORDER BY name"
    )
    ends = await pool.fetchval("SELECT count(*) FROM fabric_connection_ends")
    attachment = await pool.fetchrow(
        "SELECT vpc, subnet, connection, cidr, connection_type FROM fabric_vpc_attachments"
    )

    assert [tuple(r) for r in switches] == [
        ("leaf-1", "server-leaf", None, None, [], False),
        ("leaf-2", None, None, None, [], False),
    ]
    assert ends == 0
    assert tuple(attachment) == ("vpc-x", None, None, None, None)


async def test_health_covers_fabrics_whose_agents_are_synced(pool: asyncpg.Pool) -> None:
    await merge(
        pool, "Switch", [item("Switch", f"leaf-{n}", {"role": "server-leaf"}) for n in (1, 2, 3)]
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    agents = [
        item("Agent", "leaf-1", {"role": "server-leaf"}, {"lastHeartbeat": now, "conditions": []}, "agent.githedgehog.com"),
        item("Agent", "leaf-2", {"role": "server-leaf"}, {"lastHeartbeat": "2020-01-01T00:00:00Z", "conditions": []}, "agent.githedgehog.com"),
    ]  # fmt: skip
    assert (
        await pool.fetchval("SELECT count(*) FROM fabric_switch_health") == 0
    )  # no Agents listed yet

    await merge(pool, "Agent", agents, group="agent.githedgehog.com")

    stale = await pool.fetch(
        "SELECT name, agent_synced, agents_listed_at FROM fabric_stale_switches('5 minutes')"
    )
    assert [tuple(r) for r in stale] == [("leaf-2", True, T0), ("leaf-3", False, T0)]
