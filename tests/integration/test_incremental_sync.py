"""Incremental GreenLake sync against the simulator's change injection and a real PostgreSQL:
updates, inserts and deletes between runs, and stamps off the server's clock (clock skew)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from inventory_sync.models import SyncScheduleSpec
from inventory_sync.results import RunResult
from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.syncing import greenlake_source
from inventory_sync.syncing.incremental import CLOCK_SKEW_ALLOWANCE
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession

from .conftest import WORKSPACE, schedule_spec, secrets_for

pytestmark = pytest.mark.integration


@dataclass
class Bench:
    simulator: ThreadedSimulator
    pool: asyncpg.Pool
    session: UpstreamSession
    spec: SyncScheduleSpec

    async def run(self, clock: Callable[[], datetime] | None = None) -> RunResult:
        result = await run_sync(
            self.spec,
            pool=self.pool,
            session=self.session,
            secrets=secrets_for(self.simulator),
            namespace="default",
            trigger="test",
            **({"clock": clock} if clock else {}),
        )
        assert result.succeeded, result.message
        return result

    async def live(self, device_id: str) -> bool | None:
        """Whether the stored row is live (None: never stored)."""
        return await self.pool.fetchval(
            "SELECT deleted_at IS NULL FROM glp_devices WHERE workspace_id = $1 AND id = $2",
            WORKSPACE,
            device_id,
        )


@pytest.fixture
def simulator() -> Iterator[ThreadedSimulator]:
    with start_in_thread(SimulatorConfig.small(scale=0.01)) as started:
        yield started


@pytest.fixture
async def bench(simulator: ThreadedSimulator, pool: asyncpg.Pool) -> AsyncIterator[Bench]:
    full = schedule_spec(simulator)
    spec = full.model_copy(update={"sources": [s for s in full.sources if s.greenlake]})
    session = UpstreamSession()
    try:
        yield Bench(simulator, pool, session, spec)
    finally:
        await session.aclose()


def later(hours: float) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + timedelta(hours=hours)


async def test_updates_and_inserts_between_runs_are_merged_from_the_changes_alone(
    bench: Bench,
) -> None:
    workspace = bench.simulator.state.workspace()
    first = await bench.run()
    assert first.source("devices").mode == "full"
    ids = [d["id"] for d in workspace.glp_devices()[:3]]
    workspace.touch_glp_devices(ids[:2])
    # A node whose clock lags by less than the allowance: still caught by the overlap.
    lag = -(CLOCK_SKEW_ALLOWANCE.total_seconds() / 2)
    workspace.touch_glp_devices(ids[2:], skew_seconds=lag)
    added = workspace.add_glp_devices(2)

    second = (await bench.run()).source("devices")

    assert (second.mode, second.deleted) == ("incremental", 0)
    assert (second.updated, second.inserted) == (3, 2)
    assert second.requests <= 3  # the changes (one page), the count check
    rows = await bench.pool.fetch(
        "SELECT id, data->'tags'->>'simulatorTouch' AS touch FROM glp_devices WHERE id = ANY($1)",
        ids + added,
    )
    assert {r["id"] for r in rows if r["touch"]} == set(ids)
    assert {r["id"] for r in rows} == set(ids + added)


async def test_a_deletion_fails_the_count_check_and_the_same_run_walks_fully(
    bench: Bench,
) -> None:
    workspace = bench.simulator.state.workspace()
    await bench.run()
    gone = workspace.delete_glp_devices([d["id"] for d in workspace.glp_devices()[5:7]])

    devices = (await bench.run()).source("devices")

    assert devices.mode == "full"
    assert devices.mode_reason is not None
    assert devices.mode_reason.startswith("count check")
    assert devices.deleted == 2
    assert [await bench.live(i) for i in gone] == [False, False]
    third = (await bench.run()).source("devices")  # and then incremental again
    assert (third.mode, third.rows_written) == ("incremental", 0)


async def test_a_deletion_hidden_from_the_count_is_soft_deleted_by_the_next_full_walk(
    bench: Bench,
) -> None:
    """The case incremental sync cannot see: a device deleted while another arrives stamped
    further behind the mark than the allowance. The count balances, so the run stays
    incremental and misses both; the next full walk (fullSyncInterval 24h) catches both."""
    workspace = bench.simulator.state.workspace()
    workspace.touch_glp_devices([workspace.glp_devices()[0]["id"]])  # the mark: about now
    await bench.run()
    (gone,) = workspace.delete_glp_devices([workspace.glp_devices()[9]["id"]])
    late = CLOCK_SKEW_ALLOWANCE + timedelta(hours=1)
    (hidden,) = workspace.add_glp_devices(1, skew_seconds=-late.total_seconds())

    incremental = (await bench.run()).source("devices")
    assert (incremental.mode, incremental.rows_written) == ("incremental", 0)
    assert await bench.live(gone) is True  # missed, as documented
    assert await bench.live(hidden) is None

    full = (await bench.run(later(25))).source("devices")
    assert full.mode == "full"
    assert full.mode_reason == "fullSyncInterval 24h elapsed"
    assert (full.deleted, full.inserted) == (1, 1)
    assert await bench.live(gone) is False
    assert await bench.live(hidden) is True


async def test_full_sync_interval_zero_walks_everything_every_run(bench: Bench) -> None:
    sources = [
        s.model_copy(
            update={
                "greenlake": s.greenlake.model_copy(update={"full_sync_interval": timedelta(0)})
            }
        )
        if s.greenlake
        else s
        for s in bench.spec.sources
    ]
    bench.spec = bench.spec.model_copy(update={"sources": sources})
    await bench.run()
    devices = (await bench.run()).source("devices")
    assert devices.mode == "full"
    assert devices.unchanged == bench.simulator.state.workspace().counts()["glp_devices"]


@pytest.fixture
def many_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat every absence as 'many' (at scale: over 10 % of the walk's requests by id)."""
    monkeypatch.setattr(greenlake_source, "BY_ID_SHARE", 0.0)
    monkeypatch.setattr(greenlake_source, "BY_ID_MINIMUM", 0)


@pytest.mark.usefixtures("many_missing")
async def test_many_absences_from_a_list_that_did_not_move_cost_two_requests(
    bench: Bench,
) -> None:
    workspace = bench.simulator.state.workspace()
    await bench.run()
    gone = workspace.delete_glp_devices([d["id"] for d in workspace.glp_devices()[::10]])
    by_id = bench.simulator.state.stats.count("GET /devices/v1/devices")

    devices = (await bench.run()).source("devices")

    assert devices.deleted == len(gone)
    # The incremental try (changes, count), the full walk (the first 100, then the rest), then
    # the proof: the total unchanged since the walk, and nothing changed since it began.
    assert devices.requests == 2 + 2 + 2
    assert bench.simulator.state.stats.count("GET /devices/v1/devices") - by_id == 6


@pytest.mark.usefixtures("many_missing")
async def test_absences_from_a_busy_list_are_confirmed_by_id_before_deleting(
    bench: Bench,
) -> None:
    workspace = bench.simulator.state.workspace()
    await bench.run()
    gone = workspace.delete_glp_devices([d["id"] for d in workspace.glp_devices()[::10]])
    workspace.touch_glp_devices([workspace.glp_devices()[1]["id"]])  # the list is not quiet

    devices = (await bench.run()).source("devices")

    assert devices.deleted == len(gone)
    assert devices.updated == 1
    assert devices.requests == 2 + 2 + 2 + 1  # ... the proof fails: the ids, one request
