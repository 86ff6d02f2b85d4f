"""KubeClient against a real kube-apiserver: paging, discovery, Secrets, status, Events and RBAC errors."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from localcluster import ClusterInfo

from inventory_sync.errors import (
    KubeConflict,
    KubeForbidden,
    KubeNotFound,
    KubeUnauthorized,
)
from inventory_sync.kube import MAX_EVENT_MESSAGE, KubeClient, KubeConnection, resource_path

pytestmark = pytest.mark.controlplane

WIRING = "wiring.githedgehog.com"
AGENT = "agent.githedgehog.com"


def apply(info: ClusterInfo, *objects: dict[str, Any]) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    info.kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))


@pytest.fixture
async def admin(control_plane: ClusterInfo) -> AsyncIterator[KubeClient]:
    """system:masters, connected through the kubeconfig file kubectl uses."""
    connection = KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig)
    async with KubeClient(connection) as client:
        yield client


@pytest.fixture
async def operator(control_plane: ClusterInfo) -> AsyncIterator[KubeClient]:
    """The operator's ServiceAccount identity, with whatever RBAC the test grants (none)."""
    connection = KubeConnection.from_kubeconfig_file(control_plane.operator_kubeconfig)
    async with KubeClient(connection) as client:
        yield client


def switch(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{WIRING}/v1beta1",
        "kind": "Switch",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"role": "server-leaf", "asn": 65101},
    }


async def test_list_pages_follows_continue_over_a_real_collection(
    control_plane: ClusterInfo, test_namespace: str, admin: KubeClient
) -> None:
    names = [f"cm-{n:02d}" for n in range(23)]
    apply(
        control_plane,
        *(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": n, "namespace": test_namespace, "labels": {"t": "paging"}},
                "data": {"name": n},
            }
            for n in names
        ),
    )
    path = resource_path("", "v1", "configmaps", test_namespace)

    pages = [p async for p in admin.list_pages(path, limit=5, label_selector="t=paging")]

    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    assert sorted(i["metadata"]["name"] for p in pages for i in p.items) == names
    assert all(p.continue_token for p in pages[:-1])
    assert pages[-1].continue_token is None
    assert pages[0].resource_version
    # Without a selector the server also estimates what remains after the first chunk.
    everything = [i async for p in admin.list_pages(path, limit=100) for i in p.items]
    async with aclosing(admin.list_pages(path, limit=5)) as walk:
        first = await anext(walk)
    assert first.remaining_item_count == len(everything) - 5


async def test_discover_maps_kinds_to_plurals(
    hedgehog_crds: ClusterInfo, admin: KubeClient
) -> None:
    wiring = await admin.discover(WIRING, "v1beta1")
    assert (wiring["Switch"].plural, wiring["Switch"].namespaced) == ("switches", True)
    assert wiring["VLANNamespace"].plural == "vlannamespaces"
    assert "list" in wiring["Switch"].verbs
    core = await admin.discover("", "v1")
    assert (core["ConfigMap"].plural, core["Namespace"].namespaced) == ("configmaps", False)
    assert await admin.discover("nothing.example.com", "v1beta1") == {}


async def test_read_secret_decodes_data(
    control_plane: ClusterInfo, test_namespace: str, admin: KubeClient
) -> None:
    apply(
        control_plane,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "fabric-creds", "namespace": test_namespace},
            "stringData": {"kubeconfig": "apiVersion: v1\nkind: Config\n"},
            "data": {"note": base64.b64encode("grüezi".encode()).decode()},
        },
    )
    assert await admin.read_secret(test_namespace, "fabric-creds") == {
        "kubeconfig": "apiVersion: v1\nkind: Config\n",
        "note": "grüezi",
    }
    assert await admin.read_secret(test_namespace, "absent") is None


