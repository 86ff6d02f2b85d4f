"""Classic Central through the real pipeline: every device stored, the rotated refresh token
written back (and what happens when it cannot be), both account quotas honoured."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from inventory_sync.models import SyncScheduleSpec, parse_sync_schedule_spec
from inventory_sync.results import RunResult, SourceState
from inventory_sync.simulator import (
    DatasetSize,
    LatencyConfig,
    RateLimitConfig,
    SimulatorConfig,
    ThreadedSimulator,
    WorkspaceConfig,
    start_in_thread,
)
from inventory_sync.store import inspection
from inventory_sync.syncing.credentials import SecretReader, StaticSecrets
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

pytestmark = pytest.mark.integration

ACCOUNT = "demo-classic-customer"
SECRET = "classic-credentials"
FIRST_REFRESH = "demo-classic-refresh-0"
CLIENT_SECRET = "demo-classic-secret-not-real"
DEVICES = "GET /platform/device_inventory/v1/devices"
TOKEN = "POST /oauth2/token"
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)
#: 230 devices: four full pages of 50 and a short one.
SIZE = DatasetSize().scaled(0.01).model_copy(update={"classic_devices": 230})


def config(**overrides: Any) -> SimulatorConfig:
    fields: dict[str, Any] = {
        "workspaces": [WorkspaceConfig(dataset=SIZE)],
        "latency": LatencyConfig.none(),
        **overrides,
    }
    return SimulatorConfig.model_validate(fields)


@pytest.fixture
def sim() -> Iterator[ThreadedSimulator]:
    with start_in_thread(config()) as simulator:
        yield simulator


class WritableSecrets(StaticSecrets):
    """In-memory Secrets that also take writes, like the operator's KubeSecrets."""

    def __init__(self, data: dict[str, str]) -> None:
        super().__init__({("default", SECRET): data})
        self.writes: list[tuple[str, str, str, str]] = []
        self.fail_with: Exception | None = None

    async def write(self, namespace: str, name: str, key: str, value: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.writes.append((namespace, name, key, value))
        current = await self.read(namespace, name) or {}
        self.add(namespace, name, {**current, key: value})


def secrets(refresh_token: str = FIRST_REFRESH) -> WritableSecrets:
    return WritableSecrets(
        {
            "client_id": "demo-classic-client",
            "client_secret": CLIENT_SECRET,
            "refresh_token": refresh_token,
        }
    )


def spec(sim: ThreadedSimulator) -> SyncScheduleSpec:
    # No tokenUrl: the default is the gateway's own /oauth2/token.
    source = {"endpoint": sim.url, "accountId": ACCOUNT, "credentialsSecretRef": {"name": SECRET}}
    return parse_sync_schedule_spec(
        {"interval": "15m", "sources": [{"name": "classic", "arubaCentralClassic": source}]}
    )


async def run(
    pool: asyncpg.Pool, sim: ThreadedSimulator, session: UpstreamSession, reader: SecretReader
) -> RunResult:
    return await run_sync(
        spec(sim), pool=pool, session=session, secrets=reader, namespace="default", trigger="test"
    )


def live_refresh_token(sim: ThreadedSimulator) -> str:
    return sim.state.classic.account().refresh_token


def refresh_with(sim: ThreadedSimulator, token: str) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": "demo-classic-client",
        "client_secret": CLIENT_SECRET,
        "refresh_token": token,
    }
    return httpx.post(f"{sim.url}/oauth2/token", data=form)


async def stored_serials(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT id FROM central_classic_devices WHERE account_id = $1 AND deleted_at IS NULL"
        " ORDER BY id",
        ACCOUNT,
    )
    return [row["id"] for row in rows]


