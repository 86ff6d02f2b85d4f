"""What each component of the single-node cluster is told (tools/node/localnode.py): the
addresses of the private network namespace, config files, and command lines.

Every path lives under the node's state directory, every address inside its network
namespace. The settings that this machine kind needs (see docs/e2e-node.md) carry a why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nodepki import NodePKI

CNI_BIN_DIR = Path("/usr/lib/cni")
RUNC = Path("/usr/sbin/runc")
#: PATH for the components: iptables, ip, runc and the containerd shim live in sbin dirs.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Addresses:
    """The node's network, all inside its namespace (no route leaves it)."""

    node_ip: str = "10.200.0.1"
    peer_ip: str = "10.200.0.2"  # the veth's other end, also inside: it only gives a carrier
    prefix: int = 24
    pod_cidr: str = "10.244.0.0/24"
    service_cidr: str = "10.96.0.0/16"
    first_service_ip: str = "10.96.0.1"
    apiserver_port: int = 6443

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{self.apiserver_port}"


@dataclass(frozen=True)
class Layout:
    """Where the node keeps its state; one directory, removed after teardown."""

    state: Path

    def __post_init__(self) -> None:
        for sub in ("logs", "pki", "etc", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    def kubeconfig(self, client: str) -> Path:
        return self.etc / f"{client}.kubeconfig"


def etcd_argv(bin_dir: Path, layout: Layout) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        "--name=node",
        f"--data-dir={layout.state / 'etcd'}",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=node=http://127.0.0.1:2380",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        "--unsafe-no-fsync=true",  # throwaway data
        "--log-level=warn",
    ]


def apiserver_argv(bin_dir: Path, layout: Layout, pki: NodePKI, net: Addresses) -> list[str]:
    p = pki.path
    return [
        str(bin_dir / "kube-apiserver"),
        "--etcd-servers=http://127.0.0.1:2379",
        # All interfaces of the namespace: the node IP (the `kubernetes` Service's endpoint)
        # and its loopback. Nothing outside the namespace can reach either.
        "--bind-address=0.0.0.0",
        f"--advertise-address={net.node_ip}",
        f"--secure-port={net.apiserver_port}",
        f"--cert-dir={layout.state / 'apiserver-certs'}",
        f"--tls-cert-file={p('apiserver.crt')}",
        f"--tls-private-key-file={p('apiserver.key')}",
        f"--client-ca-file={pki.ca}",
        f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p('sa.pub')}",
        f"--service-account-signing-key-file={p('sa.key')}",
        f"--service-cluster-ip-range={net.service_cidr}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        # There is no DNS in the namespace: reach the kubelet (exec, logs) by the node IP.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--allow-privileged=true",
        "--profiling=false",
    ]


def controller_manager_argv(
    bin_dir: Path, layout: Layout, pki: NodePKI, net: Addresses
) -> list[str]:
    kubeconfig = layout.kubeconfig("controller-manager")
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        f"--service-account-private-key-file={pki.path('sa.key')}",
        f"--root-ca-file={pki.ca}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={net.service_cidr}",
        f"--cluster-signing-cert-file={pki.ca}",
        f"--cluster-signing-key-file={pki.path('ca.key')}",
        "--profiling=false",
    ]


def scheduler_argv(bin_dir: Path, layout: Layout) -> list[str]:
    kubeconfig = layout.kubeconfig("scheduler")
    return [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--profiling=false",
    ]


def write_containerd_config(layout: Layout, *, sandbox_image: str) -> Path:
    root = layout.containerd_root
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[{cri}]
  sandbox_image = "{sandbox_image}"
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which root lacks here; without this every
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{layout.state / "cni" / "net.d"}"
  max_conf_num = 1

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  Root = "{root / "runc"}"
  # cgroupfs: there is no systemd here (and crun refuses the cgroup v1 hybrid layout).
  SystemdCgroup = false

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
"""
    path = layout.etc / "containerd.toml"
    path.write_text(text)
    return path


def write_cni_config(layout: Layout, net: Addresses) -> Path:
    """bridge + host-local; pods' default route leads into the node namespace and ends there."""
    config = {
        "cniVersion": "1.0.0",
        "name": "inventory-sync-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.state / "cni" / "ipam"),
                },
            }
        ],
    }
    path = layout.state / "cni" / "net.d" / "10-bridge.conflist"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def write_kubelet_config(layout: Layout, pki: NodePKI, net: Addresses, *, cgroup_root: str) -> Path:
    resolv = layout.etc / "resolv.conf"
    # No cluster DNS and no route out: pods get a resolver that answers nothing, fast.
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca)},
        },
        "authorization": {"mode": "Webhook"},
        "address": net.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(pki.path("kubelet.crt")),
        "tlsPrivateKeyFile": str(pki.path("kubelet.key")),
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        # A cgroup subtree of our own: teardown finds every container process in it.
        "cgroupRoot": cgroup_root,
        # Kubernetes 1.35 refuses cgroup v1 unless told otherwise; this machine has v1.
        "failCgroupV1": False,
        "resolvConf": str(resolv),
        "clusterDomain": "cluster.local",
        "podLogsDir": str(layout.state / "pod-logs"),
        "failSwapOn": False,
        "maxPods": 60,
        "serializeImagePulls": False,
        # A shared disk of a busy machine must not evict the test pods or our images.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }
    path = layout.etc / "kubelet.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def kubelet_argv(
    node_bin_dir: Path, layout: Layout, net: Addresses, *, node_name: str
) -> list[str]:
    return [
        str(node_bin_dir / "kubelet"),
        f"--config={layout.etc / 'kubelet.json'}",
        f"--kubeconfig={layout.kubeconfig('kubelet-client')}",
        f"--root-dir={layout.state / 'kubelet'}",
        f"--hostname-override={node_name}",
        f"--node-ip={net.node_ip}",
    ]


def write_kube_proxy_config(layout: Layout, net: Addresses, *, node_name: str) -> Path:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "clusterCIDR": net.pod_cidr,
        "hostnameOverride": node_name,
        "bindAddress": net.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Raising nf_conntrack limits is a host-wide change (and needs CAP_SYS_RESOURCE
        # semantics we lack); zero means "leave the kernel's values alone".
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    path = layout.etc / "kube-proxy.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def kube_proxy_argv(node_bin_dir: Path, layout: Layout) -> list[str]:
    return [str(node_bin_dir / "kube-proxy"), f"--config={layout.etc / 'kube-proxy.json'}"]


def containerd_argv(layout: Layout) -> list[str]:
    return ["containerd", f"--config={layout.etc / 'containerd.toml'}"]
