"""`helm upgrade` from the previous chart version on a real node, the CRDs first, exactly as
README "Deploy" and docs/deploy.md say: the resources made under the old CRDs keep their
due times and runs, the cluster's CRDs become the repository's, and the upgraded operator
(the new image) serves them. Between the CRDs and the new pod, 0.1.0 stalls its resources
(it refuses the new CRDs' defaults); the new operator clears that, and a run makes them Ready.

The previous version is the chart and image of git commit images.UPGRADE_FROM (override
with INVENTORY_SYNC_UPGRADE_FROM): 0.1.0 as first packaged, whose Fabric CRD still accepted
a kind listed twice. It needs the repository's history (a shallow clone fails with a reason).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import images
import pytest
import yaml
from nodekit import (
    CHART,
    REPO,
    SYNC_SCHEDULES,
    TRUST_SIMULATOR,
    Cluster,
    Release,
    condition,
    credentials_secret,
    database_secret,
    eventually,
    parse_time,
    request_run,
    schedule,
    trust_simulator_patch,
    wait_handled,
    wait_ready,
)

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

PREVIOUS_REF = images.UPGRADE_FROM
APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def git(*args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"the previous chart ({PREVIOUS_REF}) is not in this clone's history: "
            f"{proc.stderr.decode().strip()} (fetch it, or set INVENTORY_SYNC_UPGRADE_FROM)",
            pytrace=False,
        )
    return proc.stdout


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous chart and CRDs, from git."""
    root = tmp_path_factory.mktemp("previous")
    tree = git("archive", "--format=tar", PREVIOUS_REF, "helm/inventory-sync-operator", "crds")
    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        archive.extractall(root, filter="data")
    return root


def stalled(body: dict[str, Any]) -> dict[str, Any] | None:
    found = condition(body, "Stalled")
    return body if found and found["status"] == "True" else None


def crd_schemas(documents: list[dict]) -> dict[str, str]:
    return {
        d["metadata"]["name"]: json.dumps(
            [v["schema"] for v in d["spec"]["versions"]], sort_keys=True
        )
        for d in documents
    }


def repo_crds() -> dict[str, str]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml"))]
    return crd_schemas(docs)


@pytest.fixture(scope="module")
def old_release(cluster: Cluster, previous: Path) -> Iterator[Release]:
    """The previous chart with the previous image, installed on the previous CRDs."""
    image = images.build_operator_at(PREVIOUS_REF)
    cluster.node.import_image(image.archive)
    # The cluster as a user of the previous version had it (its CRDs, server-side).
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(previous / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    namespace = cluster.namespace("op-upgrade")
    database = cluster.postgres.create_database()
    cluster.apply(
        database_secret(cluster.postgres, namespace, database),
        cluster.simulator.ca_configmap(namespace),
    )
    release = Release(cluster, namespace, database)
    tag = image.name.rsplit(":", 1)[1]
    chart = previous / "helm" / "inventory-sync-operator"
    cluster.node.helm(
        "install", release.name, str(chart), "-n", namespace, "--set", f"image.tag={tag}",
        "--wait", "--timeout=5m",
    )  # fmt: skip
    # That chart has no extraVolumes: trust the simulator's CA with a patch, as its users would.
    cluster.kubectl(
        "patch", "deployment", release.name, "-n", namespace, "--type=strategic",
        "-p", trust_simulator_patch(),
    )  # fmt: skip
    cluster.wait_rollout(namespace, release.name)
    try:
        yield release
    finally:
        cluster.node.helm("uninstall", release.name, "-n", namespace, "--wait", "--timeout=3m")
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
        # Leave the repository's CRDs, whatever happened above.
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))


def test_upgrade_from_the_previous_chart_with_the_crds_applied_first(
    old_release: Release, previous: Path, measured: dict[str, float]
) -> None:
    cluster, ns = old_release.cluster, old_release.namespace
    old_schemas = crd_schemas(
        [yaml.safe_load(p.read_text()) for p in sorted((previous / "crds").glob("*.yaml"))]
    )
    assert old_schemas != repo_crds(), f"{PREVIOUS_REF} has the same CRDs: nothing to upgrade"
    cluster.apply(
        credentials_secret(cluster.simulator, ns), schedule(cluster.simulator, "kept", ns)
    )
    body = wait_ready(cluster, SYNC_SCHEDULES, ns, "kept", within=180)
    due, uid = body["status"]["nextSyncTime"], body["metadata"]["uid"]
    runs_before = old_release.runs(uid)

    # README "Deploy": `kubectl apply --server-side -f crds/` first, then `helm upgrade`.
    started = time.monotonic()
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    # 0.1.0 refuses spec fields it does not know, and the API server now serves the new CRDs'
    # defaults (arubaCentral.apiVersion): until it is replaced it stalls the resource. Waited
    # for, so that the upgrade takes the same path on every run (docs/deploy.md says so).
    body = eventually(
        lambda: stalled(cluster.get(SYNC_SCHEDULES, "kept", "-n", ns)),
        within=120,
        what=f"{PREVIOUS_REF} to refuse the new CRDs' defaults",
    )
    assert condition(body, "Stalled")["reason"] == "InvalidSpec", body["status"]
    assert "apiVersion: unknown field" in condition(body, "Stalled")["message"], body["status"]
    # helm keeps values set at install: the old image's test tag is replaced by the new one,
    # as a user who pins tags does on every upgrade.
    cluster.node.helm(
        "upgrade", old_release.name, str(CHART), "-n", ns, "--set", f"image.tag={APP_VERSION}",
        *TRUST_SIMULATOR, "--wait", "--timeout=5m",
    )  # fmt: skip
    measured["upgrade: CRDs + helm upgrade --wait (s)"] = time.monotonic() - started

    served = cluster.get("crd", "syncschedules.inventorysync.dev", "fabrics.inventorysync.dev")
    assert crd_schemas(served["items"]) == repo_crds()
    deployment = cluster.get("deployment", old_release.name, "-n", ns)
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"inventory-sync-operator:{APP_VERSION}"
    assert deployment["status"].get("availableReplicas") == 1
    pod = old_release.pod()
    assert pod["spec"]["containers"][0]["image"] == image
    assert pod["status"]["containerStatuses"][0]["ready"] is True

    # The new operator reads the spec and clears the stall between runs; Ready stays False
    # (Waiting) until the next run, as after any fixed stall (docs/operator.md, "Reasons").
    body = eventually(
        lambda: (b := cluster.get(SYNC_SCHEDULES, "kept", "-n", ns)) and not stalled(b) and b,
        within=60,
        what="the new operator to clear the stall",
    )
    assert condition(body, "Stalled") is None, body["status"]
    assert condition(body, "Ready")["reason"] == "Waiting", body["status"]
    # What the old version made is still there and still counts: same due time, no extra run.
    assert body["status"]["nextSyncTime"] == due
    assert old_release.runs(uid) == runs_before
    stamp = request_run(cluster, SYNC_SCHEDULES, ns, "kept")
    body = wait_handled(cluster, SYNC_SCHEDULES, ns, "kept", stamp, within=120)
    assert condition(body, "Ready")["status"] == "True", body["status"]
    assert parse_time(body["status"]["lastSyncTime"]) > parse_time(runs_before[-1]["started_at"])
