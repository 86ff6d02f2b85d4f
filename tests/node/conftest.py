"""Fixtures for the tests on a real single-node Kubernetes (tools/node/, `make e2e`).

``node`` (session) builds or reuses the binaries (``build.sh --node``) and the images
(``tools/node/images.py``), starts the node in its private network namespace with the images
imported, and on teardown asserts that nothing of it is left (NodeLeftovers fails the run).
``cluster`` adds PostgreSQL and the simulator as pods.

These tests need root, Linux namespaces and cgroups, containerd, runc, podman and mmdebstrap
(Debian packages; ``.ci/run`` installs them). Where the machine cannot run a node the layer
is skipped with a one-line reason; ``INVENTORY_SYNC_REQUIRE_NODE=1`` makes that a failure.
They are selected with ``-m node`` (``make e2e``); the default run leaves them out.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "tools" / "controlplane" / "build.sh"
MARKER = "node"
REQUIRE = os.environ.get("INVENTORY_SYNC_REQUIRE_NODE", "") not in ("", "0")
PREPARED = pytest.StashKey["Prepared"]()

sys.path.insert(0, str(REPO / "tools" / "node"))
sys.path.insert(0, str(REPO / "tools" / "controlplane"))  # tests/controlplane/hedgehog.py uses it
sys.path.insert(0, str(REPO / "tests" / "controlplane"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import images  # noqa: E402 - tools/node is not a package
import localnode  # noqa: E402
from nodekit import Cluster, Kube, PostgresPod, SimulatorPod, eventually  # noqa: E402


@dataclass
class Prepared:
    """What the session built, or why it could not."""

    bin_dir: Path | None = None
    node_bin_dir: Path | None = None
    images: dict[str, images.Image] = field(default_factory=dict)
    problem: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def unavailable(reason: str) -> NoReturn:
    message = f"real node unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message + " (INVENTORY_SYNC_REQUIRE_NODE is set)", pytrace=False)
    pytest.skip(message)


def _say(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"{MARKER}: {text}")


def prepare(config: pytest.Config) -> Prepared:
    """Binaries and images, built once before the first test (cached across runs)."""
    if os.geteuid() != 0:
        return Prepared(problem="needs root (network and mount namespaces, cgroups, containerd)")
    env = dict(os.environ, PATH=f"{os.environ.get('PATH', '')}:/usr/local/go/bin")
    started = time.monotonic()
    if subprocess.run(
        [str(BUILD_SH), "--node", "--check"], capture_output=True, check=False
    ).returncode:
        _say(config, "building the node binaries (tools/controlplane/build.sh --node)")
    proc = subprocess.run(
        [str(BUILD_SH), "--node"], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return Prepared(problem=f"build.sh --node failed: {last}")
    node_bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    bin_dir = Path(
        subprocess.run(
            [str(BUILD_SH), "--print-bin-dir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    timings = {"binaries": time.monotonic() - started}
    reason = localnode.preflight(bin_dir, node_bin_dir)
    if reason:
        return Prepared(problem=reason)
    for tool in ("podman", "mmdebstrap"):
        if localnode.which(tool) is None:
            return Prepared(problem=f"missing {tool} (apt-get install podman mmdebstrap)")
    started = time.monotonic()
    _say(config, "images (tools/node/images.py; cached by their inputs)")
    try:
        built = images.build_all(node_bin_dir)
    except images.ImageError as error:
        return Prepared(problem=f"image build failed: {error}")
    timings["images"] = time.monotonic() - started
    for label, image in built.items():
        _say(config, f"image {label}: {image.name}, {image.size_bytes / 1e6:.0f} MB")
    return Prepared(bin_dir, node_bin_dir, built, timings=timings)


MEASURED = pytest.StashKey[dict[str, float]]()


@pytest.fixture(scope="session")
def measured(request: pytest.FixtureRequest) -> dict[str, float]:
    """Numbers the tests measure (seconds), printed at the end of the run and written as JSON
    to $INVENTORY_SYNC_NODE_REPORT when set. Measured, never asserted against a stopwatch."""
    return request.config.stash.setdefault(MEASURED, {})


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    prepared = config.stash.get(PREPARED, None)
    numbers = dict(config.stash.get(MEASURED, {}))
    if prepared is not None and not prepared.problem:
        numbers.update({f"build: {k} (s)": v for k, v in prepared.timings.items()})
        numbers.update({f"image: {k} (MB)": i.size_bytes / 1e6 for k, i in prepared.images.items()})
    if not numbers:
        return
    terminalreporter.section("real node: measured")
    for key, value in numbers.items():
        terminalreporter.write_line(f"{key:<60} {value:8.1f}")
    report = os.environ.get("INVENTORY_SYNC_NODE_REPORT")
    if report:
        Path(report).write_text(json.dumps(numbers, indent=2) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build before the first test so that no build counts against a test's timeout."""
    if any(item.get_closest_marker(MARKER) for item in session.items):
        session.config.stash[PREPARED] = prepare(session.config)


