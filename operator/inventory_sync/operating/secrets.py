"""Secrets read through the Kubernetes API (the operator's SecretReader)."""

from __future__ import annotations

from inventory_sync.kube import KubeClient


class KubeSecrets:
    """Reads Secrets in the resource's namespace on every run, so a changed Secret is picked up
    by the next run without a restart (and without list/watch rights on Secrets)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        return await self._client.read_secret(namespace, name)
