"""Fixtures for runs through the real pipeline: a simulator over HTTP and a schedule pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inventory_sync.models import SyncScheduleSpec, parse_sync_schedule_spec
from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.syncing.credentials import StaticSecrets

WORKSPACE = "3f1c2a4e-demo-workspace"
SECRET = "glp-test-credentials"


@pytest.fixture
def small_simulator() -> Iterator[ThreadedSimulator]:
    """1 % of the seed volumes, no latency: fast enough for fault tests."""
    with start_in_thread(SimulatorConfig.small(scale=0.01)) as simulator:
        yield simulator


def schedule_spec(
    simulator: ThreadedSimulator,
    *,
    page_size: int | None = None,
    central_page_size: int | None = None,
    **spec: Any,
) -> SyncScheduleSpec:
    """The demo's three sources (subscriptions, then devices and central), on this simulator."""

    def connection() -> dict[str, Any]:
        return {
            "workspaceId": WORKSPACE,
            "endpoint": simulator.url,
            "tokenUrl": simulator.token_url,
            "credentialsSecretRef": {"name": SECRET},
        }

    devices: dict[str, Any] = {"resource": "devices", **connection()}
    if page_size is not None:
        devices["pageSize"] = page_size
    central: dict[str, Any] = connection()
    if central_page_size is not None:
        central["pageSize"] = central_page_size
    document: dict[str, Any] = {
        "interval": "15m",
        "sources": [
            {"name": "subscriptions", "greenlake": {"resource": "subscriptions", **connection()}},
            {"name": "devices", "greenlake": devices},
            {"name": "central", "arubaCentral": central},
        ],
        **spec,
    }
    return parse_sync_schedule_spec(document)


def secrets_for(simulator: ThreadedSimulator) -> StaticSecrets:
    client_id, client_secret = simulator.state.credentials()
    return StaticSecrets(
        {("default", SECRET): {"client_id": client_id, "client_secret": client_secret}}
    )
