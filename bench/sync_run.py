"""Benchmark: one seed-sized run, parallel stages + concurrent pages vs sequential baselines.

Variants, in the same process against the same simulator (default latency model) and the same
embedded PostgreSQL, each on a fresh database, so the ratios are what count, not the absolute
seconds (they depend on the simulator's latency settings):

- sequential: the seeds' scheduler (devices, then Central), today's page walks;
- parallel: the default (stages in parallel, Central by page number: 1000 a page, 8 at once);
- old-central: parallel stages, but Central walked as before v1 page numbers: 100 a page,
  one page after the other (the old cursor walk).

    .venv/bin/python bench/sync_run.py [--repeat 3] [--only parallel,old-central]
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
from inventory_sync.syncing.session import PageConcurrency, UpstreamSession

WORKSPACE = "3f1c2a4e-demo-workspace"
VARIANTS = ("sequential", "parallel", "old-central")


def spec(simulator: ThreadedSimulator, *, sequential: bool, old_central: bool) -> Any:
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
    if old_central:  # the old default page size; UpstreamSession makes it one page at a time
        central["arubaCentral"]["pageSize"] = 100
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


async def one_run(
    server_url: str, simulator: ThreadedSimulator, *, variant: str
) -> tuple[float, float]:
    """(the run's seconds, the Central source's seconds)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    pool = await open_pool(server_url.replace("/postgres?", f"/{name}?"))
    old_central = variant == "old-central"
    session = UpstreamSession(
        concurrency=PageConcurrency(central=1) if old_central else PageConcurrency()
    )
    client_id, client_secret = simulator.state.credentials()
    secrets = StaticSecrets(
        {("default", "glp"): {"client_id": client_id, "client_secret": client_secret}}
    )
    try:
        started = time.perf_counter()
        result = await run_sync(
            spec(simulator, sequential=variant == "sequential", old_central=old_central),
            pool=pool, session=session, secrets=secrets, namespace="default", trigger="bench",
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        assert result.succeeded, result.message
        central = result.source("central")
        assert central.fetched == 8978, central
        return elapsed, central.seconds
    finally:
        await session.aclose()
        await pool.close()


async def main(repeat: int, variants: list[str]) -> None:
    with (
        tempfile.TemporaryDirectory() as directory,
        start_in_thread(SimulatorConfig()) as simulator,
    ):
        data = Path(directory) / "pg"
        server_url = start_embedded(data)
        runs: dict[str, list[float]] = {v: [] for v in variants}
        centrals: dict[str, list[float]] = {v: [] for v in variants}
        try:
            for _ in range(repeat):
                for variant in variants:
                    simulator.state.reset()  # fresh quotas, same data
                    elapsed, central = await one_run(server_url, simulator, variant=variant)
                    runs[variant].append(elapsed)
                    centrals[variant].append(central)
        finally:
            stop_embedded(data)  # also when a run fails: no server outlives the benchmark
    run_med = {k: statistics.median(v) for k, v in runs.items()}
    central_med = {k: statistics.median(v) for k, v in centrals.items()}
    print(f"runs per variant: {repeat}")
    for variant in variants:
        print(
            f"{variant:>12}: run median {run_med[variant]:.2f}s "
            f"({', '.join(f'{v:.2f}' for v in runs[variant])}); "
            f"Central phase median {central_med[variant]:.2f}s "
            f"({', '.join(f'{v:.2f}' for v in centrals[variant])})"
        )
    if {"parallel", "sequential"} <= run_med.keys():
        print(f"run: parallel / sequential = {run_med['parallel'] / run_med['sequential']:.2f}")
    if {"parallel", "old-central"} <= central_med.keys():
        ratio = central_med["parallel"] / central_med["old-central"]
        print(f"Central phase: page numbers / old cursor walk = {ratio:.2f}")
        print(f"run: parallel / old-central = {run_med['parallel'] / run_med['old-central']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only",
        default=",".join(VARIANTS),
        help=f"comma-separated variants to run (default: all of {', '.join(VARIANTS)})",
    )
    arguments = parser.parse_args()
    chosen = [v for v in arguments.only.split(",") if v]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    asyncio.run(main(arguments.repeat, chosen))
