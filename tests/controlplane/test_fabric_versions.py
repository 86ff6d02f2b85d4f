"""Kinds resolved through the fabric's discovery: a fabric serving v1alpha2, pinned versions, kinds that are absent, misspelt or unreadable (real API server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from localcluster import ClusterInfo

from inventory_sync.errors import SpecError
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import parse_fabric_spec
from inventory_sync.results import RunResult, RunState, SourceState
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import check_kinds, run_fabric_sync

from .hedgehog import AGENT, VPC, WIRING, obj

pytestmark = pytest.mark.controlplane


@pytest.fixture
async def admin(control_plane: ClusterInfo) -> AsyncIterator[KubeClient]:
    connection = KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig)
    async with KubeClient(connection) as client:
        yield client


def fabric(namespace: str) -> ResourceIdentity:
    return ResourceIdentity(
        kind="Fabric", namespace=namespace, name="fabric-a", uid=str(uuid.uuid4())
    )


async def sync(
    namespace: str, kinds: list[dict[str, Any]] | None, client: KubeClient, pool: asyncpg.Pool,
    *, identity: ResourceIdentity | None = None,
) -> RunResult:  # fmt: skip
    spec = parse_fabric_spec(
        {"interval": "5m", "namespaces": [namespace], **({"kinds": kinds} if kinds else {})}
    )
    return await run_fabric_sync(
        spec, fabric=identity or fabric(namespace), client=client, pool=pool, trigger="test",
        owner=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kinds", "reasons"),
    [
        pytest.param([{"group": "nothing.example.com", "kind": "Thing"},
                      {"group": WIRING, "kind": "Switch", "version": "v1alpha2"}],
                     {"Thing": "NotInstalled", "Switch": "VersionNotServed"},
                     id="every kind absent or at another version"),
    ],
)  # fmt: skip
async def test_a_fabric_serving_nothing_we_can_read_is_not_a_success(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    admin: KubeClient,
    pool: asyncpg.Pool,
    kinds: list[dict[str, Any]],
    reasons: dict[str, str],
) -> None:
    result = await sync(test_namespace, kinds, admin, pool)

    assert result.state is RunState.FAILED
    assert {o.name: o.reason for o in result.sources} == reasons
    assert all(o.state is SourceState.SKIPPED for o in result.sources)
    assert result.message == (
        "no kind synced: Thing: not installed: the fabric serves no API group nothing.example.com; "
        f"Switch: installed at {WIRING}/v1beta1, not at the pinned version v1alpha2"
    )


async def test_misspelt_kinds_are_a_spec_error_naming_the_field(
    hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    kinds = [
        {"group": WIRING, "kind": "Switch"},
        {"group": WIRING, "kind": "Swtich"},
        {"group": VPC, "kind": "Agent"},
    ]
    spec = parse_fabric_spec({"interval": "5m", "kinds": kinds})

    with pytest.raises(SpecError) as raised:
        await check_kinds(spec, client=admin)

    assert str(raised.value) == (
        f"spec.kinds[1].kind: {WIRING} serves no kind Swtich; did you mean Switch?; "
        f"spec.kinds[2].group: Agent is served by {AGENT}, not by {VPC}"
    )
    # The run itself never lists them, and says the same per kind.
    result = await sync(test_namespace, kinds, admin, pool)
    assert result.state is RunState.FAILED
    assert {o.name: (o.state, o.reason) for o in result.sources} == {
        "Switch": (SourceState.SUCCEEDED, None),
        "Swtich": (SourceState.FAILED, "UnknownKind"),
        "Agent": (SourceState.FAILED, "UnknownKind"),
    }


async def test_every_opt_in_operational_kind_resolves_to_its_served_version_and_syncs(
    hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient, pool: asyncpg.Pool
) -> None:
    from inventory_sync.models import OPERATIONAL_FABRIC_KINDS

    from .hedgehog import DHCP, FABRICATOR, GATEWAY, GWINT, condition

    ns = test_namespace
    lease = {
        "aa:bb:cc:dd:ee:01": {
            "ip": "10.0.1.10",
            "expiry": "2025-03-01T12:00:00Z",
            "hostname": "server-1",
        }
    }
    dhcp_spec = {
        "subnet": "vpc-1/default", "cidrBlock": "10.0.1.0/24", "gateway": "10.0.1.1", "startIP": "10.0.1.10",
        "endIP": "10.0.1.99", "vrf": "VrfVvpc-1", "circuitID": "Vlan1001", "pxeURL": "", "defaultURL": "",
        "dnsServers": [], "timeServers": [], "interfaceMTU": 9036, "leaseTimeSeconds": 3600,
    }  # fmt: skip
    objects = [
        (WIRING, "v1beta1", "switchprofiles", obj(WIRING, "SwitchProfile", "vs", ns, {"displayName": "Virtual Switch"})),
        (WIRING, "v1beta1", "serverprofiles", obj(WIRING, "ServerProfile", "srv", ns, {"nics": []})),
        (AGENT, "v1beta1", "catalogs", obj(AGENT, "Catalog", "leaf-1", ns, {"vpcVNIs": {"vpc-1": 100}})),
        (DHCP, "v1beta1", "dhcpsubnets", obj(DHCP, "DHCPSubnet", "vpc-1--default", ns, dhcp_spec)),
        (GATEWAY, "v1alpha1", "gateways", obj(GATEWAY, "Gateway", "gw-1", ns, {"protocolIP": "172.30.8.9/32"}, version="v1alpha1")),
        (GATEWAY, "v1alpha1", "gatewaygroups", obj(GATEWAY, "GatewayGroup", "default", ns, {}, version="v1alpha1")),
        (GATEWAY, "v1alpha1", "gatewaypeerings", obj(GATEWAY, "GatewayPeering", "vpc-1--vpc-2", ns, {"gatewayGroup": "default"}, version="v1alpha1")),
        (GATEWAY, "v1alpha1", "vpcinfos", obj(GATEWAY, "VPCInfo", "vpc-1", ns, {"vni": 100}, version="v1alpha1")),
        (GWINT, "v1alpha1", "gatewayagents", obj(GWINT, "GatewayAgent", "gw-1", ns, {"agentVersion": "v0.1.0"}, version="v1alpha1")),
        (FABRICATOR, "v1beta1", "controlnodes", obj(FABRICATOR, "ControlNode", "control-1", ns, {"management": {"ip": "172.30.0.5/21"}})),
        (FABRICATOR, "v1beta1", "fabnodes", obj(FABRICATOR, "FabNode", "node-1", ns, {"roles": ["gateway"]})),
        (FABRICATOR, "v1beta1", "fabricators", obj(FABRICATOR, "Fabricator", "default", ns, {})),
    ]  # fmt: skip
    for group, version, plural, body in objects:
        await admin.create(f"/apis/{group}/{version}/namespaces/{ns}/{plural}", body)
    await admin.patch_status(group=DHCP, version="v1beta1", plural="dhcpsubnets", namespace=ns,
                             name="vpc-1--default", patch={"status": {"allocated": lease}})  # fmt: skip
    await admin.patch_status(group=FABRICATOR, version="v1beta1", plural="fabricators", namespace=ns,
                             name="default", patch={"status": {"conditions": [condition("Ready")]}})  # fmt: skip
    kinds = [k.model_dump(by_alias=True, exclude_none=True) for k in OPERATIONAL_FABRIC_KINDS]

    result = await sync(ns, kinds, admin, pool)

    assert result.state is RunState.SUCCEEDED, result.message
    listed = {o.name: (o.api_version, o.inserted) for o in result.sources if o.name != "Agent"}
    expected = {body["kind"]: (body["apiVersion"], 1) for *_, body in objects}
    assert listed == expected
    leases = await pool.fetchval(
        "SELECT status->'allocated' FROM fabric_objects WHERE kind = 'DHCPSubnet' AND namespace = $1",
        ns,
    )
    assert __import__("json").loads(leases) == lease
