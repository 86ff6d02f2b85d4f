"""Fabric sync against a real kube-apiserver and PostgreSQL: Hedgehog-shaped objects listed page by page into fabric_objects."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from localcluster import ClusterInfo

from inventory_sync.errors import CredentialsError, KubeConfigError
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import DEFAULT_FABRIC_KINDS, FabricSpec, parse_fabric_spec
from inventory_sync.results import RunResult, RunState, SourceState
from inventory_sync.store import inspection
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import fabric_connection, run_fabric_sync

from .harness import can_i, service_account_connection
from .hedgehog import SMALL_FABRIC_COUNTS, VPC, WIRING, obj, small_fabric, switch

pytestmark = pytest.mark.controlplane

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
COUNTS = SMALL_FABRIC_COUNTS
GROUPS = {ref.kind: ref.group for ref in DEFAULT_FABRIC_KINDS}


@pytest.fixture
async def admin(control_plane: ClusterInfo) -> AsyncIterator[KubeClient]:
    connection = KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig)
    async with KubeClient(connection) as client:
        yield client


@pytest.fixture
def fabric(test_namespace: str) -> ResourceIdentity:
    return ResourceIdentity(
        kind="Fabric", namespace=test_namespace, name="fabric-a", uid=str(uuid.uuid4())
    )


def apply(info: ClusterInfo, objects: list[dict[str, Any]]) -> None:
    # Client-side apply: each object gets the last-applied annotation the sync must drop.
    # kubectl validates strictly against the schema: an unknown field is an error.
    manifest = {"apiVersion": "v1", "kind": "List", "items": objects}
    info.kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))


def spec_for(namespaces: list[str], **fields: Any) -> FabricSpec:
    return parse_fabric_spec({"interval": "5m", "namespaces": namespaces, "pageSize": 2, **fields})


async def sync(
    spec: FabricSpec, fabric: ResourceIdentity, client: KubeClient, pool: asyncpg.Pool
) -> RunResult:
    return await run_fabric_sync(
        spec, fabric=fabric, client=client, pool=pool, trigger="test", owner=None
    )


async def rows(pool: asyncpg.Pool, where: str = "true", *args: Any) -> dict[str, asyncpg.Record]:
    found = await pool.fetch(f"SELECT * FROM fabric_objects WHERE {where} ORDER BY name", *args)
    return {f"{r['kind']}/{r['name']}": r for r in found}


async def test_first_sync_stores_every_object_with_its_columns(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    apply(hedgehog_crds, small_fabric(test_namespace))

    result = await sync(spec_for([test_namespace]), fabric, admin, pool)

    assert result.state is RunState.SUCCEEDED, result.message
    outcomes = {o.name: o for o in result.sources}
    assert set(outcomes) == set(COUNTS)
    for kind, count in COUNTS.items():
        outcome = outcomes[kind]
        assert outcome.state is SourceState.SUCCEEDED
        assert (outcome.kind, outcome.api_version) == (
            f"{GROUPS[kind]}/{kind}",
            f"{GROUPS[kind]}/v1beta1",
        )
        assert (outcome.fetched, outcome.inserted, outcome.deleted) == (count, count, 0), kind
        assert outcome.deletion_skipped is None
        # pageSize 2: one request per page, an empty last page never sent.
        assert outcome.requests == max(1, -(-count // 2)), kind
        assert outcome.status_codes == {"200": outcome.requests}
    stored = await rows(pool, "fabric_uid = $1", fabric.uid)
    assert len(stored) == sum(COUNTS.values())
    leaf = stored["Switch/leaf-3"]
    assert (leaf["api_group"], leaf["api_version"], leaf["kind"]) == (
        WIRING,
        f"{WIRING}/v1beta1",
        "Switch",
    )
    assert (leaf["namespace"], leaf["fabric_namespace"], leaf["fabric_name"]) == (
        test_namespace,
        test_namespace,
        "fabric-a",
    )
    assert leaf["scope"] == f"{fabric.uid}/{WIRING}/Switch"
    assert json.loads(leaf["labels"]) == {"fabric.githedgehog.com/rack": "rack-1"}
    assert json.loads(leaf["spec"]) == {
        "role": "server-leaf", "description": "leaf 3", "profile": "vs", "groups": [],
        "vlanNamespaces": ["default"], "asn": 65103, "ip": "172.30.0.11/21",
        "vtepIP": "172.30.12.3/32", "protocolIP": "172.30.8.3/32", "boot": {"serial": "SN-LEAF-3"},
    }  # fmt: skip
    assert leaf["status"] is None
    assert leaf["resource_version"]
    assert (leaf["deleted_at"], leaf["deleted_reason"]) == (None, None)
    data = json.loads(leaf["data"])
    assert data["id"] == leaf["id"] == data["metadata"]["uid"]
    assert data["resourceVersion"] == leaf["resource_version"]
    # Volatile metadata never reaches `data`: it would make every sync an update.
    assert "managedFields" not in data["metadata"]
    assert "resourceVersion" not in data["metadata"]
    assert LAST_APPLIED not in data["metadata"].get("annotations", {})
    assert stored["VPCPeering/vpc-0--vpc-1"]["api_group"] == VPC


async def test_the_real_schemas_refuse_what_the_old_stand_ins_accepted(
    hedgehog_crds: ClusterInfo, test_namespace: str
) -> None:
    """The objects the tests used before (ports on a Switch, a description on nine kinds
    without one) are refused like the real CRDs refuse them, not silently stored."""
    refused = [
        switch("leaf-x", test_namespace, ports=[1, 2]),
        obj(WIRING, "SwitchGroup", "sg-x", test_namespace, {"description": "x"}),
        obj(VPC, "VPC", "vpc-x", test_namespace, {"description": "x"}),
        obj(WIRING, "Switch", "leaf-y", test_namespace, {"description": "no role"}),
    ]
    for body in refused:
        result = hedgehog_crds.kubectl_run(
            "create", "--validate=strict", "-f", "-", stdin=json.dumps(body), check=False
        )
        assert result.returncode != 0, body
        assert "unknown field" in result.stderr or "Required value" in result.stderr, result.stderr


async def test_a_second_sync_without_changes_writes_no_rows(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    objects = small_fabric(test_namespace)
    apply(hedgehog_crds, objects)
    spec = spec_for([test_namespace])
    await sync(spec, fabric, admin, pool)
    path = f"/apis/{WIRING}/v1beta1/namespaces/{test_namespace}/switches/leaf-0"
    before = await admin.get(path)
    # A second field manager re-applies identical content: only managedFields and the
    # resourceVersion move, which must not count as a change.
    leaf = next(o for o in objects if o["metadata"]["name"] == "leaf-0")
    hedgehog_crds.kubectl_run(
        "apply", "--server-side", "--field-manager=gitops", "--force-conflicts", "-f", "-",
        stdin=json.dumps(leaf),
    )  # fmt: skip
    after = await admin.get(path)
    assert before is not None
    assert after is not None
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    marker = await inspection.write_marker(pool)

    again = await sync(spec, fabric, admin, pool)

    assert again.state is RunState.SUCCEEDED
    assert await inspection.rows_written_since(pool, marker) == 0
    assert again.rows_written == 0
    assert all(o.unchanged == o.fetched == COUNTS[o.name] for o in again.sources)


async def test_deleted_objects_are_soft_deleted_and_changes_updated(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    apply(hedgehog_crds, small_fabric(test_namespace))
    spec = spec_for([test_namespace])
    first = await sync(spec, fabric, admin, pool)
    ns = ["-n", test_namespace]
    hedgehog_crds.kubectl_run("delete", f"switches.{WIRING}", "leaf-0", *ns)
    hedgehog_crds.kubectl_run(
        "patch", f"switches.{WIRING}", "leaf-1", *ns, "--type=merge", "-p", '{"spec":{"asn":1}}'
    )
    hedgehog_crds.kubectl_run(
        "patch", f"vpcs.{VPC}", "vpc-0", *ns, "--type=merge",
        "-p", '{"spec":{"subnets":{"default":{"vlan":1100}}}}',
    )  # fmt: skip

    second = await sync(spec, fabric, admin, pool)

    switches, vpcs = second.source("Switch"), second.source("VPC")
    assert (switches.fetched, switches.updated, switches.deleted, switches.unchanged) == (
        4,
        1,
        1,
        3,
    )
    assert (vpcs.updated, vpcs.unchanged) == (1, 1)
    stored = await rows(pool, "fabric_uid = $1", fabric.uid)
    assert stored["Switch/leaf-0"]["deleted_at"] == second.started_at
    assert stored["Switch/leaf-0"]["deleted_reason"] == "deleted"
    assert json.loads(stored["Switch/leaf-1"]["spec"])["asn"] == 1
    assert stored["Switch/leaf-1"]["changed_at"] == second.started_at
    assert stored["Switch/leaf-2"]["changed_at"] == first.started_at
    assert json.loads(stored["VPC/vpc-0"]["spec"])["subnets"]["default"]["vlan"] == 1100
    current = {
        r["name"]: r
        for r in await pool.fetch(
            "SELECT name, last_seen FROM fabric_objects_current WHERE scope = $1",
            f"{fabric.uid}/{WIRING}/Switch",
        )
    }
    assert sorted(current) == ["leaf-1", "leaf-2", "leaf-3", "leaf-4"]
    assert {r["last_seen"] for r in current.values()} == {second.started_at}

    apply(
        hedgehog_crds,
        [o for o in small_fabric(test_namespace) if o["metadata"]["name"] == "leaf-0"],
    )
    third = await sync(spec, fabric, admin, pool)

    assert third.source("Switch").inserted == 1  # a new uid: a new row, the old one stays retired
    both = await pool.fetch(
        "SELECT deleted_reason FROM fabric_objects WHERE fabric_uid = $1 AND name = 'leaf-0'"
        " ORDER BY first_seen",
        fabric.uid,
    )
    assert [r["deleted_reason"] for r in both] == ["deleted", None]


async def test_namespaces_restrict_the_listing(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    other = f"{test_namespace}-b"
    hedgehog_crds.kubectl_run("create", "namespace", other)
    apply(
        hedgehog_crds,
        [switch(f"a-{n}", test_namespace) for n in range(3)]
        + [switch(f"b-{n}", other) for n in range(2)],
    )
    kinds = [{"group": WIRING, "kind": "Switch"}]

    only_a = await sync(spec_for([test_namespace], kinds=kinds), fabric, admin, pool)

    assert only_a.source("Switch").fetched == 3
    stored = await rows(pool)
    assert sorted(stored) == ["Switch/a-0", "Switch/a-1", "Switch/a-2"]

    # Empty means every namespace (other tests' namespaces included, hence the filter).
    everywhere = await sync(spec_for([], kinds=kinds), fabric, admin, pool)

    assert everywhere.state is RunState.SUCCEEDED
    mine = await rows(pool, "namespace = ANY($1) AND deleted_at IS NULL", [test_namespace, other])
    assert sorted(mine) == ["Switch/a-0", "Switch/a-1", "Switch/a-2", "Switch/b-0", "Switch/b-1"]
    assert everywhere.source("Switch").unchanged >= 3


class ExpiringContinue(httpx.AsyncBaseTransport):
    """The real API server, except that continued lists of `plural` answer 410 Gone (as once
    etcd compacted the snapshot a continue token points into): the first `times` of them."""

    def __init__(self, inner: httpx.AsyncBaseTransport, plural: str, *, times: int) -> None:
        self.inner, self.plural, self.left = inner, plural, times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        continued = "continue" in request.url.params
        if continued and request.url.path.endswith(f"/{self.plural}") and self.left > 0:
            self.left -= 1
            status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410}
            return httpx.Response(410, json=status)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def sync_expiring(
    spec: FabricSpec, fabric: ResourceIdentity, admin: KubeClient, pool: asyncpg.Pool, times: int
) -> RunResult:
    connection = admin.connection
    inner = httpx.AsyncHTTPTransport(verify=connection.ssl_context())
    async with KubeClient(
        connection, transport=ExpiringContinue(inner, "switches", times=times)
    ) as client:
        return await sync(spec, fabric, client, pool)


async def test_an_expired_continue_token_restarts_the_kinds_list_once(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    apply(hedgehog_crds, small_fabric(test_namespace))
    spec = spec_for([test_namespace])
    await sync(spec, fabric, admin, pool)
    hedgehog_crds.kubectl_run("delete", f"switches.{WIRING}", "leaf-4", "-n", test_namespace)

    result = await sync_expiring(spec, fabric, admin, pool, times=1)

    assert result.state is RunState.SUCCEEDED, result.message
    switches = result.source("Switch")
    assert switches.state is SourceState.SUCCEEDED
    assert (switches.fetched, switches.unchanged, switches.deleted) == (4, 4, 1)
    assert switches.message == "listed twice: the first list expired between pages (410 Gone)"
    # 2 pages of 2 after a first page and a 410: the restart is counted per kind.
    assert switches.status_codes == {"200": 3, "410": 1}
    stored = await rows(pool, "fabric_uid = $1 AND kind = 'Switch'", fabric.uid)
    assert stored["Switch/leaf-4"]["deleted_reason"] == "deleted"


async def test_a_second_expired_token_fails_the_kind_and_deletes_nothing(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    apply(hedgehog_crds, small_fabric(test_namespace))
    spec = spec_for([test_namespace])
    await sync(spec, fabric, admin, pool)
    hedgehog_crds.kubectl_run("delete", f"switches.{WIRING}", "leaf-4", "-n", test_namespace)

    result = await sync_expiring(spec, fabric, admin, pool, times=2)

    assert result.state is RunState.FAILED
    switches = result.source("Switch")
    assert (switches.state, switches.reason) == (SourceState.FAILED, "Expired")
    assert "410" in (switches.message or "")
    assert switches.deleted == 0
    assert result.message is not None
    assert result.message.startswith("Switch: ")
    assert all(o.state is SourceState.SUCCEEDED for o in result.sources if o.name != "Switch")
    stored = await rows(pool, "fabric_uid = $1 AND kind = 'Switch'", fabric.uid)
    assert stored["Switch/leaf-4"]["deleted_at"] is None  # a partial list deletes nothing


async def test_the_operator_identity_needs_list_rights_where_it_lists(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    pool: asyncpg.Pool,
) -> None:
    apply(hedgehog_crds, [switch("leaf-0", test_namespace)])
    # An identity of its own: the shared operator identity may hold the repo's cluster-wide
    # RBAC already (other tests in the session apply manifests/rbac.yaml).
    ns, sa = test_namespace, "fabric-reader"
    async with KubeClient(
        KubeConnection.from_kubeconfig_file(hedgehog_crds.admin_kubeconfig)
    ) as admin:
        connection = await service_account_connection(
            admin, server=hedgehog_crds.server, ca_file=hedgehog_crds.ca_path, namespace=ns, name=sa
        )
    meta = {"name": "fabric-reader", "namespace": test_namespace}
    apply(
        hedgehog_crds,
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": [{"apiGroups": [WIRING, VPC], "resources": ["*"], "verbs": ["list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "fabric-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
            },
        ],
    )
    deadline = time.monotonic() + 15
    async with KubeClient(connection) as probe:
        while not await can_i(probe, "list", "switches", namespace=test_namespace, group=WIRING):
            assert time.monotonic() < deadline, "RoleBinding never took effect"
            await asyncio.sleep(0.1)
    kinds = [{"group": WIRING, "kind": "Switch"}, {"group": VPC, "kind": "VPC"}]

    async with KubeClient(connection) as operator:
        granted = await sync(spec_for([test_namespace], kinds=kinds), fabric, operator, pool)
        everywhere = await sync(spec_for([], kinds=kinds), fabric, operator, pool)

    assert granted.state is RunState.SUCCEEDED, granted.message
    assert granted.source("Switch").inserted == 1
    assert everywhere.state is RunState.FAILED
    assert (everywhere.source("Switch").state, everywhere.source("Switch").reason) == (
        SourceState.FAILED,
        "Forbidden",
    )
    assert everywhere.source("Switch").message == (
        f"forbidden: cannot list switches at cluster scope (API group {WIRING})"
    )
    assert everywhere.source("VPC").message == (
        f"forbidden: cannot list vpcs at cluster scope (API group {VPC})"
    )
    # Forbidden is not "not installed": the rows the identity could read before stay live.
    assert (await rows(pool, "fabric_uid = $1 AND deleted_at IS NULL", fabric.uid)).keys() == {
        "Switch/leaf-0"
    }


def kubeconfig_secrets(info: ClusterInfo, namespace: str) -> list[dict[str, Any]]:
    """`fabric-a`: the admin kubeconfig; `sneaky`: one pointing at the operator's own token."""
    kubeconfig = Path(info.admin_kubeconfig).read_text()
    sneaky = yaml.safe_load(kubeconfig)
    sneaky["users"][0]["user"] = {
        "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"kubeconfig": text},
        }
        for name, text in (("fabric-a", kubeconfig), ("sneaky", yaml.safe_dump(sneaky)))
    ]


