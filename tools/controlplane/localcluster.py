"""A throwaway Kubernetes control plane (etcd + kube-apiserver) on loopback.

The binaries come from tools/controlplane/build.sh. There is no controller-manager
and no scheduler. So namespaces never finish deleting, nothing is garbage-collected,
no default ServiceAccounts are created, and pods never run. The API surface,
admission, CEL validation and RBAC are real.

Authentication uses a static token file, and client certificates signed by the
cluster's CA (``issue_client_certificate``). There are two token identities:

* ``admin``: group ``system:masters``, which bypasses RBAC.
* ``operator``: it stands for the operator's ServiceAccount. The user is
  ``system:serviceaccount:<ns>:<sa>``, so RoleBindings whose subject is
  ``kind: ServiceAccount`` apply to it exactly as they would in a real cluster.

Certificates are made with the ``cryptography`` package.

Use it as a library (``LocalCluster``), or from the CLI:
``python localcluster.py start|stop|status|env --state-dir DIR`` (``env`` prints the
``export KUBECONFIG=... PATH=...`` line for ``eval``).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import functools
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
DEFAULT_NAMESPACE = "inventory-sync-system"
DEFAULT_SERVICE_ACCOUNT = "inventory-sync-operator"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
START_ATTEMPTS = 5
STATE_FILE = "cluster.json"


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, reached or stopped."""


