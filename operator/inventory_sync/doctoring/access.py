"""Doctor's RBAC check: may the operator do everything in permissions.OPERATOR_PERMISSIONS, where it must?

The person running doctor is rarely the operator, so `--as-operator NAMESPACE/NAME` asks
about the operator's ServiceAccount with a SubjectAccessReview (the API server evaluates its
bindings, including the groups every ServiceAccount token carries); without it doctor asks
about itself with a SelfSubjectAccessReview, which is right when it runs in the operator's
pod. Conditional rights are checked where they apply: `patch` on each Secret a classic
Central source writes its rotated refresh token to, and `list` on each kind a Fabric without
a kubeconfig Secret reads from this cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from inventory_sync.doctoring.cluster import Identity
from inventory_sync.doctoring.findings import Finding, failed, passed, warned
from inventory_sync.doctoring.scope import FABRIC, SYNC_SCHEDULE, Resource, Scope
from inventory_sync.errors import InventorySyncError, SpecError, public_message
from inventory_sync.kube import KubeClient, resource_path
from inventory_sync.models import FabricSpec, SyncScheduleSpec
from inventory_sync.permissions import (
    OPERATOR_PERMISSIONS,
    Need,
    Permission,
    hedgehog_value,
)
from inventory_sync.permissions import (
    Scope as RuleScope,
)
from inventory_sync.syncing.fabric_discovery import FabricDiscovery, Resolved

CHECK = "rbac"
_REVIEWS = "/apis/authorization.k8s.io/v1"
# Reviews are cheap for the API server, but dozens at once from one CLI are pointless.
_CONCURRENT_REVIEWS = 8


@dataclass(frozen=True)
class Subject:
    """Whose rights are reviewed: a ServiceAccount, or (None) doctor's own identity."""

    service_account: tuple[str, str] | None = None

    @classmethod
    def parse(cls, text: str | None) -> Subject:
        """`NAMESPACE/NAME` of `--as-operator`; SpecError for anything else."""
        if text is None:
            return cls()
        namespace, _, name = text.partition("/")
        if not namespace or not name or "/" in name:
            raise SpecError(f"--as-operator {text!r}: use NAMESPACE/NAME of a ServiceAccount")
        return cls((namespace, name))

    def described(self, identity: Identity) -> str:
        if self.service_account is None:
            return identity.described
        namespace, name = self.service_account
        return f"ServiceAccount {namespace}/{name}"

    def review_body(self, attributes: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """(path, body) of the access review for `attributes`."""
        if self.service_account is None:
            return f"{_REVIEWS}/selfsubjectaccessreviews", {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            }
        namespace, name = self.service_account
        # The groups the API server gives every ServiceAccount token (and every authenticated
        # identity): bindings to them, such as system:basic-user's, count for the operator too.
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                  "system:authenticated"]  # fmt: skip
        return f"{_REVIEWS}/subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{namespace}:{name}",
                "groups": groups,
                "resourceAttributes": attributes,
            },
        }


Review = Callable[..., Awaitable[bool]]


def reviewer(client: KubeClient, subject: Subject) -> Review:
    """An `allowed(verb, group, resource, namespace, name=None)` asking the API server."""
    limit = asyncio.Semaphore(_CONCURRENT_REVIEWS)

    async def allowed(
        verb: str, group: str, resource: str, namespace: str, name: str | None = None
    ) -> bool:
        plural, _, subresource = resource.partition("/")
        attributes = {"verb": verb, "group": group, "resource": plural, "namespace": namespace}
        if subresource:
            attributes["subresource"] = subresource
        if name:
            attributes["name"] = name
        path, body = subject.review_body(attributes)
        async with limit:
            review = await client.create(path, body)
        return bool((review.get("status") or {}).get("allowed"))

    return allowed


async def check(
    client: KubeClient, scope: Scope, *, subject: Subject, identity: Identity
) -> list[Finding]:
    findings = [await _identity(client, subject, identity)]
    who = "the operator" if subject.service_account is not None else identity.described
    allowed = reviewer(client, subject)
    try:
        findings += await asyncio.gather(
            *(
                _always(allowed, permission, group, resource, scope=scope, who=who)
                for permission in OPERATOR_PERMISSIONS
                if permission.need is Need.ALWAYS
                for group in permission.groups
                for resource in permission.resources
            )
        )
        findings += await _classic_central(allowed, scope, who=who)
        findings += await _local_fabrics(client, allowed, scope, who=who)
    except InventorySyncError as error:  # e.g. doctor itself may not create reviews
        findings.append(
            failed(CHECK, "reviews", f"cannot ask the API server: {public_message(error)}")
        )
    return findings


async def _identity(client: KubeClient, subject: Subject, identity: Identity) -> Finding:
    """Whose rights the lines below are about; a warning when that tells nothing (an
    identity that bypasses RBAC) or names a ServiceAccount that does not exist."""
    if subject.service_account is None:
        if identity.bypasses_rbac:
            return warned(
                CHECK,
                "identity",
                f"reviewing your own rights as {identity.described}, which is in system:masters "
                "and may do anything: pass --as-operator NAMESPACE/NAME to review the "
                "operator's ServiceAccount",
            )
        return passed(CHECK, "identity", f"reviewing your own rights as {identity.described}")
    namespace, name = subject.service_account
    described = subject.described(identity)
    try:
        found = await client.get(resource_path("", "v1", "serviceaccounts", namespace, name))
    except InventorySyncError as error:
        return warned(CHECK, "identity", f"{described}: cannot read it ({public_message(error)});"
                      " reviewing its rights anyway")  # fmt: skip
    if found is None:
        return warned(
            CHECK,
            "identity",
            f"{described} does not exist: is the operator installed there? (its rights are "
            "reviewed anyway, as RBAC bindings would apply once it exists)",
        )
    return passed(CHECK, "identity", f"reviewing the rights of {described} (the operator)")


