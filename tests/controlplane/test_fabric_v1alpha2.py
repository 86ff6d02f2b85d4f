"""A fabric serving Hedgehog's wiring kinds at v1alpha2 (before v0.52): its kinds resolve to v1alpha2 and sync, a pin to v1beta1 is skipped (real API server; the wiring CRDs are swapped for this module)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from localcluster import ClusterInfo

from inventory_sync.kube import KubeClient
from inventory_sync.results import RunState, SourceState

from . import test_fabric_versions as versions
from .hedgehog import V1ALPHA2_DIR, VPC, WIRING, install, load_crds, obj, uninstall
from .test_fabric_versions import fabric, sync

pytestmark = pytest.mark.controlplane

admin = versions.admin  # the fixture of test_fabric_versions.py, shared rather than copied


@pytest.fixture(scope="module")
def old_hedgehog(hedgehog_crds: ClusterInfo) -> Iterator[ClusterInfo]:
    """Switch, Server and Connection served at v1alpha2 only (Hedgehog before v0.52), for this
    module's tests; the v1beta1 definitions come back afterwards. Swapped once per module: the
    API server can take minutes to delete a CRD it has just recreated."""
    old = load_crds(V1ALPHA2_DIR)
    current = load_crds()
    replaced = [current[name] for name in old]
    uninstall(hedgehog_crds, replaced)
    install(hedgehog_crds, old.values())
    try:
        yield hedgehog_crds
    finally:
        uninstall(hedgehog_crds, old.values())
        install(hedgehog_crds, replaced)


async def test_a_fabric_serving_v1alpha2_syncs(
    old_hedgehog: ClusterInfo, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    base = f"/apis/{WIRING}/v1alpha2/namespaces/{test_namespace}"
    await admin.create(f"{base}/switches", obj(WIRING, "Switch", "leaf-1", test_namespace,
                       {"role": "server-leaf", "asn": 65101}, version="v1alpha2"))  # fmt: skip
    await admin.create(f"{base}/servers", obj(WIRING, "Server", "server-1", test_namespace,
                       {"description": "s1"}, version="v1alpha2"))  # fmt: skip
    link = {"server": {"port": "server-1/enp2s1"}, "switch": {"port": "leaf-1/Ethernet1"}}
    await admin.create(f"{base}/connections", obj(WIRING, "Connection", "server-1--unbundled--leaf-1",
                       test_namespace, {"unbundled": {"link": link}}, version="v1alpha2"))  # fmt: skip

    result = await sync(test_namespace, None, admin, pool)  # the 12 default kinds, no pins

    assert result.state is RunState.SUCCEEDED, result.message
    versions = {o.name: o.api_version for o in result.sources}
    assert (
        versions["Switch"] == versions["Server"] == versions["Connection"] == f"{WIRING}/v1alpha2"
    )
    assert versions["VPC"] == f"{VPC}/v1beta1"
    assert versions["SwitchGroup"] == f"{WIRING}/v1beta1"
    assert {o.name: o.inserted for o in result.sources if o.inserted} == {
        "Switch": 1, "Server": 1, "Connection": 1,
    }  # fmt: skip
    ends = await pool.fetch(
        "SELECT device, port, peer_device, peer_port, connection_type FROM fabric_connection_ends"
        " WHERE namespace = $1 ORDER BY device",
        test_namespace,
    )
    assert [tuple(r) for r in ends] == [
        ("leaf-1", "Ethernet1", "server-1", "enp2s1", "unbundled"),
        ("server-1", "enp2s1", "leaf-1", "Ethernet1", "unbundled"),
    ]
    switches = await pool.fetch(
        "SELECT name, asn FROM fabric_switches WHERE namespace = $1", test_namespace
    )
    assert [tuple(r) for r in switches] == [("leaf-1", 65101)]


async def test_a_pinned_version_the_fabric_does_not_serve_is_skipped_and_keeps_its_rows(
    old_hedgehog: ClusterInfo, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    base = f"/apis/{WIRING}/v1alpha2/namespaces/{test_namespace}"
    await admin.create(f"{base}/switches", obj(WIRING, "Switch", "leaf-1", test_namespace,
                       {"role": "spine"}, version="v1alpha2"))  # fmt: skip
    identity = fabric(test_namespace)
    first = await sync(
        test_namespace, [{"group": WIRING, "kind": "Switch"}], admin, pool, identity=identity
    )
    assert first.source("Switch").inserted == 1

    pinned = await sync(
        test_namespace,
        [{"group": WIRING, "kind": "Switch", "version": "v1beta1"}, {"group": VPC, "kind": "VPC"}],
        admin, pool, identity=identity,
    )  # fmt: skip

    switches = pinned.source("Switch")
    assert (switches.state, switches.reason) == (SourceState.SKIPPED, "VersionNotServed")
    assert switches.message == f"installed at {WIRING}/v1alpha2, not at the pinned version v1beta1"
    assert pinned.state is RunState.SUCCEEDED  # VPC synced
    live = await pool.fetchval(
        "SELECT count(*) FROM fabric_objects WHERE fabric_uid = $1 AND kind = 'Switch'"
        " AND deleted_at IS NULL",
        identity.uid,
    )
    assert live == 1  # the kind is still there, at another version: nothing is retired