class PortClashError(ControlPlaneError):
    """A component lost the race for a port picked as free; retrying helps."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Identity:
    """A static-token identity known to the apiserver."""

    user: str
    token: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach a running cluster. JSON-serialisable via ``asdict``."""

    server: str
    ca_path: str
    admin_kubeconfig: str
    operator_kubeconfig: str
    kubectl: str
    helm: str | None
    operator_namespace: str
    operator_service_account: str
    admin_token: str | None
    operator_token: str
    expected_version: str | None  # the pinned gitVersion; None for external clusters
    state_dir: str
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> ClusterInfo:
        data = json.loads((state_dir / STATE_FILE).read_text())
        return cls(**data)

    def save(self) -> None:
        path = Path(self.state_dir) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        path.chmod(0o600)  # it contains bearer tokens

    def request(
        self, method: str, path: str, *, token: str | None = None, body: object = None
    ) -> tuple[int, Any]:
        """Call the API; the token defaults to the operator's. Returns (status, JSON)."""
        return api_request(
            self.server, self.ca_path, token or self.operator_token, method, path, body
        )

    def kubectl_run(
        self, *args: str, operator: bool = False, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the admin (default) or as the operator identity."""
        config = self.operator_kubeconfig if operator else self.admin_kubeconfig
        cache = str(Path(self.state_dir) / "kubectl-cache")
        return run_kubectl(
            self.kubectl, config, list(args), stdin=stdin, check=check, cache_dir=cache
        )


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A currently free loopback port. It can be taken before use, so callers retry."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ssl_context(ca_path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_path)


def api_request(
    server: str, ca_path: str, token: str | None, method: str, path: str, body: object = None
) -> tuple[int, Any]:
    """A minimal JSON request to the apiserver. HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ssl_context(ca_path), timeout=10) as resp:
            return resp.status, _json_or_text(resp.read())
    except urllib.error.HTTPError as err:
        with err:  # an unclosed HTTPError is a ResourceWarning
            return err.code, _json_or_text(err.read())


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def run_kubectl(
    kubectl: str,
    kubeconfig: str,
    args: list[str],
    *,
    stdin: str | None = None,
    check: bool = True,
    cache_dir: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run kubectl; ``cache_dir`` keeps its discovery cache out of ~/.kube."""
    cache = ["--cache-dir", cache_dir] if cache_dir else []
    result = subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, *cache, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise ControlPlaneError(f"kubectl {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result


def wait_until(
    what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.1
) -> None:
    """Poll ``predicate()`` until it returns true, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def default_bin_dir() -> Path:
    """The version-keyed bin dir of build.sh (without building anything)."""
    out = subprocess.run(
        [str(HERE / "build.sh"), "--print-bin-dir"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def pinned_k8s_version() -> str:
    for line in (HERE / "versions.env").read_text().splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split("=", 1)[1].strip()
    raise ControlPlaneError("K8S_VERSION missing from versions.env")


# --------------------------------------------------------------------------- PKI


def _write_private_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


def write_pki(directory: Path) -> None:
    """A CA, a serving cert for localhost/127.0.0.1/::1 and the SA signing key pair."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _certificate("inventory-sync-local-ca", ca_key, None, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = (
        _certificate("kube-apiserver", serving_key, ca_cert, ca_key)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    # Kept so tests can mint client certificates (--client-ca-file is this same CA).
    _write_private_key(directory / "ca.key", ca_key)
    (directory / "apiserver.crt").write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_private_key(directory / "apiserver.key", serving_key)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private_key(directory / "sa.key", sa_key)
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def issue_client_certificate(
    state_dir: Path, user: str, groups: Sequence[str] = (), *, days: int = 1
) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a client certificate the apiserver accepts as `user`
    in `groups` (CN and O, as kubeadm and kind issue them)."""
    ca_cert = x509.load_pem_x509_certificate((state_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((state_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        + [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([x509.OID_CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def write_token_file(path: Path, identities: Sequence[Identity]) -> None:
    """The CSV format of --token-auth-file: token,user,uid,"group1,group2"."""
    lines = [
        f'{ident.token},{ident.user},{ident.user},"{",".join(ident.groups)}"'
        for ident in identities
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def write_kubeconfig(
    path: Path, server: str, ca_path: str, users: dict[str, str], current: str
) -> None:
    """A kubeconfig with one context per (name -> token). JSON is valid YAML."""
    ca_data = base64.b64encode(Path(ca_path).read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority-data": ca_data}}
        ],
        "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "local", "user": name}} for name in users
        ],
        "current-context": current,
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- processes


@dataclass
class _Process:
    """One control-plane component writing its output to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    detach: bool
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A detached cluster must survive its launcher and the terminal's ^C.
                start_new_session=self.detach,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def check_alive(self) -> None:
        """Raise (PortClashError if it lost a port race) when the process has exited."""
        if self.popen is None or self.popen.poll() is None:
            return
        tail = self.log_tail()
        if "address already in use" in tail:
            raise PortClashError(f"{self.name}: port clash")
        raise ControlPlaneError(
            f"{self.name} exited with code {self.popen.returncode}; log {self.log_path}:\n{tail}"
        )

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None


def _http_ok(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> bool:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=context, timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as err:
        err.close()
        return False
    except (OSError, ssl.SSLError):
        return False


# --------------------------------------------------------------------------- cluster


class LocalCluster:
    """etcd + kube-apiserver as child processes; see the module docstring."""

    def __init__(
        self,
        bin_dir: Path,
        state_dir: Path,
        *,
        operator_namespace: str = DEFAULT_NAMESPACE,
        operator_service_account: str = DEFAULT_SERVICE_ACCOUNT,
        start_timeout: float = 60.0,
        detach: bool = False,
    ) -> None:
        self.bin_dir = bin_dir
        self.state_dir = state_dir
        self.start_timeout = start_timeout
        self.detach = detach
        self.admin = Identity("admin", secrets.token_hex(24), ("system:masters",))
        self.operator = Identity(
            f"system:serviceaccount:{operator_namespace}:{operator_service_account}",
            secrets.token_hex(24),
            ("system:serviceaccounts", f"system:serviceaccounts:{operator_namespace}"),
        )
        self.operator_namespace = operator_namespace
        self.operator_service_account = operator_service_account
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._etcd_url = ""
        self._api_port = 0
        self.info: ClusterInfo | None = None

    # -- public API

    def start(self) -> ClusterInfo:
        """Start both processes; retry with fresh ports when a port race is lost."""
        for name in ("kube-apiserver", "etcd", "kubectl"):
            if not (self.bin_dir / name).is_file():
                raise ControlPlaneError(f"{self.bin_dir / name} missing; run build.sh")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_pki(self.state_dir)
        write_token_file(self.state_dir / "tokens.csv", [self.admin, self.operator])
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_once()
            except PortClashError:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Terminate the apiserver first (it would log etcd errors otherwise), then etcd."""
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                proc.stop()
        self._apiserver = self._etcd = None

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only (etcd keeps the data): clients see refused connections."""
        if self._apiserver is not None:
            self._apiserver.stop()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port and etcd, and wait until it is ready."""
        info = self._require_info()
        self._apiserver = _Process(
            "kube-apiserver",
            self._apiserver_argv(self._etcd_url, self._api_port),
            self.state_dir / "apiserver.log",
            self.detach,
        )
        self._apiserver.start()
        self._wait_ready(info)

    def apply_crds(self, directory: Path) -> list[str]:
        """Apply every YAML in ``directory`` and wait until its CRDs are Established."""
        info = self._require_info()
        return apply_and_wait_established(info, directory)

    def __enter__(self) -> ClusterInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals

    def _require_info(self) -> ClusterInfo:
        if self.info is None:
            raise ControlPlaneError("cluster not started")
        return self.info

    def _start_once(self) -> ClusterInfo:
        etcd_port, peer_port, api_port = self._distinct_ports(3)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._etcd_url, self._api_port = etcd_url, api_port
        shutil.rmtree(self.state_dir / "etcd-data", ignore_errors=True)
        self._etcd = _Process(
            "etcd", self._etcd_argv(etcd_url, peer_port), self.state_dir / "etcd.log", self.detach
        )
        self._etcd.start()
        self._wait_for("etcd /health", self._etcd, lambda: _http_ok(f"{etcd_url}/health"))
        server = f"https://127.0.0.1:{api_port}"
        self._apiserver = _Process(
            "kube-apiserver",
            self._apiserver_argv(etcd_url, api_port),
            self.state_dir / "apiserver.log",
            self.detach,
        )
        self._apiserver.start()
        self.info = self._write_info(server)
        self._wait_ready(self.info)
        self.info.save()
        return self.info

    @staticmethod
    def _distinct_ports(count: int) -> list[int]:
        ports: set[int] = set()
        while len(ports) < count:
            ports.add(free_port())
        return sorted(ports)

    def _wait_for(self, what: str, proc: _Process, probe: Callable[[], bool]) -> None:
        def ready() -> bool:
            proc.check_alive()  # fail fast instead of waiting for the timeout
            return probe()

        wait_until(what, ready, self.start_timeout)

    def _wait_ready(self, info: ClusterInfo) -> None:
        assert self._apiserver is not None
        context = ssl_context(info.ca_path)
        token = self.admin.token
        # Anonymous /healthz can be 403 until RBAC is bootstrapped; the admin token is not.
        self._wait_for(
            "kube-apiserver /readyz",
            self._apiserver,
            lambda: _http_ok(f"{info.server}/readyz", context, token),
        )
        # The `default` namespace is created by a post-start hook shortly after readyz.
        self._wait_for(
            "namespace default",
            self._apiserver,
            lambda: _http_ok(f"{info.server}/api/v1/namespaces/default", context, token),
        )

    def _etcd_argv(self, client_url: str, peer_port: int) -> list[str]:
        peer_url = f"http://127.0.0.1:{peer_port}"
        return [
            str(self.bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={self.state_dir / 'etcd-data'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync=true",  # throwaway data: durability buys nothing
            "--log-level=warn",
        ]

    def _apiserver_argv(self, etcd_url: str, port: int) -> list[str]:
        s = self.state_dir
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            # Explicit, otherwise a loopback bind falls back to the host's default
            # route interface, which fails on hosts without one.
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={s / 'apiserver-certs'}",
            f"--tls-cert-file={s / 'apiserver.crt'}",
            f"--tls-private-key-file={s / 'apiserver.key'}",
            f"--service-account-issuer=https://127.0.0.1:{port}",
            f"--service-account-key-file={s / 'sa.pub'}",
            f"--service-account-signing-key-file={s / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={s / 'tokens.csv'}",
            f"--client-ca-file={s / 'ca.crt'}",  # client certificates: issue_client_certificate
            # No controller creates `default` ServiceAccounts, so this plugin would
            # reject every pod.
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            # The loopback advertise address is not a valid Endpoints IP; without a
            # controller-manager nothing needs the `kubernetes` Service endpoints.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]

    def _write_info(self, server: str) -> ClusterInfo:
        s = self.state_dir
        ca = str(s / "ca.crt")
        admin_cfg, operator_cfg = s / "admin.kubeconfig", s / "operator.kubeconfig"
        # The admin kubeconfig also carries the operator context for quick checks
        # (`kubectl --context operator auth can-i ...`).
        write_kubeconfig(
            admin_cfg,
            server,
            ca,
            {"admin": self.admin.token, "operator": self.operator.token},
            "admin",
        )
        write_kubeconfig(operator_cfg, server, ca, {"operator": self.operator.token}, "operator")
        helm = self.bin_dir / "helm"
        assert self._etcd is not None
        assert self._apiserver is not None
        return ClusterInfo(
            server=server,
            ca_path=ca,
            admin_kubeconfig=str(admin_cfg),
            operator_kubeconfig=str(operator_cfg),
            kubectl=str(self.bin_dir / "kubectl"),
            helm=str(helm) if helm.is_file() else None,
            operator_namespace=self.operator_namespace,
            operator_service_account=self.operator_service_account,
            admin_token=self.admin.token,
            operator_token=self.operator.token,
            expected_version=pinned_k8s_version(),
            state_dir=str(s),
            pids={"kube-apiserver": self._apiserver.pid, "etcd": self._etcd.pid},
        )


def apply_and_wait_established(info: ClusterInfo, directory: Path, timeout: int = 60) -> list[str]:
    """``kubectl apply`` a directory as the admin; wait for the CRDs among it."""
    if not any(directory.glob("*.y*ml")):
        return []
    # Server-side apply: big CRDs overflow the last-applied annotation of client-side apply.
    out = info.kubectl_run(
        "apply", "--server-side", "--force-conflicts", "-f", str(directory), "-o", "name"
    )
    crds = [n for n in out.stdout.split() if n.startswith("customresourcedefinition")]
    if crds:
        info.kubectl_run("wait", "--for=condition=Established", f"--timeout={timeout}s", *crds)
    return crds


# --------------------------------------------------------------------------- detached mode


def _pid_runs(pid: int, exe: str) -> bool:
    """True if ``pid`` is alive and still runs ``exe`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].decode(errors="replace") == exe


def _pid_gone(pid: int, exe: str) -> bool:
    return not _pid_runs(pid, exe)


def stop_detached(state_dir: Path, timeout: float = 20.0) -> list[str]:
    """Stop a cluster started with ``start`` (by the pids in its state file)."""
    try:
        info = ClusterInfo.load(state_dir)
    except FileNotFoundError:
        return []
    bin_dir = Path(info.kubectl).parent
    stopped = []
    for name in ("kube-apiserver", "etcd"):
        pid = info.pids.get(name)
        exe = str(bin_dir / name)
        if pid is None or not _pid_runs(pid, exe):
            continue
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(f"{name} to exit", functools.partial(_pid_gone, pid, exe), timeout)
        except ControlPlaneError:
            os.kill(pid, signal.SIGKILL)
        stopped.append(name)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def detached_status(state_dir: Path) -> tuple[bool, str]:
    """(healthy, one-line description) of a detached cluster."""
    try:
        info = ClusterInfo.load(state_dir)
    except FileNotFoundError:
        return False, f"no cluster state in {state_dir}"
    bin_dir = Path(info.kubectl).parent
    dead = [n for n, p in info.pids.items() if not _pid_runs(p, str(bin_dir / n))]
    if dead:
        return False, f"not running ({', '.join(dead)} gone); state in {state_dir}"
    if not _http_ok(f"{info.server}/readyz", ssl_context(info.ca_path), info.admin_token):
        return False, f"processes alive but {info.server}/readyz is not ok"
    return True, f"running at {info.server} (pids {info.pids})"


def usage_text(info: ClusterInfo, stop_cmd: str) -> str:
    ns, sa = info.operator_namespace, info.operator_service_account
    return f"""\
Local control plane running at {info.server} (state: {info.state_dir})

  {env_text(info).strip()}
  kubectl get ns                       # as admin (system:masters)
  kubectl --context operator auth can-i list secrets -n {ns}   # as the operator identity

Try the operator end to end (from the repository root, after `make demo` or `make venv`):
  kubectl create namespace {ns}
  kubectl apply -f manifests/rbac.yaml       # the operator's RBAC (crds/ is already applied)
  .venv/bin/inventory-sync simulate &        # simulated GreenLake and Central on 127.0.0.1:8089
  KUBECONFIG=$OPERATOR_KUBECONFIG .venv/bin/inventory-sync run &
                                    # the operator as system:serviceaccount:{ns}:{sa}
  kubectl apply -f examples/demo.yaml -f examples/fabric.yaml
  kubectl get syncschedules,fabrics -o wide
  .venv/bin/inventory-sync trigger syncschedule/demo --wait

No controller-manager runs: namespaces never finish deleting, pods never start.
Stop it with:
  {stop_cmd}
"""


def _cli_start(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    healthy, _ = detached_status(state_dir)
    if healthy:
        info = ClusterInfo.load(state_dir)
    else:
        stop_detached(state_dir)  # leftovers of a crashed run
        bin_dir = args.bin_dir or default_bin_dir()
        cluster = LocalCluster(
            bin_dir,
            state_dir,
            operator_namespace=args.namespace,
            operator_service_account=args.service_account,
            detach=True,
        )
        try:
            info = cluster.start()
            crds_dir: Path | None = args.crds
            if crds_dir is not None and crds_dir.is_dir():
                cluster.apply_crds(crds_dir)
        except BaseException:
            cluster.stop()
            raise
        # The children stay up after we exit (own session); init reaps them.
    stop_cmd = (
        args.stop_command or f"python {Path(__file__).resolve()} stop --state-dir {state_dir}"
    )
    print(usage_text(info, stop_cmd))
    return 0


def _cli_stop(args: argparse.Namespace) -> int:
    stopped = stop_detached(args.state_dir.resolve())
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def env_text(info: ClusterInfo) -> str:
    """Shell lines that point kubectl at a running cluster (for `eval`)."""
    bin_dir = shlex.quote(str(Path(info.kubectl).parent))
    return (
        f"export KUBECONFIG={shlex.quote(info.admin_kubeconfig)}"
        f" OPERATOR_KUBECONFIG={shlex.quote(info.operator_kubeconfig)}"
        f' PATH={bin_dir}:"$PATH"\n'
    )


def _cli_env(args: argparse.Namespace) -> int:
    healthy, text = detached_status(args.state_dir.resolve())
    if not healthy:
        print(f"localcluster: {text}", file=sys.stderr)
        return 1
    print(env_text(ClusterInfo.load(args.state_dir.resolve())), end="")
    return 0


def _cli_status(args: argparse.Namespace) -> int:
    healthy, text = detached_status(args.state_dir.resolve())
    print(text)
    return 0 if healthy else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (
        ("start", _cli_start),
        ("stop", _cli_stop),
        ("status", _cli_status),
        ("env", _cli_env),
    )
    for name, func in commands:
        cmd = sub.add_parser(name)
        cmd.set_defaults(func=func)
        cmd.add_argument("--state-dir", type=Path, required=True)
        if name == "start":
            cmd.add_argument("--bin-dir", type=Path, help="default: build.sh --print-bin-dir")
            cmd.add_argument("--namespace", default=DEFAULT_NAMESPACE)
            cmd.add_argument("--service-account", default=DEFAULT_SERVICE_ACCOUNT)
            cmd.add_argument("--crds", type=Path, help="directory of CRD YAML to apply")
            cmd.add_argument("--stop-command", help="stop command to print (for wrappers)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except ControlPlaneError as err:
        print(f"localcluster: error: {err}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
