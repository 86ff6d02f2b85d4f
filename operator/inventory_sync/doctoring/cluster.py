"""The first doctor check: the API server answers, and who doctor is there (every later check needs both)."""

from __future__ import annotations

from dataclasses import dataclass

from inventory_sync.doctoring.findings import Finding, failed, passed
from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.kube import KubeClient

CHECK = "kubernetes"
SELF_REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
#: This group bypasses RBAC entirely: access reviews of such an identity say nothing.
MASTERS = "system:masters"


@dataclass(frozen=True)
class Identity:
    """Who the kubeconfig authenticates as; `username` is None when the server would not say."""

    username: str | None
    groups: tuple[str, ...] = ()

    @property
    def described(self) -> str:
        return self.username or "the current identity"

    @property
    def bypasses_rbac(self) -> bool:
        return MASTERS in self.groups


async def check(client: KubeClient) -> tuple[Identity | None, list[Finding]]:
    """GET /version (readable by every identity); None when the server cannot be reached,
    and then no Kubernetes check can run."""
    server = client.connection.server
    try:
        version = await client.get("/version") or {}
    except InventorySyncError as error:
        return None, [failed(CHECK, server, f"unreachable: {public_message(error, limit=500)}")]
    identity = await whoami(client)
    release = version.get("gitVersion") or "unknown version"
    return identity, [
        passed(CHECK, server, f"reachable ({release}), doctor runs as {identity.described}")
    ]


async def whoami(client: KubeClient) -> Identity:
    """A SelfSubjectReview (authentication.k8s.io/v1, GA in 1.28); an older server, or one
    that refuses it, leaves the identity unnamed: nothing depends on it but messages."""
    try:
        review = await client.create(
            SELF_REVIEW, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    except InventorySyncError:
        return Identity(None)
    info = (review.get("status") or {}).get("userInfo") or {}
    groups = tuple(str(g) for g in info.get("groups") or ())
    return Identity(str(info["username"]) if info.get("username") else None, groups)
