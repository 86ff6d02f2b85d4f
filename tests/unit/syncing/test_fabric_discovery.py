"""Resolving a Fabric's kinds through discovery: versions, pins, absent kinds and misspelt ones (a scripted API server)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from inventory_sync.errors import KubeForbidden, SpecError
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.models import KindRef, parse_fabric_spec
from inventory_sync.syncing.fabric import check_kinds
from inventory_sync.syncing.fabric_discovery import (
    FabricDiscovery,
    Resolved,
    Unresolvable,
    Unresolved,
)

WIRING, VPC, AGENT = "wiring.githedgehog.com", "vpc.githedgehog.com", "agent.githedgehog.com"

# group → (preferred version, {version: {Kind: (plural, short names)}})
Served = dict[str, tuple[str, dict[str, dict[str, tuple[str, list[str]]]]]]
OLD_HEDGEHOG: Served = {
    WIRING: (
        "v1alpha2",
        {"v1alpha2": {"Switch": ("switches", ["sw"]), "Server": ("servers", ["srv"])}},
    ),
    VPC: ("v1alpha2", {"v1alpha2": {"VPC": ("vpcs", [])}}),
}
HEDGEHOG: Served = {
    WIRING: ("v1beta1", {
        "v1beta1": {"Switch": ("switches", ["sw"]), "SwitchGroup": ("switchgroups", ["sg"])},
        "v1alpha1": {"Legacy": ("legacies", [])},
    }),
    VPC: ("v1beta1", {"v1beta1": {"VPC": ("vpcs", []), "VPCAttachment": ("vpcattachments", ["vpcattach"])}}),
    "example.com": ("v1", {"v1": {"Switch": ("switches", [])}}),
}  # fmt: skip


class Discovery:
    """/api, /apis and /apis/{group}/{version} of a scripted fabric; counts the requests."""

    def __init__(self, served: Served, *, forbidden: bool = False) -> None:
        self.served, self.forbidden, self.paths = served, forbidden, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if self.forbidden:
            return httpx.Response(403, json={"kind": "Status", "code": 403, "message": "forbidden"})
        if path == "/api":
            return httpx.Response(200, json={"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in versions],
                 "preferredVersion": {"groupVersion": f"{g}/{preferred}", "version": preferred}}
                for g, (preferred, versions) in self.served.items()
            ]  # fmt: skip
            return httpx.Response(200, json={"kind": "APIGroupList", "groups": groups})
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[1] in self.served:
            kinds = self.served[parts[1]][1].get(parts[2])
            if kinds is not None:
                resources: list[dict[str, Any]] = []
                for kind, (plural, short) in kinds.items():
                    resources.append({"name": plural, "singularName": kind.lower(), "kind": kind,
                                      "namespaced": True, "verbs": ["get", "list"], "shortNames": short})  # fmt: skip
                    resources.append({"name": f"{plural}/status", "kind": kind, "namespaced": True})
                return httpx.Response(200, json={"kind": "APIResourceList", "resources": resources})
        return httpx.Response(404, json={"kind": "Status", "code": 404})


def client_for(discovery: Discovery) -> KubeClient:
    connection = KubeConnection(server="https://fabric.test", token="t")
    return KubeClient(connection, transport=httpx.MockTransport(discovery), retry_delay=0)


async def resolve(served: Served, **ref: Any) -> Resolved | Unresolved:
    async with client_for(Discovery(served)) as client:
        return await FabricDiscovery(client).resolve(KindRef(**ref))


@pytest.mark.parametrize(
    ("served", "ref", "version", "plural"),
    [
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Switch"}, "v1beta1", "switches", id="the preferred version"),
        pytest.param(OLD_HEDGEHOG, {"group": WIRING, "kind": "Switch"}, "v1alpha2", "switches", id="v1alpha2 before Hedgehog v0.52"),
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Legacy"}, "v1alpha1", "legacies", id="a kind only at a non-preferred version"),
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Switch", "version": "v1beta1"}, "v1beta1", "switches", id="a served pin"),
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Switch", "plural": "sws"}, "v1beta1", "sws", id="an explicit plural wins"),
    ],
)  # fmt: skip
async def test_a_served_kind_resolves_to_the_version_the_fabric_serves(
    served: Served, ref: dict[str, Any], version: str, plural: str
) -> None:
    found = await resolve(served, **ref)

    assert isinstance(found, Resolved)
    assert (found.version, found.resource.plural, found.resource.namespaced) == (
        version,
        plural,
        True,
    )


@pytest.mark.parametrize(
    ("served", "ref", "reason", "message", "field"),
    [
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Switch", "version": "v1alpha2"},
                     Unresolvable.VERSION_NOT_SERVED,
                     f"installed at {WIRING}/v1beta1, not at the pinned version v1alpha2", None,
                     id="a pin the fabric does not serve is another version"),
        pytest.param(OLD_HEDGEHOG, {"group": WIRING, "kind": "Switch", "version": "v1beta1"},
                     Unresolvable.VERSION_NOT_SERVED,
                     f"installed at {WIRING}/v1alpha2, not at the pinned version v1beta1", None,
                     id="a v1beta1 pin on an old fabric"),
        pytest.param(HEDGEHOG, {"group": AGENT, "kind": "Agent"}, Unresolvable.NOT_INSTALLED,
                     f"not installed: the fabric serves no API group {AGENT}", None,
                     id="a group the fabric does not serve is not installed"),
        pytest.param(OLD_HEDGEHOG, {"group": WIRING, "kind": "SwitchProfile"}, Unresolvable.NOT_INSTALLED,
                     f"not installed: {WIRING} serves no kind SwitchProfile", None,
                     id="a kind newer than the fabric is not installed"),
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Swich"}, Unresolvable.UNKNOWN_KIND,
                     f"{WIRING} serves no kind Swich; did you mean Switch?", "kind",
                     id="a letter missing is a misspelt kind"),
        pytest.param(HEDGEHOG, {"group": VPC, "kind": "VpcAttachment"}, Unresolvable.UNKNOWN_KIND,
                     f"{VPC} serves no kind VpcAttachment; did you mean VPCAttachment?", "kind",
                     id="another case is a misspelt kind"),
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "Switches"}, Unresolvable.UNKNOWN_KIND,
                     f"{WIRING} serves no kind Switches; did you mean Switch?", "kind",
                     id="the plural is a misspelt kind"),
        pytest.param(HEDGEHOG, {"group": VPC, "kind": "Switch"}, Unresolvable.UNKNOWN_KIND,
                     f"Switch is served by {WIRING}, not by {VPC}", "group",
                     id="a kind of a sibling group is a misspelt group"),
        pytest.param(HEDGEHOG, {"group": "vpc.githedgehog.io", "kind": "VPC"}, Unresolvable.NOT_INSTALLED,
                     "not installed: the fabric serves no API group vpc.githedgehog.io", None,
                     id="another domain is never searched"),
        pytest.param(HEDGEHOG, {"group": WIRING, "kind": "SwitchGroups"}, Unresolvable.UNKNOWN_KIND,
                     f"{WIRING} serves no kind SwitchGroups; did you mean SwitchGroup?", "kind",
                     id="plural of a kind that shares a stem"),
    ],
)  # fmt: skip
async def test_an_unserved_kind_says_why(
    served: Served, ref: dict[str, Any], reason: Unresolvable, message: str, field: str | None
) -> None:
    found = await resolve(served, **ref)

    assert found == Unresolved(reason, message, field)


async def test_a_kind_sharing_a_stem_with_a_served_kind_is_not_a_misspelling() -> None:
    # Switch vs SwitchGroup, External vs ExternalPeering: different kinds, not typos.
    served: Served = {WIRING: ("v1beta1", {"v1beta1": {"SwitchGroup": ("switchgroups", [])}})}

    found = await resolve(served, group=WIRING, kind="Switch")

    assert isinstance(found, Unresolved)
    assert found.reason is Unresolvable.NOT_INSTALLED


async def test_discovery_documents_are_fetched_once_per_run() -> None:
    discovery = Discovery(HEDGEHOG)
    async with client_for(discovery) as client:
        fabric = FabricDiscovery(client)
        for kind in ("Switch", "SwitchGroup", "Switch"):
            assert isinstance(await fabric.resolve(KindRef(group=WIRING, kind=kind)), Resolved)

    assert discovery.paths == ["/api", "/apis", f"/apis/{WIRING}/v1beta1"]


async def test_forbidden_discovery_raises_rather_than_calling_kinds_absent() -> None:
    async with client_for(Discovery(HEDGEHOG, forbidden=True)) as client:
        with pytest.raises(KubeForbidden):
            await FabricDiscovery(client).resolve(KindRef(group=WIRING, kind="Switch"))


async def test_check_kinds_names_each_misspelt_kind_by_its_field() -> None:
    spec = parse_fabric_spec({
        "interval": "5m",
        "kinds": [{"group": WIRING, "kind": "Switch"}, {"group": WIRING, "kind": "Swich"},
                  {"group": AGENT, "kind": "Agent"}, {"group": VPC, "kind": "Switch"}],
    })  # fmt: skip
    async with client_for(Discovery(HEDGEHOG)) as client:
        with pytest.raises(SpecError) as raised:
            await check_kinds(spec, client=client)

    assert str(raised.value) == (
        f"spec.kinds[1].kind: {WIRING} serves no kind Swich; did you mean Switch?; "
        f"spec.kinds[3].group: Switch is served by {WIRING}, not by {VPC}"
    )


async def test_check_kinds_leaves_an_unreachable_fabric_to_the_run() -> None:
    spec = parse_fabric_spec({"interval": "5m", "kinds": [{"group": WIRING, "kind": "Swich"}]})
    async with client_for(Discovery(HEDGEHOG, forbidden=True)) as client:
        await check_kinds(spec, client=client)  # no SpecError: the run reports the 403
