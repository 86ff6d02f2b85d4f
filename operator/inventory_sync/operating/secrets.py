"""Secrets read and written through the Kubernetes API (the operator's SecretReader/Writer)."""

from __future__ import annotations

import base64

from inventory_sync.kube import KubeClient, resource_path


class KubeSecrets:
    """Reads Secrets in the resource's namespace on every run, so a changed Secret is picked up
    by the next run without a restart (and without list/watch rights on Secrets)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        return await self._client.read_secret(namespace, name)

    async def may_write(self, namespace: str, name: str) -> bool:
        """Whether `write` would be allowed: a SelfSubjectAccessReview for patch on the Secret."""
        allowed, _ = await self._client.may("patch", "secrets", namespace=namespace, name=name)
        return allowed

    async def write(self, namespace: str, name: str, key: str, value: str) -> None:
        """Set one key (a rotated refresh token) with a JSON merge patch of `data`, leaving
        every other key as it is. Needs RBAC `patch` on secrets; the response, which holds
        every key of the Secret, is dropped unread."""
        encoded = base64.b64encode(value.encode()).decode()
        path = resource_path("", "v1", "secrets", namespace, name)
        await self._client.patch_merge(path, {"data": {key: encoded}})
