"""What the node harness (tools/node/localnode.py) touches on the host, and how it checks it
left the host as it found it: preflight, child processes, the node's cgroup subtree, the
host's network state, and the reaping of nodes whose owner was killed."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nodeconfig import CNI_BIN_DIR, RUNC, SYSTEM_PATH

CGROUP_FS = Path("/sys/fs/cgroup")
#: Followed by the owner's PID: a later run can tell a node whose owner was killed (and so
#: never tore it down) from a live one of another session.
CGROUP_PREFIX = "inventory-sync-node-"
TOOLS = ("unshare", "nsenter", "ip", "iptables", "containerd", "containerd-shim-runc-v2", "ctr")
#: containerd 1.6 puts its shims' sockets here whatever its state dir; a shim killed with its
#: node leaves its socket behind, and the first node on a machine leaves the directories.
SHIM_SOCKETS = Path("/run/containerd/s")
CORE_BINARIES = ("etcd", "kube-apiserver", "kubectl", "helm")
NODE_BINARIES = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause")


class NodeError(RuntimeError):
    """The node could not be started or used; messages carry the relevant log tail."""


class NodeRefused(NodeError):
    """The node's namespace would not be isolated (a route out): nothing was started."""


class NodeLeftovers(NodeError):
    """Teardown left something behind (processes, mounts, namespaces, cgroups, host changes)."""


def which(name: str) -> str | None:
    for directory in SYSTEM_PATH.split(":"):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def preflight(bin_dir: Path | None, node_bin_dir: Path | None) -> str | None:
    """Why a node cannot run on this machine (one line), or None when it can."""
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces, cgroups, containerd)"
    missing = [t for t in TOOLS if which(t) is None]
    if not RUNC.is_file():
        missing.append(str(RUNC))
    missing += [p for p in ("bridge", "host-local", "loopback") if not (CNI_BIN_DIR / p).is_file()]
    if missing:
        return (
            f"missing {', '.join(missing)} (apt-get install iproute2 iptables containerd runc"
            " containernetworking-plugins)"
        )
    if not (CGROUP_FS / "pids" / "cgroup.procs").is_file():
        return "needs the cgroup v1 pids hierarchy at /sys/fs/cgroup/pids"
    if bin_dir is None or node_bin_dir is None:
        return "no binaries (tools/controlplane/build.sh --node)"
    absent = [b for b in CORE_BINARIES if not (bin_dir / b).is_file()]
    absent += [b for b in NODE_BINARIES if not (node_bin_dir / b).is_file()]
    if absent:
        return f"binaries missing: {', '.join(absent)} (tools/controlplane/build.sh --node)"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot create namespaces: {probe.stderr.strip()}"
    return None


@dataclass
class Proc:
    """A child process of the harness, logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def ns_inode(pid: int, kind: str) -> int | None:
    """The inode of a process's namespace of `kind` (net, mnt): equal inodes, same namespace."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def processes_in(namespaces: set[int]) -> list[str]:
    """Processes in any of the given network or mount namespaces (by inode)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            if namespaces & {ns_inode(pid, "net"), ns_inode(pid, "mnt")}:
                with contextlib.suppress(OSError):
                    found.append(f"process {pid} ({(entry / 'comm').read_text().strip()})")
    return found


def host_network_snapshot() -> dict[str, str]:
    """The host's interfaces, addresses, routes, forwarding and iptables rules (reads only)."""
    commands = {
        "links": ["ip", "-o", "link", "show"],
        "addresses": ["ip", "-o", "addr", "show"],
        "routes": ["ip", "route", "show", "table", "all"],
        "routes6": ["ip", "-6", "route", "show", "table", "all"],
        "iptables": ["iptables-save"],
    }
    snapshot: dict[str, str] = {}
    for key, argv in commands.items():
        if which(argv[0]) is None:
            continue
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        # iptables-save stamps each dump and counts packets; the rules are what matters.
        snapshot[key] = "\n".join(
            re.sub(r"\[\d+:\d+\]", "", line)
            for line in out.splitlines()
            if not line.startswith("#")
        )
    snapshot["ip_forward"] = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    return snapshot