@pytest.fixture(scope="session")
def node_binaries(request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """(control-plane bin dir, node bin dir), or skip/fail as `unavailable` says."""
    stash = request.config.stash
    if PREPARED not in stash:
        stash[PREPARED] = prepare(request.config)
    prepared = stash[PREPARED]
    if prepared.problem:
        unavailable(prepared.problem)
    assert prepared.bin_dir is not None
    assert prepared.node_bin_dir is not None
    return prepared.bin_dir, prepared.node_bin_dir


@pytest.fixture(scope="session")
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[localnode.LocalNode]:
    stash = request.config.stash
    if PREPARED not in stash:
        stash[PREPARED] = prepare(request.config)
    prepared = stash[PREPARED]
    if prepared.problem:
        unavailable(prepared.problem)
    assert prepared.bin_dir is not None
    assert prepared.node_bin_dir is not None
    running = localnode.LocalNode(
        bin_dir=prepared.bin_dir,
        node_bin_dir=prepared.node_bin_dir,
        state_dir=tmp_path_factory.mktemp("node"),
        images=[image.archive for image in prepared.images.values()],
    )
    try:
        running.start()
    except localnode.NodeRefused as error:  # the namespace would not be isolated: never run
        unavailable(str(error))
    _say(request.config, "up: " + ", ".join(f"{k} {v:.0f}s" for k, v in running.timings.items()))
    yield running
    running.stop()  # NodeLeftovers fails the session: the harness must leave nothing
    measured = request.config.stash.setdefault(MEASURED, {})
    measured.update({f"node: {k} (s)": v for k, v in running.timings.items()})


@pytest.fixture(scope="session")
def cluster(node: localnode.LocalNode, request: pytest.FixtureRequest) -> Cluster:
    """PostgreSQL and the simulator, each a pod from an image this session imported."""
    prepared = request.config.stash[PREPARED]
    kube = Kube(node)
    infra = kube.namespace("e2e-infra")
    password = secrets.token_hex(12)
    kube.apply(*_postgres(infra, prepared.images["postgres"].name, password))
    # The Service first: the simulator's certificate must name its IP.
    kube.apply(_service(infra, "simulator", 8089))
    sim_ip = kube.get("service", "simulator", "-n", infra)["spec"]["clusterIP"]
    kube.apply(_simulator(infra, prepared.images["simulator"].name, sim_ip))
    for name in ("postgres", "simulator"):
        kube.wait_rollout(infra, name, timeout="180s")
    pg_ip = kube.get("service", "postgres", "-n", infra)["spec"]["clusterIP"]
    ca_pem = kube.exec(infra, "deploy/simulator", "cat", SIMULATOR_CA)
    postgres = PostgresPod(kube, infra, pg_ip, password)
    eventually(lambda: postgres.query("SELECT 1") == [["1"]], within=60, what="PostgreSQL up")
    return Cluster(node, postgres, SimulatorPod(kube, infra, sim_ip, ca_pem))


def _deployment(namespace: str, name: str, image: str, container: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {"name": name, "image": image, "imagePullPolicy": "Never", **container}
                    ],
                },
            },
        },
    }


def _service(namespace: str, name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": port}]},
    }


def _postgres(namespace: str, image: str, password: str) -> list[dict[str, Any]]:
    container = {
        "env": [
            {"name": "POSTGRES_PASSWORD", "value": password},
            # A subdirectory: initdb must own its directory, the emptyDir belongs to root.
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "ports": [{"containerPort": 5432}],
        "readinessProbe": {"tcpSocket": {"port": 5432}, "periodSeconds": 2},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
    }
    deployment = _deployment(namespace, "postgres", image, container)
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    return [deployment, _service(namespace, "postgres", 5432)]


SIMULATOR_CA = "/tmp/simulator-ca.pem"


def _simulator(namespace: str, image: str, service_ip: str) -> dict[str, Any]:
    args = ["simulate", "--host", "0.0.0.0", "--port", "8089"]
    args += ["--tls", "--tls-name", service_ip, "--tls-ca-file", SIMULATOR_CA]
    container = {
        "args": args,
        "ports": [{"containerPort": 8089}],
        "readinessProbe": {"tcpSocket": {"port": 8089}, "periodSeconds": 2},
        "securityContext": {"readOnlyRootFilesystem": True, "runAsNonRoot": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = _deployment(namespace, "simulator", image, container)
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    return deployment
