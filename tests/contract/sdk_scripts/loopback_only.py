"""Imported first by every SDK scenario: any attempt to resolve or reach a non-loopback address
aborts the scenario (the network rule: tests talk to loopback only), so a client that ignored
its proxy configuration fails loudly instead of reaching the real service."""

from __future__ import annotations

import sys
from typing import Any

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _host(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo":
        host = _host(args[0])
        if host is not None and host not in _LOOPBACK:
            raise RuntimeError(f"network rule: refusing to resolve {host!r} (loopback only)")
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and _host(address[0]) not in _LOOPBACK:
            raise RuntimeError(f"network rule: refusing to connect to {address!r}")


sys.addaudithook(_guard)
