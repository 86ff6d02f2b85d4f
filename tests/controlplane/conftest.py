"""Fixtures for tests against a real kube-apiserver (see tools/controlplane/).

``control_plane`` (session scope) finds or builds the pinned binaries and starts a
throwaway etcd + kube-apiserver. It then applies the repository's ``crds/``
directory when there is one. It yields a ``localcluster.ClusterInfo``.

Environment:

* ``INVENTORY_SYNC_TEST_KUBECONFIG``: use this existing cluster (as admin) instead
  of starting one. The operator identity is then a real ServiceAccount with a
  minted token.
* ``INVENTORY_SYNC_REQUIRE_CONTROLPLANE``: if set, an unavailable control plane
  fails the tests instead of skipping them. Set it in CI.
* ``INVENTORY_SYNC_CONTROLPLANE_BIN_DIR``: use prebuilt binaries from this
  directory.

The binaries are built by ``tools/controlplane/build.sh`` (cached by version).
If a build is needed, it runs once, before the first test, so it does not count
against any test's timeout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from ..health_judges import KstatusBuild, build_kstatus

REPO = Path(__file__).resolve().parents[2]
CP_DIR = REPO / "tools" / "controlplane"
BUILD_SH = CP_DIR / "build.sh"
CRDS_DIR = REPO / "crds"
MARKER = "controlplane"

sys.path.insert(0, str(CP_DIR))
from localcluster import (  # noqa: E402 - lives outside any package on purpose
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE_ACCOUNT,
    ClusterInfo,
    LocalCluster,
    apply_and_wait_established,
    run_kubectl,
    write_kubeconfig,
)

# The operator's fixtures, for every control-plane test (defined beside their helpers).
from .operator_fixtures import admin, clock, operator, operator_rbac, simulator  # noqa: E402, F401

REQUIRE = os.environ.get("INVENTORY_SYNC_REQUIRE_CONTROLPLANE", "") not in ("", "0")
EXTERNAL_KUBECONFIG = os.environ.get("INVENTORY_SYNC_TEST_KUBECONFIG", "")
BIN_DIR_OVERRIDE = os.environ.get("INVENTORY_SYNC_CONTROLPLANE_BIN_DIR", "")
BUILD_RESULT = pytest.StashKey["BuildResult"]()
KSTATUS_BUILD = pytest.StashKey[KstatusBuild]()
LOCAL_CLUSTER = pytest.StashKey[LocalCluster]()


@dataclass(frozen=True)
class BuildResult:
    """Where the binaries are, or why there are none."""

    bin_dir: Path | None
    problem: str = ""


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when CI requires the control plane."""
    message = f"control plane unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message + " (INVENTORY_SYNC_REQUIRE_CONTROLPLANE is set)", pytrace=False)
    pytest.skip(message)


def find_go() -> str | None:
    go = shutil.which("go")
    if go is None and Path("/usr/local/go/bin/go").is_file():
        go = "/usr/local/go/bin/go"
    return go