def subject_of(group: str, resource: str) -> str:
    """kubectl's name for a resource: `fabrics.inventorysync.dev`, `secrets`."""
    return f"{resource}.{group}" if group else resource


def _where(namespace: str, *, cluster: bool) -> str:
    if cluster:
        return "at cluster scope"
    return f"in namespace {namespace}" if namespace else "in all namespaces"


async def _always(
    allowed: Review, permission: Permission, group: str, resource: str, *, scope: Scope, who: str
) -> Finding:
    """One line per resource of a rule: every verb, in every namespace doctor looks at."""
    cluster = permission.scope is RuleScope.CLUSTER
    namespaces = [""] if cluster or scope.everywhere else list(scope.namespaces)
    missing: list[str] = []
    for namespace in namespaces:
        answers = await asyncio.gather(
            *(allowed(verb, group, resource, namespace) for verb in permission.verbs)
        )
        denied = [v for v, ok in zip(permission.verbs, answers, strict=True) if not ok]
        if denied:
            missing.append(f"{', '.join(denied)} {_where(namespace, cluster=cluster)}")
    subject = subject_of(group, resource)
    verbs = ", ".join(permission.verbs)
    if not missing:
        where = _where("", cluster=cluster) if cluster or scope.everywhere else scope.where
        return passed(CHECK, subject, f"{who} may {verbs} {where}")
    return failed(
        CHECK,
        subject,
        f"{who} may not {'; '.join(missing)} ({permission.why}): apply the chart's RBAC "
        "(manifests/rbac.yaml is its default render; docs/deploy.md lists every rule)",
    )


def _specs(resources: Iterable[Resource]) -> list[tuple[Resource, SyncScheduleSpec | FabricSpec]]:
    """Resources with a valid spec (an invalid one is Stalled; the resources check says so)."""
    out = []
    for resource in resources:
        try:
            out.append((resource, resource.parsed()))
        except SpecError:
            continue
    return out


async def _classic_central(allowed: Review, scope: Scope, *, who: str) -> list[Finding]:
    """`patch` on each Secret a classic Central source must write its rotated refresh token to."""
    secrets: dict[tuple[str, str], list[str]] = {}
    for resource, spec in _specs(scope.of_kind(SYNC_SCHEDULE)):
        assert isinstance(spec, SyncScheduleSpec)
        for source in spec.sources:
            classic = source.aruba_central_classic
            if classic is not None:
                key = (resource.namespace, classic.credentials_secret_ref.name)
                secrets.setdefault(key, []).append(f"{resource.name}/{source.name}")
    if not secrets:
        return [passed(CHECK, "secrets (patch)", "not needed: no arubaCentralClassic source "
                       f"{scope.where}")]  # fmt: skip
    findings = []
    for (namespace, name), users in sorted(secrets.items()):
        subject = f"secrets (patch) {namespace}/{name}"
        if await allowed("patch", "", "secrets", namespace, name):
            findings.append(passed(CHECK, subject, f"{who} may patch it (rotated refresh tokens)"))
            continue
        findings.append(
            warned(
                CHECK,
                subject,
                f"{who} may not patch it, but classic Central source(s) {', '.join(users)} "
                "must write the rotated refresh token there; they stay Stalled (Forbidden) "
                "until it may: Helm --set rbac.writeRotatedTokens=true, or a Role allowing "
                "patch on this Secret",
            )
        )
    return findings


async def _local_fabrics(
    client: KubeClient, allowed: Review, scope: Scope, *, who: str
) -> list[Finding]:
    """`list` on each kind a Fabric without a kubeconfig Secret reads from this cluster, in the
    namespaces it reads (discovery, as doctor, says which resource each kind is)."""
    local = [
        (resource, spec)
        for resource, spec in _specs(scope.of_kind(FABRIC))
        if isinstance(spec, FabricSpec) and spec.kubeconfig_secret_ref is None
    ]
    if not local:
        return []
    discovery = FabricDiscovery(client)
    findings = []
    for resource, spec in local:
        assert isinstance(spec, FabricSpec)
        denied: list[str] = []
        values: set[str] = set()
        checked = 0
        for ref in spec.kinds:
            found = await discovery.resolve(ref)
            if not isinstance(found, Resolved):
                continue  # not served here: the run skips it, no right is needed
            checked += 1
            for namespace in spec.namespaces or [""]:
                if not await allowed("list", ref.group, found.resource.plural, namespace):
                    denied.append(f"{subject_of(ref.group, found.resource.plural)} "
                                  f"{_where(namespace, cluster=False)}")  # fmt: skip
                    value = hedgehog_value(ref.group)
                    values.add(f"Helm --set {value}=true" if value else "a Role allowing it")
        if denied:
            findings.append(
                failed(
                    CHECK,
                    resource.label,
                    f"reads this cluster's objects, but {who} may not list "
                    f"{'; '.join(denied)}: {' and '.join(sorted(values))}",
                )
            )
        elif checked:
            text = f"{who} may list the {checked} kind(s) it reads from this cluster"
            findings.append(passed(CHECK, resource.label, text))
        else:
            text = f"none of its {len(spec.kinds)} kind(s) is served here: no right needed"
            findings.append(passed(CHECK, resource.label, text))
    return findings
