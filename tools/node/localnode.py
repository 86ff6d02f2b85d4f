"""A real single-node Kubernetes cluster in a private network namespace, for the node tests.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (runc), kubelet and
kube-proxy run as child processes inside one network namespace and one mount namespace that
the harness creates (held by a `sleep` process, so neither needs a name under /run/netns).
The namespace has `lo` and a veth pair with both ends inside, and no default route: before
anything starts, `ip route get 1.1.1.1` must fail inside it, or the harness refuses to run.
Pods get a bridge (CNI `bridge` + `host-local`), so their traffic ends in the namespace too.

Every process joins a pids cgroup of the node's own subtree, which is also the kubelet's
cgroupRoot: teardown stops the components in reverse order by PID, kills whatever is left in
that subtree, removes the cgroups, and then checks — and reports as NodeLeftovers — any
process still in the node's namespaces, any mount of its state or namespace in the host's
mount table, any cgroup left, and any change to the host's interfaces, routes or iptables.

Tests and users reach the cluster only through `LocalNode.run` (nsenter into the namespace):
kubectl, helm, and the apiserver's proxy to pods and services.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nodeconfig as cfg
from nodepki import NodePKI, write_kubeconfig, write_pki

CGROUP_FS = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "inventory-sync-node-"
SHIM_SOCKETS = Path("/run/containerd/s")
TOOLS = ("unshare", "nsenter", "ip", "iptables", "containerd", "containerd-shim-runc-v2", "ctr")
CORE_BINARIES = ("etcd", "kube-apiserver", "kubectl", "helm")
NODE_BINARIES = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause")


class NodeError(RuntimeError):
    """The node could not be started or used; messages carry the relevant log tail."""


class NodeRefused(NodeError):
    """The node's namespace would not be isolated (a route out): nothing was started."""


class NodeLeftovers(NodeError):
    """Teardown left something behind (processes, mounts, namespaces, cgroups, host changes)."""


def which(name: str) -> str | None:
    for directory in cfg.SYSTEM_PATH.split(":"):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def preflight(bin_dir: Path | None, node_bin_dir: Path | None) -> str | None:
    """Why a node cannot run on this machine (one line), or None when it can."""
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces, cgroups, containerd)"
    missing = [t for t in TOOLS if which(t) is None]
    if not cfg.RUNC.is_file():
        missing.append(str(cfg.RUNC))
    missing += [
        p for p in ("bridge", "host-local", "loopback") if not (cfg.CNI_BIN_DIR / p).is_file()
    ]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iproute2 iptables containerd runc containernetworking-plugins)"
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
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def host_network_snapshot() -> dict[str, str]:
    """The host's interfaces, routes, forwarding and iptables rules (reads only)."""
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


