"""Page worker processes: they never outlive the process that started them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

#: Starts the page workers, prints their pids, then waits to be killed.
PARENT = """
import sys, time
from inventory_sync.upstream.offloading import SHARED_WORKERS
if __name__ == "__main__":
    SHARED_WORKERS.warm_up(["json"])
    SHARED_WORKERS.executor().submit(time.sleep, 0).result()
    print(*SHARED_WORKERS.pids(), flush=True)
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


def test_a_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            workers = [int(pid) for pid in parent.stdout.readline().split()]
            assert workers
            assert all(alive(pid) for pid in workers)
        finally:
            parent.send_signal(signal.SIGKILL)  # no atexit, no pool shutdown
            parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)
