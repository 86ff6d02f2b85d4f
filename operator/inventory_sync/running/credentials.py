"""Credentials resolved once per run: each Secret read once, checked, then served from memory (running layer).

The first step of a run reads every Secret its sources name, so a missing Secret or key
stops the run before anything is claimed or written (Stalled, naming the Secret and key),
and the sources then read the same values instead of asking the API server again.
"""

from __future__ import annotations

from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.errors import KubeConfigError, public_message
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import FabricSpec, SyncScheduleSpec
from inventory_sync.syncing import preflight
from inventory_sync.syncing.credentials import SecretReader, SecretWriter
from inventory_sync.syncing.fabric import fabric_connection


class SecretSnapshot:
    """A run's view of the Secrets it uses: read once from `source`, then from memory."""

    def __init__(self, source: SecretReader) -> None:
        self._source = source
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        key = (namespace, name)
        if key not in self._cache:
            self._cache[key] = await self._source.read(namespace, name)
        found = self._cache[key]
        return None if found is None else dict(found)


class WritableSecretSnapshot(SecretSnapshot):
    """The same, for a source that can also write (a rotated refresh token): writes go
    through at once and the snapshot keeps the new value."""

    def __init__(self, source: SecretWriter) -> None:
        assert isinstance(source, SecretWriter)
        super().__init__(source)  # type: ignore[arg-type]  # a writer here is also a reader
        self._writer = source

    async def may_write(self, namespace: str, name: str) -> bool:
        """The source's answer where it can tell (the operator asks RBAC), else yes."""
        check = getattr(self._writer, "may_write", None)
        return True if check is None else bool(await check(namespace, name))

    async def write(self, namespace: str, name: str, key: str, value: str) -> None:
        await self._writer.write(namespace, name, key, value)
        cached = self._cache.get((namespace, name))
        if cached is not None:
            cached[key] = value


def snapshot_of(source: SecretReader) -> SecretSnapshot:
    # A read-only source stays read-only: classic Central refuses to start without a writer.
    if isinstance(source, SecretWriter):
        return WritableSecretSnapshot(source)
    return SecretSnapshot(source)


async def resolve_schedule(
    spec: SyncScheduleSpec, *, namespace: str, source: SecretReader, policy: EndpointPolicy
) -> SecretSnapshot:
    """Endpoints, every source's credentials and (classic Central) the right to save a rotated
    refresh token (syncing.preflight), each Secret read once into the snapshot the run uses;
    the first problem is raised, naming the field, Secret and key, or RBAC rule."""
    snapshot = snapshot_of(source)
    await preflight.check_schedule(spec, secrets=snapshot, namespace=namespace, policy=policy)
    return snapshot


async def resolve_fabric(spec: FabricSpec, *, namespace: str, local: KubeClient) -> KubeConnection:
    """How to reach the fabric. A kubeconfig that cannot be used (not a kubeconfig, or a client
    certificate TLS cannot load) is a permanent problem naming its Secret, found here rather
    than mid-run."""
    ref = spec.kubeconfig_secret_ref
    where = f"Secret {namespace}/{ref.name if ref else '?'}"
    try:
        connection = await fabric_connection(spec, namespace=namespace, local=local)
        if ref is not None:
            connection.ssl_context()  # loads the CA and client certificate: fails now, not later
    except KubeConfigError as error:
        raise KubeConfigError(f"{where}: {public_message(error)}") from None
    return connection
