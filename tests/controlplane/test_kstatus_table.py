"""The real kstatus and our Argo CD check read every state the operator leaves a resource in as
tests/health_states.py says: the objects are produced by the real operator against the real
API server and read back, then judged by `sigs.k8s.io/cli-utils` (tools/kstatus) and the Lua.

A few states last too briefly to catch (or need PostgreSQL stopped under the operator); the
table composes those with the operator's own status code, and kstatus judges them too.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory_sync.kube import KubeClient
from inventory_sync.models import API_VERSION
from inventory_sync.simulator import FaultRule, SimulatorConfig, ThreadedSimulator, start_in_thread
from inventory_sync.simulator.tls import TlsConfig, write_tls_files

from ..health_judges import argocd_health
from ..health_judges import kstatus as judge
from ..health_states import BY_ID, KINDS, STATES, HealthState, of_kind, says
from .harness import condition, eventually
from .hedgehog import WIRING, switch
from .operator_fixtures import create_secret, path, schedule

pytestmark = pytest.mark.controlplane

Body = dict[str, Any]


@pytest.fixture
def simulators() -> Iterator[dict[str, ThreadedSimulator]]:
    """One simulator per upstream behaviour (faults are per simulator): answering, slow
    (every Central page waits a minute: a run stays in flight), and failing (503)."""
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(start_in_thread(SimulatorConfig.small(scale=0.01)))
            for name in ("ok", "again", "slow", "failing")
        }
        running["slow"].state.faults.replace(
            [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=60, count=None)]
        )
        running["failing"].state.faults.replace(
            [FaultRule(kind="status", status=503, route="/devices/v1/devices", count=None)]
        )
        yield running


@pytest.fixture
async def namespace(test_namespace: str, admin: KubeClient) -> AsyncIterator[str]:
    """test_namespace, emptied of our resources afterwards: operators started later in this
    session must not run them (or wait on their slow upstreams)."""
    yield test_namespace
    for plural in ("syncschedules", "fabrics"):
        await admin.delete(path(test_namespace, plural))


@dataclass(frozen=True)
class Silent:
    """Where the silent API server listens, and the CA its certificate is signed by."""

    url: str
    ca_pem: bytes


@pytest.fixture
def silent_apiserver(tmp_path: Path) -> Iterator[Silent]:
    """An HTTPS server on loopback that completes TLS and takes requests but never answers: a
    Fabric reading a cluster through it stays in its run until the client's timeout (30 s,
    retried). It completes the handshake so that a cancelled run closes a connection that
    exists (a run cancelled mid-handshake leaks asyncio's transport)."""
    files = write_tls_files(TlsConfig(), tmp_path / "tls")
    context = files.server_context()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(5)
            try:
                held.append(context.wrap_socket(connection, server_side=True))
            except OSError:  # ssl.SSLError included: not our client
                connection.close()

    thread = threading.Thread(target=serve, name="silent-apiserver", daemon=True)
    thread.start()
    try:
        yield Silent(f"https://127.0.0.1:{listener.getsockname()[1]}", files.ca_file.read_bytes())
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


def verdicts(kstatus: Path, bodies: dict[str, Body]) -> list[str]:
    """Every row whose object kstatus or the Lua reads otherwise than the table says."""
    ids = list(bodies)
    found = judge(kstatus, [bodies[i] for i in ids])
    wrong = []
    for state_id, verdict in zip(ids, found, strict=True):
        state, body = BY_ID[state_id], bodies[state_id]
        health = argocd_health(body)
        got = (verdict["status"], health["status"])
        if got != (state.kstatus, state.argocd) or not (
            says(state.kstatus_says, verdict["message"], body)
            and says(state.argocd_says, health["message"], body)
        ):
            wrong.append(
                f"{body['kind']} {state_id!r}: kstatus {verdict}, Argo CD {health}; the table "
                f"says {state.kstatus} ({state.kstatus_says!r}) and {state.argocd} "
                f"({state.argocd_says!r}); generation {body['metadata']['generation']}, "
                f"status {_short(body.get('status') or {})}"
            )
    return wrong


def _short(status: Body) -> Body:
    """What the verdicts are made of, without per-source counts and history."""
    keep = ("observedGeneration", "conditions")
    return {k: v for k, v in status.items() if k in keep}


def produced(kind: str) -> set[str]:
    return {s.id for s in of_kind(kind) if not s.composed_only}


class Producer:
    """Creates resources and snapshots each one in the state a probe waits for."""

    def __init__(self, admin: KubeClient, namespace: str, plural: str) -> None:
        self.admin, self.namespace, self.plural = admin, namespace, plural
        self.bodies: dict[str, Body] = {}

    def url(self, name: str) -> str:
        return path(self.namespace, self.plural, name)

    async def create(self, body: Body) -> Body:
        created: Body = await self.admin.create(path(self.namespace, self.plural), body)
        return created

    async def until(self, name: str, probe: Callable[[Body], bool], what: str) -> Body:
        async def matching() -> Body | None:
            body = await self.admin.get(self.url(name))
            return body if body is not None and probe(body) else None

        found: Body = await eventually(matching, within=60, what=f"{name}: {what}")
        return found

    async def snapshot(self, state: str, name: str, probe: Callable[[Body], bool]) -> None:
        """The object as it is once `probe` holds, kept as the table's `state`."""
        assert state in BY_ID, state
        self.bodies[state] = await self.until(name, probe, state)


def is_true(kind: str) -> Callable[[Body], bool]:
    return lambda body: (condition(body, kind) or {}).get("status") == "True"


def ready_reason(reason: str) -> Callable[[Body], bool]:
    return lambda body: (condition(body, "Ready") or {}).get("reason") == reason


def observed(generation: int) -> Callable[[Body], bool]:
    return lambda body: (body.get("status") or {}).get("observedGeneration") == generation


def reconciling_at(generation: int) -> Callable[[Body], bool]:
    return lambda body: (
        is_true("Reconciling")(body) and body["metadata"]["generation"] == (generation)
    )


async def trigger(admin: KubeClient, url: str, value: str) -> None:
    await admin.patch_merge(
        url, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": value}}}
    )


async def test_kstatus_and_argocd_read_every_syncschedule_state_as_the_table_says(
    namespace: str, operator: Any, admin: KubeClient, kstatus: Path,
    simulators: dict[str, ThreadedSimulator],
) -> None:  # fmt: skip
    make = Producer(admin, namespace, "syncschedules")
    await make.create(schedule(simulators["ok"], "never-seen"))
    await make.snapshot("just created, never seen by the operator", "never-seen", observed(-1))
    await admin.delete(make.url("never-seen"))
    await create_secret(admin, namespace, simulators["ok"])  # all simulators share the demo client
    operator()

    cycle = schedule(simulators["ok"], "cycle")
    subscriptions, devices, central = cycle["spec"]["sources"]
    subscriptions["dependsOn"], devices["dependsOn"] = ["central"], ["subscriptions"]
    central["dependsOn"] = ["devices"]
    no_secret = with_secret(schedule(simulators["ok"], "no-secret"), "absent")
    manual = with_secret(schedule(simulators["ok"], "manual"), "manual-credentials")
    client_id, client_secret = simulators["ok"].state.credentials()
    await admin.create(f"/api/v1/namespaces/{namespace}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "manual-credentials"},
        "stringData": {"client_id": client_id, "client_secret": client_secret},
    })  # fmt: skip
    for body in (
        schedule(simulators["ok"], "ok"),
        schedule(simulators["again"], "again"),
        schedule(simulators["ok"], "waiting", runOnStartup=False),
        schedule(simulators["ok"], "suspended", suspend=True),
        schedule(simulators["slow"], "slow"),
        schedule(simulators["failing"], "failing"),
        cycle,
        no_secret,
        manual,
    ):
        await make.create(body)

    await make.snapshot("first run in flight", "slow", reconciling_at(1))
    await admin.patch_merge(make.url("slow"), {"spec": {"interval": "30m"}})
    await make.snapshot("spec edited during a run", "slow", reconciling_at(2))
    await make.snapshot("succeeded", "ok", ready_reason("Succeeded"))
    await admin.patch_merge(make.url("ok"), {"spec": {"suspend": True}})
    await make.snapshot("suspended after a success", "ok", observed(2))
    await make.snapshot(
        "seen, its first run not due yet (runOnStartup: false)", "waiting", observed(1)
    )
    await make.snapshot("suspended before it ever ran", "suspended", observed(1))
    await make.snapshot("failed and retrying", "failing", ready_reason("SyncFailed"))
    await make.snapshot("stalled: a missing Secret", "no-secret", is_true("Stalled"))
    await make.snapshot("stalled: an invalid spec", "cycle", is_true("Stalled"))
    await make.until("manual", ready_reason("Succeeded"), "its first run")
    await admin.delete(f"/api/v1/namespaces/{namespace}/secrets/manual-credentials")
    await trigger(admin, make.url("manual"), "after-the-secret-went")
    await make.until("manual", is_true("Stalled"), "the stall answering the request")
    await asyncio.sleep(3)  # rechecks come every second here: none may call it fixed
    await make.snapshot(
        "stalled: a missing Secret, after a manual request was answered", "manual",
        is_true("Stalled"),
    )  # fmt: skip
    await make.until("again", ready_reason("Succeeded"), "its first run")
    simulators["again"].state.faults.replace(
        [FaultRule(kind="delay", route="/network-monitoring/*", delay_seconds=60, count=None)]
    )
    await trigger(admin, make.url("again"), "later-run")
    await make.snapshot("a later run in flight after a success", "again", is_true("Reconciling"))

    assert set(make.bodies) == produced("SyncSchedule")
    wrong = verdicts(kstatus, make.bodies)
    assert not wrong, "\n".join(wrong)


