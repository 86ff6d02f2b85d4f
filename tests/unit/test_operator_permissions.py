"""The chart grants exactly the rights in permissions.OPERATOR_PERMISSIONS, the list `doctor` checks.

Rendered with helm for the default values and each value that adds a rule, both directions:
a verb the chart grants and the list lacks fails (doctor would not check it, docs/deploy.md
would not explain it), and so does one the list names and the chart does not grant.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory_sync.permissions import OPERATOR_PERMISSIONS, Permission, Scope

from . import test_packaging_drift as drift

helm = drift.helm  # the pinned helm, found the way `make verify` finds it

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "inventory-sync-operator"
Triple = tuple[str, str, str]


def render(helm: str, *sets: str) -> list[dict[str, Any]]:
    args = [arg for value in sets for arg in ("--set", value)]
    out = subprocess.run(
        [helm, "template", "inventory-sync-operator", str(CHART), "-n", "inventory-sync-system",
         *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def granted(documents: list[dict[str, Any]], kind: str) -> set[Triple]:
    """(group, resource, verb) of every rule of every `kind` (ClusterRole or Role)."""
    return {
        (group, resource, verb)
        for document in documents
        if document["kind"] == kind
        for rule in document.get("rules") or []
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def triples(permissions: list[Permission]) -> set[Triple]:
    return {
        (group, resource, verb)
        for p in permissions
        for group in p.groups
        for resource in p.resources
        for verb in p.verbs
    }


def value_default(path: str) -> bool:
    """A boolean of the chart's values.yaml, by its dotted path (rbac.hedgehog.enabled)."""
    node: Any = yaml.safe_load((CHART / "values.yaml").read_text())
    for part in path.split("."):
        node = node[part]
    return bool(node)


def on_by_default(permission: Permission) -> bool:
    return permission.helm_value is None or value_default(permission.helm_value)


OPTIONAL_VALUES = sorted({p.helm_value for p in OPERATOR_PERMISSIONS if p.helm_value})


def test_the_default_render_grants_exactly_the_listed_rights(helm: str) -> None:
    wanted = triples([p for p in OPERATOR_PERMISSIONS if on_by_default(p)])
    assert granted(render(helm), "ClusterRole") == wanted


@pytest.mark.parametrize("value", [v for v in OPTIONAL_VALUES if not value_default(v)])
def test_each_optional_value_adds_exactly_its_listed_rights(helm: str, value: str) -> None:
    wanted = triples([p for p in OPERATOR_PERMISSIONS if on_by_default(p) or p.helm_value == value])
    assert granted(render(helm, f"{value}=true"), "ClusterRole") == wanted


def test_namespaced_mode_splits_the_list_by_scope(helm: str) -> None:
    documents = render(helm, "watchNamespaces={team-a}")
    defaults = [p for p in OPERATOR_PERMISSIONS if on_by_default(p)]
    assert granted(documents, "ClusterRole") == triples(
        [p for p in defaults if p.scope is Scope.CLUSTER]
    )
    assert granted(documents, "Role") == triples(
        [p for p in defaults if p.scope is Scope.NAMESPACED]
    )


def test_every_optional_right_names_the_value_that_grants_it() -> None:
    for permission in OPERATOR_PERMISSIONS:
        if permission.need.value != "always":
            assert permission.helm_value in OPTIONAL_VALUES, permission
