"""Hedgehog-shaped test CRDs (hedgehog_crds/): loading, installing, swapping, and objects the real schemas accept."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from localcluster import ClusterInfo

CRD_DIR = Path(__file__).parent / "hedgehog_crds"
V1ALPHA2_DIR = CRD_DIR / "v1alpha2"

WIRING = "wiring.githedgehog.com"
VPC = "vpc.githedgehog.com"
AGENT = "agent.githedgehog.com"
DHCP = "dhcp.githedgehog.com"
GATEWAY = "gateway.githedgehog.com"
GWINT = "gwint.githedgehog.com"
FABRICATOR = "fabricator.githedgehog.com"
Document = dict[str, Any]


def load_crds(directory: Path = CRD_DIR, *, base: Path = CRD_DIR) -> dict[str, Document]:
    """The CRDs of `directory` by name, with `x-test-spec-of` references (README.md) resolved
    against the CRDs of `base`."""
    own = _read(directory)
    known = {**_read(base), **own} if directory != base else own
    return {name: _resolve(crd, known) for name, crd in own.items()}


def _read(directory: Path) -> dict[str, Document]:
    crds: dict[str, Document] = {}
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                crds[document["metadata"]["name"]] = document
    return crds


def spec_schema(crd: Document) -> Document:
    (version,) = crd["spec"]["versions"]
    schema: Document = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _resolve(node: Any, known: dict[str, Document]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, known) for item in node]
    if not isinstance(node, dict):
        return node
    if "x-test-spec-of" in node:
        embedded = _resolve(copy.deepcopy(spec_schema(known[node["x-test-spec-of"]])), known)
        added = {k: _resolve(v, known) for k, v in (node.get("x-test-add") or {}).items()}
        if added:
            embedded["properties"] = {**embedded.get("properties", {}), **added}
        return embedded
    return {key: _resolve(value, known) for key, value in node.items()}


def install(info: ClusterInfo, crds: Iterable[Document], *, timeout: int = 60) -> None:
    """Apply CRDs (server-side: big ones overflow client-side apply's annotation) and wait
    until each is Established and its kind is in the discovery document."""
    documents = list(crds)
    manifest = {"apiVersion": "v1", "kind": "List", "items": documents}
    info.kubectl_run(
        "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(manifest)
    )
    names = [f"customresourcedefinition/{d['metadata']['name']}" for d in documents]
    info.kubectl_run("wait", "--for=condition=Established", f"--timeout={timeout}s", *names)
    for crd in documents:
        spec = crd["spec"]
        (version,) = [v["name"] for v in spec["versions"] if v["served"]]
        _wait_discovery(info, spec["group"], version, spec["names"]["kind"], present=True)


def uninstall(info: ClusterInfo, crds: Iterable[Document]) -> None:
    """Delete CRDs (and with them every object of theirs) and wait until they are gone."""
    documents = list(crds)
    names = [f"customresourcedefinition/{d['metadata']['name']}" for d in documents]
    info.kubectl_run("delete", "--wait=true", "--timeout=120s", *names)
    for crd in documents:
        spec = crd["spec"]
        for version in spec["versions"]:
            _wait_discovery(
                info, spec["group"], version["name"], spec["names"]["kind"], present=False
            )


def _wait_discovery(
    info: ClusterInfo, group: str, version: str, kind: str, *, present: bool
) -> None:
    deadline = time.monotonic() + 30
    while True:  # Established can precede the discovery document by a moment
        status, body = info.request("GET", f"/apis/{group}/{version}", token=info.admin_token)
        served = status == 200 and any(r["kind"] == kind for r in body.get("resources") or [])
        if served == present:
            return
        assert time.monotonic() < deadline, f"{group}/{version} {kind}: discovery never caught up"
        time.sleep(0.2)


# --------------------------------------------------------------------------- objects


def obj(
    group: str,
    kind: str,
    name: str,
    namespace: str,
    spec: Document | None = None,
    *,
    version: str = "v1beta1",
    labels: dict[str, str] | None = None,
) -> Document:
    """An object of a Hedgehog kind, shaped as its schema accepts."""
    body: Document = {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
    }
    if spec is not None:
        body["spec"] = spec
    return body


def switch(name: str, namespace: str, *, role: str = "server-leaf", **spec: Any) -> Document:
    return obj(WIRING, "Switch", name, namespace, {"role": role, **spec})


def server(name: str, namespace: str, **spec: Any) -> Document:
    return obj(WIRING, "Server", name, namespace, spec)


def unbundled(name: str, namespace: str, *, server_port: str, switch_port: str) -> Document:
    link = {"server": {"port": server_port}, "switch": {"port": switch_port}}
    return obj(WIRING, "Connection", name, namespace, {"unbundled": {"link": link}})


def vpc(name: str, namespace: str, subnets: dict[str, Document]) -> Document:
    return obj(
        VPC, "VPC", name, namespace,
        {"ipv4Namespace": "default", "vlanNamespace": "default", "subnets": subnets},
    )  # fmt: skip


def attachment(name: str, namespace: str, *, subnet: str, connection: str) -> Document:
    return obj(VPC, "VPCAttachment", name, namespace, {"subnet": subnet, "connection": connection})


def condition(type_: str = "Applied", status: str = "True") -> Document:
    return {
        "type": type_,
        "status": status,
        "reason": "ApplySucceeded",
        "message": "",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }


def small_fabric(namespace: str) -> list[Document]:
    """A few objects of each of the 12 default kinds, as a user (or hhfab) would write them:
    5 switches (3 pages of 2), 3 servers, 4 connections of different types, 2 VPCs…"""
    labels = {"fabric.githedgehog.com/rack": "rack-1"}
    ns = namespace
    objects = [
        obj(WIRING, "Switch", f"leaf-{n}", ns, labels=labels, spec={
            "role": "server-leaf", "description": f"leaf {n}", "profile": "vs",
            "groups": ["mclag-1"] if n < 2 else [], "vlanNamespaces": ["default"],
            "asn": 65100 + n, "ip": f"172.30.0.{8 + n}/21", "vtepIP": f"172.30.12.{n}/32",
            "protocolIP": f"172.30.8.{n}/32", "boot": {"serial": f"SN-LEAF-{n}"},
        })
        for n in range(5)
    ]  # fmt: skip
    objects += [server(f"server-{n}", ns, description=f"server {n}") for n in range(3)]

    def link(srv: str, sw: str, port: int) -> Document:
        return {"server": {"port": f"{srv}/enp2s{port}"}, "switch": {"port": f"{sw}/E1/{port}"}}

    objects += [
        obj(WIRING, "Connection", "server-0--unbundled--leaf-0", ns,
            {"unbundled": {"link": link("server-0", "leaf-0", 1)}}),
        obj(WIRING, "Connection", "server-1--bundled--leaf-1", ns,
            {"bundled": {"links": [link("server-1", "leaf-1", 1), link("server-1", "leaf-1", 2)]}}),
        obj(WIRING, "Connection", "server-2--mclag--leaf-2--leaf-3", ns,
            {"mclag": {"links": [link("server-2", "leaf-2", 3), link("server-2", "leaf-3", 3)]}}),
        obj(WIRING, "Connection", "spine-0--fabric--leaf-4", ns, {"fabric": {"links": [
            {"spine": {"port": "spine-0/E1/1", "ip": "172.30.128.0/31"},
             "leaf": {"port": "leaf-4/E1/48", "ip": "172.30.128.1/31"}}]}}),
        obj(WIRING, "SwitchGroup", "mclag-1", ns, {}),
        obj(WIRING, "VLANNamespace", "default", ns, {"ranges": [{"from": 1000, "to": 2999}]}),
        obj(VPC, "IPv4Namespace", "default", ns, {"subnets": ["10.0.0.0/16"]}),
    ]  # fmt: skip
    for n in range(2):
        subnet = {"subnet": f"10.0.{n}.0/24", "gateway": f"10.0.{n}.1", "vlan": 1000 + n}
        objects.append(vpc(f"vpc-{n}", ns, {"default": subnet}))
    objects += [
        attachment("vpc-0--server-0", ns, subnet="vpc-0/default", connection="server-0--unbundled--leaf-0"),
        attachment("vpc-1--server-1", ns, subnet="vpc-1/default", connection="server-1--bundled--leaf-1"),
        obj(VPC, "VPCPeering", "vpc-0--vpc-1", ns,
            {"permit": [{"vpc-0": {"subnets": ["default"]}, "vpc-1": {"subnets": ["default"]}}]}),
        obj(VPC, "External", "internet", ns, {"ipv4Namespace": "default",
            "inboundCommunity": "65102:5000", "outboundCommunity": "50000:50001"}),
        obj(VPC, "ExternalAttachment", "internet--leaf-4", ns, {"external": "internet",
            "connection": "leaf-4--external", "switch": {"ip": "100.100.0.6/24", "vlan": 100},
            "neighbor": {"asn": 65102, "ip": "100.100.0.1"}}),
        obj(VPC, "ExternalPeering", "vpc-0--internet", ns, {"permit": {
            "vpc": {"name": "vpc-0", "subnets": ["default"]},
            "external": {"name": "internet", "prefixes": [{"prefix": "0.0.0.0/0"}]}}}),
    ]  # fmt: skip
    return objects


#: What `small_fabric` creates per kind.
SMALL_FABRIC_COUNTS = {
    "Switch": 5, "Server": 3, "Connection": 4, "SwitchGroup": 1, "VLANNamespace": 1, "VPC": 2,
    "VPCAttachment": 2, "VPCPeering": 1, "IPv4Namespace": 1, "External": 1,
    "ExternalAttachment": 1, "ExternalPeering": 1,
}  # fmt: skip
