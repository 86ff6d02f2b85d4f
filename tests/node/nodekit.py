"""Helpers for the tests on the real node: kubectl with JSON, waiting, PostgreSQL and the
simulator as pods, and installs of the operator (Helm or kustomize).

Everything goes through `LocalNode.run` — kubectl in the node's network namespace, `kubectl
exec` into pods, and the apiserver's proxy to pods and services — so the test process sends
no packet of its own anywhere.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from localnode import LocalNode

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "inventory-sync-operator"
GROUP_VERSION = "inventorysync.dev/v1alpha1"
WORKSPACE = "3f1c2a4e-demo-workspace"
SIMULATOR_PORT = 8089
#: Full names: Hedgehog's CRDs put their kinds in a category named `fabric`, so a bare
#: `kubectl get fabric` lists those instead of ours.
SYNC_SCHEDULES = "syncschedules.inventorysync.dev"
FABRICS = "fabrics.inventorysync.dev"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, within: float, what: str, every: float = 1.0) -> T:
    """Poll until `probe` returns something truthy; AssertionError naming `what` otherwise."""
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {within:.0f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(every)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Kube:
    """kubectl on the node, with JSON and the apiserver's proxy."""

    node: LocalNode

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.node.kubectl(*args, input=input, check=check).stdout

    def get(self, *args: str) -> dict[str, Any]:
        out = self.node.kubectl("get", *args, "-o", "json").stdout
        data: dict[str, Any] = json.loads(out)
        return data

    def maybe_get(self, *args: str) -> dict[str, Any] | None:
        proc = self.node.kubectl("get", *args, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def apply(self, *objects: dict[str, Any], server_side: bool = True) -> None:
        manifest = "\n---\n".join(yaml.safe_dump(o) for o in objects)
        args = ["apply", "-f", "-"] + (["--server-side"] if server_side else [])
        self.node.kubectl(*args, input=manifest)

    def raw(self, path: str) -> str:
        """GET through the apiserver (e.g. its proxy to a pod port)."""
        return self.node.kubectl("get", "--raw", path).stdout

    def post_raw(self, path: str, body: Any) -> str:
        return self.node.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(body)).stdout

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        return name

    def events(self, namespace: str, reason: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("events", "-n", namespace)["items"]
        return [e for e in items if reason is None or e.get("reason") == reason]

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("pods", "-n", namespace, "-l", selector)["items"]
        return items

    def wait_rollout(self, namespace: str, deployment: str, timeout: str = "240s") -> None:
        self.kubectl(
            "rollout", "status", f"deployment/{deployment}", "-n", namespace, f"--timeout={timeout}"
        )

    def exec(self, namespace: str, target: str, *command: str, container: str | None = None) -> str:
        args = ["exec", "-n", namespace, target]
        args += ["-c", container] if container else []
        return self.node.kubectl(*args, "--", *command).stdout


@dataclass
class PostgresPod:
    """PostgreSQL from the Debian-built image, as a pod behind a ClusterIP Service."""

    kube: Kube
    namespace: str
    host: str
    password: str

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres:{self.password}@{self.host}:5432/{database}"

    def query(self, sql: str, database: str = "postgres") -> list[list[str]]:
        out = self.kube.exec(
            self.namespace, "deploy/postgres", "psql", "-h", "/tmp", "-U", "postgres",
            "-d", database, "-v", "ON_ERROR_STOP=1", "-AtF", "\t", "-c", sql,
        )  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def scalar(self, sql: str, database: str) -> str:
        rows = self.query(sql, database)
        (row,) = rows
        (value,) = row
        return value

    def create_database(self, prefix: str = "e2e") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        self.query(f"CREATE DATABASE {name}")
        return name

    def runs(self, database: str, uid: str | None = None) -> list[dict[str, str]]:
        """sync_runs rows (oldest first), every column as text ('' for NULL). `holder` (which
        replica ran it) is '' on a schema from before run leases (the upgrade test's)."""
        columns = ("id", "resource_name", "trigger", "state", "scheduled_at", "started_at",
                   "finished_at", "error")  # fmt: skip
        select = ", ".join(f"coalesce(r.{c}::text, '')" for c in columns)
        select += ", coalesce(to_jsonb(r)->>'holder', '')"
        where = f"WHERE resource_uid = '{uid}'" if uid else ""
        rows = self.query(f"SELECT {select} FROM sync_runs r {where} ORDER BY id", database)
        return [dict(zip((*columns, "holder"), row, strict=True)) for row in rows]


@dataclass
class SimulatorPod:
    """`inventory-sync simulate --tls` in a pod behind a Service: in a cluster, upstream URLs
    must be https, and the simulator's certificate names the Service IP (there is no DNS)."""

    kube: Kube
    namespace: str
    host: str
    ca_pem: str
    client_id: str = "demo-client"
    client_secret: str = "demo-secret-not-real"
    _proxy: str = field(init=False, default="")

    def __post_init__(self) -> None:
        service = f"https:simulator:{SIMULATOR_PORT}"  # the apiserver proxies over TLS
        self._proxy = f"/api/v1/namespaces/{self.namespace}/services/{service}/proxy"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{SIMULATOR_PORT}"

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.kube.raw(f"{self._proxy}/_simulator/stats"))
        return data

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.kube.post_raw(f"{self._proxy}/_simulator/faults", rules)

    def reset(self) -> None:
        self.kube.post_raw(f"{self._proxy}/_simulator/reset", {})

    def ca_configmap(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CA_CONFIGMAP, "namespace": namespace},
            "data": {"ca.crt": self.ca_pem},
        }


