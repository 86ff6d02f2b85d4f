"""TLS for API server connections (kube layer): CA bundle, client certificate, insecure mode, server-name override.

kubeconfig's `tls-server-name` says which name to verify the server's certificate against
(and to send as SNI) when the URL's host is not on the certificate: vclusters, SSH tunnels,
port-forwards. Both our httpx client (anyio) and kopf's aiohttp session (asyncio) open TLS
through `SSLContext.wrap_bio`, so one context subclass overriding the name serves both.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any

from inventory_sync.errors import KubeConfigError


class _NamedContext(ssl.SSLContext):
    """An SSLContext that verifies and sends `server_name`, whatever host the URL names."""

    server_name: str | None = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        name = self.server_name or server_hostname
        return super().wrap_bio(incoming, outgoing, server_side, name, session)

    def wrap_socket(
        self,
        sock: Any,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        name = self.server_name or server_hostname
        return super().wrap_socket(
            sock, server_side, do_handshake_on_connect, suppress_ragged_eofs, name, session
        )


@dataclass(frozen=True)
class TLSSettings:
    """The TLS half of a connection; PEM texts are kept out of `repr`."""

    ca_file: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    server_name: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: str | None = None
    client_key_data: str | None = field(default=None, repr=False)

    def context(self, *, origin: str) -> ssl.SSLContext:
        """An SSLContext as kubectl would set it up; errors name the part, never the material."""
        context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
        context.server_name = self.server_name
        try:
            if self.ca_file or self.ca_data:
                context.load_verify_locations(cafile=self.ca_file, cadata=self.ca_data)
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise KubeConfigError(
                f"{origin}: certificate authority is not usable ({_reason(error)})"
            ) from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            if self.client_cert_file or self.client_key_file:
                context.load_cert_chain(self.client_cert_file or "", self.client_key_file)
            elif self.client_cert_data or self.client_key_data:
                _load_cert_chain_data(context, self.client_cert_data, self.client_key_data)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise KubeConfigError(
                f"{origin}: client certificate or key is not usable ({_reason(error)})"
            ) from None
        return context


def _reason(error: BaseException) -> str:
    # ssl errors name the failing step ("[SSL] PEM lib"), never the material itself.
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


def _load_cert_chain_data(context: ssl.SSLContext, cert: str | None, key: str | None) -> None:
    """load_cert_chain only reads files: write the PEM to private temp files, load, delete."""
    if not cert or not key:
        raise ValueError("both certificate and key are needed")
    with tempfile.TemporaryDirectory(prefix="inventory-sync-kube-") as directory:  # mode 0700
        paths = []
        for name, pem in (("client.crt", cert), ("client.key", key)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(pem)
            paths.append(path)
        context.load_cert_chain(paths[0], paths[1])
