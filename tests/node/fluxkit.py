"""Flux for the GitOps node test: source-controller and kustomize-controller (built from their
Go modules by tools/flux/build.sh) and a Git server, each a process inside the node's network
namespace, plus the Git repository Flux reads.

Nothing here listens outside the namespace or can reach out of it: the processes enter it with
`nsenter --net` (the node's namespace has no route out), bind 127.0.0.1 there, and talk to the
node's apiserver with the admin kubeconfig. Events go only to the apiserver (`--events-addr`
empty: no notification-controller). Each process is a `nodehost.Proc`; the node's teardown
fails the session (NodeLeftovers) if one outlives the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
from localnode import LocalNode
from nodehost import Proc

REPO = Path(__file__).resolve().parents[2]
FLUX_BUILD = REPO / "tools" / "flux" / "build.sh"
GIT_SERVER = Path(__file__).resolve().parent / "githttp.py"
FLUX_NAMESPACE = "flux-system"
# Loopback ports inside the node's namespace (private to it, so fixed numbers cannot clash).
STORAGE = "127.0.0.1:19090"
PORTS = {
    "source-controller": ("127.0.0.1:18080", "127.0.0.1:19440"),
    "kustomize-controller": ("127.0.0.1:18081", "127.0.0.1:19441"),
}


REQUIRE = os.environ.get("INVENTORY_SYNC_REQUIRE_NODE", "") not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail where the node layer is required (as tests/node/conftest.py does)."""
    message = f"Flux unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message + " (INVENTORY_SYNC_REQUIRE_NODE is set)", pytrace=False)
    pytest.skip(message)


class FluxUnavailable(RuntimeError):
    """The controllers could not be built (no Go, no module proxy): the reason, one line."""


def build() -> tuple[Path, list[Path]]:
    """(bin dir, CRD dirs): the cached build, or a build now (minutes when cold)."""
    env = dict(os.environ, PATH=f"{os.environ.get('PATH', '')}:/usr/local/go/bin")
    proc = subprocess.run([str(FLUX_BUILD)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise FluxUnavailable(f"tools/flux/build.sh failed: {last}")
    crds = subprocess.run(
        [str(FLUX_BUILD), "--crds"], capture_output=True, text=True, env=env, check=False
    )
    if crds.returncode != 0:
        raise FluxUnavailable(f"tools/flux/build.sh --crds failed: {crds.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1]), [Path(p) for p in crds.stdout.split()]


@dataclass
class NamespaceProcesses:
    """Long-running processes inside the node's network namespace."""

    node: LocalNode
    logs: Path
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Proc:
        # nsenter with --net only execs the command: the PID is the process itself.
        enter = ["nsenter", f"--target={self.node.namespace_holder_pid}", "--net", "--"]
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [*enter, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(grace=15)

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited; its log:\n{proc.tail(40)}")


@dataclass
class GitRepo:
    """A bare repository served over HTTP, and a working copy the test commits from."""

    root: Path  # the served directory
    work: Path
    name: str = "inventory"

    @property
    def bare(self) -> Path:
        return self.root / f"{self.name}.git"

    def create(self) -> None:
        self.root.mkdir(parents=True)
        self.git(
            "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare), cwd=self.root
        )
        self.git("init", "--quiet", "--initial-branch=main", str(self.work), cwd=self.root)
        self.git("remote", "add", "origin", str(self.bare))

    def write(self, relative: str, text: str) -> None:
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def copy_tree(self, source: Path, relative: str) -> None:
        shutil.copytree(source, self.work / relative, dirs_exist_ok=True)

    def commit(self, message: str) -> str:
        """Commit everything and push to the served repository; the commit's id."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "origin", "main")
        return self.git("rev-parse", "HEAD").strip()

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root.parent),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "gitops test", "GIT_AUTHOR_EMAIL": "gitops@test.invalid",
            "GIT_COMMITTER_NAME": "gitops test", "GIT_COMMITTER_EMAIL": "gitops@test.invalid",
        }  # fmt: skip
        directory = cwd or self.work
        proc = subprocess.run(
            ["git", *args], cwd=directory, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout


@dataclass
class Flux:
    """The two controllers and the Git server, running; `url` is the repository's in-namespace
    address."""

    processes: NamespaceProcesses
    git: GitRepo
    url: str


def start(node: LocalNode, *, bin_dir: Path, state: Path, git: GitRepo) -> Flux:
    """The Git server, then source-controller and kustomize-controller, as processes in the
    node's namespace with the node's admin kubeconfig."""
    processes = NamespaceProcesses(node, state)
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state),
        "LANG": "C.UTF-8",
    }
    server = processes.spawn(
        "git-server", [sys.executable, "-u", str(GIT_SERVER), str(git.root)], dict(base_env)
    )
    port = _first_line(server)
    env = {**base_env, "KUBECONFIG": node.env()["KUBECONFIG"], "RUNTIME_NAMESPACE": FLUX_NAMESPACE}
    common = [
        "--enable-leader-election=false", "--watch-all-namespaces=true", "--events-addr=",
        "--log-encoding=console", "--concurrent=2", "--requeue-dependency=5s",
    ]  # fmt: skip
    (state / "storage").mkdir()
    metrics, health = PORTS["source-controller"]
    processes.spawn(
        "source-controller",
        [str(bin_dir / "source-controller"), *common, f"--metrics-addr={metrics}",
         f"--health-addr={health}", f"--storage-path={state / 'storage'}",
         f"--storage-addr={STORAGE}", f"--storage-adv-addr={STORAGE}"],
        env,
    )  # fmt: skip
    metrics, health = PORTS["kustomize-controller"]
    processes.spawn(
        "kustomize-controller",
        [str(bin_dir / "kustomize-controller"), *common, f"--metrics-addr={metrics}",
         f"--health-addr={health}", "--no-remote-bases=true"],
        env,
    )  # fmt: skip
    time.sleep(1)
    processes.check_alive()
    return Flux(processes, git, f"http://127.0.0.1:{port}/{git.name}.git")


def _first_line(proc: Proc, within: float = 15) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
        first = text.split("\n", 1)[0].strip()
        if first.isdigit():
            return first
        if not proc.alive():
            break
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} did not say its port; its log:\n{proc.tail()}")
