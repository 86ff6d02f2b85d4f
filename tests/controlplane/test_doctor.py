"""`inventory-sync doctor` against the real API server: one deliberately broken setup per check,
each found with the line a user would read and exit code 1, and a healthy setup that passes.

doctor runs as a user would run it, a separate process with a kubeconfig, and most tests scope
it to their own namespace (`-n`), since other tests leave their resources behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import pytest
import yaml
from localcluster import ClusterInfo, LocalCluster, apply_and_wait_established

from inventory_sync.kube import KubeClient
from inventory_sync.models import GROUP, VERSION
from inventory_sync.simulator import ThreadedSimulator
from inventory_sync.store.migrating import available_migrations

from . import test_operator as operator_tests
from .harness import can_i, condition, eventually, service_account_connection
from .test_operator import create_secret, path, schedule
from .test_rbac_errors import RBAC_API, repo_cluster_role, without

pytestmark = pytest.mark.controlplane


REPO = Path(__file__).resolve().parents[2]
# A value that must never reach doctor's output, whatever it reports about its Secret.
SECRET_VALUE = "do-not-print-7f3a9c"


class Doctor(NamedTuple):
    code: int
    out: str
    lines: list[str]
    checks: list[dict[str, Any]]  # the same run's --output json

    def line(self, start: str) -> str:
        """The one line starting with `start` (level, check and subject)."""
        found = [line for line in self.lines if line.startswith(start)]
        assert len(found) == 1, f"{start!r} in:\n{self.out}"
        return found[0]

    def levels(self, check: str) -> set[str]:
        return {c["level"] for c in self.checks if c["check"] == check}


def run_doctor(kubeconfig: str, *args: str) -> Doctor:
    """`inventory-sync doctor ARGS` twice, as text and as JSON; both must agree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_SYNC_")}
    command = [sys.executable, "-m", "inventory_sync", "doctor", "--kubeconfig", kubeconfig, *args]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    text, as_json = run(), run("--output", "json")
    assert text.returncode == as_json.returncode, (text.stdout, text.stderr)
    assert text.returncode in (0, 1), text.stderr  # 2 would be bad input
    checks = json.loads(as_json.stdout)["checks"]
    lines = text.stdout.splitlines()
    assert len(lines) == len(checks) + 1  # one line per check, then the summary
    return Doctor(text.returncode, text.stdout + text.stderr, lines, checks)


@pytest.fixture
async def namespace(test_namespace: str, admin: KubeClient) -> AsyncIterator[str]:
    """test_namespace, emptied of our resources afterwards (operators of later tests watch all)."""
    yield test_namespace
    await admin.delete(path(test_namespace))
    await admin.delete(path(test_namespace, "fabrics"))


def operator_account(control_plane: ClusterInfo) -> str:
    return f"{control_plane.operator_namespace}/{control_plane.operator_service_account}"