#: How an operator learns to trust the simulator's CA: docs/deploy.md, "Upstreams behind a
#: private CA" — a ConfigMap, the chart's extraVolumes/extraVolumeMounts, SSL_CERT_FILE.
CA_CONFIGMAP = "simulator-ca"
CA_DIR = "/etc/inventory-sync/ca"
CA_VOLUME = {"name": "upstream-ca", "configMap": {"name": CA_CONFIGMAP}}
CA_MOUNT = {"name": "upstream-ca", "mountPath": CA_DIR, "readOnly": True}
CA_ENV = {"name": "SSL_CERT_FILE", "value": f"{CA_DIR}/ca.crt"}
TRUST_SIMULATOR = (
    "--set-json", f"extraVolumes={json.dumps([CA_VOLUME])}",
    "--set-json", f"extraVolumeMounts={json.dumps([CA_MOUNT])}",
    "--set-json", f"operator.extraEnv={json.dumps([CA_ENV])}",
)  # fmt: skip


def trust_simulator_patch() -> str:
    """The same as a strategic-merge patch of the Deployment, for installs without those
    values (manifests/ without an overlay, the chart before 0.2.0)."""
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [CA_VOLUME],
                    "containers": [
                        {"name": "operator", "volumeMounts": [CA_MOUNT], "env": [CA_ENV]}
                    ],
                }
            }
        }
    }
    return json.dumps(patch)


@dataclass
class Cluster(Kube):
    """The node plus the shared pods: PostgreSQL and the simulator."""

    postgres: PostgresPod
    simulator: SimulatorPod


def schedule(
    sim: SimulatorPod, name: str, namespace: str, *, interval: str = "15m", **spec: Any
) -> dict[str, Any]:
    """The demo's SyncSchedule (examples/demo.yaml) pointed at the simulator pod."""
    demo = yaml.safe_load_all((REPO / "examples" / "demo.yaml").read_text())
    body = next(d for d in demo if d["kind"] == "SyncSchedule")
    for source in body["spec"]["sources"]:
        connection = source.get("greenlake") or source.get("arubaCentral")
        connection["endpoint"] = sim.url
        connection["tokenUrl"] = f"{sim.url}/as/token.oauth2"
        connection["credentialsSecretRef"] = {"name": "glp-demo-credentials"}
    body["metadata"] = {"name": name, "namespace": namespace}
    # The CRD wants timeout <= interval; the demo's 5m suits its 15m interval only.
    body["spec"].update(interval=interval, timeout="1m" if interval == "1m" else "5m", **spec)
    return dict(body)


