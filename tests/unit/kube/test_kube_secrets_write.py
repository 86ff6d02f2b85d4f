"""KubeSecrets.write: a rotated refresh token reaches its Secret as one merge-patched key."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from inventory_sync.errors import KubeForbidden, KubeNotFound
from inventory_sync.kube import MERGE_PATCH, KubeClient, KubeConnection
from inventory_sync.operating.secrets import KubeSecrets
from inventory_sync.syncing.credentials import SecretWriter

SERVER = "https://cluster.example.test:6443"
SECRET_PATH = "/api/v1/namespaces/inventory/secrets/classic-central"
ROTATED = "rotated-refresh-token-never-in-messages"


@pytest.fixture
async def secrets(api: Any) -> AsyncIterator[KubeSecrets]:
    connection = KubeConnection(server=SERVER, token="sa-token")
    async with KubeClient(connection, transport=api.transport(), retry_delay=0) as client:
        yield KubeSecrets(client)


def secret_body(data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": encoded}


async def test_kube_secrets_is_a_secret_writer(secrets: KubeSecrets) -> None:
    assert isinstance(secrets, SecretWriter)


async def test_write_merge_patches_only_the_rotated_key_base64_encoded(
    api: Any, secrets: KubeSecrets
) -> None:
    api.handler = lambda _r: httpx.Response(200, json=secret_body({"refresh_token": ROTATED}))

    await secrets.write("inventory", "classic-central", "refresh_token", ROTATED)

    (request,) = api.requests
    assert (request.method, request.url.path) == ("PATCH", SECRET_PATH)
    assert request.headers["content-type"] == MERGE_PATCH
    assert api.body(request) == {
        "data": {"refresh_token": base64.b64encode(ROTATED.encode()).decode()}
    }


async def test_a_written_value_is_what_the_next_read_returns(
    api: Any, secrets: KubeSecrets
) -> None:
    stored = {"client_id": "c", "client_secret": "s", "refresh_token": "old"}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            for key, value in api.body(request)["data"].items():
                stored[key] = base64.b64decode(value).decode()
        return httpx.Response(200, json=secret_body(stored))

    api.handler = handle
    await secrets.write("inventory", "classic-central", "refresh_token", ROTATED)

    assert await secrets.read("inventory", "classic-central") == {
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": ROTATED,
    }


@pytest.mark.parametrize(
    ("code", "reason", "message", "error", "expected"),
    [
        pytest.param(
            403,
            "Forbidden",
            'secrets "classic-central" is forbidden: User "system:serviceaccount:x:y" cannot '
            'patch resource "secrets" in API group "" in the namespace "inventory"',
            KubeForbidden,
            "forbidden: cannot patch secrets in namespace inventory",
            id="missing RBAC patch on secrets names the rule",
        ),
        pytest.param(
            404,
            "NotFound",
            'secrets "classic-central" not found',
            KubeNotFound,
            f"PATCH {SECRET_PATH}: not found",
            id="a deleted Secret is NotFound",
        ),
    ],
)
async def test_write_failures_name_the_secret_never_the_value(
    api: Any,
    secrets: KubeSecrets,
    code: int,
    reason: str,
    message: str,
    error: type[Exception],
    expected: str,
) -> None:
    api.handler = lambda _r: httpx.Response(code, json=api.status(code, reason, message))

    with pytest.raises(error) as caught:
        await secrets.write("inventory", "classic-central", "refresh_token", ROTATED)

    assert str(caught.value) == expected
    assert ROTATED not in str(caught.value)
    assert len(api.requests) == 1  # a write is never retried blindly