async def test_a_classic_source_stores_every_device_and_a_second_run_writes_nothing(
    pool: asyncpg.Pool, sim: ThreadedSimulator
) -> None:
    reader = secrets()
    session = UpstreamSession(policy=FAST)
    try:
        first = await run(pool, sim, session, reader)
        marker = await inspection.write_marker(pool)
        second = await run(pool, sim, session, reader)
    finally:
        await session.aclose()

    assert first.succeeded, first.message
    outcome = first.source("classic")
    assert (outcome.kind, outcome.fetched, outcome.inserted) == ("arubaCentralClassic", 230, 230)
    upstream = sim.state.classic.account().devices()
    assert await stored_serials(pool) == sorted(d["serial"] for d in upstream)
    row = await pool.fetchrow(
        "SELECT * FROM central_classic_devices_current WHERE id = $1", upstream[0]["serial"]
    )
    assert row is not None
    assert row["serial_number"] == upstream[0]["serial"]
    assert row["part_number"] == upstream[0]["aruba_part_no"]
    assert row["mac_address"] == upstream[0]["macaddr"]
    assert row["device_type"] in {"iap", "switch", "gateway"}
    assert row["last_seen"] == second.started_at  # the account's last complete fetch

    assert second.succeeded, second.message
    assert second.source("classic").unchanged == 230
    assert await inspection.rows_written_since(pool, marker) == 0
    # The session kept the access token: one refresh (one rotation) for both runs.
    assert sim.state.classic.account().rotations == 1


async def test_the_rotated_token_is_written_back_and_a_restart_works_with_it(
    pool: asyncpg.Pool, sim: ThreadedSimulator
) -> None:
    reader = secrets()
    for _ in range(2):  # two "processes": a restart is a new session and pipeline
        session = UpstreamSession(policy=FAST)
        try:
            result = await run(pool, sim, session, reader)
        finally:
            await session.aclose()
        assert result.succeeded, result.message

    assert [w[:3] for w in reader.writes] == [("default", SECRET, "refresh_token")] * 2
    assert reader.writes[-1][3] == live_refresh_token(sim)
    assert (await reader.read("default", SECRET) or {})["refresh_token"] == live_refresh_token(sim)
    # The tokens the runs started from are spent: a client that kept them has lost access.
    for spent in (FIRST_REFRESH, reader.writes[0][3]):
        answer = refresh_with(sim, spent)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


async def test_a_restart_with_the_old_token_is_refused_upstream(
    pool: asyncpg.Pool, sim: ThreadedSimulator
) -> None:
    session = UpstreamSession(policy=FAST)
    try:
        assert (await run(pool, sim, session, secrets())).succeeded
    finally:
        await session.aclose()

    session = UpstreamSession(policy=FAST)
    try:
        stale = await run(pool, sim, session, secrets(FIRST_REFRESH))  # never saved
    finally:
        await session.aclose()

    outcome = stale.source("classic")
    assert outcome.state is SourceState.FAILED
    assert "invalid_grant" in (outcome.message or "")
    assert "already used or revoked" in (outcome.message or "")