def with_secret(body: Body, secret: str) -> Body:
    """The schedule with every source's credentials in `secret`."""
    for source in body["spec"]["sources"]:
        connection = next(v for v in source.values() if isinstance(v, dict))
        connection["credentialsSecretRef"] = {"name": secret}
    return body


def fabric(name: str, namespace: str, **spec: Any) -> Body:
    kinds = [{"group": WIRING, "kind": "Switch"}]
    return {"apiVersion": API_VERSION, "kind": "Fabric", "metadata": {"name": name},
            "spec": {"interval": "5m", "namespaces": [namespace], "kinds": kinds, **spec}}  # fmt: skip


def read_text(name: str) -> str:
    return Path(name).read_text()


def kubeconfig_secret(name: str, kubeconfig: str, *, silent: Silent | None = None) -> Body:
    """A Fabric's kubeconfig Secret; with `silent`, pointed at the silent API server."""
    config = yaml.safe_load(kubeconfig)
    if silent is not None:
        for cluster in config["clusters"]:
            cluster["cluster"] = {
                "server": silent.url,
                "certificate-authority-data": base64.b64encode(silent.ca_pem).decode(),
            }
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"kubeconfig": yaml.safe_dump(config)}}  # fmt: skip


async def test_kstatus_and_argocd_read_every_fabric_state_as_the_table_says(
    namespace: str, operator: Any, admin: KubeClient, kstatus: Path, hedgehog_crds: Any,
    silent_apiserver: Silent,
) -> None:  # fmt: skip
    make = Producer(admin, namespace, "fabrics")
    await make.create(fabric("never-seen", namespace))
    await make.snapshot("just created, never seen by the operator", "never-seen", observed(-1))
    await admin.delete(make.url("never-seen"))
    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    await admin.create(f"/apis/{WIRING}/v1beta1/namespaces/{namespace}/switches",
                       switch("leaf-0", namespace))  # fmt: skip
    kubeconfig = read_text(hedgehog_crds.admin_kubeconfig)
    silent = silent_apiserver
    await admin.create(secrets, kubeconfig_secret("silent", kubeconfig, silent=silent))
    await admin.create(secrets, kubeconfig_secret("remote", kubeconfig))
    operator()

    for body in (
        fabric("ok", namespace),
        fabric("again", namespace, kubeconfigSecretRef={"name": "remote"}),
        fabric("suspended", namespace, suspend=True),
        fabric("slow", namespace, kubeconfigSecretRef={"name": "silent"}),
        fabric("failing", namespace, kinds=[{"group": "nothing.example.com", "kind": "Thing"}]),
        fabric("typo", namespace, kinds=[{"group": WIRING, "kind": "Swich"}]),
        fabric("no-secret", namespace, kubeconfigSecretRef={"name": "absent"}),
    ):
        await make.create(body)

    await make.snapshot("first run in flight", "slow", reconciling_at(1))
    await admin.patch_merge(make.url("slow"), {"spec": {"interval": "10m"}})
    await make.snapshot("spec edited during a run", "slow", reconciling_at(2))
    await make.snapshot("succeeded", "ok", ready_reason("Succeeded"))
    await admin.patch_merge(make.url("ok"), {"spec": {"suspend": True}})
    await make.snapshot("suspended after a success", "ok", observed(2))
    await make.snapshot("suspended before it ever ran", "suspended", observed(1))
    await make.snapshot("failed and retrying", "failing", ready_reason("SyncFailed"))
    await make.snapshot("stalled: a missing Secret", "no-secret", is_true("Stalled"))
    await make.snapshot("stalled: an invalid spec", "typo", is_true("Stalled"))
    await make.until("again", ready_reason("Succeeded"), "its first run")
    unanswering = kubeconfig_secret("remote", kubeconfig, silent=silent)["stringData"]
    await admin.patch_merge(f"{secrets}/remote", {"stringData": unanswering})
    await trigger(admin, make.url("again"), "later-run")
    await make.snapshot("a later run in flight after a success", "again", is_true("Reconciling"))

    assert set(make.bodies) == produced("Fabric")
    wrong = verdicts(kstatus, make.bodies)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", STATES, ids=lambda s: s.id)
def test_kstatus_reads_each_composed_state_as_the_table_says(
    kstatus: Path, kind: str, state: HealthState
) -> None:
    """The same rows, built by the operator's status code: covers the states too brief to catch
    for real, and fails without a cluster when the status code and the table part."""
    if kind not in state.kinds:
        pytest.skip(f"a {kind} has no such state")
    obj = state.compose(kind)
    (verdict,) = judge(kstatus, [obj])
    assert verdict["status"] == state.kstatus
    assert says(state.kstatus_says, verdict["message"], obj), verdict["message"]