def credentials_secret(sim: SimulatorPod, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "glp-demo-credentials", "namespace": namespace},
        "stringData": {"client_id": sim.client_id, "client_secret": sim.client_secret},
    }


def database_secret(pg: PostgresPod, namespace: str, database: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "inventory-sync-database", "namespace": namespace},
        "stringData": {"url": pg.dsn(database)},
    }


def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    conditions = ((body or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def ready(cluster: Kube, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    body = cluster.maybe_get(kind, name, "-n", namespace)
    found = condition(body, "Ready")
    return body if found and found["status"] == "True" else None


def request_run(cluster: Kube, kind: str, namespace: str, name: str) -> str:
    """What `inventory-sync trigger` does: set reconcile.fluxcd.io/requestedAt."""
    stamp = now_iso()
    cluster.kubectl(
        "annotate",
        kind,
        name,
        "-n",
        namespace,
        f"reconcile.fluxcd.io/requestedAt={stamp}",
        "--overwrite",
    )
    return stamp


def wait_ready(
    cluster: Kube, kind: str, namespace: str, name: str, *, within: float
) -> dict[str, Any]:
    try:
        return eventually(
            lambda: ready(cluster, kind, namespace, name),
            within=within,
            what=f"{kind}/{name} Ready",
        )
    except AssertionError as error:  # say what the resource says
        body = cluster.maybe_get(kind, name, "-n", namespace) or {}
        status = json.dumps(body.get("status"), indent=1)[:4000]
        raise AssertionError(f"{error}; its status: {status}") from None


def wait_handled(
    cluster: Kube, kind: str, namespace: str, name: str, stamp: str, *, within: float
) -> dict[str, Any]:
    """The body once status says the run requested at `stamp` is done."""

    def handled() -> dict[str, Any] | None:
        body = cluster.maybe_get(kind, name, "-n", namespace)
        status = (body or {}).get("status") or {}
        return body if status.get("lastHandledReconcileAt") == stamp else None

    return eventually(handled, within=within, what=f"the run of {kind}/{name} requested at {stamp}")


@dataclass
class Release:
    """An installed operator: its namespace, its own database, its pods."""

    cluster: Cluster
    namespace: str
    database: str
    name: str = "inventory-sync-operator"

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name}"

    def live_pods(self) -> list[dict[str, Any]]:
        pods = self.cluster.pods(self.namespace, self.selector)
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def pod(self) -> dict[str, Any]:
        pods = self.live_pods()
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        return pods[0]

    def runs(self, uid: str | None = None) -> list[dict[str, str]]:
        return self.cluster.postgres.runs(self.database, uid)


@contextlib.contextmanager
def installed(
    cluster: Cluster, prefix: str, *helm_args: str, chart: Path = CHART
) -> Iterator[Release]:
    """`helm install` into a fresh namespace with its own database (and the simulator's CA in
    a ConfigMap, for TRUST_SIMULATOR); uninstalled afterwards."""
    namespace = cluster.namespace(prefix)
    database = cluster.postgres.create_database()
    cluster.apply(
        database_secret(cluster.postgres, namespace, database),
        cluster.simulator.ca_configmap(namespace),
    )
    release = Release(cluster, namespace, database)
    cluster.node.helm(
        "install", release.name, str(chart), "-n", namespace, "--wait", "--timeout=5m", *helm_args
    )
    try:
        yield release
    finally:
        cluster.node.helm("uninstall", release.name, "-n", namespace, "--wait", "--timeout=3m")
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
