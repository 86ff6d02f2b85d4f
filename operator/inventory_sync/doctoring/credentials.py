"""Doctor's opt-in credential check (`--check-credentials`): each upstream's token endpoint answers and accepts the credentials.

It spends one token request per distinct (token URL, Secret) and goes out exactly as the
operator does: the endpoints are first judged by the same static rules (https only except to
loopback, no metadata or link-local address, in-cluster names only from
INVENTORY_SYNC_ALLOWED_IN_CLUSTER_HOSTS), then sent through the same guarded httpx client,
which re-checks every address after DNS. A refused URL gets no byte.

Classic Central is the exception: its refresh token is single-use and rotates when spent, so
doctor only checks that the token endpoint answers, without credentials. A Fabric with a
kubeconfig Secret is checked with GET /version as that kubeconfig's identity (a refused
credential is 401 there; the body is public).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from inventory_sync import connect_errors
from inventory_sync.doctoring.findings import Finding, failed, passed
from inventory_sync.doctoring.scope import FABRIC, SYNC_SCHEDULE, Resource, Scope
from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.errors import InventorySyncError, SpecError, public_message
from inventory_sync.kube import KubeClient
from inventory_sync.models import FabricSpec, SecretRef, Source, SyncScheduleSpec
from inventory_sync.syncing.credentials import resolve_credentials
from inventory_sync.syncing.fabric import fabric_connection
from inventory_sync.upstream import RetryPolicy, TokenProvider, build_http_client, safe_url

CHECK = "credentials"
# One retry for a transient 5xx or reset; a refused or unreachable endpoint fails fast.
_POLICY = RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=2.0)


class _KubeSecrets:
    """The SecretReader the operator uses, as doctor's identity."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        return await self._client.read_secret(namespace, name)


@dataclass(frozen=True)
class _Target:
    """One token request to make: a token URL and the Secret keys holding the client."""

    token_url: str
    namespace: str
    ref: SecretRef
    classic: bool

    @property
    def subject(self) -> str:
        return f"{safe_url(self.token_url)} ({self.namespace}/{self.ref.name})"


async def check(
    client: KubeClient, scope: Scope, *, policy: EndpointPolicy, seconds: float
) -> list[Finding]:
    targets: dict[_Target, list[str]] = {}
    findings: list[Finding] = []
    for resource in scope.of_kind(SYNC_SCHEDULE):
        try:
            spec = resource.parsed()
        except SpecError:
            continue  # Stalled: the resources check reports it
        assert isinstance(spec, SyncScheduleSpec)
        for source in spec.sources:
            refused = _refused(source, policy)
            if refused is not None:
                findings.append(failed(CHECK, f"{resource.label} source {source.name}",
                                       f"not sent: {refused}"))  # fmt: skip
                continue
            target = _target(resource, source)
            targets.setdefault(target, []).append(f"{resource.label} source {source.name}")
    for target, users in targets.items():
        findings.append(await _try(client, target, users, policy=policy, seconds=seconds))
    for resource in scope.of_kind(FABRIC):
        finding = await _fabric(client, resource, seconds=seconds)
        if finding is not None:
            findings.append(finding)
    if not findings:
        findings.append(passed(CHECK, "upstreams", f"no source or remote fabric {scope.where}"))
    return findings


def _refused(source: Source, policy: EndpointPolicy) -> str | None:
    """The operator's static endpoint rules, applied to every URL of the source."""
    typed = source.greenlake or source.aruba_central
    urls = [typed.endpoint, typed.token_url] if typed is not None else []
    classic = source.aruba_central_classic
    if classic is not None:
        urls = [classic.endpoint, classic.effective_token_url]
    for url in urls:
        problem = policy.url_problem(url)
        if problem is not None:
            return f"{safe_url(url)}: {problem}"
    return None


def _target(resource: Resource, source: Source) -> _Target:
    classic = source.aruba_central_classic
    if classic is not None:
        return _Target(classic.effective_token_url, resource.namespace, source.secret_ref, True)
    typed = source.greenlake or source.aruba_central
    assert typed is not None
    return _Target(typed.token_url, resource.namespace, source.secret_ref, False)


async def _try(
    client: KubeClient, target: _Target, users: list[str], *, policy: EndpointPolicy, seconds: float
) -> Finding:
    used_by = f" (used by {', '.join(users)})"
    http = build_http_client(timeout=seconds, policy=policy)
    try:
        if target.classic:
            # Reachability only: no credentials are sent, so nothing is spent.
            response = await http.get(target.token_url)
            return passed(CHECK, target.subject, f"reachable (HTTP {response.status_code}); "
                          "credentials not tried: a classic Central refresh token is single-use "
                          f"and rotates when spent{used_by}")  # fmt: skip
        credentials = await resolve_credentials(
            _KubeSecrets(client), namespace=target.namespace, ref=target.ref
        )
        provider = TokenProvider(
            http, token_url=target.token_url, credentials=credentials, policy=_POLICY,
            request_timeout=seconds,
        )  # fmt: skip
        await provider.token()
    except InventorySyncError as error:
        return failed(CHECK, target.subject, f"{public_message(error, limit=600)}{used_by}")
    except httpx.HTTPError as error:  # the classic GET goes without the retrying wrapper
        url = httpx.URL(target.token_url)
        port = url.port or (443 if url.scheme == "https" else 80)
        why = connect_errors.describe(error, target=f"{url.host}:{port}")
        return failed(CHECK, target.subject, f"unreachable: {why}{used_by}")
    finally:
        await http.aclose()
    return passed(CHECK, target.subject, f"token endpoint accepted the credentials{used_by}")


async def _fabric(client: KubeClient, resource: Resource, *, seconds: float) -> Finding | None:
    """A remote fabric's API server reachable and accepting the kubeconfig's credentials."""
    try:
        spec = resource.parsed()
    except SpecError:
        return None
    assert isinstance(spec, FabricSpec)
    if spec.kubeconfig_secret_ref is None:
        return None  # this cluster, as the operator: the rbac check covers it
    try:
        connection = await fabric_connection(spec, namespace=resource.namespace, local=client)
        async with KubeClient(connection, timeout=seconds, get_retries=0) as fabric:
            version = await fabric.get("/version") or {}
    except InventorySyncError as error:
        return failed(
            CHECK, resource.label, f"fabric API server: {public_message(error, limit=600)}"
        )
    return passed(CHECK, resource.label, f"fabric API server {connection.server} "
                  f"({version.get('gitVersion', 'unknown version')}) accepted the credentials")  # fmt: skip