def mounts_of(state_dir: Path, namespaces: set[int]) -> list[str]:
    """Host mount-table entries under `state_dir` or of the given namespaces (nsfs)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(str(state_dir)) or any(f"net:[{i}]" in line for i in namespaces):
            found.append(f"mount {point}")
    return found


class CgroupTree:
    """One cgroup subtree of the same name in every cgroup v1 hierarchy (the kubelet's
    cgroupRoot); its pids hierarchy lists every process of the node, containers included."""

    def __init__(self, name: str) -> None:
        self.name = name.strip("/")

    @property
    def root(self) -> str:
        return f"/{self.name}"

    def path(self, hierarchy: str, sub: str = "") -> Path:
        return CGROUP_FS / hierarchy / self.name / sub

    @staticmethod
    def hierarchies() -> list[str]:
        """The cgroup v1 hierarchies mounted under /sys/fs/cgroup (not the unified one)."""
        names = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup" and fields[4].startswith(f"{CGROUP_FS}/"):
                names.append(Path(fields[4]).name)
        return sorted(set(names))

    def create(self, *subs: str) -> None:
        for hierarchy in self.hierarchies():
            directory = self.path(hierarchy)
            directory.mkdir()
            if hierarchy == "cpuset":  # v1 cpusets start empty; no task can join those
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (directory / knob).write_text((directory.parent / knob).read_text())
        for sub in subs:
            self.path("pids", sub).mkdir()

    def pids(self, sub: str = "") -> set[int]:
        found: set[int] = set()
        root = self.path("pids", sub)
        if root.is_dir():
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    found.update(int(line) for line in procs.read_text().split())
        return found

    def kill(self, sub: str = "", *, keep: set[int] | None = None, within: float = 20) -> None:
        """SIGKILL every process in the subtree `sub` (except `keep`), by PID, until empty."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pids = self.pids(sub) - (keep or set())
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def dirs(self) -> list[Path]:
        return [p for p in CGROUP_FS.glob(f"*/{self.name}") if p.is_dir()]

    def remove(self) -> None:
        """rmdir the subtree, deepest first, in every hierarchy (only empty cgroups go)."""
        for top in self.dirs():
            children = [p for p in top.rglob("*") if p.is_dir()]
            for directory in [*sorted(children, key=lambda p: -len(p.parts)), top]:
                with contextlib.suppress(OSError):
                    directory.rmdir()


def reap_stale() -> list[str]:
    """Remove nodes whose owner died without tearing them down (a killed pytest): their
    processes by PID from their cgroup, then the cgroups; their namespaces and mounts go with
    the last process. Nodes of live owners are left alone."""
    reaped = []
    for top in CGROUP_FS.glob(f"pids/{CGROUP_PREFIX}*"):
        owner = top.name.removeprefix(CGROUP_PREFIX).split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            tree = CgroupTree(top.name)
            tree.kill()
            tree.remove()
            reaped.append(top.name)
    reap_shim_sockets()
    return reaped


def reap_shim_sockets(
    directory: Path = SHIM_SOCKETS, *, keep_dirs: bool | None = None
) -> list[str]:
    """Remove the shim sockets in `directory` that nobody listens on any more (a live node's
    answer, so they stay), then `directory` and its parent once empty — unless `keep_dirs`,
    which by default is whether a containerd runs on this host (they may be its)."""
    removed = []
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.is_socket() and not _listening(entry):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(str(entry))
    if keep_dirs is None:
        keep_dirs = _process_named("containerd")
    if not keep_dirs:
        for empty in (directory, directory.parent):
            with contextlib.suppress(OSError):
                empty.rmdir()
    return removed


def _listening(path: Path) -> bool:
    """Whether a process accepts connections on the Unix socket `path` (local IPC only)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # cannot tell (permissions, a busy backlog): leave it
    return True


def _process_named(name: str) -> bool:
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == name:
                return True
    return False
