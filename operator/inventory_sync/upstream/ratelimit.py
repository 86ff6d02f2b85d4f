"""Client-side rate limiting: every upstream request waits here for a slot in its budget."""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """A sliding window: at most `limit` admissions in any `period` (+ `margin`) seconds.

    The upstreams count requests in a sliding window per workspace (GreenLake documents
    160/min for devices), so a token bucket that allows a burst of `limit` right after a
    full minute's worth would still trip their limit; the window log matches it exactly.
    Each slot is held `margin` seconds past the period, because the server counts a request
    when it arrives, a little after we stamp it. Waiters are served first come, first served:
    one waits at the head while holding the lock, the rest queue behind it, so concurrency
    can never over-admit.

    The server's own count corrects ours (`observe`): requests other processes sent in the
    window (or this process before a restart) are held as placeholder slots that free when
    the server's `reset` says.
    """

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        margin: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if period <= 0:
            raise ValueError("period must be positive")
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.limit = limit
        self.period = period
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        #: When our admitted requests were sent, sorted (a slot frees period + margin later).
        self._stamps: list[float] = []
        #: When slots the server counted for others free, sorted.
        self._foreign: list[float] = []
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a slot and take it; returns the seconds spent waiting."""
        return (await self.admit()).waited

    async def admit(self) -> Ticket:
        """Wait for a slot and take it, stamped now; `Ticket.sending()` re-stamps it when the
        request actually leaves (after a wait for a connection slot, say)."""
        started = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._wait_at(now)
                if wait <= 0:
                    bisect.insort(self._stamps, now)
                    return Ticket(self, now, now - started)
                await self._sleep(wait)

    def _restamp(self, old: float) -> float:
        now = self._clock()
        index = bisect.bisect_left(self._stamps, old)
        if index < len(self._stamps) and self._stamps[index] == old:
            del self._stamps[index]
        bisect.insort(self._stamps, now)
        return now

    def _expire(self, now: float) -> None:
        horizon = now - self.period - self.margin
        del self._stamps[: bisect.bisect_right(self._stamps, horizon)]
        del self._foreign[: bisect.bisect_right(self._foreign, now)]

    def _wait_at(self, now: float) -> float:
        if self._paused_until > now:
            return self._paused_until - now
        self._expire(now)
        if len(self._stamps) + len(self._foreign) < self.limit:
            return 0.0
        frees = [self._stamps[0] + self.period + self.margin] if self._stamps else []
        frees += self._foreign[:1]
        return max(0.0, min(frees) - now)

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

    def observe(self, *, used: int, reset: float | None) -> None:
        """The server counted `used` requests in its window when it took one of ours; its
        oldest leaves in `reset` seconds. What it counted beyond our own requests becomes
        placeholder slots, freeing between `reset` and a full period from now (the server says
        only when the first frees). Placeholders are never dropped early: an answer may be
        older than the last one seen, so a lower count proves nothing.

        Every request of ours still holding a slot counts as ours, including ones the server
        may not have counted yet (sent after this one, or still queued for a connection):
        concurrent requests of a walk must never pass for another process's and slow the walk
        down. The price is an undercount of others while ours are in flight, which a 429 and
        the next answer correct.
        """
        now = self._clock()
        self._expire(now)
        ours = len(self._stamps)
        foreign = max(0, min(used, self.limit) - ours)
        # Only ever more: answers arrive out of order, and an older one may count fewer.
        extra = foreign - len(self._foreign)
        if extra <= 0:
            return
        first = now + (self.period if reset is None else min(max(reset, 0.0), self.period))
        last = now + self.period + self.margin
        for k in range(extra):
            bisect.insort(self._foreign, first + (last - first) * k / extra)
        if extra:
            log.info("the server counts %d requests beyond ours in its window", foreign)

    def held(self) -> list[float]:
        """In how many seconds each slot our own requests hold frees: what another process
        must not reuse (`share`). Placeholders are left out: they are other processes'
        requests, which those processes tell themselves. Relative, so that the store can date
        them by the database's clock and no two hosts' clocks need agree."""
        now = self._clock()
        self._expire(now)
        held_for = self.period + self.margin
        return [stamp + held_for - now for stamp in self._stamps]

    def share(self, frees_in: Iterable[float]) -> None:
        """Hold slots other processes took (their `held`, seconds from now) as placeholders.

        Merged as a maximum, not a sum, so the same windows shared again change nothing: with
        both lists latest first, keeping the later of each pair holds, at every moment, as many
        slots as the larger of the two does.
        """
        now = self._clock()
        self._expire(now)
        incoming = sorted((now + t for t in frees_in if t > 0), reverse=True)
        if not incoming:
            return
        known = self._foreign[::-1]
        width = min(max(len(incoming), len(known)), self.limit)
        merged = [
            max(
                incoming[k] if k < len(incoming) else float("-inf"),
                known[k] if k < len(known) else float("-inf"),
            )
            for k in range(width)
        ]
        self._foreign = sorted(merged)
        log.info("holding %d slots other processes took in the window", len(incoming))

    @property
    def in_window(self) -> int:
        """Admissions counted in the current window, placeholders included (tests, metrics)."""
        self._expire(self._clock())
        return len(self._stamps) + len(self._foreign)


class Ticket:
    """One admitted request: re-stamp it with `sending()` right before it leaves and with
    `answered()` when its answer (or failure) is in."""

    __slots__ = ("_limiter", "_stamp", "waited")

    def __init__(self, limiter: RateLimiter, stamped: float, waited: float) -> None:
        self._limiter = limiter
        self._stamp = stamped
        self.waited = waited

    def sending(self) -> None:
        """The request leaves now."""
        self._stamp = self._limiter._restamp(self._stamp)

    def answered(self) -> None:
        """The answer is in: the server counted the request at some moment before now, so its
        slot frees one period (+ margin) from now, never before the server's does, however
        long the request queued or travelled."""
        self._stamp = self._limiter._restamp(self._stamp)


def window_headers(headers: Mapping[str, str]) -> tuple[int | None, int | None, float | None]:
    """(limit, remaining, reset seconds) from GreenLake's `ratelimit-*` or New Central's
    `X-RateLimit-*` headers; None for what an answer does not say (or says in an unknown form)."""

    def number(*names: str) -> float | None:
        for name in names:
            value = headers.get(name)
            if value is None:
                continue
            try:
                parsed = float(value.strip())
            except ValueError:
                return None
            return parsed if math.isfinite(parsed) and parsed >= 0 else None
        return None

    limit = number("ratelimit-limit", "x-ratelimit-limit")
    remaining = number("ratelimit-remaining", "x-ratelimit-remaining")
    reset = number("ratelimit-reset", "x-ratelimit-reset")
    if reset is not None and reset >= _EPOCH_THRESHOLD:  # an epoch timestamp, not seconds
        reset = max(0.0, reset - time.time())
    return (
        None if limit is None else int(limit),
        None if remaining is None else int(remaining),
        reset,
    )


# No sane "seconds until reset" is this large: it is an epoch timestamp (2001-09-09 onwards).
_EPOCH_THRESHOLD = 1_000_000_000


def budget_host(url: str) -> str:
    """The host (and port) a budget key names: budgets are per upstream as well as per
    workspace (a simulator and the real API never share one). Never the URL's userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def slot_margin(period: float) -> float:
    """How long past its period a slot stays taken: the time a request needs to reach the
    server's counter, bounded by a small share of short windows (classic Central's second)."""
    return min(0.25, 0.02 * period)


