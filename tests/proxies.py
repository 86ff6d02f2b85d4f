"""Small real proxies and a recording listener on loopback, for tests of proxy-url and egress rules.

Each runs an asyncio server in a thread of its own. The proxies ignore where a client asks to
go and connect to `upstream` instead (a loopback port), recording what was asked: so a test can
name a host that exists nowhere (no DNS query leaves the machine) and still reach the real API
server through the proxy, and a client that skipped the proxy reaches nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class _Served:
    """A server running in its own thread and loop; stopped with `close`."""

    port: int = 0
    requests: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def start(self, host: str = "127.0.0.1") -> _Served:
        ready = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._guarded, host, 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await self._stop.wait()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self._thread.start()
        assert ready.wait(10), "test server did not start"
        return self

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter], upstream_port: int
) -> None:
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    await asyncio.gather(
        _pipe(client[0], up_writer), _pipe(up_reader, client[1]), return_exceptions=True
    )


@dataclass
class ConnectProxy(_Served):
    """An HTTP CONNECT proxy; `requests` holds each CONNECT target ("host:port")."""

    upstream: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        self.requests.append(target if method == "CONNECT" else f"{method} {target}")
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), self.upstream)


@dataclass
class Socks5Proxy(_Served):
    """A SOCKS5 proxy (no authentication, CONNECT only); `requests` holds "host:port"."""

    upstream: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        assert version == 5
        await reader.readexactly(count)
        writer.write(b"\x05\x00")  # no authentication
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif kind == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        self.requests.append(f"{host}:{port}")
        assert command == 1
        writer.write(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", 0))
        await writer.drain()
        await _splice((reader, writer), self.upstream)


@dataclass
class RecordingListener(_Served):
    """Accepts connections and records every byte received (a TLS ClientHello or a request
    line with its headers and body); answers plain HTTP 200 with an OAuth2-like token."""

    received: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while chunk := await reader.read(65536):
                    data += chunk
                    if b"\r\n\r\n" in data and _complete(data):
                        break
        self.received.append(data)
        body = b'{"access_token": "x", "expires_in": 3600}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return True


@contextlib.contextmanager
def serving(server: _Served, host: str = "127.0.0.1") -> Iterator[_Served]:
    server.start(host)
    try:
        yield server
    finally:
        server.close()
