"""GitOps for real: Flux (source-controller and kustomize-controller, built from their Go
modules) reconciles examples/flux/ from a Git repository served inside the node's namespace.

The repository is what examples/flux/ expects of a user's fork: manifests/ (the operator) and
deploy/inventory/ (a SyncSchedule and a Fabric). The three example objects are applied with
only what a test must change: the repository's URL, the locally built image, and the patch
that makes the operator trust the simulator's CA. Then, on the real node:

1. the operator's Kustomization deploys it and waits for it; the inventory Kustomization
   applies our resources, health-checks them with kstatus, and turns Ready only after both
   resources' first successful sync;
2. the operator's status writes are no drift: a forced reconcile applies nothing, and
   kustomize-controller and the operator own disjoint fields;
3. a commit that gives the SyncSchedule a spec the operator stalls on (a dependsOn cycle the
   CRD cannot catch) fails the Kustomization's health check at once (kstatus Failed), not
   after its 10-minute timeout.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import fluxkit
import hedgehog  # tests/controlplane/hedgehog.py: the Hedgehog-shaped CRDs and objects
import images
import pytest
import yaml
from nodekit import (
    FABRICS,
    REPO,
    SYNC_SCHEDULES,
    Cluster,
    condition,
    credentials_secret,
    database_secret,
    eventually,
    now_iso,
    schedule,
    trust_simulator_patch,
)

# A cold build of the two controllers (tools/flux/build.sh, cached afterwards) takes about
# 8 CPU-minutes; `make e2e` and .ci/run build them before pytest starts.
pytestmark = [pytest.mark.node, pytest.mark.timeout(1800)]

EXAMPLES = REPO / "examples" / "flux"
OPERATOR_NS = "inventory-sync-system"  # what manifests/ creates
NAME = "inventory-sync-operator"
INVENTORY_NS = "inventory"  # examples/flux/inventory.yaml's healthChecks name it
KUSTOMIZATIONS = "kustomizations.kustomize.toolkit.fluxcd.io"
GIT_REPOSITORIES = "gitrepositories.source.toolkit.fluxcd.io"
FLUX = fluxkit.FLUX_NAMESPACE


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


def inventory_objects(cluster: Cluster, *, cycle: bool = False) -> str:
    """deploy/inventory/: the demo SyncSchedule (against the simulator pod) and a Fabric of
    this cluster, named as examples/flux/inventory.yaml's health checks expect."""
    sync = schedule(cluster.simulator, "inventory", INVENTORY_NS)
    if cycle:  # accepted by the CRD (CEL cannot follow a cycle); the operator stalls on it
        subscriptions, devices, central = sync["spec"]["sources"]
        subscriptions["dependsOn"], devices["dependsOn"] = ["central"], ["subscriptions"]
        central["dependsOn"] = ["devices"]
    fabric = {
        "apiVersion": "inventorysync.dev/v1alpha1", "kind": "Fabric",
        "metadata": {"name": "fabric-a", "namespace": INVENTORY_NS},
        "spec": {"interval": "15m", "namespaces": [INVENTORY_NS]},
    }  # fmt: skip
    return yaml.safe_dump_all([sync, fabric], sort_keys=False)


def flux_objects(flux: fluxkit.Flux) -> list[dict[str, Any]]:
    """examples/flux/*.yaml with the URL, the image and the CA trust a test needs."""
    source = example("gitrepository.yaml")
    source["spec"]["url"] = flux.url
    operator = example("operator.yaml")
    image = f"docker.io/library/inventory-sync-operator:{images.package_version()}"
    new_name, _, new_tag = image.rpartition(":")
    (override,) = operator["spec"]["images"]
    override.update(newName=new_name, newTag=new_tag)
    patch = json.loads(trust_simulator_patch())
    patch.update(apiVersion="apps/v1", kind="Deployment", metadata={"name": NAME})
    operator["spec"]["patches"] = [
        {"target": {"kind": "Deployment", "name": NAME}, "patch": yaml.safe_dump(patch)}
    ]
    return [source, operator, example("inventory.yaml")]


