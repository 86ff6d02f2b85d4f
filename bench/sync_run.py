"""Benchmark: one seed-sized run, parallel stages + concurrent pages vs a sequential baseline.

Both variants run in the same process against the same simulator (default latency model)
and the same embedded PostgreSQL, each on a fresh database, so the ratio is what counts,
not the absolute seconds (they depend on the simulator's latency settings).

    .venv/bin/python bench/sync_run.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from inventory_sync.models import parse_sync_schedule_spec
from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.store.database import open_pool
from inventory_sync.store.embedded import start_embedded, stop_embedded
from inventory_sync.syncing.credentials import StaticSecrets
from inventory_sync.syncing.pipeline import run_sync
from inventory_sync.syncing.session import UpstreamSession

WORKSPACE = "3f1c2a4e-demo-workspace"


def spec(simulator: ThreadedSimulator, *, sequential: bool) -> Any:
    def connection() -> dict[str, Any]:
        return {
            "workspaceId": WORKSPACE,
            "endpoint": simulator.url,
            "tokenUrl": simulator.token_url,
            "credentialsSecretRef": {"name": "glp"},
        }

    devices: dict[str, Any] = {
        "name": "devices",
        "greenlake": {"resource": "devices", **connection()},
    }
    central: dict[str, Any] = {"name": "central", "arubaCentral": connection()}
    if sequential:  # the seeds' sequential scheduler: one source after another
        central["dependsOn"] = ["devices"]
    return parse_sync_schedule_spec(
        {
            "interval": "15m",
            "sources": [
                {
                    "name": "subscriptions",
                    "greenlake": {"resource": "subscriptions", **connection()},
                },
                devices,
                central,
            ],
        }
    )


async def one_run(server_url: str, simulator: ThreadedSimulator, *, sequential: bool) -> float:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    pool = await open_pool(server_url.replace("/postgres?", f"/{name}?"))
    session = UpstreamSession()
    client_id, client_secret = simulator.state.credentials()
    secrets = StaticSecrets(
        {("default", "glp"): {"client_id": client_id, "client_secret": client_secret}}
    )
    try:
        started = time.perf_counter()
        result = await run_sync(
            spec(simulator, sequential=sequential), pool=pool, session=session, secrets=secrets,
            namespace="default", trigger="bench",
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        assert result.succeeded, result.message
        return elapsed
    finally:
        await session.aclose()
        await pool.close()


async def main(repeat: int) -> None:
    with (
        tempfile.TemporaryDirectory() as directory,
        start_in_thread(SimulatorConfig()) as simulator,
    ):
        data = Path(directory) / "pg"
        server_url = start_embedded(data)
        timings: dict[str, list[float]] = {"parallel": [], "sequential": []}
        try:
            for _ in range(repeat):
                for variant in ("sequential", "parallel"):
                    simulator.state.reset()  # fresh quotas, same data
                    timings[variant].append(
                        await one_run(server_url, simulator, sequential=variant == "sequential")
                    )
        finally:
            stop_embedded(data)  # also when a run fails: no server outlives the benchmark
    med = {k: statistics.median(v) for k, v in timings.items()}
    print(f"runs per variant: {repeat}")
    for variant, values in timings.items():
        print(
            f"{variant:>10}: median {med[variant]:.2f}s  ({', '.join(f'{v:.2f}' for v in values)})"
        )
    print(f"parallel / sequential = {med['parallel'] / med['sequential']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
