"""The operator's fixtures for control-plane tests (conftest makes them visible to every test
here) and the small helpers the tests share: resource paths, a demo SyncSchedule, its Secret,
waiting for Ready, the runs recorded for a resource."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import GROUP, VERSION
from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread

from .harness import OperatorProcess, ShiftableClock, condition

REPO_RBAC = "manifests/rbac.yaml"
SECRET = "glp-credentials"


@pytest.fixture(scope="session")
def operator_rbac(control_plane: Any) -> None:
    """Exactly the RBAC in manifests/: the operator gets no more than users will grant it."""
    repo = Path(__file__).resolve().parents[2]
    kubectl = [control_plane.kubectl, "--kubeconfig", control_plane.admin_kubeconfig]
    subprocess.run(
        [*kubectl, "create", "namespace", control_plane.operator_namespace],
        capture_output=True, check=False,
    )  # fmt: skip
    subprocess.run(
        [*kubectl, "apply", "-f", str(repo / REPO_RBAC)], check=True, capture_output=True
    )


@pytest.fixture
def simulator() -> Iterator[ThreadedSimulator]:
    with start_in_thread(SimulatorConfig.small(scale=0.01)) as running:
        yield running


@pytest.fixture
async def admin(control_plane: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient(KubeConnection.from_kubeconfig_file(control_plane.admin_kubeconfig))
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> ShiftableClock:
    return ShiftableClock()


@pytest.fixture
def operator(
    control_plane: Any, operator_rbac: None, database_url: str, clock: ShiftableClock
) -> Iterator[Any]:
    """Start the operator as its ServiceAccount; the factory form allows restarts in a test."""
    connection = KubeConnection.from_kubeconfig_file(control_plane.operator_kubeconfig)
    started: list[OperatorProcess] = []

    def start(max_concurrent_runs: int = 4, **settings: Any) -> OperatorProcess:
        process = OperatorProcess(
            connection=connection,
            database_url=settings.pop("database_url", database_url),
            clock=clock,
            max_concurrent_runs=max_concurrent_runs,
            **settings,
        )
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


def path(namespace: str, plural: str = "syncschedules", name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


def schedule(simulator: ThreadedSimulator, name: str = "inventory", **spec: Any) -> dict[str, Any]:
    connection = {
        "workspaceId": "3f1c2a4e-demo-workspace",
        "endpoint": simulator.url,
        "tokenUrl": simulator.token_url,
        "credentialsSecretRef": {"name": SECRET},
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncSchedule",
        "metadata": {"name": name},
        "spec": {
            "interval": "15m",
            "sources": [
                {"name": "subscriptions", "greenlake": {"resource": "subscriptions", **connection}},
                {"name": "devices", "greenlake": {"resource": "devices", **connection}},
                {"name": "central", "arubaCentral": dict(connection)},
            ],
            **spec,
        },
    }


async def create_secret(admin: KubeClient, namespace: str, simulator: ThreadedSimulator) -> None:
    client_id, client_secret = simulator.state.credentials()
    await admin.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET},
            "stringData": {"client_id": client_id, "client_secret": client_secret},
        },
    )


async def ready(
    admin: KubeClient,
    namespace: str,
    name: str = "inventory",
    *,
    status: str = "True",
    generation: int | None = None,
    plural: str = "syncschedules",
) -> dict[str, Any] | None:
    """The body once Ready has `status` (and observedGeneration is `generation`), else None."""
    body = await admin.get(path(namespace, plural, name))
    found = condition(body, "Ready")
    observed = (body or {}).get("status", {}).get("observedGeneration")
    if found and found["status"] == status and generation in (None, observed):
        return body
    return None


async def runs_of(database_url: str, uid: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT trigger, state, started_at, finished_at FROM sync_runs"
            " WHERE resource_uid = $1 ORDER BY id",
            uid,
        )
    finally:
        await connection.close()
    return [dict(r) for r in rows]
