"""RBAC as users will grant it: manifests/rbac.yaml is enough and no more, and with one verb taken
away the operator says which one in its log instead of hanging silently."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from localcluster import ClusterInfo

from inventory_sync.errors import KubeForbidden
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import GROUP
from inventory_sync.simulator import ThreadedSimulator

from . import test_operator as operator_tests
from .harness import (
    OperatorProcess,
    ShiftableClock,
    can_i,
    condition,
    eventually,
    service_account_connection,
)
from .test_operator import create_secret, path, schedule

pytestmark = pytest.mark.controlplane

RBAC = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"


RBAC_API = "/apis/rbac.authorization.k8s.io/v1"
Rule = dict[str, Any]


def repo_cluster_role() -> dict[str, Any]:
    """The ClusterRole users apply from manifests/rbac.yaml."""
    documents = [d for d in yaml.safe_load_all(RBAC.read_text(encoding="utf-8")) if d]
    (role,) = [d for d in documents if d["kind"] == "ClusterRole"]
    return dict(role)


def without(rules: list[Rule], *, resource: str, verb: str) -> list[Rule]:
    """The same rules with `verb` on `resource` taken away, every other grant kept."""
    out: list[Rule] = []
    for rule in rules:
        if resource not in rule.get("resources", []) or verb not in rule["verbs"]:
            out.append(rule)
            continue
        others = [r for r in rule["resources"] if r != resource]
        if others:
            out.append({**rule, "resources": others})
        verbs = [v for v in rule["verbs"] if v != verb]
        if verbs:
            out.append({**rule, "resources": [resource], "verbs": verbs})
    return out


@pytest.fixture
async def namespace(test_namespace: str, admin: KubeClient) -> AsyncIterator[str]:
    """test_namespace; its SyncSchedules are deleted afterwards so that operators started later
    in this session do not pick them up."""
    yield test_namespace
    await admin.delete(path(test_namespace))


class Restricted(NamedTuple):
    process: OperatorProcess
    cluster_role: str  # the reduced copy, bound to this operator's ServiceAccount only


StartOperator = Callable[..., Awaitable[Restricted]]


@pytest.fixture
async def restricted_operator(
    control_plane: ClusterInfo, admin: KubeClient, namespace: str, database_url: str
) -> AsyncIterator[StartOperator]:
    """Start the operator as a new ServiceAccount bound to a copy of the repo's ClusterRole with
    one verb removed (the standard binding may belong to another test's operator)."""
    created: list[str] = []
    processes: list[OperatorProcess] = []

    async def start(*, resource: str, verb: str) -> Restricted:
        suffix = secrets.token_hex(3)
        name = f"inventory-sync-operator-no-{verb}-{resource.replace('/', '-')}-{suffix}"
        role = repo_cluster_role()
        await admin.create(
            f"{RBAC_API}/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": without(role["rules"], resource=resource, verb=verb),
            },
        )
        created.append(name)
        account = f"restricted-{suffix}"
        await admin.create(
            f"{RBAC_API}/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            },
        )
        connection = await service_account_connection(
            admin, server=control_plane.server, ca_file=control_plane.ca_path,
            namespace=namespace, name=account,
        )  # fmt: skip
        await _until_bound(connection, namespace)
        process = OperatorProcess(
            connection=connection, database_url=database_url, clock=ShiftableClock()
        )
        processes.append(process.start())
        return Restricted(process, name)

    yield start
    for process in processes:
        process.stop()
    for name in created:
        await admin.delete(f"{RBAC_API}/clusterrolebindings/{name}")
        await admin.delete(f"{RBAC_API}/clusterroles/{name}")


async def _until_bound(connection: KubeConnection, namespace: str) -> None:
    """RBAC reaches the authorizer through an informer: wait until the binding is in effect."""
    async with KubeClient(connection) as client:

        async def bound() -> bool:
            return await can_i(client, "list", "syncschedules", namespace=namespace, group=GROUP)

        await eventually(bound, within=10, what="the new ClusterRoleBinding to take effect")


def still_running(process: OperatorProcess) -> bool:
    """Not crashed, and the scheduler ticked within the last few seconds (it ticks every
    second; the liveness probe reads the same number)."""
    age = process.context.healthy()["schedulerTickAgeSeconds"]
    return process.crashed is None and isinstance(age, float) and age < 5


