"""A request cancelled during its TLS handshake closes its socket at once (see handshakes.py),
for the upstream clients and the Kubernetes client alike, against a real loopback listener
that accepts and then never answers the ClientHello."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from inventory_sync.kube.client import KubeClient
from inventory_sync.kube.connection import KubeConnection
from inventory_sync.upstream import build_http_client

pytestmark = pytest.mark.integration


@dataclass
class SilentListener:
    """Accepts TCP connections, reads until the client closes, never writes a byte."""

    port: int = 0
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.set()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # b"" once the client's socket is closed
        self.closed_by_client.set()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[SilentListener]:
    silent = SilentListener()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    silent.port = server.sockets[0].getsockname()[1]
    async with server:
        yield silent


async def cancel_during_handshake(
    listener: SilentListener, request: Callable[[], Coroutine[Any, Any, object]]
) -> list[str]:
    """Start `request`, cancel it once its ClientHello waits for an answer; the warnings that
    dropping its objects raised (an unclosed socket or transport)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.create_task(request())
        await asyncio.wait_for(listener.accepted.wait(), 5)
        await asyncio.sleep(0.1)  # connected; the handshake waits for the server's hello
        assert not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        del task
        gc.collect()
        await asyncio.wait_for(listener.closed_by_client.wait(), 5)
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def test_an_upstream_request_cancelled_mid_handshake_closes_its_socket(
    listener: SilentListener,
) -> None:
    async with build_http_client(timeout=30) as http:
        dropped = await cancel_during_handshake(
            listener, lambda: http.get(f"https://127.0.0.1:{listener.port}/")
        )
    assert dropped == []


async def test_a_kube_request_cancelled_mid_handshake_closes_its_socket(
    listener: SilentListener,
) -> None:
    connection = KubeConnection(server=f"https://127.0.0.1:{listener.port}", origin="test")
    client = KubeClient(connection, timeout=30)
    try:
        dropped = await cancel_during_handshake(listener, lambda: client.get("/api/v1/pods"))
    finally:
        await client.aclose()
    assert dropped == []
