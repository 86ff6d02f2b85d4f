"""Saying why a connection failed (bottom layer): one sentence per cause, not an exception class name.

httpx wraps the real cause two levels deep (httpx.ConnectError ← httpcore.ConnectError ←
OSError or ssl error, sometimes inside an ExceptionGroup when several addresses were tried),
so "ConnectError" alone hides whether the CA was wrong, nothing listened, or the name did not
resolve: the three need different fixes.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import httpx

from inventory_sync.errors import public_message


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then its causes and contexts, exception groups opened, each once."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))
        for linked in (current.__context__, current.__cause__):
            if linked is not None:
                stack.append(linked)


def describe(
    error: BaseException, *, target: str, tls_name: str | None = None, proxy: str | None = None
) -> str:
    """Why connecting to `target` (host:port) failed, for status and logs.

    `tls_name` is the name the certificate was checked against (tls-server-name, else the
    host); `proxy` the proxy the connection went through, if any.
    """
    chain = list(causes(error))
    via = f" (through proxy {proxy})" if proxy else ""
    host = target.rsplit(":", 1)[0].strip("[]")
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "certificate verify failed"
            return (
                f"TLS: the certificate of {target} could not be verified for the name "
                f"{tls_name or host}: {reason}{via}"
            )
    for cause in chain:
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {target} failed: {cause.reason or 'SSL error'}{via}"
    if isinstance(error, httpx.ProxyError):
        return f"the proxy {proxy or ''} refused to connect to {target}: {public_message(error)}"
    if isinstance(error, httpx.ConnectTimeout):
        return f"timed out connecting to {target}{via}"
    if isinstance(error, httpx.TimeoutException):
        return f"{target} did not answer in time{via}"
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return f"DNS: cannot resolve {host} ({cause.strerror or 'unknown name'}){via}"
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return f"connection refused by {target} (nothing listens there?){via}"
    for cause in chain:
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect to {target}: {cause.strerror}{via}"
    text = public_message(error, limit=160)
    return f"cannot connect to {target}: {text if text else type(error).__name__}{via}"