def warnings_about(caplog: pytest.LogCaptureFixture, namespace: str) -> list[str]:
    """Log lines at WARNING or above about this test's resources (the operator watches all)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and f"{namespace}/inventory" in r.getMessage()
    ]


# --------------------------------------------------------------------------- one verb removed


async def test_without_patch_on_status_the_operator_logs_the_forbidden_verb_and_keeps_running(
    restricted_operator: StartOperator,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_secret(admin, namespace, simulator)
    await admin.create(path(namespace), schedule(simulator))

    process, _ = await restricted_operator(resource="syncschedules/status", verb="patch")

    # The scope ("in namespace NS") is left out: KubeClient reads it from the API server's
    # message after cutting that to 300 characters, which long test names exceed.
    expected = "forbidden: cannot patch syncschedules/status"

    async def logged() -> list[str] | None:
        return [m for m in warnings_about(caplog, namespace) if expected in m] or None

    await eventually(logged, within=5, what=f"a log line saying {expected!r}")
    assert still_running(process)
    body = await admin.get(path(namespace, name="inventory"))
    # Nothing could be written, nothing was faked: only the CRD's default is there.
    assert (body or {}).get("status") in (None, {"observedGeneration": -1})


async def test_without_get_on_secrets_the_operator_logs_that_it_cannot_read_credentials(
    restricted_operator: StartOperator,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_secret(admin, namespace, simulator)
    await admin.create(path(namespace), schedule(simulator))

    process, _ = await restricted_operator(resource="secrets", verb="get")

    expected = "forbidden: cannot get secrets"

    async def logged() -> list[str] | None:
        return [m for m in warnings_about(caplog, namespace) if expected in m] or None

    await eventually(logged, within=5, what=f"a log line saying {expected!r}")
    assert still_running(process)


async def test_without_get_on_secrets_the_status_says_stalled_naming_the_secret(
    restricted_operator: StartOperator,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
) -> None:
    await create_secret(admin, namespace, simulator)
    await admin.create(path(namespace), schedule(simulator))

    await restricted_operator(resource="secrets", verb="get")

    async def not_ready() -> dict[str, Any] | None:
        found = condition(await admin.get(path(namespace, name="inventory")), "Ready")
        return found if found and found["status"] == "False" else None

    found = await eventually(not_ready, within=5, what="Ready=False")
    assert f"Secret {namespace}/{operator_tests.SECRET}" in found["message"]


async def test_once_the_missing_verb_is_granted_the_schedule_recovers(
    restricted_operator: StartOperator,
    admin: KubeClient,
    namespace: str,
    simulator: ThreadedSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_secret(admin, namespace, simulator)
    await admin.create(path(namespace), schedule(simulator))
    _, role = await restricted_operator(resource="syncschedules/status", verb="patch")

    async def forbidden_logged() -> list[str] | None:
        return [m for m in warnings_about(caplog, namespace) if "forbidden" in m] or None

    await eventually(forbidden_logged, within=5, what="the forbidden status patch")
    await admin.patch_merge(
        f"{RBAC_API}/clusterroles/{role}", {"rules": repo_cluster_role()["rules"]}
    )

    await eventually(
        lambda: operator_tests.ready(admin, namespace), within=6, what="Ready=True after the grant"
    )


# --------------------------------------------------------------------------- the real manifest


@pytest.fixture
async def operator_identity(
    control_plane: ClusterInfo, operator_rbac: None
) -> AsyncIterator[KubeClient]:
    """The operator's own identity, bound to exactly manifests/rbac.yaml."""
    client = KubeClient(KubeConnection.from_kubeconfig_file(control_plane.operator_kubeconfig))
    yield client
    await client.aclose()


ACCESS = [
    # what the operator needs
    ("get", "syncschedules", GROUP, True),
    ("list", "syncschedules", GROUP, True),
    ("watch", "syncschedules", GROUP, True),
    ("patch", "syncschedules/status", GROUP, True),
    ("patch", "fabrics/status", GROUP, True),
    ("watch", "fabrics", GROUP, True),
    ("get", "secrets", "", True),
    ("create", "events", "", True),
    # what it must never do: spec belongs to users and GitOps tools
    ("patch", "syncschedules", GROUP, False),
    ("update", "syncschedules", GROUP, False),
    ("create", "syncschedules", GROUP, False),
    ("delete", "syncschedules", GROUP, False),
    ("update", "syncschedules/status", GROUP, False),
    ("patch", "fabrics", GROUP, False),
    # Secrets are read by name only
    ("list", "secrets", "", False),
    ("watch", "secrets", "", False),
    ("create", "secrets", "", False),
]


@pytest.mark.parametrize(
    ("verb", "resource", "group", "allowed"),
    [
        pytest.param(*row, id=f"{'may' if row[3] else 'may not'} {row[0]} {row[1]}")
        for row in ACCESS
    ],
)
async def test_the_repo_rbac_grants_what_the_operator_needs_and_nothing_more(
    operator_identity: KubeClient,
    test_namespace: str,
    verb: str,
    resource: str,
    group: str,
    allowed: bool,
) -> None:
    assert (
        await can_i(operator_identity, verb, resource, namespace=test_namespace, group=group)
        is allowed
    )


async def test_the_operator_identity_cannot_patch_spec_nor_list_secrets(
    operator_identity: KubeClient, admin: KubeClient, namespace: str, simulator: ThreadedSimulator
) -> None:
    await admin.create(path(namespace), schedule(simulator))

    with pytest.raises(KubeForbidden, match="cannot patch syncschedules in namespace"):
        await operator_identity.patch_merge(
            path(namespace, name="inventory"), {"spec": {"suspend": True}}
        )
    with pytest.raises(KubeForbidden, match="cannot list secrets in namespace"):
        await operator_identity.get(f"/api/v1/namespaces/{namespace}/secrets")
    patched = await operator_identity.patch_merge(
        path(namespace, name="inventory") + "/status", {"status": {"sourceSummary": "0/3"}}
    )
    assert patched["spec"]["suspend"] is False
    assert patched["status"]["sourceSummary"] == "0/3"