async def test_patch_status_writes_only_the_status(
    hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient
) -> None:
    # An Agent: unlike the wiring kinds, its status schema has fields (Switch's would be pruned).
    agent = {
        "apiVersion": f"{AGENT}/v1beta1",
        "kind": "Agent",
        "metadata": {"name": "leaf-1", "namespace": test_namespace},
        "spec": {"role": "server-leaf"},
    }
    apply(hedgehog_crds, agent)
    status = {"version": "v0.87.0", "lastAppliedGen": 1, "conditions": []}

    stored = await admin.patch_status(
        group=AGENT,
        version="v1beta1",
        plural="agents",
        namespace=test_namespace,
        name="leaf-1",
        # The status subresource ignores spec: GitOps tools own it, we never touch it.
        patch={"status": status, "spec": {"role": "spine"}},
    )

    assert stored["status"] == status
    again = await admin.get(resource_path(AGENT, "v1beta1", "agents", test_namespace, "leaf-1"))
    assert again is not None
    assert again["status"] == status
    assert again["spec"]["role"] == "server-leaf"


async def test_create_event_is_listed_for_the_object(
    hedgehog_crds: ClusterInfo, test_namespace: str, admin: KubeClient
) -> None:
    apply(hedgehog_crds, switch(test_namespace, "leaf-2"))
    obj = await admin.get(resource_path(WIRING, "v1beta1", "switches", test_namespace, "leaf-2"))
    assert obj is not None
    involved = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": "leaf-2",
        "namespace": test_namespace,
        "uid": obj["metadata"]["uid"],
    }

    await admin.create_event(
        involved=involved,
        type="Warning",
        reason="SyncFailed",
        message="x" * 3000,
        action="Sync",
        reporting_instance="test-instance",
    )

    events = await admin.get(resource_path("", "v1", "events", test_namespace))
    assert events is not None
    [event] = [e for e in events["items"] if e["involvedObject"]["uid"] == involved["uid"]]
    assert (event["type"], event["reason"], event["action"]) == ("Warning", "SyncFailed", "Sync")
    assert len(event["message"]) == MAX_EVENT_MESSAGE
    assert event["reportingComponent"] == "inventory-sync-operator"
    assert event["source"]["component"] == "inventory-sync-operator"
    assert event["metadata"]["name"].startswith("leaf-2.")


async def test_without_rbac_the_operator_gets_forbidden_naming_what_is_missing(
    control_plane: ClusterInfo, test_namespace: str, operator: KubeClient
) -> None:
    path = resource_path("", "v1", "configmaps", test_namespace)
    with pytest.raises(KubeForbidden) as listing:
        await operator.get(path)
    assert str(listing.value) == f"forbidden: cannot list configmaps in namespace {test_namespace}"
    assert listing.value.permanent

    with pytest.raises(KubeForbidden) as patching:
        await operator.patch_merge(f"{path}/anything", {"data": {"a": "b"}})
    assert f"cannot patch configmaps in namespace {test_namespace}" in str(patching.value)
    assert control_plane.operator_token not in str(patching.value)


async def test_a_refused_token_is_unauthorized_without_the_token(
    control_plane: ClusterInfo,
) -> None:
    bogus = "bogus-token-0123456789abcdef"
    connection = KubeConnection(
        server=control_plane.server, ca_file=control_plane.ca_path, token=bogus
    )
    async with KubeClient(connection) as client:
        with pytest.raises(KubeUnauthorized) as caught:
            await client.get("/api/v1/namespaces/default")
    assert caught.value.permanent
    assert bogus not in str(caught.value)


async def test_missing_objects_and_stale_writes(
    control_plane: ClusterInfo, test_namespace: str, admin: KubeClient
) -> None:
    path = resource_path("", "v1", "configmaps", test_namespace, "cm")
    assert await admin.get(path) is None
    with pytest.raises(KubeNotFound):
        await admin.patch_merge(path, {"data": {"a": "b"}})
    apply(
        control_plane,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": test_namespace},
        },
    )
    # A merge patch carrying an old resourceVersion is an optimistic-concurrency conflict.
    with pytest.raises(KubeConflict, match="conflict"):
        await admin.patch_merge(path, {"metadata": {"resourceVersion": "1"}, "data": {"a": "b"}})
