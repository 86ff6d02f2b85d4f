"""RateLimiter and RateLimiterRegistry: never over-admit, share budgets, pause on 429."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from inventory_sync.upstream import RateLimiter, RateLimiterRegistry
from inventory_sync.upstream.ratelimit import window_headers


def most_in_any_window(times: list[float], period: float) -> int:
    """The largest number of `times` inside any half-open window (t - period, t]."""
    ordered = sorted(times)
    return max(sum(1 for s in ordered if t - period < s <= t) for t in ordered)


async def test_never_admits_more_than_limit_per_period_under_50_concurrent_acquirers(
    clock: Any,
) -> None:
    limiter = RateLimiter(10, 60, clock=clock, sleep=clock.sleep)
    admitted: list[float] = []

    async def acquirer() -> float:
        waited = await limiter.acquire()
        admitted.append(clock())
        return waited

    started = clock()
    waits = await asyncio.gather(*(acquirer() for _ in range(50)))
    assert len(admitted) == 50
    assert most_in_any_window(admitted, 60) == 10
    # 50 at 10 per minute: windows at 0, 60, 120, 180 and 240 seconds.
    assert clock() - started == pytest.approx(240)
    assert sorted(waits)[:10] == [0.0] * 10
    assert max(waits) == pytest.approx(240)


async def test_a_slot_frees_exactly_one_period_after_its_admission(clock: Any) -> None:
    limiter = RateLimiter(2, 10, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    clock.now += 4
    await limiter.acquire()
    assert await limiter.acquire() == pytest.approx(6)  # the first slot frees at t+10
    assert await limiter.acquire() == pytest.approx(4)  # the second at t+14


async def test_pause_for_holds_back_every_acquirer(clock: Any) -> None:
    limiter = RateLimiter(100, 60, clock=clock, sleep=clock.sleep)
    limiter.pause_for(7)
    limiter.pause_for(2)  # a shorter pause never cuts a longer one short
    waits = await asyncio.gather(*(limiter.acquire() for _ in range(3)))
    assert waits == [pytest.approx(7)] * 3


def test_registry_hands_out_one_limiter_per_key() -> None:
    registry = RateLimiterRegistry()
    devices = registry.get("greenlake:ws-1:devices", limit=160, period=60)
    assert registry.get("greenlake:ws-1:devices", limit=160, period=60) is devices
    assert registry.get("greenlake:ws-2:devices", limit=160, period=60) is not devices
    assert registry.get("greenlake:ws-1:subscriptions", limit=60, period=60) is not devices


def test_registry_keeps_the_first_budget_when_asked_for_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = RateLimiterRegistry()
    first = registry.get("central:ws-1", limit=600, period=60)
    again = registry.get("central:ws-1", limit=10, period=60)
    assert again is first
    assert again.limit == 600
    assert "already exists" in caplog.text


def test_rejects_a_nonsense_budget() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0, 60)
    with pytest.raises(ValueError, match="period"):
        RateLimiter(1, 0)


async def test_a_slot_frees_one_period_after_the_answer_came_not_when_it_was_admitted(
    clock: Any,
) -> None:
    limiter = RateLimiter(1, 10, clock=clock, sleep=clock.sleep)
    ticket = await limiter.admit()
    clock.now += 3  # waited 3 s for a connection slot before it was sent
    ticket.sending()
    clock.now += 2  # the answer took 2 s: the server counted it somewhen in between
    ticket.answered()
    assert await limiter.acquire() == pytest.approx(10)


async def test_the_margin_holds_each_slot_a_little_past_the_period(clock: Any) -> None:
    limiter = RateLimiter(1, 60, margin=0.25, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    assert await limiter.acquire() == pytest.approx(60.25)


async def test_a_fresh_limiter_learns_what_the_server_already_counted(clock: Any) -> None:
    """Back-to-back processes: the first answer says 150 of 160 are spent; this process has sent
    one of them. The rest wait for the slots the server frees, the first after its reset."""
    limiter = RateLimiter(160, 60, clock=clock, sleep=clock.sleep)
    await limiter.admit()
    limiter.observe(used=150, reset=12)
    assert limiter.in_window == 150
    waits = [await limiter.acquire() for _ in range(11)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(12)


async def test_placeholders_stay_until_they_expire_whatever_a_later_answer_says(
    clock: Any,
) -> None:
    limiter = RateLimiter(10, 60, clock=clock, sleep=clock.sleep)
    await limiter.admit()
    limiter.observe(used=9, reset=30)
    assert limiter.in_window == 9
    await limiter.admit()
    limiter.observe(used=3, reset=30)  # maybe an older answer
    assert limiter.in_window == 10  # our 2 + the 8 placeholders
    clock.now += 61
    assert limiter.in_window == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"ratelimit-limit": "160", "ratelimit-remaining": "7", "ratelimit-reset": "12"},
            (160, 7, 12.0),
            id="GreenLake ratelimit-*",
        ),
        pytest.param(
            {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "599", "X-RateLimit-Reset": "1"},
            (600, 599, 1.0),
            id="New Central X-RateLimit-*",
        ),
        pytest.param({"ratelimit-remaining": "soon"}, (None, None, None), id="garbage ignored"),
        pytest.param({}, (None, None, None), id="no headers"),
    ],
)
def test_window_headers_of_both_families(
    headers: dict[str, str], expected: tuple[int | None, int | None, float | None]
) -> None:
    assert window_headers(httpx.Headers(headers)) == expected


async def test_a_process_holds_the_slots_another_process_handed_out(clock: Any) -> None:
    """The first process spent 3 of 3 slots 20, 10 and 0 s ago; a second one that takes them in
    waits until the oldest frees, 40 s from now, instead of sending into a spent window."""
    first = RateLimiter(3, 60, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await first.acquire()
        clock.now += 10
    clock.now -= 10
    held = first.held()
    assert held == [pytest.approx(40), pytest.approx(50), pytest.approx(60)]

    second = RateLimiter(3, 60, clock=clock, sleep=clock.sleep)
    second.share(held)
    assert second.in_window == 3
    assert await second.acquire() == pytest.approx(40)
    assert second.held() == [pytest.approx(60)]  # only its own request: placeholders stay out


async def test_sharing_the_same_window_twice_holds_it_once(clock: Any) -> None:
    limiter = RateLimiter(10, 60, clock=clock, sleep=clock.sleep)
    limiter.share([5, 30, 59])
    limiter.share([5, 30, 59])
    assert limiter.in_window == 3
    limiter.share([45])  # a smaller window never frees what a larger one holds
    assert limiter.in_window == 3
    limiter.share([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])  # never more than the limit
    assert limiter.in_window == 10
    clock.now += 20
    assert limiter.in_window == 2  # the slots freeing at 30 and 59 s outlive the others


async def test_the_registry_holds_shared_slots_for_budgets_not_drawn_on_yet(clock: Any) -> None:
    registry = RateLimiterRegistry(clock=clock, sleep=clock.sleep)
    registry.share({"greenlake:sim:ws-1:devices": [30, 30], "central:sim:ws-1": [-1]})
    clock.now += 10
    devices = registry.get("greenlake:sim:ws-1:devices", limit=2, period=60)
    assert devices.in_window == 2
    assert await devices.acquire() == pytest.approx(20)  # they free 30 s after they were shared
    assert registry.get("central:sim:ws-1", limit=2, period=60).in_window == 0
    # Its own request holds its slot a period and the margin (slot_margin: 0.25 s) from now.
    assert registry.held() == {"greenlake:sim:ws-1:devices": [pytest.approx(60.25)]}


async def test_a_walks_own_concurrent_requests_never_pass_for_another_processes(
    clock: Any,
) -> None:
    """Five pages sent together, answered one after the other, each answer counting the ones the
    server took before it: all five are ours, so nothing is held for anybody else (a walk of a
    whole window's pages once waited a full period for such phantoms)."""
    limiter = RateLimiter(6, 60, clock=clock, sleep=clock.sleep)
    tickets = [await limiter.admit() for _ in range(5)]
    for ticket in tickets:
        ticket.sending()
    clock.now += 0.5
    for used, ticket in enumerate(tickets, start=1):
        clock.now += 0.1
        ticket.answered()
        limiter.observe(used=used, reset=59)
    assert limiter.in_window == 5
    assert await limiter.acquire() == 0.0
