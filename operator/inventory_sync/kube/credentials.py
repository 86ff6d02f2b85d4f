"""Where a connection's changing credentials come from (kube layer): a fixed token, a token file
re-read on every use, or an exec plugin's answer cached until it expires.

Callers ask `current()` before a request and, after a 401, `renew(rejected)` once: a token file
may have been rotated, an exec plugin's token revoked early (client-go's contract). Callers that
find the same stale credential share one renewal, so a burst of 401s runs a plugin once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from inventory_sync.errors import KubeConfigError


@dataclass(frozen=True)
class Credential:
    """What to present on one request: a bearer token and/or a client certificate (exec
    plugins may return either); secrets are kept out of `repr`."""

    token: str | None = field(default=None, repr=False)
    client_cert_data: str | None = None
    client_key_data: str | None = field(default=None, repr=False)
    #: After this instant the credential is not used again (exec plugins say when).
    expires_at: datetime | None = None


NO_CREDENTIAL = Credential()


class CredentialSource(Protocol):
    """The changing half of an identity (see the module docstring)."""

    async def current(self) -> Credential: ...

    async def renew(self, rejected: Credential) -> Credential | None:
        """A credential to retry with after `rejected` got a 401, or None when nothing would
        change (a fixed token stays wrong)."""
        ...

    def cached(self) -> Credential | None:
        """The credential at hand without doing any work (None when it must be fetched)."""
        ...


class FixedCredentials:
    """A token written in the kubeconfig (or none: client certificates only)."""

    def __init__(self, token: str | None) -> None:
        self._credential = Credential(token=token)

    async def current(self) -> Credential:
        return self._credential

    async def renew(self, rejected: Credential) -> Credential | None:
        return None

    def cached(self) -> Credential:
        return self._credential


class TokenFileCredentials:
    """A token file read on every use, so projected ServiceAccount tokens rotated in place by
    the kubelet keep working (a few bytes from tmpfs: cheap enough per request)."""

    def __init__(self, path: str, *, origin: str) -> None:
        self._path = Path(path)
        self._origin = origin

    def cached(self) -> Credential:
        try:
            token = self._path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise KubeConfigError(
                f"{self._origin}: cannot read token file {self._path}: {error.strerror}"
            ) from None
        return Credential(token=token or None)

    async def current(self) -> Credential:
        return self.cached()

    async def renew(self, rejected: Credential) -> Credential | None:
        fresh = self.cached()
        return fresh if fresh.token != rejected.token else None


Fetch = Callable[[], Awaitable[Credential]]


class ExecCredentials:
    """An exec plugin's credential, cached until its `expirationTimestamp` (for ever without
    one, until a 401), the plugin re-run by one caller while the others wait for its answer."""

    def __init__(self, fetch: Fetch, *, clock: Callable[[], datetime] | None = None) -> None:
        self._fetch = fetch
        self._clock = clock or (lambda: datetime.now(UTC))
        self._credential: Credential | None = None
        # One lock per event loop: the operator's loop and a test's may share a connection.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        #: How often the plugin ran: for tests and debugging.
        self.runs = 0

    def cached(self) -> Credential | None:
        credential = self._credential
        return credential if credential is not None and self._valid(credential) else None

    async def current(self) -> Credential:
        found = self.cached()
        if found is not None:
            return found
        async with self._lock():
            return self.cached() or await self._run()

    async def renew(self, rejected: Credential) -> Credential | None:
        async with self._lock():
            found = self.cached()
            if found is not None and found is not rejected:
                return found  # another caller renewed it meanwhile
            return await self._run()

    async def _run(self) -> Credential:
        self.runs += 1
        credential = await self._fetch()
        self._credential = credential
        return credential

    def _valid(self, credential: Credential) -> bool:
        return credential.expires_at is None or self._clock() < credential.expires_at

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock
