"""Sliding windows, concurrency caps, fault-rule selection and the fault-kind registry."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from pydantic import ValidationError

from inventory_sync.simulator.admission import wait_until
from inventory_sync.simulator.faults import FAULT_KINDS, Fault, FaultPlan, FaultRule, fault_kind
from inventory_sync.simulator.ratelimit import (
    ConcurrencyGauge,
    SlidingWindowLimiter,
    TooManyInFlight,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_refuses_beyond_the_limit_and_frees_slots_as_time_passes() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(window=60, clock=clock)
    quotas = []
    for _ in range(3):
        quotas.append(limiter.hit("ws", 3))
        clock.now += 10
    assert [q.remaining for q in quotas] == [2, 1, 0]
    refused = limiter.hit("ws", 3)
    assert not refused.allowed
    assert refused.headers() == {
        "ratelimit-limit": "3",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "30",  # the first hit, at t=0, leaves the window at t=60
    }
    clock.now += 30
    assert limiter.hit("ws", 3).allowed
    assert limiter.hit("other", 3).remaining == 2  # windows are per key


def test_unlimited_family_has_no_headers() -> None:
    quota = SlidingWindowLimiter(window=60).hit("ws", None)
    assert quota.allowed
    assert quota.headers() == {}


def test_concurrency_gauge_caps_in_flight_requests_and_remembers_the_peak() -> None:
    gauge = ConcurrencyGauge(limit=2)
    with gauge.slot("c"), gauge.slot("c"):
        with pytest.raises(TooManyInFlight), gauge.slot("c"):
            pass
        with gauge.slot("other"):
            pass
    with gauge.slot("c"):
        pass
    assert gauge.peaks() == {"c": 3, "other": 1}


def rule(**fields: object) -> FaultRule:
    return FaultRule.model_validate({"kind": "status", **fields})


def fired(
    plan: FaultPlan, n: int, *, path: str = "/devices/v1/devices", family: str = "glp_devices"
) -> list[bool]:
    return [plan.choose(path=path, family=family, workspace="ws") is not None for _ in range(n)]


def test_rule_passes_after_requests_then_fires_count_times() -> None:
    plan = FaultPlan([rule(after=2, count=3)], seed=1)
    assert fired(plan, 7) == [False, False, True, True, True, False, False]
    assert plan.report()[0]["matched"] == 7
    assert plan.report()[0]["fired"] == 3


def test_rules_match_on_route_family_and_workspace() -> None:
    plan = FaultPlan(
        [
            rule(route="/subscriptions/*", count=None),
            rule(family="central", workspace="ws", count=None),
        ],
        seed=1,
    )
    assert fired(plan, 2) == [False, False]
    assert fired(plan, 1, path="/subscriptions/v1/subscriptions", family="glp_subscriptions") == [
        True
    ]
    assert fired(plan, 1, path="/network-monitoring/v1alpha1/devices", family="central") == [True]


def test_probability_is_drawn_from_the_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        return fired(FaultPlan([rule(count=None, probability=0.3)], seed=seed), 200)

    assert pattern(5) == pattern(5)
    assert 30 < sum(pattern(5)) < 90


def test_unknown_fault_kind_is_rejected_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="partial_page"):
        FaultRule.model_validate({"kind": "gremlins"})


def test_new_fault_kinds_register_with_one_function() -> None:
    @fault_kind("teapot")
    async def teapot(fault: Fault) -> web.StreamResponse:
        return web.Response(status=418)

    try:
        assert FaultRule.model_validate({"kind": "teapot"}).kind == "teapot"
    finally:
        del FAULT_KINDS["teapot"]


async def test_latency_counts_from_admission_so_the_servers_own_work_is_part_of_it() -> None:
    loop = asyncio.get_running_loop()
    admitted = loop.time()
    await asyncio.sleep(0.05)  # the handler's own work: building and encoding the page
    await wait_until(admitted + 0.2)
    answered = loop.time()
    assert answered >= admitted + 0.2
    # A deadline already passed (work slower than the model) adds no wait at all.
    await wait_until(admitted)
    assert loop.time() - answered < 0.05