async def create(admin: KubeClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    if body["kind"] == "Secret":
        return await admin.create(f"/api/v1/namespaces/{namespace}/secrets", body)
    plural = "fabrics" if body["kind"] == "Fabric" else "syncschedules"
    return await admin.create(path(namespace, plural), body)


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def fabric(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Fabric",
        "metadata": {"name": name},
        "spec": {"interval": "5m", **spec},
    }


def load_yaml(path: str) -> Any:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- healthy


async def test_a_healthy_installation_passes_every_check(
    control_plane: ClusterInfo, hedgehog_crds: ClusterInfo, operator: Any, admin: KubeClient,
    namespace: str, simulator: ThreadedSimulator, database_url: str,
) -> None:  # fmt: skip
    await create_secret(admin, namespace, simulator)
    await create(admin, namespace, schedule(simulator))
    await create(admin, namespace, fabric("local", namespaces=[namespace]))
    operator()  # migrates the database, then runs both
    for plural, name in (("syncschedules", "inventory"), ("fabrics", "local")):
        await eventually(
            lambda p=plural, n=name: operator_tests.ready(admin, namespace, n, plural=p),
            within=40, what=f"{plural}/{name} Ready",
        )  # fmt: skip
    tokens_before = simulator.state.tokens.issued

    doctor = run_doctor(
        control_plane.admin_kubeconfig, "-n", namespace, "--as-operator",
        operator_account(control_plane), "--database-url", database_url, "--check-credentials",
    )  # fmt: skip

    assert doctor.code == 0, doctor.out
    assert {c["level"] for c in doctor.checks} == {"PASS"}, doctor.out
    assert "schema matches this build" in doctor.line(
        "PASS  crds        syncschedules.inventorysync"
    )
    assert doctor.line("PASS  rbac        identity").endswith(
        f"reviewing the rights of ServiceAccount {operator_account(control_plane)} (the operator)"
    )
    assert doctor.line("PASS  rbac        fabrics.inventorysync.dev").endswith(
        f"the operator may get, list, watch in namespace {namespace}"
    )
    assert "may list the 12 kind(s) it reads" in doctor.line(
        f"PASS  rbac        Fabric {namespace}/local"
    )
    newest = max(m.version for m in available_migrations())
    assert f"at {newest:04d}" in doctor.line("PASS  database    schema")
    assert "accepted the credentials" in doctor.line(f"PASS  credentials {simulator.token_url}")
    assert doctor.line("PASS  resources   status").endswith(
        f"1 SyncSchedule(s), 1 Fabric(s) in namespace {namespace}: none stuck or stalled"
    )
    # Three sources share one client: one token request per doctor run, whatever the number
    # of sources (run_doctor runs it twice, for text and JSON).
    assert simulator.state.tokens.issued == tokens_before + 2


async def test_run_in_the_operators_pod_it_reviews_its_own_rights(
    control_plane: ClusterInfo, operator_rbac: None, namespace: str
) -> None:
    doctor = run_doctor(control_plane.operator_kubeconfig, "-n", namespace)

    assert doctor.code == 0, doctor.out
    user = f"system:serviceaccount:{operator_account(control_plane).replace('/', ':')}"
    assert doctor.line("PASS  rbac        identity").endswith(
        f"reviewing your own rights as {user}"
    )
    assert doctor.levels("rbac") == {"PASS"}
    assert doctor.line("WARN  database    connection")  # no URL: not checked, never embedded


# --------------------------------------------------------------------------- CRDs


@pytest.fixture(scope="module")
def bare_cluster(
    control_plane: ClusterInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterInfo]:
    """A second, private API server without our CRDs (removing them from the shared one would
    delete every other test's resources)."""
    if control_plane.expected_version is None:
        pytest.skip("needs a local control plane to start a private one")
    cluster = LocalCluster(Path(control_plane.kubectl).parent, tmp_path_factory.mktemp("bare"))
    info = cluster.start()
    try:
        yield info
    finally:
        cluster.stop()


def old_crd(tmp: Path) -> Path:
    """syncschedules as an older release shipped it: no classic Central sources, no history."""
    body = yaml.safe_load((REPO / "crds" / "inventorysync.dev_syncschedules.yaml").read_text())
    schema = body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    source = schema["spec"]["properties"]["sources"]["items"]
    del source["properties"]["arubaCentralClassic"]
    source.pop("x-kubernetes-validations", None)  # its rule names the field removed
    del schema["status"]["properties"]["history"]
    directory = tmp / "old"
    directory.mkdir()
    (directory / "syncschedules.yaml").write_text(yaml.safe_dump(body))
    return directory


def test_missing_then_old_crds_fail_with_the_upgrade_command(
    bare_cluster: ClusterInfo, tmp_path: Path
) -> None:
    missing = run_doctor(bare_cluster.admin_kubeconfig)
    assert missing.code == 1
    for crd in ("fabrics", "syncschedules"):
        assert missing.line(f"FAIL  crds        {crd}.inventorysync.dev").endswith(
            "not installed: kubectl apply --server-side -f crds/ (docs/deploy.md: Upgrading and "
            "the CRDs)"
        )

    apply_and_wait_established(bare_cluster, old_crd(tmp_path))
    old = run_doctor(bare_cluster.admin_kubeconfig)
    assert old.code == 1
    line = old.line("FAIL  crds        syncschedules.inventorysync.dev")
    assert "v1alpha1 is older than this build: it lacks" in line
    assert "spec.sources[].arubaCentralClassic" in line
    assert "status.history" in line
    assert line.endswith("Apply this build's CRDs: kubectl apply --server-side -f crds/ "
                         "(docs/deploy.md: Upgrading and the CRDs)")  # fmt: skip

    apply_and_wait_established(bare_cluster, REPO / "crds")
    upgraded = run_doctor(bare_cluster.admin_kubeconfig)
    assert upgraded.levels("crds") == {"PASS"}, upgraded.out
    assert upgraded.code == 0, upgraded.out


# --------------------------------------------------------------------------- RBAC


async def _bind_reduced_role(
    control_plane: ClusterInfo, admin: KubeClient, namespace: str, *, taken: list[tuple[str, str]]
) -> str:
    """A ServiceAccount bound to the repository's ClusterRole without each (resource, verb) of
    `taken`; returns NAMESPACE/NAME. Waits until the binding is in effect."""
    name = f"doctor-reduced-{namespace}"[:63]
    rules = repo_cluster_role()["rules"]
    for resource, verb in taken:
        rules = without(rules, resource=resource, verb=verb)
    meta = {"name": name}
    await admin.create(f"{RBAC_API}/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta,
        "rules": rules,
    })  # fmt: skip
    await admin.create(f"{RBAC_API}/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
    })  # fmt: skip
    connection = await service_account_connection(
        admin, server=control_plane.server, ca_file=control_plane.ca_path,
        namespace=namespace, name="operator",
    )  # fmt: skip
    async with KubeClient(connection) as client:

        async def bound() -> bool:
            return await can_i(client, "get", "secrets", namespace=namespace)

        await eventually(bound, within=10, what="the binding to take effect")
    return f"{namespace}/operator"


