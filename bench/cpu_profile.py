"""Where this process's CPU goes during a block, its page worker's included: py-spy samples
them from outside, and each sampled stack is put in one bucket (issue 13's "client CPU at 1M"
row).

One py-spy runs per sampled process, attached to it (`--nonblocking`: the sampled threads
are never paused) at 100 samples per second, every thread. py-spy leaves out threads it sees
idle, but without pausing them it sees fewer: a worker waiting for work or a socket write
can still be sampled, so the shares are of samples, and the processes' CPU seconds (from
getrusage and /proc) are reported beside them. A stack
goes to the bucket of its innermost frame that belongs to one: the JSON decoder's caller,
page staging, the HTTP stack, asyncpg, the rest of the engine. Only a stack with none of
those (the loop flushing a socket buffer, a worker thread between tasks) counts as the event
loop's; what matches nothing is "other".
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RATE = 100

#: (bucket, what a frame's "function (file:line)" text contains), tried in this order per
#: frame, innermost frame first.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSON decode", ("decode_json (inventory_sync/upstream/paging.py", "json/decoder.py")),
    ("staging (encode, hash, links)", ("inventory_sync/store/staging.py",)),
    ("HTTP (httpx, httpcore, h11, TLS)", ("httpx/", "httpcore/", "h11/", "anyio/", "ssl.py")),
    ("asyncpg", ("asyncpg/",)),
    (
        "pages to and from the worker (pickle, pipes)",
        ("multiprocessing/", "concurrent/futures/process.py"),
    ),
    ("engine, other", ("inventory_sync/",)),
)
#: Where a stack goes when no frame of it belongs to a bucket above: asyncpg's socket write
#: runs through asyncio, and counts as asyncpg's.
EVENT_LOOP = (
    "event loop, socket I/O, threads",
    ("asyncio/", "selectors.py", "threading.py", "concurrent/"),
)
OTHER = "other"


@dataclass
class Profile:
    """Samples per bucket, and the process's CPU and wall seconds over the block."""

    samples: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    error: str = ""

    def shares(self) -> list[tuple[str, float]]:
        total = sum(self.samples.values()) or 1
        return [(name, count / total) for name, count in self.samples.most_common()]

    def summary(self) -> str:
        if self.error:
            return f"not profiled: {self.error}"
        parts = ", ".join(f"{name} {share:.0%}" for name, share in self.shares())
        cores = self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0
        return (
            f"{parts} ({sum(self.samples.values()):,} samples); client CPU {self.cpu_seconds:.0f} s "
            f"over {self.wall_seconds:.0f} s = {cores:.2f} cores"
        )


def bucket_of(stack: str) -> str:
    """The bucket of one collapsed stack ("frame;frame;...", outermost first)."""
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(needle in frame for needle in needles):
                return name
    name, needles = EVENT_LOOP
    if any(needle in frame for frame in frames for needle in needles):
        return name
    return OTHER


def tally(raw: str) -> Counter[str]:
    """Samples per bucket from py-spy's raw output (one "stack count" per line)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[bucket_of(stack)] += int(count)
    return counts


def _cpu_seconds(workers: list[int]) -> float:
    """This process's CPU seconds plus those of `workers` (from /proc: they are not our
    waited-for children, so getrusage does not count them)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in workers:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


@contextmanager
def profiled(workers: list[int] | None = None) -> Iterator[Profile]:
    """Profile this process and its page `workers` (process ids) for the duration of the
    block; the result fills in on exit."""
    profile = Profile()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        profile.error = "py-spy is not installed (it is in the dev extra)"
        yield profile
        return
    pids = [os.getpid(), *(workers or [])]
    with tempfile.TemporaryDirectory() as directory:
        outputs = [Path(directory) / f"stacks-{pid}.txt" for pid in pids]
        spies = []
        for pid, out in zip(pids, outputs, strict=True):
            command = [spy, "record", "--pid", str(pid), "--format", "raw"]
            command += ["--rate", str(RATE), "--nonblocking", "--output", str(out)]
            spies.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            )
        time.sleep(1.0)  # attaching takes a moment; samples before the block would not count
        cpu, wall = _cpu_seconds(pids[1:]), time.perf_counter()
        try:
            yield profile
        finally:
            profile.cpu_seconds = _cpu_seconds(pids[1:]) - cpu
            profile.wall_seconds = time.perf_counter() - wall
            for process in spies:
                process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            errors = [process.communicate(timeout=60)[1] for process in spies]
            for out, stderr in zip(outputs, errors, strict=True):
                if out.exists():
                    profile.samples += tally(out.read_text())
                else:
                    profile.error = (
                        f"py-spy wrote nothing: {stderr.decode(errors='replace')[-200:]}"
                    )
