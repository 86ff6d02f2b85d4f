"""Benchmark: many schedules at `1m` on one replica: how late scheduled runs start, and memory.

Lateness of a scheduled run = when it started (its `sync_runs.started_at`, taken at the
claim) minus when it was due (`scheduled_at`). The period is the time between two
scheduled runs of one resource ("1m" should mean 60 s). Memory is the operator process's
resident set, sampled every 5 s.

Each variant is the real operator (`python -m inventory_sync run`, as a pod runs it) against
the same local kube-apiserver (tools/controlplane), an embedded PostgreSQL and the simulator
(1 % of the seed data, its default latency). With `--baseline-src DIR` the same workload
first runs the operator from another source tree (e.g. a checkout of main), so the figures
are compared within one run on one machine.

    .venv/bin/python bench/schedule_lateness.py --baseline-src /tmp/main/operator
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.simulator.config import LatencyConfig
from inventory_sync.store.embedded import start_embedded, stop_embedded

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "controlplane"))
from localcluster import LocalCluster  # noqa: E402 - outside any package on purpose


@dataclass
class Figures:
    variant: str
    schedules: int
    minutes: float
    scheduled_runs: int
    failed_runs: int
    lateness_p50: float
    lateness_p90: float
    lateness_p99: float
    lateness_max: float
    #: The same, without runs due in the first two minutes (the burst of 200 creations).
    steady_runs: int
    steady_p50: float
    steady_p99: float
    period_median: float
    period_p99: float
    rss_max_mb: float
    rss_last_mb: float
    runs_by_outcome: dict[str, int]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def schedules(simulator: ThreadedSimulator, namespace: str, count: int) -> dict[str, Any]:
    connection = {
        "workspaceId": "3f1c2a4e-demo-workspace", "endpoint": simulator.url,
        "tokenUrl": simulator.token_url, "credentialsSecretRef": {"name": "central"},
    }  # fmt: skip
    client_id, client_secret = simulator.state.credentials()
    items: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "central", "namespace": namespace},
         "stringData": {"client_id": client_id, "client_secret": client_secret}},
    ]  # fmt: skip
    for n in range(count):
        items.append(
            {
                "apiVersion": "inventorysync.dev/v1alpha1",
                "kind": "SyncSchedule",
                "metadata": {"name": f"s{n:03d}", "namespace": namespace},
                "spec": {
                    "interval": "1m",
                    "sources": [{"name": "central", "arubaCentral": connection}],
                },
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": items}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_variant(
    name: str, *, source: Path | None, cluster: Any, simulator: ThreadedSimulator,
    server_url: str, count: int, minutes: float, workdir: Path,
) -> Figures:  # fmt: skip
    namespace = f"bench-{name}-{uuid.uuid4().hex[:4]}"
    database = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(server_url, database))
    url = server_url.replace("/postgres?", f"/{database}?")
    cluster.kubectl_run("create", "namespace", namespace)
    health = free_port()
    env = {
        **os.environ, "KUBECONFIG": cluster.operator_kubeconfig,
        # Cluster-wide, as by default: a namespaced kopf spends its first ~50 s failing to list
        # namespaces under this RBAC before it falls back to the listed ones.
        "INVENTORY_SYNC_DATABASE_URL": url,
        "INVENTORY_SYNC_HEALTH_PORT": str(health), "INVENTORY_SYNC_METRICS_PORT": "0",
        "INVENTORY_SYNC_INSTANCE": f"bench-{name}",
        "INVENTORY_SYNC_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }  # fmt: skip
    if source is not None:
        env["PYTHONPATH"] = str(source)
    log = (workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "inventory_sync", "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(health, process)
        created = datetime.now(UTC)
        cluster.kubectl_run(
            "apply", "-f", "-", stdin=json.dumps(schedules(simulator, namespace, count))
        )
        started = time.monotonic()
        samples = []
        while time.monotonic() - started < minutes * 60:
            time.sleep(5)
            samples.append(rss_mb(process.pid))
            if process.poll() is not None:
                raise RuntimeError(f"the {name} operator exited; see {log.name}")
    finally:
        process.terminate()
        process.wait(60)
        log.close()
        # The next variant's operator watches every namespace: leave it nothing of this one's.
        cluster.kubectl_run("delete", "syncschedules", "--all", "-n", namespace, "--wait=false")
        if os.environ.get("BENCH_KEEP_LOGS"):
            Path(os.environ["BENCH_KEEP_LOGS"], f"{name}.log").write_bytes(
                Path(log.name).read_bytes()
            )
    return asyncio.run(_figures(name, url, count, minutes, samples, created))


async def _create_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the operator exited at start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the operator never became healthy")


async def _figures(
    name: str, url: str, count: int, minutes: float, samples: list[float], created: datetime
) -> Figures:
    connection = await asyncpg.connect(url)
    try:
        outcomes = await connection.fetch(
            "SELECT trigger || '/' || state AS k, count(*) AS n FROM sync_runs GROUP BY 1 ORDER BY 1"
        )
        rows = await connection.fetch(
            """SELECT resource_uid, scheduled_at, started_at, state FROM sync_runs
               WHERE trigger = 'schedule' ORDER BY resource_uid, started_at"""
        )
    finally:
        await connection.close()
    lateness = [(r["started_at"] - r["scheduled_at"]).total_seconds() for r in rows]
    steady = [
        (r["started_at"] - r["scheduled_at"]).total_seconds()
        for r in rows
        if r["scheduled_at"] >= created + timedelta(minutes=2)
    ]
    periods: list[float] = []
    previous: dict[str, Any] = {}
    for row in rows:
        before = previous.get(row["resource_uid"])
        if before is not None:
            periods.append((row["started_at"] - before).total_seconds())
        previous[row["resource_uid"]] = row["started_at"]
    return Figures(
        variant=name, schedules=count, minutes=minutes, scheduled_runs=len(rows),
        failed_runs=sum(1 for r in rows if r["state"] not in ("Succeeded", "Running")),
        lateness_p50=round(quantile(lateness, 0.5), 3), lateness_p90=round(quantile(lateness, 0.9), 3),
        lateness_p99=round(quantile(lateness, 0.99), 3), lateness_max=round(max(lateness, default=0), 3),
        steady_runs=len(steady), steady_p50=round(quantile(steady, 0.5), 3),
        steady_p99=round(quantile(steady, 0.99), 3),
        period_median=round(statistics.median(periods), 3) if periods else float("nan"),
        period_p99=round(quantile(periods, 0.99), 3),
        rss_max_mb=round(max(samples, default=float("nan")), 1),
        rss_last_mb=round(samples[-1], 1) if samples else float("nan"),
        runs_by_outcome={r["k"]: r["n"] for r in outcomes},
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--baseline-src", type=Path, help="an operator/ source tree to compare")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    # SIGTERM unwinds like ^C, so the cluster, PostgreSQL and the operator are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bin_dir = Path(
        subprocess.run(
            [str(REPO / "tools/controlplane/build.sh"), "--print-bin-dir"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="inventory-sync-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "pg"
        server_url = start_embedded(data)
        cluster = LocalCluster(bin_dir, workdir / "cluster")
        info = cluster.start()
        try:
            info.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
            info.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
            info.kubectl_run("create", "namespace", info.operator_namespace)
            info.kubectl_run("apply", "-f", str(REPO / "manifests" / "rbac.yaml"))
            config = SimulatorConfig.small(scale=0.01, latency=LatencyConfig())
            with start_in_thread(config) as simulator:
                variants: list[tuple[str, Path | None]] = []
                if args.baseline_src:
                    variants.append(("baseline", args.baseline_src.resolve()))
                variants.append(("this-tree", None))
                for name, source in variants:
                    figures = run_variant(
                        name, source=source, cluster=info, simulator=simulator,
                        server_url=server_url, count=args.schedules, minutes=args.minutes,
                        workdir=workdir,
                    )  # fmt: skip
                    print(json.dumps(asdict(figures)), flush=True)
                    results.append(asdict(figures))
        finally:
            cluster.stop()
            stop_embedded(data)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
