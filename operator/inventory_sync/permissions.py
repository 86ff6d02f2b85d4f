"""The Kubernetes rights the operator needs, in one list (models layer): what `doctor` checks and the chart grants.

`inventory-sync doctor` asks the API server about every entry (a SubjectAccessReview for the
operator's ServiceAccount, or a SelfSubjectAccessReview), and
tests/unit/test_operator_permissions.py renders the Helm chart and compares its rules with this
list in both directions, so a verb added to one and not the other fails a test.
docs/deploy.md explains each rule to users.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from inventory_sync.models import GROUP

#: Hedgehog's API groups, by the chart value that grants get/list on them.
HEDGEHOG_GROUPS = {
    "rbac.hedgehog.enabled": ("wiring.githedgehog.com", "vpc.githedgehog.com"),
    "rbac.hedgehog.operational": (
        "agent.githedgehog.com",
        "dhcp.githedgehog.com",
        "gateway.githedgehog.com",
        "gwint.githedgehog.com",
    ),
    "rbac.hedgehog.fabricator": ("fabricator.githedgehog.com",),
}


class Scope(StrEnum):
    """Where a rule applies: in each watched namespace (a Role there in namespaced mode), or
    at cluster scope (CRDs and access reviews are cluster-scoped resources)."""

    NAMESPACED = "namespaced"
    CLUSTER = "cluster"


class Need(StrEnum):
    """When the operator needs a rule; doctor checks the conditional ones only when it applies."""

    ALWAYS = "always"
    #: An arubaCentralClassic source: the rotated refresh token is written back to its Secret.
    CLASSIC_CENTRAL = "classic-central"
    #: A Fabric without a kubeconfig Secret reads this cluster's Hedgehog objects.
    LOCAL_FABRIC = "local-fabric"


@dataclass(frozen=True)
class Permission:
    """`verbs` on `resources` of each of `groups` (the shape of an RBAC PolicyRule)."""

    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    scope: Scope = Scope.NAMESPACED
    need: Need = Need.ALWAYS
    #: The Helm value that grants it, when one does (the fix doctor names).
    helm_value: str | None = None


OPERATOR_PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        (GROUP,), ("syncschedules", "fabrics"), ("get", "list", "watch"),
        "kopf lists and watches them; the scheduler reads them",
    ),
    Permission(
        (GROUP,), ("syncschedules/status", "fabrics/status"), ("get", "patch"),
        "each run's outcome is written to the status subresource (never spec)",
    ),
    Permission(
        ("apiextensions.k8s.io",), ("customresourcedefinitions",), ("get", "list", "watch"),
        "kopf discovers which of the CRDs exist before watching", scope=Scope.CLUSTER,
    ),
    Permission(
        ("authorization.k8s.io",), ("selfsubjectaccessreviews",), ("create",),
        "before spending a classic Central refresh token, ask whether it could be saved",
        scope=Scope.CLUSTER,
    ),
    Permission(
        ("",), ("secrets",), ("get",),
        "upstream credentials and fabric kubeconfigs, read by name on each run",
    ),
    Permission(
        ("", "events.k8s.io"), ("events",), ("create", "patch"),
        "one Event per run outcome",
    ),
    Permission(
        ("",), ("secrets",), ("patch",),
        "classic Central rotates its refresh token on every refresh; the new one is written back",
        need=Need.CLASSIC_CENTRAL, helm_value="rbac.writeRotatedTokens",
    ),
    *(
        Permission(
            groups, ("*",), ("get", "list"),
            "a Fabric without a kubeconfig Secret reads this cluster's Hedgehog objects",
            need=Need.LOCAL_FABRIC, helm_value=value,
        )
        for value, groups in HEDGEHOG_GROUPS.items()
    ),
)  # fmt: skip


def hedgehog_value(group: str) -> str | None:
    """The Helm value granting get/list on a Hedgehog `group`, or None for another group."""
    return next((value for value, groups in HEDGEHOG_GROUPS.items() if group in groups), None)
