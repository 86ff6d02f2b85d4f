"""Classic Central's two account quotas: calls per second (sliding) and per day (reset at 00:00 UTC)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from inventory_sync.simulator.config import RateLimitConfig
from inventory_sync.simulator.ratelimit import Clock, SlidingWindowLimiter

#: What the X-RateLimit-* headers report for a limit the configuration leaves unset: the real
#: gateway sends the headers on every answer (clients read them unconditionally), so an
#: "unlimited" simulator still sends them, with a number no walk reaches.
UNLIMITED = 2**31 - 1


@dataclass(frozen=True)
class ClassicQuota:
    """One call against an account's per-second and per-day windows, and its headers."""

    allowed: bool
    exhausted: str | None  # "second" or "day" when refused
    retry_after: int
    headers: dict[str, str]


class ClassicQuotas:
    """Every classic account's calls this second and today.

    The daily quota is a fixed window that resets at GMT midnight (the vendor's usage guide),
    read from `wall_clock`; the per-second one slides over `clock`.
    """

    def __init__(
        self, limits: RateLimitConfig, *, clock: Clock, wall_clock: Clock = time.time
    ) -> None:
        self._limits = limits
        self._wall_clock = wall_clock
        self._per_second = SlidingWindowLimiter(window=1.0, clock=clock)
        self._days: dict[str, tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def hit(self, customer_id: str, *, record: bool = True) -> ClassicQuota:
        """Count one call of `customer_id` if both windows have room (a refused one is not
        counted); the X-RateLimit-* headers describe the windows after it."""
        per_second, per_day = self._limits.classic_per_second, self._limits.classic_per_day
        with self._lock:
            second = self._per_second.hit(customer_id, per_second, record=False)
            today, used = self._today(customer_id)
            day_allowed = per_day is None or used < per_day
            allowed = second.allowed and day_allowed
            if allowed and record:
                second = self._per_second.hit(customer_id, per_second)
                used += 1
                self._days[customer_id] = (today, used)
        until_midnight = today + timedelta(days=1) - self._now()
        day_reset = max(1, math.ceil(until_midnight.total_seconds()))
        day_limit = UNLIMITED if per_day is None else per_day
        second_limit = UNLIMITED if second.limit is None else second.limit
        # Unlimited: the sliding window kept no count, so report the calls seen as none.
        second_remaining = UNLIMITED if second.limit is None else second.remaining
        headers = {
            "X-RateLimit-Limit-day": str(day_limit),
            "X-RateLimit-Remaining-day": str(max(0, day_limit - used)),
            "X-RateLimit-Limit-second": str(second_limit),
            "X-RateLimit-Remaining-second": str(max(0, second_remaining)),
        }
        exhausted, retry_after = None, 0
        if not day_allowed:
            exhausted, retry_after = "day", day_reset
        elif not second.allowed:
            exhausted, retry_after = "second", second.reset_seconds
        return ClassicQuota(allowed, exhausted, retry_after, headers)

    def clear(self) -> None:
        """Forget every call counted."""
        with self._lock:
            self._per_second.clear()
            self._days.clear()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), UTC)

    def _today(self, customer_id: str) -> tuple[datetime, int]:
        """The start of today (UTC) and the calls counted since; yesterday's count is gone."""
        now = self._now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        day, used = self._days.get(customer_id, (today, 0))
        return (today, used) if day == today else (today, 0)
