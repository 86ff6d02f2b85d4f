"""The operator's background loop: a step at start, again when woken, soon after a failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from inventory_sync.errors import StoreError
from inventory_sync.operating.periodic import PeriodicTask

HOUR = timedelta(hours=1)


async def test_it_steps_at_start_and_again_when_woken_not_before() -> None:
    steps: asyncio.Queue[str] = asyncio.Queue()

    async def step() -> None:
        steps.put_nowait("step")

    loop = PeriodicTask(step, name="t", every=HOUR, retry_after=HOUR)
    loop.start()
    try:
        await asyncio.wait_for(steps.get(), 2)
        await asyncio.sleep(0.05)
        assert steps.empty()  # the period is an hour
        loop.wake()
        await asyncio.wait_for(steps.get(), 2)
    finally:
        await loop.stop()


async def test_a_failure_of_ours_or_a_bug_retries_sooner_and_never_ends_the_loop() -> None:
    failures: list[Exception] = [StoreError("database away"), RuntimeError("bug")]
    passes: asyncio.Queue[str] = asyncio.Queue()

    async def step() -> None:
        if failures:
            passes.put_nowait("failed")
            raise failures.pop(0)
        passes.put_nowait("ok")

    loop = PeriodicTask(step, name="t", every=HOUR, retry_after=timedelta(milliseconds=10))
    loop.start()
    try:
        seen = [await asyncio.wait_for(passes.get(), 2) for _ in range(3)]
    finally:
        await loop.stop()
    assert seen == ["failed", "failed", "ok"]
