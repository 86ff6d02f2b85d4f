"""Resolving a source's credentials from Secrets, wherever the Secrets come from (syncing layer)."""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from inventory_sync.errors import CredentialsError
from inventory_sync.models import SecretRef
from inventory_sync.upstream import ClientCredentials


class SecretReader(Protocol):
    """Reads a Secret's decoded string data; None when the Secret does not exist.

    The operator reads from the Kubernetes API, the CLI from the manifest and environment.
    """

    async def read(self, namespace: str, name: str) -> dict[str, str] | None: ...


async def resolve_credentials(
    reader: SecretReader, *, namespace: str, ref: SecretRef
) -> ClientCredentials:
    """Fetch the client id and secret; the error names the Secret and key, never a value."""
    data = await reader.read(namespace, ref.name)
    if data is None:
        raise CredentialsError(f"Secret {namespace}/{ref.name} not found")
    missing = [k for k in (ref.client_id_key, ref.client_secret_key) if not data.get(k)]
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        raise CredentialsError(f"Secret {namespace}/{ref.name} has no key {keys}")
    return ClientCredentials(
        client_id=data[ref.client_id_key], client_secret=SecretStr(data[ref.client_secret_key])
    )


class StaticSecrets:
    """Secrets held in memory (from a manifest file); keyed by (namespace, name)."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]] | None = None) -> None:
        self._secrets = dict(secrets or {})

    def add(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self._secrets[(namespace, name)] = dict(data)

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self._secrets.get((namespace, name))
        return None if found is None else dict(found)
