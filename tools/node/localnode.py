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
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nodeconfig as cfg
from nodehost import (
    CGROUP_PREFIX,
    SHIM_SOCKETS,
    CgroupTree,
    NodeError,
    NodeLeftovers,
    NodeRefused,
    Proc,
    host_network_snapshot,
    mounts_of,
    ns_inode,
    preflight,
    processes_in,
    reap_stale,
    which,
)
from nodepki import NodePKI, write_kubeconfig, write_pki

__all__ = ["LocalNode", "NodeError", "NodeLeftovers", "NodeRefused", "preflight", "which"]


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
        self.cgroups = CgroupTree(f"{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}")
        self._procs: list[Proc] = []
        self._holder: Proc | None = None
        self._netns: int | None = None
        self._mntns: int | None = None
        self._host_before: dict[str, str] = {}
        self._shims_before: set[str] = set()
        self._run_dir_existed = SHIM_SOCKETS.parent.exists()  # again in start(), after reaping
        self.pki: NodePKI | None = None

    # ------------------------------------------------------------------ public

    def start(self) -> LocalNode:
        """Bring the node up (Ready, images imported); on any failure tear down and raise."""
        reap_stale()
        self._run_dir_existed = SHIM_SOCKETS.parent.exists()
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
        self.cgroups.kill("kubepods")
        self._stop_named(["containerd"], grace=20)
        self.cgroups.kill("system", keep={p.pid for p in self._procs if p.alive()})
        self._stop_named(["kube-apiserver"], grace=30)  # before etcd, or it hangs on SIGTERM
        self._stop_named(["etcd"], grace=20)
        if self._holder is not None:
            self._holder.stop(grace=5)
        self.cgroups.kill()  # anything left, by PID
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(0)  # reap our own children
        self._remove_shim_sockets()
        problems += self.leftovers()
        self.cgroups.remove()
        problems += [f"cgroup left: {p}" for p in self.cgroups.dirs()]
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
        return self._holder.pid

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
        argv = ["nsenter", f"--target={self._holder.pid}"]
        argv += ["--net"] if net else []
        argv += ["--mount"] if mount else []
        return [*argv, "--"]

    def _spawn(self, name: str, argv: Sequence[str], *, enter: bool = True) -> Proc:
        """Start `argv` in the node's pids cgroup and namespaces, logging to logs/<name>.log."""
        procs = self.cgroups.path("pids", "system") / "cgroup.procs"
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
        proc = Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def create_namespace(self) -> None:
        """The first step of start(): cgroups, the namespaces' holder, the network inside,
        and the isolation check (NodeRefused when a route leads out)."""
        self.cgroups.create("system")
        self._holder = self._spawn(
            "namespace-holder",
            ["unshare", "--net", "--mount", "--propagation", "private", "sleep", "infinity"],
            enter=False,
        )
        self._wait("the namespaces", lambda: self._holder_in_new_namespaces(), 10)
        self._netns = ns_inode(self._holder.pid, "net")
        self._mntns = ns_inode(self._holder.pid, "mnt")
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
        pid = self._holder.pid
        if not self._holder.alive():
            raise NodeError(f"the namespace holder exited: {self._holder.tail()}")
        return ns_inode(pid, "net") != ns_inode(os.getpid(), "net") and ns_inode(
            pid, "mnt"
        ) != ns_inode(os.getpid(), "mnt")

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
        cfg.write_kubelet_config(layout, self.pki, net, cgroup_root=self.cgroups.root)
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

    def _find(self, name: str) -> Proc | None:
        return next((p for p in self._procs if p.name == name), None)

    def _wait(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise NodeError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.2)

    def _wait_cmd(self, what: str, proc: Proc | None, argv: Sequence[str]) -> None:
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
            if not self.cgroups.pids("kubepods") and not self._shim_pids():
                return
            time.sleep(0.5)

    def _stop_named(self, names: Sequence[str], *, grace: float) -> None:
        for proc in self._procs:
            if proc.name in names:
                proc.stop(grace)

    def _shim_pids(self) -> set[int]:
        known = {p.pid for p in self._procs}
        return self.cgroups.pids("system") - known

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
        ours = {i for i in (self._netns, self._mntns) if i is not None}
        found = [f"{p} in the node's namespaces" for p in processes_in(ours)]
        found += [f"process {pid} in the node's cgroup" for pid in self.cgroups.pids()]
        found += mounts_of(self.state_dir, ours)
        after = host_network_snapshot()
        found += [f"host {k} changed" for k, v in self._host_before.items() if after.get(k) != v]
        return found
