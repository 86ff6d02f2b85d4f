"""Classic Central in the simulator: its generated inventory, rotating refresh tokens, quotas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inventory_sync.simulator.classic_account import (
    CLASSIC_DEVICE_FIELDS,
    ClassicCentral,
    ClassicTokenRefused,
    generate_classic_devices,
)
from inventory_sync.simulator.classic_quota import UNLIMITED
from inventory_sync.simulator.config import (
    ClassicAccountConfig,
    DatasetSize,
    RateLimitConfig,
    SimulatorConfig,
    WorkspaceConfig,
)
from inventory_sync.simulator.dataset import generate_workspace

SIZE = DatasetSize().scaled(0.02)  # 100 classic devices, 180 New Central ones


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def classic(clock: FakeClock, **limits: int | None) -> ClassicCentral:
    config = SimulatorConfig(
        workspaces=[WorkspaceConfig(dataset=SIZE)],
        rate_limits=RateLimitConfig.model_validate(limits),
    )
    return ClassicCentral(config, clock=clock)


def refresh(central: ClassicCentral, token: str) -> tuple[str, str]:
    return central.refresh("demo-classic-client", "demo-classic-secret-not-real", token)


def test_the_inventory_has_the_classic_fields_and_shares_serials_with_new_central() -> None:
    config = WorkspaceConfig(dataset=SIZE)
    devices = generate_classic_devices(config, seed=7)
    central = {d["serialNumber"] for d in generate_workspace(config, seed=7).central_devices}

    assert len(devices) == SIZE.classic_devices == 100
    assert all(set(d) == CLASSIC_DEVICE_FIELDS for d in devices)
    assert len({d["serial"] for d in devices}) == 100
    assert sum(d["serial"] in central for d in devices) == 90  # classic_overlap_share 0.9
    assert {d["device_type"] for d in devices} <= {"iap", "switch", "gateway"}
    assert {d["customer_id"] for d in devices} == {"demo-classic-customer"}
    assert generate_classic_devices(config, seed=7) == devices  # deterministic


def test_the_overlap_is_capped_by_the_new_central_devices_there_are() -> None:
    size = DatasetSize(central_devices=10, central_overlap=5, classic_devices=30)
    config = WorkspaceConfig(dataset=size)
    central = {d["serialNumber"] for d in generate_workspace(config, seed=1).central_devices}

    devices = generate_classic_devices(config, seed=1)

    assert sum(d["serial"] in central for d in devices) == 10
    assert len({d["serial"] for d in devices}) == 30


def test_scaling_keeps_the_classic_share() -> None:
    assert DatasetSize().classic_devices == 5000
    assert DatasetSize().scaled(0.01).classic_devices == 50


def test_each_refresh_rotates_and_the_used_token_is_refused() -> None:
    central = classic(FakeClock())

    access, rotated = refresh(central, "demo-classic-refresh-0")

    assert rotated != "demo-classic-refresh-0"
    assert central.session(access) is not None
    with pytest.raises(ClassicTokenRefused) as caught:
        refresh(central, "demo-classic-refresh-0")
    assert (caught.value.error, caught.value.status) == ("invalid_grant", 400)
    _, again = refresh(central, rotated)
    assert again != rotated
    assert central.account().rotations == 2


def test_wrong_client_credentials_are_invalid_client() -> None:
    central = classic(FakeClock())
    with pytest.raises(ClassicTokenRefused) as caught:
        central.refresh("demo-classic-client", "wrong", "demo-classic-refresh-0")
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_reset_brings_back_the_configured_refresh_token() -> None:
    central = classic(FakeClock())
    refresh(central, "demo-classic-refresh-0")
    central.reset()
    refresh(central, "demo-classic-refresh-0")  # accepted again


def test_access_tokens_expire_after_the_lifetime() -> None:
    clock = FakeClock()
    central = classic(clock)
    access, _ = refresh(central, "demo-classic-refresh-0")
    session = central.session(access)
    assert session is not None
    clock.now += 7199
    assert not central.is_expired(session)
    clock.now += 1
    assert central.is_expired(session)


def test_the_per_second_window_refuses_the_eighth_call_and_reports_both_windows() -> None:
    clock = FakeClock()
    central = classic(clock)
    quotas = [central.hit("demo-classic-customer") for _ in range(8)]

    assert [q.allowed for q in quotas] == [True] * 7 + [False]
    assert quotas[0].headers == {
        "X-RateLimit-Limit-day": "5000",
        "X-RateLimit-Remaining-day": "4999",
        "X-RateLimit-Limit-second": "7",
        "X-RateLimit-Remaining-second": "6",
    }
    assert (quotas[-1].exhausted, quotas[-1].retry_after) == ("second", 1)
    assert quotas[-1].headers["X-RateLimit-Remaining-day"] == "4993"  # refused: not counted
    clock.now += 1
    assert central.hit("demo-classic-customer").allowed


def test_the_per_day_window_refuses_once_spent() -> None:
    clock = FakeClock()
    central = classic(clock, classic_per_second=None, classic_per_day=3)
    quotas = [central.hit("demo-classic-customer") for _ in range(4)]

    assert [q.allowed for q in quotas] == [True, True, True, False]
    assert quotas[-1].exhausted == "day"
    # Every answer carries all four headers; an unset limit reports a number no walk reaches.
    assert quotas[-1].headers == {
        "X-RateLimit-Limit-day": "3",
        "X-RateLimit-Remaining-day": "0",
        "X-RateLimit-Limit-second": str(UNLIMITED),
        "X-RateLimit-Remaining-second": str(UNLIMITED),
    }


def test_the_daily_quota_resets_at_utc_midnight_not_24_hours_later() -> None:
    clock = FakeClock()
    evening = datetime(2026, 3, 1, 23, 59, 0, tzinfo=UTC).timestamp()
    wall = FakeClock()
    wall.now = evening
    central = ClassicCentral(
        SimulatorConfig(rate_limits=RateLimitConfig(classic_per_second=None, classic_per_day=2)),
        clock=clock,
        wall_clock=wall,
    )
    spent = [central.hit("demo-classic-customer") for _ in range(3)]
    assert [q.allowed for q in spent] == [True, True, False]
    assert spent[-1].retry_after == 60  # until 00:00 UTC, not a day after the first call
    wall.now += 60
    fresh = central.hit("demo-classic-customer")
    assert fresh.allowed
    assert fresh.headers["X-RateLimit-Remaining-day"] == "1"


def test_classic_accounts_must_be_distinct_across_workspaces() -> None:
    with pytest.raises(ValueError, match="classic customer ids"):
        SimulatorConfig(
            workspaces=[
                WorkspaceConfig(),
                WorkspaceConfig(workspace_id="second", client_id="second-client"),
            ]
        )
    SimulatorConfig(
        workspaces=[
            WorkspaceConfig(),
            WorkspaceConfig(
                workspace_id="second",
                client_id="second-client",
                classic=ClassicAccountConfig(customer_id="c2", client_id="classic-2"),
            ),
        ]
    )
