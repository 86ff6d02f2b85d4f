"""`make verify` (tools/generate_manifests.py --check) catches every hand edit to generated
files; the generated RBAC is exactly the reviewed rules; the dashboard queries real metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory_sync.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tools" / "generate_manifests.py"
CHART = Path("helm/inventory-sync-operator")
BUILD_SH = REPO / "tools" / "controlplane" / "build.sh"
REQUIRE = os.environ.get("INVENTORY_SYNC_REQUIRE_CONTROLPLANE", "") not in ("", "0")


@pytest.fixture(scope="module")
def helm() -> str:
    """The pinned helm from tools/controlplane (cached build), else one on PATH."""
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    if subprocess.run([str(BUILD_SH), "--check"], capture_output=True, check=False).returncode == 0:
        out = subprocess.run(
            [str(BUILD_SH), "--print-bin-dir"], capture_output=True, text=True, check=True
        )
        return str(Path(out.stdout.strip()) / "helm")
    found = shutil.which("helm")
    if found:
        return found
    message = "helm unavailable: run `make controlplane`"
    if REQUIRE:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The sources and generated files the generator reads, in a throwaway root."""
    root = tmp_path / "repo"
    for tree in ("crds", "helm", "manifests", "health", "operator/inventory_sync/doctoring/crds"):
        shutil.copytree(REPO / tree, root / tree)
    for file in (
        "pyproject.toml",
        "Dockerfile",
        "operator/inventory_sync/__init__.py",
        "examples/argocd/argocd-cm-health.yaml",
    ):
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / file, root / file)
    return root


def verify(root: Path, helm: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--root", str(root), "--helm", helm, *extra],
        capture_output=True,
        text=True,
        check=False,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _edit_chart_crd(root: Path) -> str:
    edit(root / CHART / "crds/inventorysync.dev_fabrics.yaml", "served: true", "served: false")
    return f"{CHART}/crds/inventorysync.dev_fabrics.yaml"


def _edit_packaged_crd(root: Path) -> str:
    path = "operator/inventory_sync/doctoring/crds/inventorysync.dev_fabrics.yaml"
    edit(root / path, "served: true", "served: false")
    return path


def _edit_deployment(root: Path) -> str:
    edit(root / "manifests/base/deployment.yaml", "memory: 512Mi", "memory: 2Gi")
    return "manifests/base/deployment.yaml"


def _edit_rbac(root: Path) -> str:
    edit(root / "manifests/rbac.yaml", "resources: [secrets]\n    verbs: [get]", "resources: [secrets]\n    verbs: [get, list]")  # fmt: skip
    return "manifests/rbac.yaml"


def _add_stray(root: Path) -> str:
    (root / "manifests/base/extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    return "manifests/base/extra.yaml"


def _change_values(root: Path) -> str:
    edit(root / CHART / "values.yaml", "cpu: 100m", "cpu: 200m")
    return "manifests/base/deployment.yaml"


def _change_source_crd(root: Path) -> str:
    edit(root / "crds/inventorysync.dev_syncschedules.yaml", "served: true", "served: false")
    return "manifests/base/crds/inventorysync.dev_syncschedules.yaml"


def _change_app_version(root: Path) -> str:
    edit(root / CHART / "Chart.yaml", 'appVersion: "0.1.0"', 'appVersion: "0.2.0"')
    return "versions disagree"


def _change_health_check(root: Path) -> str:
    edit(root / "health/argocd/inventorysync.dev_Fabric.lua", '"Healthy"', '"Degraded"')
    return "examples/argocd/argocd-cm-health.yaml"


EDITS = [
    pytest.param(_edit_chart_crd, id="hand edit to the chart's CRD copy"),
    pytest.param(_edit_packaged_crd, id="hand edit to the CRD copy doctor compares with"),
    pytest.param(_edit_deployment, id="hand edit to a generated manifest"),
    pytest.param(_edit_rbac, id="hand edit widening manifests/rbac.yaml"),
    pytest.param(_add_stray, id="file in manifests/ that the chart does not produce"),
    pytest.param(_change_values, id="chart values changed without regenerating"),
    pytest.param(_change_source_crd, id="CRD changed without regenerating its copies"),
    pytest.param(_change_app_version, id="chart appVersion differs from the package"),
    pytest.param(_change_health_check, id="Argo CD health check changed without its argocd-cm"),
]


def test_the_committed_generated_files_are_current(repo_copy: Path, helm: str) -> None:
    result = verify(repo_copy, helm, "--check")
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout


@pytest.mark.parametrize("make_drift", EDITS)
def test_verify_fails_naming_what_drifted(
    repo_copy: Path, helm: str, make_drift: Callable[[Path], str]
) -> None:
    culprit = make_drift(repo_copy)
    result = verify(repo_copy, helm, "--check")
    assert result.returncode == 1
    assert culprit in result.stderr
    assert "python tools/generate_manifests.py" in result.stderr  # says how to fix it


def test_regenerating_repairs_hand_edits(repo_copy: Path, helm: str) -> None:
    for make_drift in (_edit_chart_crd, _edit_deployment, _edit_rbac, _add_stray):
        make_drift(repo_copy)
    assert verify(repo_copy, helm).returncode == 0
    assert verify(repo_copy, helm, "--check").returncode == 0
    assert not (repo_copy / "manifests/base/extra.yaml").exists()


# --------------------------------------------------------------------------- the reviewed RBAC

# What the operator was reviewed and tested with before the chart existed; widening it is a
# deliberate change to this list, not a side effect of a template edit.
REVIEWED_RULES = [
    {"apiGroups": ["inventorysync.dev"], "resources": ["syncschedules", "fabrics"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["inventorysync.dev"], "resources": ["syncschedules/status", "fabrics/status"], "verbs": ["get", "patch"]},
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["wiring.githedgehog.com", "vpc.githedgehog.com"], "resources": ["*"], "verbs": ["get", "list"]},
]  # fmt: skip


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_generated_rbac_grants_exactly_the_reviewed_rules() -> None:
    by_kind = {d["kind"]: d for d in _documents(REPO / "manifests/rbac.yaml")}
    assert set(by_kind) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    assert by_kind["ClusterRole"]["rules"] == REVIEWED_RULES
    sa = by_kind["ServiceAccount"]["metadata"]
    # The identity tools/controlplane/localcluster.py gives the operator in tests.
    assert (sa["namespace"], sa["name"]) == ("inventory-sync-system", "inventory-sync-operator")
    assert by_kind["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
    ]


def test_kustomize_base_carries_the_same_rbac_as_rbac_yaml() -> None:
    base = [
        d
        for name in ("serviceaccount.yaml", "rbac.yaml")
        for d in _documents(REPO / "manifests/base" / name)
    ]
    assert base == _documents(REPO / "manifests/rbac.yaml")


# --------------------------------------------------------------------------- the dashboard


def _exported_series() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""],
        }[family.type]
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_dashboard_queries_only_metrics_the_operator_exports() -> None:
    dashboard = json.loads((REPO / CHART / "dashboards/inventory-sync-operator.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    queried = {m for expr in exprs for m in re.findall(r"\binventory_sync_[a-z_]+", expr)}
    assert queried, "the dashboard has no queries"
    assert queried <= _exported_series(), queried - _exported_series()
    # Every metric family shows up somewhere.
    families = {f.name for f in Metrics().registry.collect()}
    assert {f for f in families if not any(q.startswith(f) for q in queried)} == set()
