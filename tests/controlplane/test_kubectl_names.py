"""With Hedgehog-shaped CRDs installed (category `fabric`, Fabricator's short name `fab`), every kubectl command docs/fabrics.md documents addresses our Fabric, and nothing of Hedgehog's."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcluster import ClusterInfo, run_kubectl

from inventory_sync.models import API_VERSION

from .hedgehog import FABRICATOR, WIRING, obj, switch

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "fabrics.md"
OURS = "fabric.inventorysync.dev/fabric-a"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def documented_commands(namespace: str) -> list[list[str]]:
    """The shell block of the doc's kubectl section, with its placeholders filled in."""
    section = DOC.read_text().split("\n## kubectl", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    return [
        shlex.split(line.replace("NAMESPACE", namespace).replace("NAME", "fabric-a"))
        for line in lines
    ]


@pytest.fixture
def cluster(
    hedgehog_crds: ClusterInfo, test_namespace: str, tmp_path: Path
) -> Iterator[ClusterInfo]:
    """Our Fabric `fabric-a` (Ready), a Hedgehog Fabricator of the same name, a Switch."""
    ns = test_namespace
    fabric = {"apiVersion": API_VERSION, "kind": "Fabric", "metadata": {"name": "fabric-a", "namespace": ns},
              "spec": {"interval": "5m", "suspend": True}}  # fmt: skip
    fabricator = obj(
        FABRICATOR,
        "Fabricator",
        "fabric-a",
        ns,
        {"config": {"control": {"controlVIP": "172.30.0.1/32"}}},
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [fabric, fabricator, switch("leaf-1", ns)],
    }
    hedgehog_crds.kubectl_run("create", "-f", "-", stdin=__import__("json").dumps(manifest))
    # As the operator writes it after a good run (kubectl wait also wants observedGeneration).
    ready = ('{"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True",'
             '"reason":"Succeeded","message":"ok","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}')  # fmt: skip
    hedgehog_crds.kubectl_run("patch", "fabrics.inventorysync.dev", "fabric-a", "-n", ns,
                              "--subresource=status", "--type=merge", "-p", ready)  # fmt: skip
    return hedgehog_crds


def kubectl(info: ClusterInfo, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A fresh discovery cache: one filled before Hedgehog's CRDs would hide the clash.
    return run_kubectl(
        info.kubectl, info.admin_kubeconfig, list(args), check=False, cache_dir=str(cache)
    )


def annotation(info: ClusterInfo, cache: Path, resource: str, namespace: str) -> str:
    jsonpath = "-o=jsonpath={.metadata.annotations.reconcile\\.fluxcd\\.io/requestedAt}"
    return kubectl(info, cache, "get", resource, "fabric-a", "-n", namespace, jsonpath).stdout


def test_every_documented_command_addresses_our_fabric(
    cluster: ClusterInfo, test_namespace: str, tmp_path: Path
) -> None:
    ns, cache = test_namespace, tmp_path / "cache"
    commands = documented_commands(ns)
    assert len(commands) >= 7, commands
    ran: set[str] = set()
    for command in commands:
        program, verb = command[0], command[1]
        if program == "inventory-sync":
            env = {**os.environ, "KUBECONFIG": cluster.admin_kubeconfig}
            done = subprocess.run([sys.executable, "-m", "inventory_sync", *command[1:]],
                                  capture_output=True, text=True, env=env, check=False, timeout=60)  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert annotation(cluster, cache, "fabrics.inventorysync.dev", ns) not in ("", "now-1")
            assert annotation(cluster, cache, f"fabricators.{FABRICATOR}", ns) == ""
            ran.add("trigger")
            continue
        assert program == "kubectl", command
        if verb == "get":
            args = [a for a in command[2:] if a not in ("-o", "wide")]
            listed = kubectl(cluster, cache, "get", *args, "-o", "name")
            assert listed.returncode == 0, listed.stderr
            names = listed.stdout.split()
            assert OURS in names, (command, names)
            assert all(n.split("/")[0].endswith(".inventorysync.dev") for n in names), (
                command,
                names,
            )
            shown = kubectl(cluster, cache, *command[1:])  # as documented: a table of ours
            assert "INTERVAL" in shown.stdout, (command, shown.stdout)
        elif verb == "describe":
            described = kubectl(cluster, cache, *command[1:])
            assert described.returncode == 0, described.stderr
            assert f"API Version:  {API_VERSION}" in described.stdout
            assert "Fabricator" not in described.stdout
            assert WIRING not in described.stdout
        elif verb == "wait":
            waited = kubectl(cluster, cache, *command[1:])
            assert waited.returncode == 0, waited.stderr
            assert waited.stdout.strip() == f"{OURS} condition met"
        elif verb == "annotate":
            annotated = kubectl(cluster, cache, *command[1:])
            assert annotated.returncode == 0, annotated.stderr
            assert annotation(cluster, cache, "fabrics.inventorysync.dev", ns) == "now-1"
            assert annotation(cluster, cache, f"fabricators.{FABRICATOR}", ns) == ""
        elif verb == "delete":
            deleted = kubectl(cluster, cache, *command[1:])
            assert deleted.returncode == 0, deleted.stderr
            assert (
                deleted.stdout.strip()
                == f'fabric.inventorysync.dev "fabric-a" deleted from {ns} namespace'
            )
            left = kubectl(
                cluster,
                cache,
                "get",
                f"fabricators.{FABRICATOR},switches.{WIRING}",
                "-n",
                ns,
                "-o",
                "name",
            )
            assert left.stdout.split() == [
                f"fabricator.{FABRICATOR}/fabric-a",
                f"switch.{WIRING}/leaf-1",
            ]
        else:
            raise AssertionError(f"the test does not know how to check {command}")
        ran.add(verb)
    assert ran == {"get", "describe", "wait", "annotate", "trigger", "delete"}


def test_the_singular_and_fab_resolve_to_hedgehog_which_is_why_the_docs_avoid_them(
    cluster: ClusterInfo, test_namespace: str, tmp_path: Path
) -> None:
    """The clash the docs steer around, as kubectl really behaves with Hedgehog installed."""
    ns, cache = test_namespace, tmp_path / "cache"

    by_category = kubectl(cluster, cache, "get", "fabric", "-n", ns, "-o", "name")
    short = kubectl(cluster, cache, "get", "fab", "-n", ns, "-o", "name")
    one = kubectl(cluster, cache, "get", "fabric", "fabric-a", "-n", ns)

    assert by_category.returncode == 0, by_category.stderr
    assert f"switch.{WIRING}/leaf-1" in by_category.stdout.split()
    assert OURS not in by_category.stdout.split()
    assert short.stdout.split() == [f"fabricator.{FABRICATOR}/fabric-a"]
    assert one.returncode != 0


def test_every_short_name_and_category_we_declare_still_means_ours(
    cluster: ClusterInfo, test_namespace: str, tmp_path: Path
) -> None:
    """A short name or category shared with Hedgehog would silently mean Hedgehog's objects:
    each one our CRDs declare must list only our resources, with Hedgehog installed."""
    import yaml

    names: list[str] = []
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd_names = yaml.safe_load(path.read_text())["spec"]["names"]
        names += crd_names.get("shortNames", []) + crd_names.get("categories", [])
    assert "inventorysync" in names
    for name in names:
        listed = kubectl(
            cluster, tmp_path / "cache", "get", name, "-n", test_namespace, "-o", "name"
        )
        assert listed.returncode == 0, (name, listed.stderr)
        listed_names = listed.stdout.split()
        assert all(n.split("/")[0].endswith(".inventorysync.dev") for n in listed_names), (
            name,
            listed_names,
        )
        if name == "inventorysync":
            assert OURS in listed_names
