"""Fixtures for the vendor-SDK contract: one TLS simulator per module, the tunnel, the SDK venvs."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inventory_sync.simulator import (
    DatasetSize,
    LatencyConfig,
    SimulatorConfig,
    ThreadedSimulator,
    WorkspaceConfig,
    start_in_thread,
)
from inventory_sync.simulator.tls import DEFAULT_HOSTNAMES, TlsConfig

from .harness import VENDOR_HOSTS, SdkRun, TunnelProxy, run_scenario, sdk_python, tunnel

#: Small, but every SDK walk takes more than one page: 2 GreenLake device pages of 2000,
#: 3 subscription pages of 50, 3 Central pages of 1000, 3 classic inventory pages of 50.
CONTRACT = DatasetSize(
    subscriptions=120,
    glp_devices=2300,
    linked_devices=1700,
    unknown_subscription_links=3,
    central_devices=2100,
    central_overlap=1500,
    central_not_onboarded=40,
    classic_devices=120,
)


def digest(values: list[str]) -> str:
    """What the scenario scripts print for a set of ids."""
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()


class Contract:
    """The simulator, the tunnel and how to run a scenario against them."""

    def __init__(self, simulator: ThreadedSimulator, proxy: TunnelProxy) -> None:
        self.simulator = simulator
        self.proxy = proxy
        assert simulator.ca_file is not None
        self.ca_file: Path = simulator.ca_file

    @property
    def state(self) -> Any:
        return self.simulator.state

    def reset(self) -> None:
        self.simulator.state.reset()
        self.proxy.tunnelled.clear()
        self.proxy.refused.clear()

    def run(self, sdk: str, script: str, scenario: str, params: dict[str, Any]) -> SdkRun:
        return run_scenario(
            sdk_python(sdk),
            script,
            scenario,
            params,
            ca_file=self.ca_file,
            proxy_url=self.proxy.url,
        )


@contextlib.contextmanager
def serving(**overrides: Any) -> Iterator[Contract]:
    """A TLS simulator with the CONTRACT dataset (`overrides`: SimulatorConfig fields), its
    certificate also naming the vendor hosts, and the tunnel to it."""
    config = SimulatorConfig.model_validate(
        {
            "workspaces": [WorkspaceConfig(dataset=CONTRACT)],
            "latency": LatencyConfig.none(),
            **overrides,
        }
    )
    tls = TlsConfig(hostnames=(*DEFAULT_HOSTNAMES, *VENDOR_HOSTS))
    with start_in_thread(config, tls=tls) as simulator:
        port = int(simulator.url.rsplit(":", 1)[1])
        with tunnel(target_port=port) as proxy:
            yield Contract(simulator, proxy)


@pytest.fixture(scope="module")
def contract_server() -> Iterator[Contract]:
    with serving() as contract:
        yield contract


@pytest.fixture
def contract(contract_server: Contract) -> Contract:
    contract_server.reset()
    return contract_server
