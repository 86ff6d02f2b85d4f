"""README's "The operator in five minutes", run as written: a new user's path must not trip
(no kubectl warnings, no port clash between the simulator and the operator, the demo's
endpoints reach the simulator), and the stop command `make dev-cluster` prints must stop
that very cluster even when its state lives in DEV_CLUSTER_STATE_DIR."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

REPO = Path(__file__).resolve().parents[2]
HEADING = "## The operator in five minutes"
#: The walkthrough's fixed ports: the simulator, the operator's /healthz and /metrics.
PORTS = (8089, 8080, 9090)

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(420)]


def walkthrough_block() -> str:
    """The first ```sh block after the heading, verbatim."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(HEADING) :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "no sh block in the walkthrough"
    return match.group(1)


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def fresh_database(server_url: str) -> str:
    name = f"walkthrough_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


def test_the_readme_walkthrough_runs_as_written(
    postgres_server_url: str, tmp_path: Path, controlplane_bin_dir: Path
) -> None:
    taken = [p for p in PORTS if port_taken(p)]
    if taken:
        pytest.skip(f"the walkthrough's fixed ports {taken} are in use by another process here")
    state_dir = tmp_path / "dev cluster"  # a space: the printed stop command must quote it
    env = {
        **os.environ,
        "DEV_CLUSTER_STATE_DIR": str(state_dir),
        # The one deviation: a private database instead of the shared embedded default.
        "INVENTORY_SYNC_DATABASE_URL": asyncio.run(fresh_database(postgres_server_url)),
    }
    env.pop("KUBECONFIG", None)
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n"
    script += walkthrough_block()
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=360)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"the walkthrough hung:\n{out[-3000:]}\n{err[-3000:]}")
    cluster = json.loads((state_dir / "cluster.json").read_text())
    try:
        assert proc.returncode == 0, f"walkthrough failed:\n{out[-3000:]}\n{err[-3000:]}"
        assert "Warning:" not in err, err  # kubectl's prefix; e.g. re-applying crds/
        assert "address already in use" not in err.lower(), err
        table = out[out.index("NAME") :]
        assert re.search(r"^\S*syncschedule\S*/demo\s+True\s+Synced 3/3 succeeded", table, re.M)
        # No Hedgehog CRDs on the dev cluster: the Fabric ran, and says so (README shows it).
        fabric = r"^\S*fabric\S*/local-fabric\s+False\s+no kind synced: \w+: not installed"
        assert re.search(fabric + r".*0/12 succeeded, 12 skipped$", table, re.M), table
    finally:
        stop = re.search(r"Stop it with:\n\s+(.+)\n", out)
        if stop:
            # A fresh shell without DEV_CLUSTER_STATE_DIR: the printed line alone must do.
            clean_env = {k: v for k, v in os.environ.items() if k != "DEV_CLUSTER_STATE_DIR"}
            subprocess.run(["bash", "-c", stop.group(1)], cwd=REPO, env=clean_env, timeout=60)
        deadline = time.monotonic() + 30
        while any(pid_alive(p) for p in cluster["pids"].values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [p for p in cluster["pids"].values() if pid_alive(p)]
        for pid in survivors:  # the printed command missed its cluster: stop it, then fail
            os.kill(pid, signal.SIGKILL)
    assert stop, f"no stop command printed:\n{out}"
    assert not survivors, f"`{stop.group(1)}` left the cluster running (pids {survivors})"
    assert "DEV_CLUSTER_STATE_DIR=" in stop.group(1)
