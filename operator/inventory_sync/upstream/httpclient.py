"""Default upstream endpoints and the one shared httpx client every upstream client is handed."""

from __future__ import annotations

import contextlib
import functools
import os
import ssl

import certifi
import httpx

from inventory_sync import __version__, egress
from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.handshakes import close_cancelled_handshakes

#: One host serves every GreenLake API.
GREENLAKE_API_URL = "https://global.api.greenlake.hpe.com"
#: HPE SSO: client-credentials tokens for GreenLake and new Central alike.
TOKEN_URL = "https://sso.common.cloud.hpe.com/as/token.oauth2"

USER_AGENT = f"inventory-sync-operator/{__version__} (+httpx/{httpx.__version__})"

# A connect that takes longer than this is a dead route, not a slow server; reads may
# legitimately take the whole timeout (a 2000-device GreenLake page is a few MB).
_CONNECT_TIMEOUT_CAP = 10.0


def build_http_client(
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: EndpointPolicy | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with timeouts on every phase, bounded pools and our User-Agent.

    Every request it sends carries credentials (a client secret, a refresh or bearer token),
    so the egress guard applies `policy` (default: no in-cluster hosts) to each request and
    refuses link-local and metadata addresses at connect time, after DNS (see egress.py).
    `transport` is the test seam (httpx.MockTransport); production leaves it None.
    Redirects are not followed: an API answering 3xx is misconfigured, and following
    one could carry the bearer token to another host.
    """
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            timeout, connect=min(timeout, _CONNECT_TIMEOUT_CAP), read=timeout, write=timeout
        ),
        # Pages are fetched a few at a time per source and a run has a handful of
        # sources; 20 connections cover that without letting a bug open hundreds.
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
        verify=trusted_roots(),
        transport=transport,
    )
    close_cancelled_handshakes(client)
    return egress.guard_client(client, policy=policy or EndpointPolicy())


def trusted_roots() -> ssl.SSLContext:
    """The TLS context upstream clients verify servers with, trusting what httpx would:
    `SSL_CERT_FILE`, else `SSL_CERT_DIR`, else certifi's bundle.

    One per process and trust configuration: building one parses the whole CA bundle, about
    60 ms of CPU that httpx spent on the event loop for every client it built (every other
    source's answers waited). A CA file replaced in place (a remounted bundle) is a new
    configuration: its size and modification time are part of the key.
    """
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not cafile and not capath:
        cafile = certifi.where()
    stamp = None
    if cafile:
        with contextlib.suppress(OSError):  # a missing file: ssl reports it below
            stat = os.stat(cafile)
            stamp = (stat.st_size, stat.st_mtime_ns)
    return _context_for(cafile or None, None if cafile else capath, stamp)


@functools.lru_cache(maxsize=8)
def _context_for(
    cafile: str | None, capath: str | None, stamp: tuple[int, int] | None
) -> ssl.SSLContext:
    del stamp  # only part of the cache key
    return ssl.create_default_context(cafile=cafile, capath=capath)