async def test_a_missing_verb_fails_and_a_missing_secret_patch_warns_for_classic_central(
    control_plane: ClusterInfo, hedgehog_crds: ClusterInfo, admin: KubeClient, namespace: str,
    simulator: ThreadedSimulator,
) -> None:  # fmt: skip
    account = await _bind_reduced_role(
        control_plane, admin, namespace, taken=[("fabrics", "watch"), ("*", "list")]
    )
    await create(admin, namespace, fabric("local", namespaces=[namespace]))
    await create(admin, namespace, secret("classic", client_id="c", client_secret="s",
                                          refresh_token=SECRET_VALUE))  # fmt: skip
    from .test_classic_permission import classic_schedule

    await create(admin, namespace, classic_schedule(simulator))

    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace, "--as-operator", account)

    assert doctor.code == 1
    assert doctor.line("FAIL  rbac        fabrics.inventorysync.dev").startswith(
        f"FAIL  rbac        fabrics.inventorysync.dev: the operator may not watch in namespace "
        f"{namespace} (kopf lists and watches them"
    )
    assert doctor.line("PASS  rbac        syncschedules.inventorysync.dev")
    local = doctor.line(f"FAIL  rbac        Fabric {namespace}/local")
    assert (
        f"but the operator may not list vpcs.vpc.githedgehog.com in namespace {namespace};" in local
    )
    assert local.endswith(": Helm --set rbac.hedgehog.enabled=true")
    patch = doctor.line(f"WARN  rbac        secrets (patch) {namespace}/classic")
    assert "may not patch it, but classic Central source(s) classic/classic" in patch
    assert "--set rbac.writeRotatedTokens=true" in patch
    assert SECRET_VALUE not in doctor.out

    # What rbac.writeRotatedTokens=true grants, for this namespace.
    meta = {"name": "write-rotated-tokens", "namespace": namespace}
    await admin.create(f"{RBAC_API}/namespaces/{namespace}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["patch"]}],
    })  # fmt: skip
    await admin.create(f"{RBAC_API}/namespaces/{namespace}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "write-rotated-tokens"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
    })  # fmt: skip

    async def granted() -> Doctor | None:
        again = run_doctor(
            control_plane.admin_kubeconfig, "-n", namespace, "--as-operator", account
        )
        return (
            again
            if any(line.startswith("PASS  rbac        secrets (patch)") for line in again.lines)
            else None
        )

    await eventually(granted, within=15, what="the patch grant to be seen")


# --------------------------------------------------------------------------- Secrets


async def test_a_missing_secret_a_missing_key_and_a_refused_kubeconfig_fail_without_values(
    control_plane: ClusterInfo, admin: KubeClient, namespace: str, simulator: ThreadedSimulator
) -> None:
    await create(admin, namespace, schedule(simulator, name="no-secret"))  # glp-credentials: absent
    await create(admin, namespace, secret("half", client_id=SECRET_VALUE))
    half = schedule(simulator, name="no-key")
    for source in half["spec"]["sources"]:
        next(iter(v for k, v in source.items() if k != "name"))["credentialsSecretRef"] = {
            "name": "half"
        }
    await create(admin, namespace, half)
    exec_kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "steal-" + SECRET_VALUE,
            "interactiveMode": "Never"}}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    })  # fmt: skip
    await create(admin, namespace, secret("remote", kubeconfig=exec_kubeconfig))
    await create(admin, namespace, fabric("remote", kubeconfigSecretRef={"name": "remote"}))

    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace)

    assert doctor.code == 1
    assert doctor.line(f"FAIL  secrets     SyncSchedule {namespace}/no-secret").endswith(
        f"Secret {namespace}/glp-credentials not found (needed by source central, source "
        "devices, source subscriptions for key(s) 'client_id', 'client_secret')"
    )
    assert doctor.line(f"FAIL  secrets     SyncSchedule {namespace}/no-key").endswith(
        f"Secret {namespace}/half: key 'client_secret' is missing (needed by source "
        "subscriptions, source devices, source central)"
    )
    assert "the operator would refuse this kubeconfig" in doctor.line(
        f"FAIL  secrets     Fabric {namespace}/remote"
    )
    assert "exec" in doctor.line(f"FAIL  secrets     Fabric {namespace}/remote")
    assert SECRET_VALUE not in doctor.out


