"""Rows that outlive their source are retired with a reason, and no other rows: a dropped kind, a removed CRD, a deleted Fabric (real API server and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from localcluster import ClusterInfo

from inventory_sync.errors import KubeForbidden
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import API_VERSION, parse_fabric_spec
from inventory_sync.results import RunState, SourceState
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import run_fabric_sync
from inventory_sync.syncing.fabric_retirement import cluster_owner, reconcile_fabrics

from .harness import service_account_connection
from .hedgehog import VPC, WIRING, install, load_crds, small_fabric, uninstall

pytestmark = pytest.mark.controlplane

KINDS = [
    {"group": WIRING, "kind": "Switch"},
    {"group": WIRING, "kind": "Server"},
    {"group": VPC, "kind": "VPC"},
    {"group": VPC, "kind": "ExternalPeering"},
]


@pytest.fixture
async def admin(control_plane: ClusterInfo) -> AsyncIterator[KubeClient]:
    connection = KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig)
    async with KubeClient(connection) as client:
        yield client


@pytest.fixture
def objects(hedgehog_crds: ClusterInfo, test_namespace: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": small_fabric(test_namespace)}
    hedgehog_crds.kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))


def identity(namespace: str, name: str, uid: str | None = None) -> ResourceIdentity:
    return ResourceIdentity(
        kind="Fabric", namespace=namespace, name=name, uid=uid or str(uuid.uuid4())
    )


async def sync(
    fabric: ResourceIdentity, kinds: list[dict[str, Any]], client: KubeClient, pool: asyncpg.Pool,
    *, owner: str | None = None,
) -> Any:  # fmt: skip
    spec = parse_fabric_spec({"interval": "5m", "namespaces": [fabric.namespace], "kinds": kinds})
    return await run_fabric_sync(
        spec, fabric=fabric, client=client, pool=pool, trigger="test", owner=owner
    )


async def states(pool: asyncpg.Pool, *fabrics: ResourceIdentity) -> dict[str, dict[str, str]]:
    """fabric name → "Kind/name" → "live" or the deleted_reason."""
    rows = await pool.fetch(
        "SELECT fabric_name, kind, name, deleted_reason, deleted_at FROM fabric_objects"
        " WHERE fabric_uid = ANY($1)",
        [f.uid for f in fabrics],
    )
    out: dict[str, dict[str, str]] = {f.name: {} for f in fabrics}
    for r in rows:
        out[r["fabric_name"]][f"{r['kind']}/{r['name']}"] = (
            "live" if r["deleted_at"] is None else r["deleted_reason"]
        )
    return out


def everything(state: str) -> dict[str, str]:
    """Every row the four KINDS store for small_fabric, in one state."""
    names = {"Switch": [f"leaf-{n}" for n in range(5)], "Server": [f"server-{n}" for n in range(3)],
             "VPC": ["vpc-0", "vpc-1"], "ExternalPeering": ["vpc-0--internet"]}  # fmt: skip
    return {f"{kind}/{name}": state for kind, items in names.items() for name in items}


async def test_dropping_a_kind_retires_exactly_that_kinds_rows_of_that_fabric(
    objects: None, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    a, b = identity(test_namespace, "fabric-a"), identity(test_namespace, "fabric-b")
    for fabric in (a, b):
        assert (await sync(fabric, KINDS, admin, pool)).state is RunState.SUCCEEDED

    without_servers = [k for k in KINDS if k["kind"] != "Server"]
    result = await sync(a, without_servers, admin, pool)

    assert result.state is RunState.SUCCEEDED
    expected_a = everything("live") | {f"Server/server-{n}": "kind-dropped" for n in range(3)}
    assert await states(pool, a, b) == {"fabric-a": expected_a, "fabric-b": everything("live")}
    scopes = await pool.fetch(
        "SELECT workspace_id FROM sync_scopes WHERE workspace_id LIKE $1 || '/%'", a.uid
    )
    assert sorted(r["workspace_id"].rsplit("/", 1)[1] for r in scopes) == [
        "ExternalPeering", "Switch", "VPC",
    ]  # fmt: skip

    # Listing the kind again brings its rows back to life.
    await sync(a, KINDS, admin, pool)
    assert (await states(pool, a))["fabric-a"] == everything("live")
    reasons = await pool.fetchval(
        "SELECT count(*) FROM fabric_objects WHERE fabric_uid = $1 AND deleted_reason IS NOT NULL",
        a.uid,
    )
    assert reasons == 0  # a row that comes back loses its reason


async def test_removing_a_crd_retires_that_kinds_rows_when_the_fabric_next_syncs(
    objects: None, hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    a, b = identity(test_namespace, "fabric-a"), identity(test_namespace, "fabric-b")
    for fabric in (a, b):
        await sync(fabric, KINDS, admin, pool)
    crd = load_crds()["externalpeerings.vpc.githedgehog.com"]
    uninstall(hedgehog_crds, [crd])
    try:
        result = await sync(a, KINDS, admin, pool)
    finally:
        install(hedgehog_crds, [crd])

    peering = result.source("ExternalPeering")
    assert (peering.state, peering.reason, peering.deleted) == (
        SourceState.SKIPPED,
        "NotInstalled",
        1,
    )
    assert peering.message == f"not installed: {VPC} serves no kind ExternalPeering"
    expected_a = everything("live") | {"ExternalPeering/vpc-0--internet": "crd-removed"}
    # fabric-b has not synced since: its row stays until its own run says otherwise.
    assert await states(pool, a, b) == {"fabric-a": expected_a, "fabric-b": everything("live")}


async def create_fabric(
    admin: KubeClient, namespace: str, name: str, kinds: list[dict[str, Any]]
) -> ResourceIdentity:
    body = await admin.create(
        f"/apis/{API_VERSION}/namespaces/{namespace}/fabrics",
        {"apiVersion": API_VERSION, "kind": "Fabric", "metadata": {"name": name},
         "spec": {"interval": "5m", "suspend": True, "namespaces": [namespace], "kinds": kinds}},
    )  # fmt: skip
    return identity(namespace, name, body["metadata"]["uid"])


async def test_a_deleted_fabric_is_retired_with_its_rows_by_reconciling_against_live_fabrics(
    objects: None, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    owner = await cluster_owner(admin)
    a = await create_fabric(admin, test_namespace, "fabric-a", KINDS)
    b = await create_fabric(
        admin, test_namespace, "fabric-b", KINDS[:1]
    )  # its spec dropped 3 kinds
    stranger = identity(test_namespace, "elsewhere")  # another cluster's Fabric, same database
    for fabric, kinds, who in (
        (a, KINDS, owner),
        (b, KINDS, owner),
        (stranger, KINDS, "other-cluster"),
    ):
        await sync(fabric, kinds, admin, pool, owner=who)
    await admin.delete(f"/apis/{API_VERSION}/namespaces/{test_namespace}/fabrics/fabric-a")

    report = await reconcile_fabrics(
        kube=admin, pool=pool, owner=owner, namespaces=[test_namespace], now=datetime.now(UTC)
    )

    assert report.fabrics == [f"{test_namespace}/fabric-a"]
    assert report.fabric_rows == len(everything("live"))
    only_switches = {
        k: ("live" if k.startswith("Switch/") else "kind-dropped") for k in everything("")
    }
    assert await states(pool, a, b, stranger) == {
        "fabric-a": everything("fabric-deleted"),
        "fabric-b": only_switches,
        "elsewhere": everything("live"),
    }
    registered = {
        r["name"]: (r["deleted_reason"], r["owner"] == owner)
        for r in await pool.fetch("SELECT * FROM fabrics WHERE namespace = $1", test_namespace)
    }
    assert registered == {
        "fabric-a": ("fabric-deleted", True),
        "fabric-b": (None, True),
        "elsewhere": (None, False),
    }
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sync_scopes WHERE workspace_id LIKE $1 || '/%'", a.uid
        )
        == 0
    )

    again = await reconcile_fabrics(
        kube=admin, pool=pool, owner=owner, namespaces=[test_namespace], now=datetime.now(UTC)
    )
    assert (again.fabrics, again.fabric_rows, again.dropped_kind_rows) == ([], 0, 0)


async def test_a_listing_that_fails_retires_nothing(
    objects: None, hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    owner = await cluster_owner(admin)
    a = await create_fabric(admin, test_namespace, "fabric-a", KINDS)
    await sync(a, KINDS, admin, pool, owner=owner)
    await admin.delete(f"/apis/{API_VERSION}/namespaces/{test_namespace}/fabrics/fabric-a")
    # An identity that may not list Fabrics: the list fails, so no Fabric may look deleted.
    blind = await service_account_connection(
        admin, server=hedgehog_crds.server, ca_file=hedgehog_crds.ca_path,
        namespace=test_namespace, name="blind",
    )  # fmt: skip

    async with KubeClient(blind) as client:
        with pytest.raises(KubeForbidden, match="cannot list fabrics"):
            await reconcile_fabrics(
                kube=client, pool=pool, owner=owner, namespaces=[test_namespace],
                now=datetime.now(UTC),
            )  # fmt: skip

    assert (await states(pool, a))["fabric-a"] == everything("live")
