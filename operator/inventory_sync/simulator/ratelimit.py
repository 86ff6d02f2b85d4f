"""Admission limits on API calls: sliding-window quotas and per-client concurrency caps."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class Quota:
    """The outcome of one request against its window, and the headers that report it."""

    allowed: bool
    limit: int | None
    remaining: int
    reset_seconds: int  # until the oldest request in the window leaves it

    def headers(self) -> dict[str, str]:
        """`ratelimit-*` headers as GreenLake sends them; none for an unlimited family."""
        if self.limit is None:
            return {}
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_seconds),
        }


class SlidingWindowLimiter:
    """Counts requests per key over the last `window` seconds (truly sliding, not buckets)."""

    def __init__(self, *, window: float, clock: Clock = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._hits: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: Hashable, limit: int | None, *, record: bool = True) -> Quota:
        """Record a request for `key` if the window has room (a refused one is not recorded).

        With record=False, only report the window as it stands.
        """
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if limit is None:
                return Quota(True, None, 0, 0)
            allowed = len(hits) < limit
            if allowed and record:
                hits.append(now)
            reset = hits[0] + self.window - now if hits else self.window
            return Quota(allowed, limit, limit - len(hits), max(1, math.ceil(reset)))

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._hits.clear()


class TooManyInFlight(Exception):
    """A client already has its maximum of requests in flight."""


class ConcurrencyGauge:
    """In-flight requests per client, with the highest level each client ever reached."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self._current: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> int:
        """Take one of `client`'s slots and return the new level; TooManyInFlight beyond the cap."""
        with self._lock:
            level = self._current.get(client, 0) + 1
            # The peak counts refused attempts too: it shows how hard a client pushed.
            self._peak[client] = max(self._peak.get(client, 0), level)
            if level > self.limit:
                raise TooManyInFlight(client)
            self._current[client] = level
            return level

    def release(self, client: str) -> None:
        """Give back a slot taken by acquire."""
        with self._lock:
            self._current[client] -= 1

    @contextmanager
    def slot(self, client: str) -> Iterator[int]:
        """Hold one of `client`'s slots for the duration of the block."""
        level = self.acquire(client)
        try:
            yield level
        finally:
            self.release(client)

    def peaks(self) -> dict[str, int]:
        """The highest concurrency each client attempted (refused attempts included)."""
        with self._lock:
            return dict(self._peak)

    def clear(self) -> None:
        """Forget the peaks (requests still in flight keep their slots)."""
        with self._lock:
            self._peak = {c: n for c, n in self._current.items() if n}
