"""aiohttp sessions for kopf's watches (kube layer): the same connection the operator's httpx client uses.

kopf's own `ConnectionInfo` cannot express tls-server-name, impersonation or disable-compression,
so the operator's login handler hands kopf a ready session built here (kopf.AiohttpSession).
kopf asks again after a 401 or when the credential expires: `KopfLogin.credential()` then
renews what it handed out last, so an exec plugin runs again and a token file is re-read.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from inventory_sync.errors import KubeConfigError, KubeUnauthorized
from inventory_sync.kube.client import USER_AGENT
from inventory_sync.kube.connection import KubeConnection
from inventory_sync.kube.credentials import Credential


class KopfLogin:
    """The credential for each of kopf's (re-)logins on one connection."""

    def __init__(self, connection: KubeConnection) -> None:
        self.connection = connection
        self._handed: Credential | None = None

    async def credential(self) -> Credential:
        """The first login gets the current credential; a later one means kopf's was refused
        or expired, so it is renewed. KubeUnauthorized when it cannot change (a fixed token):
        retrying the same credential would loop for ever."""
        source = self.connection.credentials
        last = self._handed
        if last is None:
            fresh = await source.current()
        elif source.cached() is not last:
            fresh = await source.current()  # renewed meanwhile (our own client saw a 401)
        else:
            renewed = await source.renew(last)
            if renewed is None:
                raise KubeUnauthorized(
                    "unauthorized: the API server refused the credentials of "
                    f"{self.connection.origin}, and they cannot be renewed"
                )
            fresh = renewed
        self._handed = fresh
        return fresh


def open_session(connection: KubeConnection, credential: Credential) -> aiohttp.ClientSession:
    """An aiohttp session presenting `credential` the way KubeClient does: same TLS (CA,
    client certificate, tls-server-name), headers (token or basic auth, impersonation,
    encoding) and proxy. Needs a running event loop."""
    proxy = connection.proxy_url
    if proxy and urlsplit(proxy).scheme not in ("http", "https"):
        raise KubeConfigError(
            f"{connection.origin}: proxy-url {connection.proxy_display}: the operator's watches "
            "(kopf, on aiohttp) can use an http:// or https:// proxy only; `inventory-sync "
            "trigger` and Fabric connections can use SOCKS. Use a CONNECT proxy, or run the "
            "operator in the cluster"
        )
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=connection.ssl_context(credential)),
        headers=[("User-Agent", USER_AGENT), *connection.headers(credential)],
        proxy=proxy,
        trust_env=False,  # as kopf's own default: the kubeconfig says where to go
    )