class RateLimiterRegistry:
    """One limiter per budget key, so every client drawing on a budget shares it.

    Keys name the upstream budget, e.g. f"greenlake:{host}:{workspace_id}:devices": two
    sources (or two schedules) reading devices of the same workspace then pace each other.
    Other processes' windows come in through `share` (store/rate_windows.py keeps them).
    """

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, RateLimiter] = {}
        #: Other processes' slots for budgets not drawn on yet: when they free (our clock).
        self._shared: dict[str, list[float]] = {}
        #: Names this process's windows among those of others (store/rate_windows.py).
        self.writer = secrets.token_hex(8)

    def get(self, key: str, *, limit: int, period: float) -> RateLimiter:
        """The limiter for `key`, created with `limit`/`period` the first time it is asked for.

        Later callers asking for different numbers get the existing limiter (the budget
        is the upstream's, not the caller's); the mismatch is logged.
        """
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = RateLimiter(
                limit, period, margin=slot_margin(period), clock=self._clock, sleep=self._sleep
            )
            self._limiters[key] = limiter
            shared = self._shared.pop(key, None)
            if shared:
                now = self._clock()
                limiter.share(t - now for t in shared)
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

    def held(self) -> dict[str, list[float]]:
        """Per budget, in how many seconds the slots this process's requests hold free; only
        budgets with a slot still held."""
        windows = {key: limiter.held() for key, limiter in self._limiters.items()}
        return {key: frees_in for key, frees_in in windows.items() if frees_in}

    def share(self, windows: Mapping[str, Iterable[float]]) -> None:
        """Hold other processes' slots (their `held`, seconds from now), at once or when the
        budget is first drawn on."""
        now = self._clock()
        for key, frees_in in windows.items():
            limiter = self._limiters.get(key)
            if limiter is not None:
                limiter.share(frees_in)
            else:
                self._shared[key] = [now + t for t in frees_in if t > 0]
