"""Spec parsing: what a user may write in a SyncSchedule or Fabric, and the errors they get."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from inventory_sync.durations import format_duration, parse_duration
from inventory_sync.errors import SpecError, public_message
from inventory_sync.models import (
    DEFAULT_FABRIC_KINDS,
    dependency_graph,
    parse_fabric_spec,
    parse_sync_schedule_spec,
)


def _greenlake(resource: str) -> dict[str, Any]:
    return {"resource": resource, "workspaceId": "ws-1", "credentialsSecretRef": {"name": "glp"}}


VALID: dict[str, Any] = {
    "interval": "15m",
    "sources": [
        {"name": "subscriptions", "greenlake": _greenlake("subscriptions")},
        {"name": "devices", "greenlake": _greenlake("devices")},
        {
            "name": "central",
            "arubaCentral": {
                "endpoint": "https://eu.api.central.arubanetworks.com",
                "workspaceId": "ws-1",
                "credentialsSecretRef": {"name": "central"},
            },
        },
    ],
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), ("2h0m5s", 7205)],
)
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "15", "5x", "1d", "m5", "-5m", "5 m"])
def test_bad_durations_are_rejected_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_durations_format_back_in_go_style() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(seconds=45)) == "45s"


def test_a_valid_spec_gets_the_documented_defaults() -> None:
    spec = parse_sync_schedule_spec(VALID)
    assert spec.interval == timedelta(minutes=15)
    assert spec.effective_timeout == timedelta(minutes=10)
    assert spec.run_on_startup is True
    assert spec.concurrency_policy.value == "Forbid"
    assert spec.sources[1].greenlake is not None
    assert spec.sources[1].greenlake.endpoint == "https://global.api.greenlake.hpe.com"
    assert spec.sources[0].secret_ref.client_secret_key == "client_secret"
    central = spec.sources[2].aruba_central
    assert central is not None
    assert (central.api_version, central.page_size) == ("v1", 1000)


def test_without_depends_on_every_source_waits_for_the_subscriptions() -> None:
    graph = dependency_graph(parse_sync_schedule_spec(VALID).sources)
    assert graph == {
        "subscriptions": [],
        "devices": ["subscriptions"],
        "central": ["subscriptions"],
    }


def test_an_explicit_empty_depends_on_runs_in_the_first_stage() -> None:
    doc = copy.deepcopy(VALID)
    doc["sources"][2]["dependsOn"] = []
    assert dependency_graph(parse_sync_schedule_spec(doc).sources)["central"] == []


def _mutated(path_and_value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    path_and_value(doc)
    return doc


BAD = [
    (
        "bad interval names spec.interval",
        lambda d: d.update(interval="5x"),
        "spec.interval: invalid duration",
    ),
    (
        "interval under a minute",
        lambda d: d.update(interval="30s"),
        "spec.interval: must be at least 1m",
    ),
    (
        "timeout above interval",
        lambda d: d.update(timeout="20m"),
        "timeout must not exceed interval",
    ),
    (
        "unknown greenlake resource names the field",
        lambda d: d["sources"][1]["greenlake"].update(resource="gadgets"),
        "spec.sources[1].greenlake.resource",
    ),
    (
        "unknown source type names the source",
        lambda d: d["sources"][1].update(greenlake=None, netbox={"url": "x"}),
        "spec.sources[1].netbox: unknown field",
    ),
    (
        "two source types at once",
        lambda d: d["sources"][0].update(arubaCentral=d["sources"][2]["arubaCentral"]),
        "spec.sources[0]: exactly one of greenlake, arubaCentral or arubaCentralClassic",
    ),
    (
        "no source type at all",
        lambda d: d["sources"][0].pop("greenlake"),
        "spec.sources[0]: exactly one of greenlake, arubaCentral or arubaCentralClassic",
    ),
    (
        "duplicate source names",
        lambda d: d["sources"][2].update(name="devices"),
        "source names must be unique: devices",
    ),
    (
        "dependsOn an unknown source",
        lambda d: d["sources"][1].update(dependsOn=["nope"]),
        "dependsOn unknown source 'nope'",
    ),
    (
        "dependsOn cycle",
        lambda d: (
            d["sources"][0].update(dependsOn=["central"]),
            d["sources"][2].update(dependsOn=["subscriptions"]),
        ),
        "dependsOn forms a cycle: subscriptions -> central -> subscriptions",
    ),
    (
        "no sources",
        lambda d: d.update(sources=[]),
        "spec.sources: List should have at least 1 item",
    ),
    (
        "source name not a DNS label",
        lambda d: d["sources"][0].update(name="Subs_1"),
        "spec.sources[0].name",
    ),
    (
        "concurrency policy enum",
        lambda d: d.update(concurrencyPolicy="Allow"),
        "spec.concurrencyPolicy",
    ),
    (
        "page size above the API maximum",
        lambda d: d["sources"][1]["greenlake"].update(pageSize=5000),
        "spec.sources[1].greenlake.pageSize",
    ),
    (
        "unknown Central API version",
        lambda d: d["sources"][2]["arubaCentral"].update(apiVersion="v2"),
        "spec.sources[2].arubaCentral.apiVersion",
    ),
    (
        "Central page size above the largest the API accepts",
        lambda d: d["sources"][2]["arubaCentral"].update(pageSize=1001),
        "spec.sources[2].arubaCentral.pageSize",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [(m, msg) for _, m, msg in BAD], ids=[b[0] for b in BAD]
)
def test_bad_specs_are_rejected_naming_the_field(mutate: Any, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_sync_schedule_spec(_mutated(mutate))
    assert message in str(caught.value)


def test_fabric_defaults_to_the_twelve_hedgehog_kinds() -> None:
    spec = parse_fabric_spec({"interval": "5m"})
    assert len(spec.kinds) == 12 == len(DEFAULT_FABRIC_KINDS)
    assert {k.group for k in spec.kinds} == {"vpc.githedgehog.com", "wiring.githedgehog.com"}
    assert spec.kubeconfig_secret_ref is None


def test_fabric_rejects_an_unknown_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.kubeconfig: unknown field"):
        parse_fabric_spec({"interval": "5m", "kubeconfig": "x"})


def test_without_a_timeout_a_short_interval_bounds_the_run() -> None:
    spec = parse_sync_schedule_spec({**VALID, "interval": "5m"})
    assert spec.timeout is None
    assert spec.effective_timeout == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("raw", "published"),
    [
        ("GET https://api.example/x?token=abc123&y=1 failed", "GET https://api.example/x failed"),
        ("Authorization: Bearer eyJhbGciOi.payload", "Authorization: Bearer ***"),
        ("client_secret=hunter2 rejected", "client_secret=*** rejected"),
        ("password: hunter2", "password: ***"),
        (
            "Secret default/glp has no key 'client_secret'",
            "Secret default/glp has no key 'client_secret'",
        ),
    ],
)
def test_published_messages_hide_tokens_and_query_strings(raw: str, published: str) -> None:
    assert public_message(RuntimeError(raw)) == published


def test_published_messages_are_capped() -> None:
    assert len(public_message(RuntimeError("x" * 1000))) == 256


def test_fabric_rejects_a_kind_listed_twice() -> None:
    kinds = [{"group": "wiring.githedgehog.com", "kind": "Switch"}] * 2
    with pytest.raises(SpecError, match=r"kinds must be unique: wiring\.githedgehog\.com/Switch"):
        parse_fabric_spec({"interval": "5m", "kinds": kinds})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"namespaces": ["../etc"]}, "spec.namespaces[0]: String should match pattern", id="a path is no namespace"),
        pytest.param({"namespaces": ["default", ""]}, "spec.namespaces[1]: String should match pattern", id="an empty namespace"),
        pytest.param({"namespaces": ["Default"]}, "spec.namespaces[0]: String should match pattern", id="an upper-case namespace"),
        pytest.param({"kinds": []}, "spec.kinds: List should have at least 1 item", id="no kinds"),
        pytest.param({"kinds": [{"group": "wiring.githedgehog.com", "kind": "Switch", "version": "beta"}]},
                     "spec.kinds[0].version: String should match pattern", id="a version that is no API version"),
        pytest.param({"kinds": [{"group": "../wiring", "kind": "Switch"}]},
                     "spec.kinds[0].group: String should match pattern", id="a group that is no DNS name"),
        pytest.param({"kinds": [{"group": "wiring.githedgehog.com", "kind": "Switch", "plural": "a/b"}]},
                     "spec.kinds[0].plural: String should match pattern", id="a plural that walks the URL"),
    ],
)  # fmt: skip
def test_fabric_rejects_bad_namespaces_and_kinds_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_fabric_spec({"interval": "5m", **fields})
    assert message in str(caught.value)


def test_a_fabric_kind_without_a_version_leaves_it_to_discovery() -> None:
    spec = parse_fabric_spec(
        {"interval": "5m", "kinds": [{"group": "agent.githedgehog.com", "kind": "Agent"}]}
    )
    assert spec.kinds[0].version is None
    assert spec.kinds[0].label == "agent.githedgehog.com/Agent"