async def test_a_fabric_reached_through_a_kubeconfig_secret(
    hedgehog_crds: ClusterInfo,
    test_namespace: str,
    fabric: ResourceIdentity,
    admin: KubeClient,
    pool: asyncpg.Pool,
) -> None:
    apply(hedgehog_crds, [switch("leaf-0", test_namespace)])
    apply(hedgehog_crds, kubeconfig_secrets(hedgehog_crds, test_namespace))
    kinds = [{"group": WIRING, "kind": "Switch"}]
    spec = spec_for([test_namespace], kinds=kinds, kubeconfigSecretRef={"name": "fabric-a"})

    remote = await fabric_connection(spec, namespace=test_namespace, local=admin)
    async with KubeClient(remote) as client:
        result = await sync(spec, fabric, client, pool)

    assert result.state is RunState.SUCCEEDED, result.message
    assert result.source("Switch").inserted == 1
    assert (await fabric_connection(spec_for([]), namespace=test_namespace, local=admin)) is (
        admin.connection
    )
    for ref, error, message in (
        ({"name": "absent"}, CredentialsError, "not found"),
        ({"name": "fabric-a", "key": "config"}, CredentialsError, "has no key 'config'"),
        ({"name": "sneaky"}, KubeConfigError, "local file \\(tokenFile\\)"),
    ):
        with pytest.raises(error, match=message):
            await fabric_connection(
                spec_for([], kubeconfigSecretRef=ref), namespace=test_namespace, local=admin
            )