# --------------------------------------------------------------------------- stuck or stalled


async def test_a_stalled_resource_fails_naming_why_and_since_when(
    control_plane: ClusterInfo, operator: Any, admin: KubeClient, namespace: str,
    simulator: ThreadedSimulator,
) -> None:  # fmt: skip
    await create(admin, namespace, schedule(simulator))  # its Secret does not exist
    operator()

    async def stalled() -> dict[str, Any] | None:
        found = condition(await admin.get(path(namespace, name="inventory")), "Stalled")
        return found if found and found["status"] == "True" else None

    found = await eventually(stalled, what="Stalled")
    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace)

    assert doctor.code == 1
    line = doctor.line(f"FAIL  resources   SyncSchedule {namespace}/inventory")
    assert f"Stalled since {found['lastTransitionTime']} (" in line
    assert f": {found['reason']}: Secret {namespace}/glp-credentials" in line
    (as_json,) = [c for c in doctor.checks if c["check"] == "resources" and c["level"] == "FAIL"]
    assert as_json["since"] == found["lastTransitionTime"]


async def test_a_run_left_in_flight_an_overdue_schedule_and_an_unobserved_edit(
    control_plane: ClusterInfo, admin: KubeClient, namespace: str, simulator: ThreadedSimulator
) -> None:
    """Status as an operator that died left it (no operator runs in this test)."""
    old, older = "2026-01-01T10:00:00Z", "2026-01-01T08:00:00Z"
    ready = {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok",
             "lastTransitionTime": older}  # fmt: skip
    statuses = {
        "in-flight": {"observedGeneration": 1, "nextSyncTime": old, "conditions": [ready, {
            "type": "Reconciling", "status": "True", "reason": "Progressing",
            "message": "run started", "lastTransitionTime": old}]},
        "overdue": {"observedGeneration": 1, "nextSyncTime": old, "conditions": [ready]},
        "edited": {"observedGeneration": 1, "nextSyncTime": "2099-01-01T00:00:00Z",
                   "conditions": [ready]},
    }  # fmt: skip
    for name, status in statuses.items():
        await create(admin, namespace, schedule(simulator, name=name))
        await admin.patch_merge(path(namespace, name=name) + "/status", {"status": status})
    await admin.patch_merge(path(namespace, name="edited"), {"spec": {"interval": "30m"}})

    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace)

    assert doctor.code == 1
    assert (
        f"a run has been in flight since {old} (" in doctor.line(
            f"FAIL  resources   SyncSchedule {namespace}/in-flight")
    )  # fmt: skip
    assert "its next run was due" in doctor.line(
        f"FAIL  resources   SyncSchedule {namespace}/overdue"
    )
    assert "generation 2 not acted on yet (observedGeneration 1)" in doctor.line(
        f"WARN  resources   SyncSchedule {namespace}/edited"
    )


# --------------------------------------------------------------------------- database