async def test_a_token_that_cannot_be_saved_fails_the_source_clearly_and_leaks_nothing(
    pool: asyncpg.Pool, sim: ThreadedSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = secrets()
    reader.fail_with = OSError(28, "No space left on device")
    session = UpstreamSession(policy=FAST)
    try:
        failed = await run(pool, sim, session, reader)
        rotated = live_refresh_token(sim)
        reader.fail_with = None  # the disk has room again; same process, next run
        recovered = await run(pool, sim, session, reader)
    finally:
        await session.aclose()

    outcome = failed.source("classic")
    message = outcome.message or ""
    assert outcome.state is SourceState.FAILED
    assert "rotated refresh token could not be persisted" in message
    assert "a restart would lose access" in message
    assert f"Secret default/{SECRET} key 'refresh_token' not written" in message
    assert "No space left on device" in message
    for text in (message, failed.message or "", caplog.text):
        for secret in (FIRST_REFRESH, rotated, CLIENT_SECRET):
            assert secret not in text
    # The failed run fetched nothing: no access token is used before its refresh token is saved.
    assert outcome.fetched == 0

    # The provider kept the rotated token in memory and saved it first on the next run.
    assert recovered.succeeded, recovered.message
    assert reader.writes == [("default", SECRET, "refresh_token", rotated)]
    assert sim.state.classic.account().rotations == 1


async def test_secrets_that_cannot_be_written_fail_the_source_before_spending_the_token(
    pool: asyncpg.Pool, sim: ThreadedSimulator
) -> None:
    read_only = StaticSecrets(
        {
            ("default", SECRET): {
                "client_id": "demo-classic-client",
                "client_secret": CLIENT_SECRET,
                "refresh_token": FIRST_REFRESH,
            }
        }
    )
    session = UpstreamSession(policy=FAST)
    try:
        result = await run(pool, sim, session, read_only)
    finally:
        await session.aclose()

    outcome = result.source("classic")
    assert outcome.state is SourceState.FAILED
    assert "read-only" in (outcome.message or "")
    assert sim.state.stats.count(TOKEN) == 0
    assert refresh_with(sim, FIRST_REFRESH).status_code == 200  # still unspent


async def test_an_expired_access_token_mid_session_is_refreshed_and_the_rotation_saved(
    pool: asyncpg.Pool, sim: ThreadedSimulator
) -> None:
    reader = secrets()
    session = UpstreamSession(policy=FAST)
    try:
        assert (await run(pool, sim, session, reader)).succeeded
        sim.state.classic.expire_all()
        result = await run(pool, sim, session, reader)
    finally:
        await session.aclose()

    assert result.succeeded, result.message
    assert sim.state.stats.count(DEVICES, 401) == 1
    assert len(reader.writes) == 2
    assert reader.writes[-1][3] == live_refresh_token(sim)


async def test_a_device_removed_upstream_is_soft_deleted(
    pool: asyncpg.Pool, sim: ThreadedSimulator
) -> None:
    reader = secrets()
    session = UpstreamSession(policy=FAST)
    try:
        await run(pool, sim, session, reader)
        gone = sim.state.classic.account().devices()[7]["serial"]
        sim.state.classic.account().delete_devices([gone])
        result = await run(pool, sim, session, reader)
    finally:
        await session.aclose()

    assert result.source("classic").deleted == 1
    assert gone not in await stored_serials(pool)
    assert len(await stored_serials(pool)) == 229


async def test_429s_from_the_per_second_budget_are_retried(pool: asyncpg.Pool) -> None:
    # The server allows 2 calls a second; the client's own pacing assumes the default 7.
    limits = RateLimitConfig(classic_per_second=2)
    patient = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=1.5)
    with start_in_thread(config(rate_limits=limits)) as sim:
        session = UpstreamSession(policy=patient)
        try:
            result = await run(pool, sim, session, secrets())
        finally:
            await session.aclose()
        refused = sim.state.stats.count(DEVICES, 429)

    outcome = result.source("classic")
    assert result.succeeded, result.message
    assert outcome.fetched == outcome.inserted == 230
    assert refused > 0
    assert outcome.retries >= refused


async def test_a_walk_the_daily_quota_cannot_cover_stops_after_the_first_call(
    pool: asyncpg.Pool,
) -> None:
    with start_in_thread(config(rate_limits=RateLimitConfig(classic_per_day=3))) as sim:
        session = UpstreamSession(policy=FAST)
        try:
            result = await run(pool, sim, session, secrets())
        finally:
            await session.aclose()
        calls, refused = sim.state.stats.count(DEVICES), sim.state.stats.count(DEVICES, 429)

    outcome = result.source("classic")
    assert outcome.state is SourceState.FAILED
    assert "needs 4 more calls" in (outcome.message or "")
    assert "has 2 left" in (outcome.message or "")
    assert (calls, refused) == (1, 0)
    assert await stored_serials(pool) == []


async def test_a_day_spent_by_another_client_fails_at_once_without_retries(
    pool: asyncpg.Pool,
) -> None:
    with start_in_thread(config(rate_limits=RateLimitConfig(classic_per_day=5))) as sim:
        for _ in range(5):  # someone else on the account used today's calls
            sim.state.classic.hit(ACCOUNT)
        session = UpstreamSession(policy=FAST)
        try:
            result = await run(pool, sim, session, secrets())
        finally:
            await session.aclose()
        calls = sim.state.stats.count(DEVICES)

    outcome = result.source("classic")
    assert outcome.state is SourceState.FAILED
    assert "daily API quota is used up" in (outcome.message or "")
    assert calls == 1