def cached_bin_dir() -> Path | None:
    """The bin dir if build.sh's cache is complete and current (no Go needed)."""
    if subprocess.run([str(BUILD_SH), "--check"], capture_output=True, check=False).returncode:
        return None
    out = subprocess.run(
        [str(BUILD_SH), "--print-bin-dir"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def build_binaries(config: pytest.Config) -> BuildResult:
    """Locate the binaries, building them (slow when cold) only if Go is present."""
    if BIN_DIR_OVERRIDE:
        return BuildResult(Path(BIN_DIR_OVERRIDE))
    cached = cached_bin_dir()
    if cached is not None:
        return BuildResult(cached)
    if find_go() is None:
        return BuildResult(None, "Go toolchain not found and no cached binaries (build.sh)")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"{MARKER}: building kube-apiserver/etcd/kubectl/helm ({BUILD_SH})")
    env = dict(os.environ, PATH=f"{os.environ.get('PATH', '')}:/usr/local/go/bin")
    proc = subprocess.run([str(BUILD_SH)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return BuildResult(None, f"build.sh failed: {last}")
    return BuildResult(Path(proc.stdout.strip().splitlines()[-1]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build before the first test so a cold build is not charged to its timeout."""
    wanted = any(item.get_closest_marker(MARKER) for item in session.items)
    if wanted and not EXTERNAL_KUBECONFIG and BUILD_RESULT not in session.config.stash:
        session.config.stash[BUILD_RESULT] = build_binaries(session.config)
    uses_kstatus = any("kstatus" in getattr(i, "fixturenames", ()) for i in session.items)
    if uses_kstatus and KSTATUS_BUILD not in session.config.stash:
        session.config.stash[KSTATUS_BUILD] = build_kstatus()


@pytest.fixture(scope="session")
def kstatus(request: pytest.FixtureRequest) -> Path:
    """The real kstatus (tools/kstatus), built and cached by version like the binaries above."""
    stash = request.config.stash
    if KSTATUS_BUILD not in stash:
        stash[KSTATUS_BUILD] = build_kstatus()
    built = stash[KSTATUS_BUILD]
    if built.binary is None:
        unavailable(built.problem)
    return built.binary


# --------------------------------------------------------------------------- external cluster


def _kubectl_for_external() -> str:
    for candidate in (BIN_DIR_OVERRIDE, str(cached_bin_dir() or "")):
        if candidate and (Path(candidate) / "kubectl").is_file():
            return str(Path(candidate) / "kubectl")
    return shutil.which("kubectl") or unavailable("no kubectl for INVENTORY_SYNC_TEST_KUBECONFIG")


def _external_cluster(kubeconfig: str, state_dir: Path) -> ClusterInfo:
    """Connection info for an existing cluster; the operator is a real ServiceAccount."""
    kubectl = _kubectl_for_external()
    view = run_kubectl(kubectl, kubeconfig, ["config", "view", "--raw", "--minify", "-o", "json"])
    config = json.loads(view.stdout)
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"] if config.get("users") else {}
    ca_path = state_dir / "ca.crt"
    if "certificate-authority-data" in cluster:
        ca_path.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    elif "certificate-authority" in cluster:
        shutil.copy(cluster["certificate-authority"], ca_path)
    else:
        unavailable("the test kubeconfig has no certificate authority")
    ns, sa = DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT
    for kind, name, extra in (("namespace", ns, []), ("serviceaccount", sa, ["-n", ns])):
        manifest = run_kubectl(
            kubectl, kubeconfig, ["create", kind, name, *extra, "--dry-run=client", "-o", "json"]
        )
        run_kubectl(kubectl, kubeconfig, ["apply", "-f", "-"], stdin=manifest.stdout)
    token = run_kubectl(
        kubectl, kubeconfig, ["create", "token", sa, "-n", ns, "--duration=2h"]
    ).stdout.strip()
    operator_cfg = state_dir / "operator.kubeconfig"
    write_kubeconfig(operator_cfg, cluster["server"], str(ca_path), {"operator": token}, "operator")
    return ClusterInfo(
        server=cluster["server"],
        ca_path=str(ca_path),
        admin_kubeconfig=kubeconfig,
        operator_kubeconfig=str(operator_cfg),
        kubectl=kubectl,
        helm=shutil.which("helm"),
        operator_namespace=ns,
        operator_service_account=sa,
        admin_token=user.get("token"),
        operator_token=token,
        expected_version=None,
        state_dir=str(state_dir),
    )


# --------------------------------------------------------------------------- fixtures


def _apply_repo_crds(info: ClusterInfo) -> None:
    if CRDS_DIR.is_dir():
        apply_and_wait_established(info, CRDS_DIR)


@pytest.fixture(scope="session")
def controlplane_bin_dir(request: pytest.FixtureRequest) -> Path:
    """The built binaries (kube-apiserver, etcd, kubectl, helm), or skip/fail as above."""
    stash = request.config.stash
    if BUILD_RESULT not in stash:
        stash[BUILD_RESULT] = build_binaries(request.config)
    built = stash[BUILD_RESULT]
    if built.bin_dir is None:
        unavailable(built.problem)
    return built.bin_dir


@pytest.fixture(scope="session")
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterInfo]:
    """A running API server (local processes, or INVENTORY_SYNC_TEST_KUBECONFIG)."""
    state_dir = tmp_path_factory.mktemp("controlplane")
    if EXTERNAL_KUBECONFIG:
        info = _external_cluster(EXTERNAL_KUBECONFIG, state_dir)
        _apply_repo_crds(info)
        yield info
        return
    stash = request.config.stash
    if BUILD_RESULT not in stash:  # e.g. the marker was not applied to the test
        stash[BUILD_RESULT] = build_binaries(request.config)
    built = stash[BUILD_RESULT]
    if built.bin_dir is None:
        unavailable(built.problem)
    cluster = LocalCluster(built.bin_dir, state_dir)
    info = cluster.start()  # on failure, the error carries the log tail
    stash[LOCAL_CLUSTER] = cluster
    try:
        _apply_repo_crds(info)
        yield info
    finally:
        cluster.stop()


@pytest.fixture
def local_cluster(request: pytest.FixtureRequest, control_plane: ClusterInfo) -> LocalCluster:
    """The local cluster's processes, for tests that stop and start the API server; skipped on
    an external cluster (INVENTORY_SYNC_TEST_KUBECONFIG), whose API server is not ours to stop."""
    cluster = request.config.stash.get(LOCAL_CLUSTER, None)
    if cluster is None:
        pytest.skip("needs the local control plane (its API server is stopped and started)")
    return cluster


def _namespace_name(node_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{secrets.token_hex(3)}"


@pytest.fixture
def test_namespace(request: pytest.FixtureRequest, control_plane: ClusterInfo) -> Iterator[str]:
    """A fresh namespace per test.

    Nothing waits for it to go away: without a controller-manager a deleted
    namespace stays Terminating forever. A local cluster is thrown away whole;
    on an external cluster the namespace deletion is only requested.
    """
    name = _namespace_name(request.node.name)
    control_plane.kubectl_run("create", "namespace", name)
    control_plane.kubectl_run("label", "namespace", name, "inventory-sync.test/scratch=true")
    yield name
    if control_plane.expected_version is None:  # external cluster: let it clean up
        control_plane.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def hedgehog_crds(control_plane: ClusterInfo) -> ClusterInfo:
    """Definitions shaped like Hedgehog's real CRDs (hedgehog_crds/README.md), applied once
    and visible in discovery: the wiring, vpc, agent, dhcp, gateway and fabricator groups."""
    from .hedgehog import install, load_crds

    install(control_plane, load_crds().values())
    return control_plane