async def _migrate_all_but_the_last(url: str) -> None:
    """The schema an older build left: every shipped migration but the newest."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in available_migrations()[:-1]:
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version, migration.name,
            )  # fmt: skip
    finally:
        await connection.close()


async def test_a_database_behind_fails_ahead_warns_and_nothing_is_migrated(
    control_plane: ClusterInfo, database_url: str, namespace: str
) -> None:
    await _migrate_all_but_the_last(database_url)
    newest = available_migrations()[-1]

    behind = run_doctor(
        control_plane.admin_kubeconfig, "-n", namespace, "--database-url", database_url
    )

    assert behind.code == 1
    line = behind.line("FAIL  database    schema")
    assert (
        f"behind this build (at {available_migrations()[-2].version:04d}, this build ships "
        f"{newest.version:04d})" in line
    )
    assert f"{newest.version:04d}_{newest.name}" in line
    assert "inventory-sync migrate" in line
    connection = await asyncpg.connect(database_url)
    try:  # doctor only read: the newest migration is still not applied
        versions = {
            r["version"] for r in await connection.fetch("SELECT version FROM schema_migrations")
        }
        assert newest.version not in versions
        await connection.execute(
            "INSERT INTO schema_migrations VALUES ($1, $2)", newest.version, newest.name
        )
        await connection.execute("INSERT INTO schema_migrations VALUES (9999, 'from_the_future')")
    finally:
        await connection.close()

    ahead = run_doctor(
        control_plane.admin_kubeconfig, "-n", namespace, "--database-url", database_url
    )
    assert ahead.code == 0
    assert "ahead of this build: migration(s) 9999" in ahead.line("WARN  database    schema")


def test_an_unreachable_database_fails_without_its_password(
    control_plane: ClusterInfo, namespace: str
) -> None:
    url = f"postgresql://inventory:{SECRET_VALUE}@127.0.0.1:{closed_port()}/inventory"
    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace, "--database-url", url)

    assert doctor.code == 1
    assert doctor.line("FAIL  database    connection").startswith(
        "FAIL  database    connection: cannot connect to PostgreSQL at postgresql://inventory:***@127.0.0.1:"
    )
    assert SECRET_VALUE not in doctor.out


# --------------------------------------------------------------------------- credentials


async def test_refused_credentials_a_refusing_endpoint_and_a_forbidden_host_fail(
    control_plane: ClusterInfo, admin: KubeClient, namespace: str, simulator: ThreadedSimulator
) -> None:
    client_id, _ = simulator.state.credentials()
    await create(admin, namespace, secret("wrong", client_id=client_id, client_secret=SECRET_VALUE))
    port = closed_port()
    targets = {
        "wrong-secret": (simulator.url, simulator.token_url, "wrong"),
        "refusing": (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/token", "wrong"),
        "in-cluster": ("https://central.net.svc", "https://central.net.svc/token", "wrong"),
    }
    for name, (endpoint, token_url, secret_name) in targets.items():
        await create(admin, namespace, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "SyncSchedule", "metadata": {"name": name},
            "spec": {"interval": "15m", "sources": [{"name": "central", "arubaCentral": {
                "endpoint": endpoint, "tokenUrl": token_url, "workspaceId": "w",
                "credentialsSecretRef": {"name": secret_name}}}]},
        })  # fmt: skip
    tokens_before = simulator.state.tokens.issued

    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace, "--check-credentials")

    assert doctor.code == 1
    assert "client credentials refused" in doctor.line(
        f"FAIL  credentials {simulator.token_url} ({namespace}/wrong)"
    )
    assert f"connection refused by 127.0.0.1:{port}" in doctor.line(
        f"FAIL  credentials http://127.0.0.1:{port}/token ({namespace}/wrong)"
    )
    assert doctor.line(
        f"FAIL  credentials SyncSchedule {namespace}/in-cluster source central"
    ).endswith(
        "not sent: https://central.net.svc/: central.net.svc is an in-cluster service name; "
        "credentials go there only if INVENTORY_SYNC_ALLOWED_IN_CLUSTER_HOSTS (Helm: "
        "operator.allowedInClusterHosts) lists it"
    )
    assert simulator.state.tokens.issued == tokens_before  # refused: no token was issued
    assert SECRET_VALUE not in doctor.out


async def test_a_remote_fabric_is_reached_with_its_kubeconfig_and_a_bad_token_fails(
    control_plane: ClusterInfo, admin: KubeClient, namespace: str
) -> None:
    good = load_yaml(control_plane.operator_kubeconfig)
    bad = json.loads(json.dumps(good))
    bad["users"][0]["user"]["token"] = SECRET_VALUE
    for name, config in (("good", good), ("bad", bad)):
        await create(admin, namespace, secret(name, kubeconfig=yaml.safe_dump(config)))
        await create(admin, namespace, fabric(name, kubeconfigSecretRef={"name": name}))

    doctor = run_doctor(control_plane.admin_kubeconfig, "-n", namespace, "--check-credentials")

    assert doctor.code == 1
    assert "accepted the credentials" in doctor.line(f"PASS  credentials Fabric {namespace}/good")
    assert "unauthorized" in doctor.line(f"FAIL  credentials Fabric {namespace}/bad")
    assert SECRET_VALUE not in doctor.out
