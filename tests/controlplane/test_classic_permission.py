"""Classic Central on the default install: the operator may not patch Secrets, so it could not
save the refresh token classic Central rotates on every use. It must say so (Stalled, naming
the rule and the Helm value) before spending the customer's token, and recover once granted."""

from __future__ import annotations

from typing import Any

import pytest

from inventory_sync.kube import KubeClient
from inventory_sync.simulator import ThreadedSimulator

from .harness import can_i, condition, eventually
from .test_operator import path

pytestmark = pytest.mark.controlplane


REFRESH_TOKEN = "demo-classic-refresh-0"


def classic_schedule(simulator: ThreadedSimulator) -> dict[str, Any]:
    return {
        "apiVersion": "inventorysync.dev/v1alpha1",
        "kind": "SyncSchedule",
        "metadata": {"name": "classic"},
        "spec": {
            "interval": "15m",
            "sources": [
                {
                    "name": "classic",
                    "arubaCentralClassic": {
                        "endpoint": simulator.url,
                        "accountId": "demo-classic-customer",
                        "credentialsSecretRef": {"name": "classic"},
                    },
                }
            ],
        },
    }


async def stored_refresh_token(admin: KubeClient, namespace: str) -> str:
    secret = await admin.read_secret(namespace, "classic")
    assert secret is not None
    return secret["refresh_token"]


async def test_classic_central_is_stalled_before_any_token_is_spent_then_recovers(
    control_plane: Any,
    operator: Any,
    admin: KubeClient,
    test_namespace: str,
    simulator: ThreadedSimulator,
) -> None:
    await admin.create(
        f"/api/v1/namespaces/{test_namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "classic"},
            "stringData": {
                "client_id": "demo-classic-client",
                "client_secret": "demo-classic-secret-not-real",
                "refresh_token": REFRESH_TOKEN,
            },
        },
    )
    operator()
    await admin.create(path(test_namespace), classic_schedule(simulator))

    async def stalled() -> dict[str, Any] | None:
        found = condition(await admin.get(path(test_namespace, name="classic")), "Stalled")
        return found if found and found["status"] == "True" else None

    found = await eventually(stalled, what="Stalled")
    assert found["reason"] == "Forbidden"
    assert (
        f"cannot patch secrets in namespace {test_namespace} (Secret classic)" in (found["message"])
    )
    assert "rbac.writeRotatedTokens=true" in found["message"]
    assert simulator.state.classic.tokens_issued == 0  # the refresh token was never spent
    assert await stored_refresh_token(admin, test_namespace) == REFRESH_TOKEN

    # What `--set rbac.writeRotatedTokens=true` grants, here for this namespace only.
    meta = {"name": "write-rotated-tokens", "namespace": test_namespace}
    await admin.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{test_namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "patch"]}],
        },
    )
    await admin.create(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{test_namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "write-rotated-tokens",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": control_plane.operator_service_account,
                    "namespace": control_plane.operator_namespace,
                }
            ],
        },
    )

    async def ready() -> dict[str, Any] | None:
        body = await admin.get(path(test_namespace, name="classic"))
        found = condition(body, "Ready")
        return body if found and found["status"] == "True" else None

    body = await eventually(ready, within=40, what="Ready after the grant")
    assert condition(body, "Stalled") is None
    rotated = await stored_refresh_token(admin, test_namespace)
    assert rotated != REFRESH_TOKEN
    assert rotated == simulator.state.classic.account().refresh_token  # saved, then used


async def test_the_default_rbac_grants_no_patch_on_secrets(
    control_plane: Any, operator_rbac: None, test_namespace: str
) -> None:
    """The premise above: manifests/rbac.yaml (the chart's default) leaves Secrets read-only,
    and any identity may ask the API server what it may do (system:basic-user)."""
    from inventory_sync.kube import KubeConnection

    connection = KubeConnection.from_kubeconfig_file(control_plane.operator_kubeconfig)
    async with KubeClient(connection) as client:
        assert not await can_i(client, "patch", "secrets", namespace=test_namespace)
        assert await can_i(client, "get", "secrets", namespace=test_namespace)
        allowed, _ = await client.may("patch", "secrets", namespace=test_namespace, name="x")
        assert not allowed
