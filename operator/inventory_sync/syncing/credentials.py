"""Resolving a source's credentials from Secrets, wherever the Secrets come from (syncing layer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from inventory_sync.errors import (
    CredentialsError,
    InventorySyncError,
    KubeForbidden,
    public_message,
)
from inventory_sync.models import RefreshSecretRef, SecretRef
from inventory_sync.upstream import ClientCredentials


class SecretReader(Protocol):
    """Reads a Secret's decoded string data; None when the Secret does not exist.

    The operator reads from the Kubernetes API, the CLI from the manifest and environment.
    """

    async def read(self, namespace: str, name: str) -> dict[str, str] | None: ...


@runtime_checkable
class SecretWriter(Protocol):
    """Writes one key of a Secret (a rotated refresh token); a SecretReader may also be one.

    The operator patches the Secret through the Kubernetes API; the CLI keeps a private file.
    Implementations never put the value in a log or an error message.
    """

    async def write(self, namespace: str, name: str, key: str, value: str) -> None: ...


async def resolve_credentials(
    reader: SecretReader, *, namespace: str, ref: SecretRef
) -> ClientCredentials:
    """Fetch the client id and secret; the error names the Secret and key, never a value."""
    try:
        data = await reader.read(namespace, ref.name)
    except InventorySyncError as error:  # e.g. 403: name the Secret the operator could not read
        raise type(error)(f"Secret {namespace}/{ref.name}: {error}") from error
    if data is None:
        raise CredentialsError(f"Secret {namespace}/{ref.name} not found")
    missing = [k for k in ref.required_keys if not data.get(k)]
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        raise CredentialsError(f"Secret {namespace}/{ref.name} has no key {keys}")
    return ClientCredentials(
        client_id=data[ref.client_id_key], client_secret=SecretStr(data[ref.client_secret_key])
    )


@dataclass(frozen=True)
class RefreshCredentials:
    """A classic Central API client and its current refresh token, as the Secret holds them."""

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr


async def resolve_refresh_credentials(
    reader: SecretReader, *, namespace: str, ref: RefreshSecretRef
) -> RefreshCredentials:
    """Fetch the client id, secret and refresh token; errors as for resolve_credentials."""
    client = await resolve_credentials(reader, namespace=namespace, ref=ref)
    # resolve_credentials checked every required key; read again for the refresh token, which
    # ClientCredentials does not carry (a cheap GET: once per source and run).
    data = await reader.read(namespace, ref.name) or {}
    token = data.get(ref.refresh_token_key)
    if not token:  # removed between the two reads
        raise CredentialsError(
            f"Secret {namespace}/{ref.name} has no key {ref.refresh_token_key!r}"
        )
    return RefreshCredentials(
        client_id=client.client_id,
        client_secret=client.client_secret,
        refresh_token=SecretStr(token),
    )


@runtime_checkable
class WritePermission(Protocol):
    """A SecretWriter that can tell, before writing, whether a write would be allowed (the
    operator asks the API server with a SelfSubjectAccessReview)."""

    async def may_write(self, namespace: str, name: str) -> bool: ...


#: The Helm value granting `patch` on Secrets (docs/operator.md, chart values.yaml).
WRITE_ROTATED_TOKENS_VALUE = "rbac.writeRotatedTokens"


async def ensure_rotated_token_writable(
    reader: SecretReader, *, namespace: str, ref: RefreshSecretRef
) -> None:
    """Refuse, before a classic Central refresh token is spent, when the rotated one could not
    be saved: spending it would leave nothing valid for the next run (after a restart the
    upstream answers invalid_grant and only a newly issued token helps)."""
    refresh_token_saver(reader, namespace=namespace, ref=ref)  # read-only secrets: refused
    if isinstance(reader, WritePermission) and not await reader.may_write(namespace, ref.name):
        raise KubeForbidden(
            f"forbidden: cannot patch secrets in namespace {namespace} (Secret {ref.name}), "
            "but classic Central rotates the refresh token on every refresh and the new one "
            "must be written back, so the stored one was not used. Grant it with the Helm value "
            f"{WRITE_ROTATED_TOKENS_VALUE}=true (or a Role allowing patch on this Secret)"
        )


def refresh_token_saver(
    reader: SecretReader, *, namespace: str, ref: RefreshSecretRef
) -> Callable[[str], Awaitable[None]]:
    """The `on_rotate` callback writing each rotated refresh token back to `ref`'s key.

    CredentialsError at once when `reader` cannot write: syncing anyway would spend the
    stored refresh token and leave nothing valid behind for the next run.
    """
    where = f"Secret {namespace}/{ref.name} key {ref.refresh_token_key!r}"
    if not isinstance(reader, SecretWriter):
        raise CredentialsError(
            f"{where}: these secrets are read-only here, but classic Central rotates the refresh "
            "token on every refresh; without writing it back the next run would lose access"
        )
    writer = reader

    async def save(value: str) -> None:
        try:
            await writer.write(namespace, ref.name, ref.refresh_token_key, value)
        except (InventorySyncError, OSError) as error:
            raise CredentialsError(f"{where} not written: {public_message(error)}") from error

    return save


class StaticSecrets:
    """Secrets held in memory (from a manifest file); keyed by (namespace, name)."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]] | None = None) -> None:
        self._secrets = dict(secrets or {})

    def add(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self._secrets[(namespace, name)] = dict(data)

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self._secrets.get((namespace, name))
        return None if found is None else dict(found)
