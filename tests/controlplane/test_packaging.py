"""The Helm chart and the kustomize base against a real API server: helm lint, helm template
for each ci/ values file, and `kubectl apply --dry-run=server` of every render and of manifests/
(schema, CRD and admission checks, including Pod Security "restricted" on the operator's pod)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "inventory-sync-operator"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "inventory-sync-operator", "inventory-sync-system"
PSS_NAMESPACE = "inventory-sync-pss-restricted"

# The smallest stand-in for prometheus-operator's CRD, so the ServiceMonitor has a kind to map to
# (applied only when the cluster has no ServiceMonitor CRD of its own).
SERVICE_MONITOR_STUB = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}  # fmt: skip


def _ids(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


@pytest.fixture(scope="module")
def helm(control_plane: Any) -> str:
    found = control_plane.helm or shutil.which("helm")
    if not found:
        pytest.skip("no helm binary (tools/controlplane builds one)")
    return str(found)


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def render_text(helm: str, values: Path) -> str:
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds",
         "-f", str(values)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout


def kinds(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


@pytest.fixture(scope="module")
def prepared_cluster(control_plane: Any) -> Any:
    """Namespaces the renders target, a ServiceMonitor CRD if missing."""
    namespaces = {NAMESPACE, PSS_NAMESPACE}
    for values in VALUES_FILES:
        loaded = yaml.safe_load(values.read_text()) or {}
        namespaces |= set(loaded.get("watchNamespaces", []))
        namespaces |= set(loaded.get("rbac", {}).get("hedgehog", {}).get("namespaces", []))
    for namespace in sorted(namespaces):
        control_plane.kubectl_run("create", "namespace", namespace, check=False)
    control_plane.kubectl_run(
        "label", "--overwrite", "namespace", PSS_NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
    )  # fmt: skip
    control_plane.kubectl_run("create", "serviceaccount", RELEASE, "-n", PSS_NAMESPACE, check=False)
    crds: list[str] = []
    existing = control_plane.kubectl_run(
        "get", "crd", "servicemonitors.monitoring.coreos.com", check=False
    )
    if existing.returncode != 0:
        control_plane.kubectl_run(
            "apply", "--server-side", "-f", "-", stdin=json.dumps(SERVICE_MONITOR_STUB)
        )
        crds.append(
            "customresourcedefinition.apiextensions.k8s.io/servicemonitors.monitoring.coreos.com"
        )
    if crds:
        control_plane.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", *crds)
    return control_plane


# --------------------------------------------------------------------------- helm lint / template


@pytest.mark.parametrize("values", VALUES_FILES, ids=_ids)
def test_chart_passes_strict_lint(helm: str, values: Path) -> None:
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), "-f", str(values)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_values_cover_defaults_namespaced_and_ha() -> None:
    assert {_ids(v) for v in VALUES_FILES} >= {"default", "namespaced", "ha"}


def test_values_schema_rejects_unknown_keys(helm: str) -> None:
    result = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--set", "replicas=2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "replicas" in result.stderr


# --------------------------------------------------------------------------- what the renders grant


def test_several_replicas_are_all_active_without_kopf_peering(helm: str) -> None:
    single, several = render(helm), render(helm, "--set", "replicaCount=2")
    for documents in (single, several):
        assert "kopf.dev" not in json.dumps(documents)  # no peering rights, CRDs or objects
        assert "KopfPeering" not in json.dumps(documents)
        env = {e["name"] for e in kinds(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}  # fmt: skip
        assert "INVENTORY_SYNC_PEERING" not in env
    assert kinds(single, "Deployment")[0]["spec"]["strategy"] == {"type": "Recreate"}
    rolling = kinds(several, "Deployment")[0]["spec"]["strategy"]
    assert rolling == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_namespaced_mode_grants_roles_only_where_listed(helm: str) -> None:
    documents = render(helm, "-f", str(CHART / "ci" / "namespaced-values.yaml"))
    cluster_rules = kinds(documents, "ClusterRole")[0]["rules"]
    assert [r["resources"] for r in cluster_rules] == [
        ["customresourcedefinitions"],
        ["selfsubjectaccessreviews"],  # cluster-scoped: a Role cannot grant it
    ]
    roles = {r["metadata"]["namespace"]: r["rules"] for r in kinds(documents, "Role")}
    assert set(roles) == {"team-a", "team-b", "fabric-system"}
    groups = {ns: {g for rule in rules for g in rule["apiGroups"]} for ns, rules in roles.items()}
    assert "wiring.githedgehog.com" in groups["team-a"]
    assert "wiring.githedgehog.com" not in groups["team-b"]
    assert groups["fabric-system"] == {"wiring.githedgehog.com", "vpc.githedgehog.com"}
    bound = {b["metadata"]["namespace"] for b in kinds(documents, "RoleBinding")}
    assert bound == set(roles)
    env = kinds(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "INVENTORY_SYNC_WATCH_NAMESPACES", "value": "team-a,team-b"} in env


OPERATIONAL = ["agent.githedgehog.com", "dhcp.githedgehog.com", "gateway.githedgehog.com",
               "gwint.githedgehog.com"]  # fmt: skip


def _hedgehog_groups(rules: list[dict[str, Any]]) -> set[str]:
    return {g for rule in rules for g in rule["apiGroups"] if g.endswith(".githedgehog.com")}


@pytest.mark.parametrize(
    ("values", "groups"),
    [
        pytest.param([], {"wiring.githedgehog.com", "vpc.githedgehog.com"}, id="default: wiring and vpc"),
        pytest.param(["rbac.hedgehog.operational=true"],
                     {"wiring.githedgehog.com", "vpc.githedgehog.com", *OPERATIONAL}, id="operational"),
        pytest.param(["rbac.hedgehog.fabricator=true"],
                     {"wiring.githedgehog.com", "vpc.githedgehog.com", "fabricator.githedgehog.com"},
                     id="fabricator"),
        pytest.param(["rbac.hedgehog.enabled=false", "rbac.hedgehog.operational=true"], set(OPERATIONAL),
                     id="operational alone"),
        pytest.param(["rbac.hedgehog.enabled=false"], set(), id="none"),
    ],
)  # fmt: skip
def test_values_grant_list_on_the_opt_in_hedgehog_groups(
    helm: str, values: list[str], groups: set[str]
) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    rules = kinds(render(helm, *sets), "ClusterRole")[0]["rules"]

    assert _hedgehog_groups(rules) == groups
    for rule in rules:
        if _hedgehog_groups([rule]):
            assert (rule["resources"], rule["verbs"]) == (["*"], ["get", "list"])


def test_namespaced_mode_grants_the_opt_in_groups_in_the_hedgehog_namespaces(helm: str) -> None:
    documents = render(
        helm, "--set", "watchNamespaces={team-a}", "--set", "rbac.hedgehog.namespaces={default,fab}",
        "--set", "rbac.hedgehog.operational=true", "--set", "rbac.hedgehog.fabricator=true",
    )  # fmt: skip
    roles = {
        r["metadata"]["namespace"]: _hedgehog_groups(r["rules"]) for r in kinds(documents, "Role")
    }
    everything = {
        "wiring.githedgehog.com",
        "vpc.githedgehog.com",
        "fabricator.githedgehog.com",
        *OPERATIONAL,
    }
    assert roles == {"team-a": set(), "default": everything, "fab": everything}


def test_the_kustomize_example_grants_what_the_chart_value_grants(
    prepared_cluster: Any, helm: str
) -> None:
    built = prepared_cluster.kubectl_run(
        "kustomize", str(REPO / "examples" / "kustomize" / "hedgehog-operational")
    )
    documents = [d for d in yaml.safe_load_all(built.stdout) if d]
    rules = kinds(documents, "ClusterRole")[0]["rules"]
    chart = kinds(render(helm, "--set", "rbac.hedgehog.operational=true"), "ClusterRole")[0][
        "rules"
    ]

    assert rules == chart
    applied = prepared_cluster.kubectl_run(
        "apply", "--dry-run=server", "-k", str(REPO / "examples" / "kustomize" / "hedgehog-operational"),
        check=False,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr


def test_secrets_are_only_ever_read_by_name(helm: str) -> None:
    for values in VALUES_FILES:
        for document in render(helm, "-f", str(values), "--set", "replicaCount=2"):
            for rule in document.get("rules", []):
                core = "" in rule["apiGroups"]
                if "secrets" in rule["resources"] or (core and "*" in rule["resources"]):
                    assert rule["verbs"] == ["get"], (values.name, rule)


def test_operator_writes_status_never_spec(helm: str) -> None:
    for values in VALUES_FILES:
        for document in render(helm, "-f", str(values)):
            for rule in document.get("rules", []):
                if "inventorysync.dev" in rule["apiGroups"]:
                    writes = set(rule["verbs"]) & {"create", "update", "patch", "delete"}
                    if writes:
                        assert all(r.endswith("/status") for r in rule["resources"]), rule
                        assert writes == {"patch"}


# --------------------------------------------------------------------------- server-side dry-run


@pytest.mark.parametrize("values", VALUES_FILES, ids=_ids)
def test_rendered_chart_is_accepted_by_the_api_server(
    prepared_cluster: Any, helm: str, values: Path
) -> None:
    result = prepared_cluster.kubectl_run(
        "apply", "--dry-run=server", "-f", "-", stdin=render_text(helm, values), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/inventory-sync-operator" in result.stdout


def test_kustomize_base_is_accepted_by_the_api_server(prepared_cluster: Any) -> None:
    result = prepared_cluster.kubectl_run(
        "apply", "--dry-run=server", "-k", str(REPO / "manifests"), check=False
    )
    assert result.returncode == 0, result.stderr
    for name in ("namespace/inventory-sync-system", "deployment.apps/inventory-sync-operator",
                 "clusterrole.rbac.authorization.k8s.io/inventory-sync-operator",
                 "customresourcedefinition.apiextensions.k8s.io/syncschedules.inventorysync.dev"):  # fmt: skip
        assert name in result.stdout


def _operator_pod(helm: str, **container_overrides: Any) -> str:
    deployment = kinds(render(helm), "Deployment")[0]
    template = deployment["spec"]["template"]
    template["spec"]["containers"][0]["securityContext"].update(container_overrides)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "inventory-sync-operator-pss",
            "namespace": PSS_NAMESPACE,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }
    return json.dumps(pod)


def test_operator_pod_meets_the_restricted_pod_security_standard(
    prepared_cluster: Any, helm: str
) -> None:
    admitted = prepared_cluster.kubectl_run(
        "apply", "--dry-run=server", "-f", "-", stdin=_operator_pod(helm), check=False
    )
    assert admitted.returncode == 0, admitted.stderr
    # The namespace really enforces it: a weaker pod is refused.
    refused = prepared_cluster.kubectl_run(
        "apply", "--dry-run=server", "-f", "-",
        stdin=_operator_pod(helm, allowPrivilegeEscalation=True), check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "allowPrivilegeEscalation" in refused.stderr
