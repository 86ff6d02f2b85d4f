"""A faithful simulator of the upstream APIs (GreenLake, New and classic Central, HPE SSO) over HTTP.

    with start_in_thread(SimulatorConfig.small()) as sim:
        client_id, secret = sim.state.credentials()
        ...  # POST {sim.url}/as/token.oauth2, GET {sim.url}/devices/v1/devices

Layers: server → app → {auth, glp, central, classic, admin} → admission → state → {workspace,
classic_account, ratelimit, faults} → dataset → config. Facts reproduced: /work/shared/UPSTREAM_APIS.md.
"""

from inventory_sync.simulator.app import build_app
from inventory_sync.simulator.config import (
    ClassicAccountConfig,
    DatasetSize,
    LatencyConfig,
    LatencyModel,
    RateLimitConfig,
    SimulatorConfig,
    WorkspaceConfig,
)
from inventory_sync.simulator.faults import Fault, FaultPlan, FaultRule, fault_kind
from inventory_sync.simulator.server import (
    RunningSimulator,
    ThreadedSimulator,
    run_forever,
    serve,
    start_in_thread,
)
from inventory_sync.simulator.state import SimulatorState
from inventory_sync.simulator.workspace import WorkspaceState

__all__ = [
    "ClassicAccountConfig",
    "DatasetSize",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "LatencyConfig",
    "LatencyModel",
    "RateLimitConfig",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorState",
    "ThreadedSimulator",
    "WorkspaceConfig",
    "WorkspaceState",
    "build_app",
    "fault_kind",
    "run_forever",
    "serve",
    "start_in_thread",
]