def install_hedgehog_crds(cluster: Cluster) -> None:
    crds = list(hedgehog.load_crds().values())
    cluster.apply(*crds)
    names = [f"crd/{c['metadata']['name']}" for c in crds]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


@pytest.fixture(scope="module")
def flux(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[fluxkit.Flux]:
    """Flux's CRDs (read from the Go module cache at test time, never committed), then the
    Git server and both controllers in the node's namespace; everything removed afterwards."""
    try:
        bin_dir, crd_dirs = fluxkit.build()
    except fluxkit.FluxUnavailable as error:
        fluxkit.unavailable(str(error))
    crds = [p for directory in crd_dirs for p in sorted(directory.glob("*.yaml"))]
    cluster.kubectl("apply", "--server-side", *(f"--filename={p}" for p in crds))
    names = [f"crd/{yaml.safe_load(p.read_text())['metadata']['name']}" for p in crds]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    cluster.kubectl("create", "namespace", FLUX)
    state = tmp_path_factory.mktemp("flux")
    git = fluxkit.GitRepo(root=state / "git", work=state / "work")
    git.create()
    running = fluxkit.start(cluster.node, bin_dir=bin_dir, state=state, git=git)
    try:
        yield running
    finally:
        try:
            _remove_everything(cluster)
        finally:
            running.processes.stop()
            cluster.kubectl("delete", "--ignore-not-found", "--wait=false", *names)


def _remove_everything(cluster: Cluster) -> None:
    """Flux's objects first, with prune off (pruning manifests/ would delete our CRDs, and
    every other test's resources with them); then ours while the operator still runs (its
    finalizer), then the namespaces and the operator's cluster-wide RBAC."""
    for item in cluster.get(KUSTOMIZATIONS, "-n", FLUX)["items"]:
        cluster.kubectl("patch", KUSTOMIZATIONS, item["metadata"]["name"], "-n", FLUX,
                        "--type=merge", "-p", '{"spec":{"prune":false}}')  # fmt: skip
    for kind in (KUSTOMIZATIONS, GIT_REPOSITORIES):
        cluster.kubectl("delete", kind, "--all", "-n", FLUX, "--timeout=120s")
    cluster.kubectl("delete", f"{SYNC_SCHEDULES},{FABRICS}", "--all", "-n", INVENTORY_NS,
                    "--timeout=120s", "--ignore-not-found")  # fmt: skip
    cluster.kubectl("delete", "namespace", INVENTORY_NS, OPERATOR_NS, FLUX, "--timeout=180s",
                    "--ignore-not-found")  # fmt: skip
    cluster.kubectl("delete", "clusterrole,clusterrolebinding", NAME, "--ignore-not-found")


def ks(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.get(KUSTOMIZATIONS, name, "-n", FLUX)


def reconcile(cluster: Cluster, kind: str, name: str) -> str:
    """What `flux reconcile` does: set reconcile.fluxcd.io/requestedAt; the token."""
    token = now_iso()
    cluster.kubectl("annotate", kind, name, "-n", FLUX,
                    f"reconcile.fluxcd.io/requestedAt={token}", "--overwrite")  # fmt: skip
    return token


def handled(cluster: Cluster, kind: str, name: str, token: str, within: float) -> dict[str, Any]:
    def answered() -> dict[str, Any] | None:
        body = cluster.get(kind, name, "-n", FLUX)
        done = (body.get("status") or {}).get("lastHandledReconcileAt") == token
        return body if done and condition(body, "Reconciling") is None else None

    return eventually(answered, within=within, what=f"{kind}/{name} to handle {token}")


def owned_fields(body: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(manager, subresource) -> the leaf fields it owns, as dotted paths."""
    owned: dict[tuple[str, str], set[str]] = {}
    for entry in body["metadata"].get("managedFields", []):
        key = (entry["manager"], entry.get("subresource", ""))
        owned.setdefault(key, set()).update(_leaves(entry.get("fieldsV1", {}), ""))
    return owned


def _leaves(fields: dict[str, Any], prefix: str) -> Iterator[str]:
    for name, child in fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if name == ".":  # the map itself: several managers may keep a map, not a fight
            continue
        if child:
            yield from _leaves(child, path)
        else:
            yield path


def test_flux_applies_waits_and_fails_on_a_stalled_spec(
    flux: fluxkit.Flux, cluster: Cluster, measured: dict[str, float]
) -> None:
    pg, sim = cluster.postgres, cluster.simulator
    database = pg.create_database()
    install_hedgehog_crds(cluster)
    # What users create beside Git (docs/deploy.md): the namespaces' Secrets, the CA.
    for namespace in (OPERATOR_NS, INVENTORY_NS):
        cluster.kubectl("create", "namespace", namespace)
    cluster.apply(database_secret(pg, OPERATOR_NS, database), sim.ca_configmap(OPERATOR_NS),
                  credentials_secret(sim, INVENTORY_NS), *hedgehog.small_fabric(INVENTORY_NS))  # fmt: skip

    git = flux.git
    git.copy_tree(REPO / "manifests", "manifests")
    git.write("deploy/inventory/resources.yaml", inventory_objects(cluster))
    first = git.commit("the operator and our inventory resources")
    # The first Central page waits: the first sync stays in flight long enough to watch Flux
    # wait on it.
    sim.set_faults([{"kind": "delay", "route": "/network-monitoring/*", "delay_seconds": 20,
                     "count": 1}])  # fmt: skip
    started = time.monotonic()
    cluster.apply(*flux_objects(flux))

    timeline = _watch_until_ready(cluster)
    measured["flux: Flux objects applied to inventory Kustomization Ready (s)"] = (
        time.monotonic() - started
    )
    sim.set_faults([])
    flux.processes.check_alive()
    body = timeline[-1]
    ready = condition(body["ks"], "Ready")
    assert ready is not None
    assert ready["reason"] == "ReconciliationSucceeded"
    assert body["ks"]["status"]["lastAppliedRevision"] == f"main@sha1:{first}"
    # Flux waited on the run: while it was in flight the Kustomization was not Ready...
    waited = [t for t in timeline if _reconciling(t["schedule"])]
    assert waited, "never saw the first sync in flight"
    assert all((condition(t["ks"], "Ready") or {}).get("status") != "True" for t in waited)
    checking = [(condition(t["ks"], "Reconciling") or {}).get("message", "") for t in waited]
    assert any(m.startswith("Running health checks") for m in checking), checking
    # ...and turned Ready only once both resources had synced successfully.
    for kind in ("schedule", "fabric"):
        status = body[kind]["status"]
        assert condition(body[kind], "Ready")["status"] == "True"  # type: ignore[index]
        assert status["lastSuccessfulSyncTime"] <= ready["lastTransitionTime"]

    # No drift: a forced reconcile finds nothing to change, and nobody fights over a field.
    owned = _forced_reconcile_applies_nothing(cluster)

    # A commit that breaks the SyncSchedule: the health check fails at once, not at timeout.
    git.write("deploy/inventory/resources.yaml", inventory_objects(cluster, cycle=True))
    broken = git.commit("a dependsOn cycle: the CRD accepts it, the operator stalls on it")
    pushed = time.monotonic()
    reconcile(cluster, GIT_REPOSITORIES, "inventory-sync")
    failed = eventually(
        lambda: _health_failed(cluster, broken), within=300, what="the health check to fail"
    )
    measured["flux: breaking commit to Kustomization unhealthy (s)"] = time.monotonic() - pushed
    message = condition(failed, "Ready")["message"]  # type: ignore[index]
    # kstatus Failed ends the wait at once; InProgress would wait out the 10m timeout.
    assert "failed early due to stalled resources" in message, message
    assert f"SyncSchedule/{INVENTORY_NS}/inventory status: 'Failed'" in message
    stalled = condition(cluster.get(SYNC_SCHEDULES, "inventory", "-n", INVENTORY_NS), "Stalled")
    assert stalled is not None
    assert (stalled["reason"], "dependsOn forms a cycle" in stalled["message"]) == (
        "InvalidSpec",
        True,
    )
    managers = sorted(f"{m}/{r or 'main'}" for m, r in owned)
    print(f"flux: managers of the SyncSchedule: {managers}; the failed Kustomization says: "
          f"{message!r}")  # fmt: skip
    flux.processes.check_alive()


def _forced_reconcile_applies_nothing(cluster: Cluster) -> dict[tuple[str, str], set[str]]:
    """`flux reconcile` after the operator's status writes: Flux applies nothing (its
    managed-fields entry keeps its time), owns spec and no status, and shares no field with
    any other manager; the operator writes only through the status subresource. Returns
    the fields per (manager, subresource)."""
    shown = ("-n", INVENTORY_NS, "--show-managed-fields")
    before = cluster.get(SYNC_SCHEDULES, "inventory", *shown)
    token = reconcile(cluster, KUSTOMIZATIONS, "inventory")
    handled(cluster, KUSTOMIZATIONS, "inventory", token, within=120)
    after = cluster.get(SYNC_SCHEDULES, "inventory", *shown)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

    def applied(body: dict[str, Any]) -> list[dict[str, Any]]:
        fields = body["metadata"]["managedFields"]
        return [m for m in fields if m["manager"] == "kustomize-controller"]

    assert applied(after) == applied(before)  # time included: not applied again
    assert [m["operation"] for m in applied(after)] == ["Apply"]
    owned = owned_fields(after)
    flux_fields = owned[("kustomize-controller", "")]
    assert any(f.startswith("f:spec.") for f in flux_fields)
    assert not any(f.startswith("f:status") for f in flux_fields)
    for (manager, subresource), fields in owned.items():
        if manager == "kustomize-controller":
            continue
        assert not fields & flux_fields, (
            f"{manager} owns fields Flux applies: {fields & flux_fields}"
        )
        if any(f.startswith("f:status") for f in fields):
            assert subresource == "status", (manager, subresource)
    assert after["status"]["lastSyncTime"]  # the operator's status is still there
    return owned


def _reconciling(body: dict[str, Any]) -> bool:
    return (condition(body, "Reconciling") or {}).get("status") == "True"


def _watch_until_ready(cluster: Cluster, within: float = 600) -> list[dict[str, Any]]:
    """Samples of the inventory Kustomization and both resources, about a second apart,
    until the Kustomization is Ready=True for a revision."""
    timeline: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = cluster.maybe_get(KUSTOMIZATIONS, "inventory", "-n", FLUX) or {}
        sample = {
            "ks": found,
            "schedule": cluster.maybe_get(SYNC_SCHEDULES, "inventory", "-n", INVENTORY_NS) or {},
            "fabric": cluster.maybe_get(FABRICS, "fabric-a", "-n", INVENTORY_NS) or {},
        }
        timeline.append(copy.deepcopy(sample))
        if (condition(found, "Ready") or {}).get("status") == "True":
            return timeline
        time.sleep(1)
    last = timeline[-1] if timeline else {}
    raise AssertionError(
        "the inventory Kustomization never turned Ready; last: "
        + json.dumps({k: (v.get("status") or {}).get("conditions") for k, v in last.items()})[:3000]
    )


def _health_failed(cluster: Cluster, commit: str) -> dict[str, Any] | None:
    body = ks(cluster, "inventory")
    ready = condition(body, "Ready") or {}
    attempted = (body.get("status") or {}).get("lastAttemptedRevision", "")
    if attempted.endswith(commit) and ready.get("reason") == "HealthCheckFailed":
        return body
    return None
