"""Checks that only a real kube-apiserver can answer (see tests/controlplane/conftest.py)."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import pytest
from localcluster import ClusterInfo

pytestmark = pytest.mark.controlplane


def _manifest(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


def test_version_is_the_pinned_release(control_plane: ClusterInfo) -> None:
    server = json.loads(control_plane.kubectl_run("get", "--raw", "/version").stdout)
    assert not server["gitVersion"].startswith("v0.0.0"), "built without version ldflags"
    assert re.fullmatch(r"v1\.\d+\.\d+", server["gitVersion"])
    if control_plane.expected_version is not None:  # a locally built control plane
        assert server["gitVersion"] == control_plane.expected_version
        assert (server["major"], server["minor"]) == (
            "1",
            control_plane.expected_version.split(".")[1],
        )
        client = json.loads(control_plane.kubectl_run("version", "--client", "-o", "json").stdout)
        assert client["clientVersion"]["gitVersion"] == control_plane.expected_version
    # /version is readable by any authenticated identity (system:discovery).
    status, body = control_plane.request("GET", "/version")
    assert (status, body["gitVersion"]) == (200, server["gitVersion"])


def test_operator_token_authenticates_as_its_service_account(control_plane: ClusterInfo) -> None:
    review = json.loads(
        control_plane.kubectl_run("auth", "whoami", "-o", "json", operator=True).stdout
    )
    ns, sa = control_plane.operator_namespace, control_plane.operator_service_account
    user = review["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{ns}:{sa}"
    assert {"system:serviceaccounts", f"system:serviceaccounts:{ns}"} <= set(user["groups"])


def _secret_reader_rbac(namespace: str, ns: str, sa: str) -> dict[str, Any]:
    meta = {"name": "secret-reader", "namespace": namespace}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "secret-reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }
    return {"apiVersion": "v1", "kind": "List", "items": [role, binding]}


def test_rbac_denies_the_operator_until_bound(
    control_plane: ClusterInfo, test_namespace: str
) -> None:
    path = f"/api/v1/namespaces/{test_namespace}/secrets"
    status, body = control_plane.request("GET", path)
    assert status == 403, body
    assert body["reason"] == "Forbidden"

    rbac = _secret_reader_rbac(
        test_namespace, control_plane.operator_namespace, control_plane.operator_service_account
    )
    control_plane.kubectl_run("apply", "-f", "-", stdin=_manifest(rbac))

    # The RBAC authorizer reads from an informer cache: allow it to catch up.
    deadline = time.monotonic() + 15
    while (status := control_plane.request("GET", path)[0]) == 403:
        assert time.monotonic() < deadline, "RoleBinding never took effect"
        time.sleep(0.1)
    assert status == 200
    # The grant is namespaced: other namespaces stay forbidden.
    assert control_plane.request("GET", "/api/v1/namespaces/default/secrets")[0] == 403


CEL_MESSAGE = "minReplicas must not exceed maxReplicas"


def _cel_crd(group: str) -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "required": ["minReplicas", "maxReplicas"],
        "properties": {
            "minReplicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer", "minimum": 0},
        },
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": CEL_MESSAGE}
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"celprobes.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "celprobes", "singular": "celprobe", "kind": "CelProbe"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema},
                        }
                    },
                }
            ],
        },
    }


def _probe(group: str, namespace: str, name: str, low: int, high: int) -> str:
    return _manifest(
        {
            "apiVersion": f"{group}/v1",
            "kind": "CelProbe",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"minReplicas": low, "maxReplicas": high},
        }
    )


def test_crd_cel_rule_rejects_a_bad_object(control_plane: ClusterInfo, test_namespace: str) -> None:
    # A unique group per run: CRDs are cluster-scoped and may outlive a run
    # on an external cluster.
    group = f"cel{secrets.token_hex(3)}.controlplane-test.inventory-sync.io"
    control_plane.kubectl_run("create", "-f", "-", stdin=_manifest(_cel_crd(group)))
    try:
        control_plane.kubectl_run(
            "wait", "--for=condition=Established", "--timeout=30s", f"crd/celprobes.{group}"
        )
        bad = control_plane.kubectl_run(
            "create", "-f", "-", stdin=_probe(group, test_namespace, "bad", 3, 1), check=False
        )
        assert bad.returncode != 0
        assert CEL_MESSAGE in bad.stderr
        control_plane.kubectl_run(
            "create", "-f", "-", stdin=_probe(group, test_namespace, "good", 1, 3)
        )
    finally:
        control_plane.kubectl_run("delete", f"crd/celprobes.{group}", "--wait=false", check=False)
