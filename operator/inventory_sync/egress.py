"""The egress guard (bottom layer): the endpoint rules enforced on the connections themselves.

Two cuts, so a rule holds whatever the configuration said:

- per request (`request_guard`, an httpx event hook): scheme and host name against the `EndpointPolicy` before
  anything is sent: plain http to a non-loopback name, a metadata name, an unlisted in-cluster
  name never get a byte;
- per connection (`guard_addresses`): the host is resolved here and every address checked
  before connecting to it, and then the checked address is the one dialled, so a name that
  resolves to 169.254.169.254 (or is re-pointed there between check and use) is refused.

Both raise EndpointRefused, which httpx passes through unwrapped (it only maps httpcore's own
exceptions), so callers see a permanent error, never a retryable connection failure.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from inventory_sync.endpoints import EndpointPolicy, IPAddress, address_problem, host_address
from inventory_sync.errors import EndpointRefused

AddressCheck = Callable[[IPAddress], str | None]


def request_guard(policy: EndpointPolicy) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request event hook checking each request's URL against `policy` before any
    byte is sent; a hook, so requests routed to proxy mounts are checked too."""

    async def check(request: httpx.Request) -> None:
        url = request.url
        port = f":{url.port}" if url.port else ""
        what = f"{request.method} {url.scheme}://{url.host}{port}{url.path}"
        policy.check_request(scheme=url.scheme, host=url.host, what=what)

    return check


class _AddressGuard(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked one (no second lookup)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, check: AddressCheck) -> None:
        self._inner = inner
        self._check = check

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface, called by name)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, seconds=timeout)
        for address in addresses:
            problem = self._check(address)
            if problem is not None:
                raise EndpointRefused(f"{host}: refused: {problem}")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:  # try the next address, as anyio would
                last = error
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, *, seconds: float | None) -> list[IPAddress]:
    literal = host_address(host)
    if literal is not None:
        return [literal]
    try:
        with anyio.fail_after(seconds):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as error:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
    except OSError as error:  # socket.gaierror: the describer names it a DNS failure
        raise httpcore.ConnectError(str(error)) from error
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = host_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise httpcore.ConnectError(f"{host} resolved to no address")
    return found


def guard_addresses(
    transport: httpx.AsyncHTTPTransport, check: AddressCheck = address_problem
) -> httpx.AsyncHTTPTransport:
    """Make `transport` resolve and check addresses itself before dialling (see module doc).

    httpx has no public hook for this; its pool (httpcore's, also for proxies) keeps the
    network backend in `_network_backend` and reads it for every new connection. The egress
    tests with a recording listener fail if that ever stops being true.
    """
    pool: Any = transport._pool
    pool._network_backend = _AddressGuard(pool._network_backend, check)
    return transport


def guard_client(
    client: httpx.AsyncClient, *, policy: EndpointPolicy | None, addresses: bool = True
) -> httpx.AsyncClient:
    """Apply the request check (when `policy` is given) and the address check to every real
    transport of `client`: its own and those httpx mounted for proxies from the environment.
    A test's MockTransport makes no connections and gets only the request check."""
    if policy is not None:
        hooks = client.event_hooks
        hooks["request"] = [*hooks.get("request", []), request_guard(policy)]
        client.event_hooks = hooks
    if addresses:
        transports: list[Any] = [client._transport, *client._mounts.values()]
        for transport in transports:
            if isinstance(transport, httpx.AsyncHTTPTransport):
                guard_addresses(transport)
    return client
