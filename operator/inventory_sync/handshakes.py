"""Closing the socket of a TLS handshake that is cancelled (bottom layer).

httpcore closes a connection whose TLS handshake fails, but not one whose handshake is
cancelled: it catches `Exception`, and cancellation is a `BaseException`. The TCP socket then
stays open, owned by nothing, until the garbage collector finds it and warns. Runs cancelled by
an operator stop, and steps cancelled while connecting to the API server, left sockets that way;
CI saw them as `unclosed transport` in whichever test was running at collection time.

`close_cancelled_handshakes` wraps the network backend of a client's pools so that every stream
it opens closes itself when its handshake ends in anything but success.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx


def close_cancelled_handshakes(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Apply the fix to every real transport of `client` (its own, and those httpx mounted for
    proxies). A test's MockTransport opens no sockets and is left as it is."""
    transports: list[Any] = [client._transport, *client._mounts.values()]
    for transport in transports:
        if isinstance(transport, httpx.AsyncHTTPTransport):
            # No public hook: httpcore's pool reads `_network_backend` for every new connection
            # (tests/integration/test_cancelled_handshakes.py fails if that stops being true).
            pool: Any = transport._pool
            pool._network_backend = _ClosingBackend(pool._network_backend)
    return client


class _ClosingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface, called by name)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _ClosingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _ClosingStream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ClosingStream(httpcore.AsyncNetworkStream):
    """A plain stream whose `start_tls` closes it unless the handshake succeeds."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            # Shielded: the cancellation that got us here must not also cut the close short
            # (closing twice, after httpcore's own close of a failed handshake, is harmless).
            with anyio.CancelScope(shield=True):
                await self._inner.aclose()
            raise

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