def _ns_inode(pid: int, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def reap_stale() -> list[str]:
    """Remove nodes whose owning process died without tearing them down (a killed pytest):
    SIGKILL the processes in their cgroup subtree by PID, then remove the cgroups. Their
    namespaces and mounts go with the last process. Nodes of live owners are left alone."""
    reaped = []
    for top in CGROUP_FS.glob(f"pids/{CGROUP_PREFIX}*"):
        owner = top.name.removeprefix(CGROUP_PREFIX).split("-")[0]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        for _ in range(50):
            pids: set[int] = set()
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(line) for line in procs.read_text().split())
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        for hierarchy_top in CGROUP_FS.glob(f"*/{top.name}"):
            dirs = sorted(
                (p for p in hierarchy_top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            )
            for directory in [*dirs, hierarchy_top]:
                with contextlib.suppress(OSError):
                    directory.rmdir()
        reaped.append(top.name)
    return reaped


@dataclass
class LocalNode:
    """See the module docstring. `start()`, then `run()`/`kubectl()`; `stop()` always."""

    bin_dir: Path
    node_bin_dir: Path
    state_dir: Path
    images: Sequence[Path] = ()
    node_name: str = "inventory-sync-node"
    net: cfg.Addresses = field(default_factory=cfg.Addresses)
    start_timeout: float = 180.0
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layout = cfg.Layout(self.state_dir)
        # The owner's PID in the name: a later run can tell a node whose owner was killed
        # (and so never tore it down) from a live one of another session.
        self.cgroup_root = f"/{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self._procs: list[_Proc] = []
        self._holder: _Proc | None = None
        self._netns: int | None = None
        self._mntns: int | None = None
        self._host_before: dict[str, str] = {}
        self._shims_before: set[str] = set()
        self._run_dir_existed = SHIM_SOCKETS.parent.exists()
        self.pki: NodePKI | None = None

    # ------------------------------------------------------------------ public

    def start(self) -> LocalNode:
        """Bring the node up (Ready, images imported); on any failure tear down and raise."""
        reap_stale()
        self._host_before = host_network_snapshot()
        self._shims_before = set(os.listdir(SHIM_SOCKETS)) if SHIM_SOCKETS.is_dir() else set()
        try:
            self._timed("namespace", self.create_namespace)
            self._timed("pki", self._write_configs)
            self._timed("control plane", self._start_control_plane)
            self._timed("containerd + images", self._start_containerd)
            self._timed("kubelet + kube-proxy", self._start_node)
        except BaseException:
            with contextlib.suppress(NodeError):
                self.stop()
            raise
        return self

    def stop(self) -> None:
        """Tear everything down; NodeLeftovers names whatever survived."""
        started = time.monotonic()
        problems: list[str] = []
        try:
            self._stop_workloads()
        except NodeError as error:
            problems.append(f"stopping workloads: {error}")
        order = ["kube-scheduler", "kube-controller-manager", "kube-proxy", "kubelet"]
        self._stop_named(order, grace=20)
        self._kill_cgroup("kubepods")
        self._stop_named(["containerd"], grace=20)
        self._kill_cgroup("system", keep={p.popen.pid for p in self._procs if p.alive()})
        self._stop_named(["kube-apiserver"], grace=30)  # before etcd, or it hangs on SIGTERM
        self._stop_named(["etcd"], grace=20)
        if self._holder is not None:
            self._holder.stop(grace=5)
        self._kill_cgroup("")  # anything left, by PID
        self._remove_shim_sockets()
        problems += self.leftovers()
        self._remove_cgroups()
        problems += [f"cgroup left: {p}" for p in self._cgroup_dirs()]
        self.timings["teardown"] = time.monotonic() - started
        if problems:
            raise NodeLeftovers("; ".join(problems))

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node's network namespace (kubectl, helm, ip, curl...)."""
        if self._holder is None or not self._holder.alive():
            raise NodeError("the node is not running")
        proc = subprocess.run(
            self._enter(net=True, mount=False) + list(argv),
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise NodeError(
                f"{' '.join(argv[:6])} exited {proc.returncode}:\n{proc.stderr.strip()[-3000:]}"
            )
        return proc

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            [str(self.bin_dir / "kubectl"), *args], input=input, check=check, timeout=timeout
        )

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.bin_dir / "helm"), *args], check=check, timeout=timeout)

    @property
    def namespace_holder_pid(self) -> int:
        """The process holding the node's namespaces (`nsenter --target=PID --net`)."""
        if self._holder is None:
            raise NodeError("the node has no namespaces yet")
        return self._holder.popen.pid

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """containerd's own CLI on the node's socket, namespace k8s.io (the kubelet's)."""
        argv = ["ctr", f"--address={self.layout.containerd_socket}", "--namespace=k8s.io", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        if check and proc.returncode != 0:
            raise NodeError(f"ctr {' '.join(args[:3])}: {proc.stderr.strip()}")
        return proc

    def import_image(self, archive: Path) -> None:
        """Make a docker-archive known to the kubelet (no registry: nothing is ever pulled)."""
        # From the host's mount namespace: containerd (in the node's) unpacks it.
        self.ctr("images", "import", str(archive))

    def kill_container(self, container_id: str, signal_name: str = "SIGKILL") -> None:
        """Signal a container's init process through containerd, as a crash or the OOM killer
        would end it (from inside the container, PID 1 cannot be killed)."""
        self.ctr(
            "tasks", "kill", "--signal", signal_name, container_id.removeprefix("containerd://")
        )

    def env(self) -> dict[str, str]:
        """Environment for commands in the node: admin kubeconfig; helm and kubectl caches
        under the state dir, never in the user's home."""
        state = self.state_dir
        return {
            "PATH": f"{self.bin_dir}:{cfg.SYSTEM_PATH}",
            "HOME": str(state / "home"),
            "KUBECONFIG": str(self.layout.kubeconfig("admin")),
            "KUBECACHEDIR": str(state / "home" / "kube-cache"),
            "HELM_CACHE_HOME": str(state / "home" / "helm-cache"),
            "HELM_CONFIG_HOME": str(state / "home" / "helm-config"),
            "HELM_DATA_HOME": str(state / "home" / "helm-data"),
            "LANG": "C.UTF-8",
        }

    def logs(self, name: str, lines: int = 40) -> str:
        for proc in self._procs:
            if proc.name == name:
                return proc.tail(lines)
        return ""

    # ------------------------------------------------------------------ start

    def _timed(self, label: str, step: Callable[[], None]) -> None:
        started = time.monotonic()
        step()
        self.timings[label] = time.monotonic() - started

    def _enter(self, *, net: bool, mount: bool) -> list[str]:
        assert self._holder is not None
        argv = ["nsenter", f"--target={self._holder.popen.pid}"]
        argv += ["--net"] if net else []
        argv += ["--mount"] if mount else []
        return [*argv, "--"]

    def _cgroup(self, hierarchy: str, sub: str = "") -> Path:
        return CGROUP_FS / hierarchy / self.cgroup_root.strip("/") / sub

    def _spawn(self, name: str, argv: Sequence[str], *, enter: bool = True) -> _Proc:
        """Start `argv` in the node's pids cgroup and namespaces, logging to logs/<name>.log."""
        procs = self._cgroup("pids", "system") / "cgroup.procs"
        prefix = self._enter(net=True, mount=True) if enter else []
        # The shell joins the cgroup, then execs (same PID) into nsenter and the component.
        wrapper = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), *prefix, *argv]
        log = self.layout.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                wrapper,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={
                    "PATH": cfg.SYSTEM_PATH,
                    "HOME": str(self.state_dir / "home"),
                    "LANG": "C.UTF-8",
                },
                start_new_session=True,  # the terminal's ^C reaches pytest, which tears down
            )
        proc = _Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def create_namespace(self) -> None:
        """The first step of start(): cgroups, the namespaces' holder, the network inside,
        and the isolation check (NodeRefused when a route leads out)."""
        for hierarchy in self._hierarchies():
            directory = self._cgroup(hierarchy)
            directory.mkdir()
            if hierarchy == "cpuset":  # v1 cpusets start empty; a task cannot join those
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (directory / knob).write_text((directory.parent / knob).read_text())
        self._cgroup("pids", "system").mkdir()
        self._holder = self._spawn(
            "namespace-holder",
            ["unshare", "--net", "--mount", "--propagation", "private", "sleep", "infinity"],
            enter=False,
        )
        self._wait("the namespaces", lambda: self._holder_in_new_namespaces(), 10)
        self._netns = _ns_inode(self._holder.popen.pid, "net")
        self._mntns = _ns_inode(self._holder.popen.pid, "mnt")
        net = self.net
        for command in (
            "link set lo up",
            "link add isn0 type veth peer name isn1",
            f"addr add {net.node_ip}/{net.prefix} dev isn0",
            f"addr add {net.peer_ip}/{net.prefix} dev isn1",
            "link set isn0 up",
            "link set isn1 up",
            # Service IPs for clients in the namespace itself (pods route via their bridge).
            f"route add {net.service_cidr} dev isn0 src {net.node_ip}",
        ):
            self.ip(command.split())
        self._sysctl("net.ipv4.ip_forward", "1")
        self._sysctl("net.bridge.bridge-nf-call-iptables", "1")
        self.check_isolated()

    def _holder_in_new_namespaces(self) -> bool:
        assert self._holder is not None
        pid = self._holder.popen.pid
        if not self._holder.alive():
            raise NodeError(f"the namespace holder exited: {self._holder.tail()}")
        return _ns_inode(pid, "net") != _ns_inode(os.getpid(), "net") and _ns_inode(
            pid, "mnt"
        ) != _ns_inode(os.getpid(), "mnt")

    def ip(self, args: Sequence[str]) -> str:
        """`ip ARGS` inside the node's network namespace."""
        proc = subprocess.run(
            [*self._enter(net=True, mount=False), "ip", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise NodeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def _sysctl(self, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        subprocess.run(
            [*self._enter(net=True, mount=False), "sh", "-c", f"echo {value} > {path}"],
            check=True,
        )

    def check_isolated(self) -> None:
        """The network rule: no route out of the namespace, checked before anything starts."""
        for argv in (["route", "get", "1.1.1.1"], ["-6", "route", "get", "2606:4700:4700::1111"]):
            proc = subprocess.run(
                [*self._enter(net=True, mount=False), "ip", *argv],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0 or "unreachable" not in proc.stderr.lower():
                raise NodeRefused(
                    f"refusing to run: `ip {' '.join(argv)}` inside the node namespace gave "
                    f"{proc.stdout.strip() or proc.stderr.strip()!r}; it must be unreachable"
                )
        if self.ip(["route", "show", "default"]).strip():
            raise NodeRefused("refusing to run: the node namespace has a default route")

    def _write_configs(self) -> None:
        net, layout = self.net, self.layout
        self.pki = write_pki(
            layout.state / "pki",
            node_name=self.node_name,
            node_ip=net.node_ip,
            first_service_ip=net.first_service_ip,
        )
        for client in ("admin", "controller-manager", "scheduler", "kube-proxy", "kubelet-client"):
            write_kubeconfig(
                layout.kubeconfig(client), server=net.server, pki=self.pki, client=client
            )
        (self.state_dir / "home").mkdir(exist_ok=True)
        sandbox = "registry.k8s.io/pause:" + (self.node_bin_dir / "pause.tag").read_text().strip()
        cfg.write_containerd_config(layout, sandbox_image=sandbox)
        cfg.write_cni_config(layout, net)
        cfg.write_kubelet_config(layout, self.pki, net, cgroup_root=self.cgroup_root)
        cfg.write_kube_proxy_config(layout, net, node_name=self.node_name)

    def _start_control_plane(self) -> None:
        assert self.pki is not None
        self._spawn("etcd", cfg.etcd_argv(self.bin_dir, self.layout))
        apiserver = self._spawn(
            "kube-apiserver", cfg.apiserver_argv(self.bin_dir, self.layout, self.pki, self.net)
        )
        self._wait_cmd(
            "kube-apiserver /readyz",
            apiserver,
            [str(self.bin_dir / "kubectl"), "get", "--raw", "/readyz"],
        )
        self._spawn(
            "kube-controller-manager",
            cfg.controller_manager_argv(self.node_bin_dir, self.layout, self.pki, self.net),
        )
        self._spawn("kube-scheduler", cfg.scheduler_argv(self.node_bin_dir, self.layout))

    def _start_containerd(self) -> None:
        containerd = self._spawn("containerd", cfg.containerd_argv(self.layout))
        ctr = ["ctr", f"--address={self.layout.containerd_socket}", "version"]
        self._wait_cmd("containerd", containerd, ctr)
        for archive in self.images:
            self.import_image(archive)

    def _start_node(self) -> None:
        kubelet = self._spawn(
            "kubelet",
            cfg.kubelet_argv(self.node_bin_dir, self.layout, self.net, node_name=self.node_name),
        )
        self._wait_cmd(
            f"node {self.node_name} Ready",
            kubelet,
            [
                str(self.bin_dir / "kubectl"),
                "wait",
                "--for=condition=Ready",
                f"node/{self.node_name}",
                "--timeout=5s",
            ],
        )
        self._spawn("kube-proxy", cfg.kube_proxy_argv(self.node_bin_dir, self.layout))
        kubectl = str(self.bin_dir / "kubectl")
        # Pods need the ServiceAccount the controller-manager creates, and kube-proxy's rules
        # for the `kubernetes` Service.
        self._wait_cmd(
            "the default ServiceAccount", None, [kubectl, "get", "serviceaccount", "default"]
        )
        self._wait_cmd(
            "kube-proxy's rules for the kubernetes Service",
            self._find("kube-proxy"),
            ["sh", "-c", f"iptables-save -t nat | grep -q -- '-d {self.net.first_service_ip}/32'"],
        )

    def _find(self, name: str) -> _Proc | None:
        return next((p for p in self._procs if p.name == name), None)

    def _wait(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise NodeError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.2)

    def _wait_cmd(self, what: str, proc: _Proc | None, argv: Sequence[str]) -> None:
        """Poll `argv` in the namespace until it succeeds; fail fast if `proc` died."""
        last = ""

        def ok() -> bool:
            nonlocal last
            for component in self._procs:
                if not component.alive() and component.name != "namespace-holder":
                    raise NodeError(f"{component.name} exited; log tail:\n{component.tail()}")
            result = self.run(argv, check=False, timeout=30)
            last = (result.stderr or result.stdout).strip()[-500:]
            return result.returncode == 0

        try:
            self._wait(what, ok, self.start_timeout)
        except NodeError as error:
            tail = proc.tail() if proc is not None else ""
            raise NodeError(f"{error} (last: {last})\n{tail}") from None

    # ------------------------------------------------------------------ teardown

    def _stop_workloads(self) -> None:
        """Let the kubelet stop every pod while it still can (no controller recreates them
        once the controller-manager is gone), so containerd's shims exit by themselves."""
        kubelet, apiserver = self._find("kubelet"), self._find("kube-apiserver")
        if not (kubelet and kubelet.alive() and apiserver and apiserver.alive()):
            return
        self._stop_named(["kube-scheduler", "kube-controller-manager"], grace=10)
        self.kubectl(
            "delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false",
            check=False, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if not self._cgroup_pids("kubepods") and not self._shim_pids():
                return
            time.sleep(0.5)

    def _stop_named(self, names: Sequence[str], *, grace: float) -> None:
        for proc in self._procs:
            if proc.name in names:
                proc.stop(grace)

    def _shim_pids(self) -> set[int]:
        known = {p.popen.pid for p in self._procs}
        return self._cgroup_pids("system") - known

    def _cgroup_pids(self, sub: str) -> set[int]:
        root = self._cgroup("pids", sub)
        pids: set[int] = set()
        if not root.is_dir():
            return pids
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(line) for line in procs.read_text().split())
        return pids

    def _kill_cgroup(self, sub: str, keep: set[int] | None = None) -> None:
        """SIGKILL every process in the node's pids cgroup `sub` (except `keep`), by PID."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = self._cgroup_pids(sub) - (keep or set())
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(0)  # reap our own children

    def _hierarchies(self) -> list[str]:
        """The cgroup v1 hierarchies mounted under /sys/fs/cgroup (not the unified one)."""
        names = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup" and fields[4].startswith(str(CGROUP_FS) + "/"):
                names.append(Path(fields[4]).name)
        return sorted(set(names))

    def _cgroup_dirs(self) -> list[Path]:
        return [p for p in CGROUP_FS.glob(f"*/{self.cgroup_root.strip('/')}") if p.is_dir()]

    def _remove_cgroups(self) -> None:
        for top in self._cgroup_dirs():
            children = sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            )
            for directory in [*children, top]:
                with contextlib.suppress(OSError):
                    directory.rmdir()

    def _remove_shim_sockets(self) -> None:
        """containerd 1.6 puts shim sockets under /run/containerd/s whatever its state dir;
        a shim killed by signal leaves its socket behind."""
        if SHIM_SOCKETS.is_dir():
            for name in set(os.listdir(SHIM_SOCKETS)) - self._shims_before:
                with contextlib.suppress(OSError):
                    (SHIM_SOCKETS / name).unlink()
        if not self._run_dir_existed:
            for directory in (SHIM_SOCKETS, SHIM_SOCKETS.parent):
                with contextlib.suppress(OSError):
                    directory.rmdir()

    def leftovers(self) -> list[str]:
        """What of the node is still there (empty after a clean teardown)."""
        found: list[str] = []
        ours = {i for i in (self._netns, self._mntns) if i is not None}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if ours & {_ns_inode(pid, "net"), _ns_inode(pid, "mnt")}:
                with contextlib.suppress(OSError):
                    comm = (entry / "comm").read_text().strip()
                    found.append(f"process {pid} ({comm}) in the node's namespaces")
        found += [f"process {pid} in the node's cgroup" for pid in self._cgroup_pids("")]
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(str(self.state_dir)) or any(f"net:[{i}]" in line for i in ours):
                found.append(f"mount {point}")
        after = host_network_snapshot()
        for key, before in self._host_before.items():
            if after.get(key) != before:
                found.append(f"host {key} changed")
        return found
