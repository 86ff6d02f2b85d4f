"""Client-side rate limiting: every upstream request waits here for a slot in its budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """A sliding window: at most `limit` admissions in any `period` seconds.

    The upstreams count requests in a sliding window per workspace (GreenLake documents
    160/min for devices), so a token bucket that allows a burst of `limit` right after a
    full minute's worth would still trip their limit; the window log matches it exactly.
    Waiters are served first come, first served: one waits at the head while holding the
    lock, the rest queue behind it, so concurrency can never over-admit.
    """

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if period <= 0:
            raise ValueError("period must be positive")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._admitted: deque[float] = deque()
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a slot and take it; returns the seconds spent waiting."""
        started = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._wait_at(now)
                if wait <= 0:
                    self._admitted.append(now)
                    return now - started
                await self._sleep(wait)

    def _wait_at(self, now: float) -> float:
        if self._paused_until > now:
            return self._paused_until - now
        horizon = now - self.period
        while self._admitted and self._admitted[0] <= horizon:
            self._admitted.popleft()
        if len(self._admitted) < self.limit:
            return 0.0
        return self._admitted[0] - horizon

    def pause_for(self, seconds: float) -> None:
        """Admit nobody for `seconds` (a 429 told us when the server's window resets).

        Every request sharing this budget backs off, not just the one that got the 429.
        A shorter pause never cuts a longer one short.
        """
        if seconds <= 0:
            return
        until = self._clock() + seconds
        if until > self._paused_until:
            self._paused_until = until
            log.info("rate limiter paused for %.2fs after a 429", seconds)

    @property
    def in_window(self) -> int:
        """Admissions counted in the current window (for tests and metrics)."""
        self._wait_at(self._clock())
        return len(self._admitted)


class RateLimiterRegistry:
    """One limiter per budget key, so every client drawing on a budget shares it.

    Keys name the upstream budget, e.g. f"greenlake:{workspace_id}:devices": two sources
    (or two schedules) reading devices of the same workspace then pace each other.
    """

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, RateLimiter] = {}

    def get(self, key: str, *, limit: int, period: float) -> RateLimiter:
        """The limiter for `key`, created with `limit`/`period` the first time it is asked for.

        Later callers asking for different numbers get the existing limiter (the budget
        is the upstream's, not the caller's); the mismatch is logged.
        """
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = RateLimiter(limit, period, clock=self._clock, sleep=self._sleep)
            self._limiters[key] = limiter
        elif (limiter.limit, limiter.period) != (limit, period):
            log.warning(
                "rate limiter %s already exists with %d/%gs; ignoring %d/%gs",
                key,
                limiter.limit,
                limiter.period,
                limit,
                period,
            )
        return limiter

    def __contains__(self, key: object) -> bool:
        return key in self._limiters
