"""Redaction of fabric objects before they are stored: Hedgehog-shaped Agents and Fabricators, and the name rule's edges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import stage_object
from inventory_sync.syncing.redaction import REDACTED, is_secret_name, redact_object

from ...fabric_samples import agent, fabricator

FABRIC = ResourceIdentity(kind="Fabric", namespace="ops", name="fabric-a", uid="uid-1")


def staged(body: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = {**body, "metadata": {**body["metadata"], "uid": "u-1", "resourceVersion": "7"}}
    if status is not None:
        obj["status"] = status
    return stage_object(obj, api_version=body["apiVersion"], kind=body["kind"], fabric=FABRIC)


def test_an_agent_keeps_its_status_and_only_role_and_description_of_its_spec() -> None:
    sample = agent("leaf-01", "default", heartbeat="2025-03-01T10:00:00Z")

    item = staged(sample.body, sample.status)

    assert item["spec"] == {"role": "server-leaf", "description": "agent of leaf-01"}
    assert item["status"] == sample.status
    text = json.dumps(item)
    assert [s for s in sample.secrets if s in text] == []


def test_a_fabricator_keeps_its_configuration_without_a_credential() -> None:
    sample = fabricator("default", "fab")

    item = staged(sample.body)

    config = item["spec"]["config"]
    assert config["control"]["controlVIP"] == "172.30.0.1/32"
    assert config["control"]["defaultUser"] == REDACTED
    assert config["control"]["joinToken"] == REDACTED
    assert config["fabric"] == {
        "mode": "spine-leaf",
        "spineASN": 65100,
        "defaultSwitchUsers": REDACTED,
    }
    upstream = config["registry"]["upstream"]
    assert upstream == {
        "repo": "ghcr.io",
        "prefix": "githedgehog",
        "username": REDACTED,
        "password": REDACTED,
    }
    target = config["observability"]["targets"]["prometheus"]["grafana-cloud"]
    assert target["url"] == "https://prometheus.example.net/api/prom/push"
    assert (target["bearerToken"], target["certPEM"]) == (REDACTED, REDACTED)
    assert target["basicAuth"] == {"username": "123456", "password": REDACTED}
    text = json.dumps(item)
    assert [s for s in sample.secrets if s in text] == []


@pytest.mark.parametrize(
    ("name", "redacted"),
    [
        pytest.param("password", True, id="password"),
        pytest.param("joinToken", True, id="joinToken"),
        pytest.param("bearerToken", True, id="bearerToken"),
        pytest.param("clientSecret", True, id="clientSecret"),
        pytest.param("sshKeys", True, id="sshKeys"),
        pytest.param("authorizedKeys", True, id="authorizedKeys"),
        pytest.param("privateKey", True, id="privateKey"),
        pytest.param("TLSKey", True, id="TLSKey upper-case run"),
        pytest.param("api-token", True, id="kebab api-token"),
        pytest.param("db_password", True, id="snake db_password"),
        pytest.param("secretName", True, id="secretName (a reference: harmless false positive)"),
        pytest.param("keyUsage", False, id="keyUsage (key is not the last word)"),
        pytest.param("keyAlgorithm", False, id="keyAlgorithm"),
        pytest.param("publicKey", False, id="publicKey (public by name)"),
        pytest.param("key", False, id="bare key (a selector's key name)"),
        pytest.param("keys", False, id="bare keys"),
        pytest.param("noPassAuth", False, id="noPassAuth (pass is not password)"),
        pytest.param("tokenizer", False, id="tokenizer (whole words only)"),
        pytest.param("caPEM", False, id="caPEM (a certificate)"),
        pytest.param("username", False, id="username"),
        pytest.param("monkey", False, id="monkey (key inside a word)"),
    ],
)
def test_the_name_rule(name: str, redacted: bool) -> None:
    assert is_secret_name(name) is redacted


def test_one_lowercase_word_is_redacted_as_a_value_but_searched_as_a_map_entry() -> None:
    # A VPC subnet may be called "secret": its value is an object, so it is searched, not cut.
    vpc = {
        "apiVersion": "vpc.githedgehog.com/v1beta1",
        "kind": "VPC",
        "metadata": {"name": "vpc-1"},
        "spec": {
            "subnets": {"secret": {"subnet": "10.0.1.0/24", "vlan": 1001}},
            "token": "abc",
            "secrets": ["a", "b"],
        },
    }

    spec = redact_object(vpc, group="vpc.githedgehog.com", kind="VPC")["spec"]

    assert spec == {
        "subnets": {"secret": {"subnet": "10.0.1.0/24", "vlan": 1001}},
        "token": REDACTED,
        "secrets": REDACTED,
    }


def test_values_that_are_secrets_are_redacted_whatever_their_key() -> None:
    from ...fabric_samples import password_hash, pem_private_key, ssh_public_key

    jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln"
    values = [password_hash(), pem_private_key(), ssh_public_key(), jwt]
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {
            "name": "t",
            "labels": {"rack": "r1"},
            "annotations": {"note": values[2], "example.com/api-token": "x", "plain": "10.0.0.1"},
        },
        "spec": {"notes": values, "ip": "10.0.0.1/24", "nested": [{"comment": values[0]}]},
    }

    out = redact_object(obj, group="example.com", kind="Thing")

    assert out["spec"] == {
        "notes": [REDACTED] * 4,
        "ip": "10.0.0.1/24",
        "nested": [{"comment": REDACTED}],
    }
    assert out["metadata"]["labels"] == {"rack": "r1"}
    assert out["metadata"]["annotations"] == {
        "note": REDACTED,
        "example.com/api-token": REDACTED,
        "plain": "10.0.0.1",
    }


def test_a_json_annotation_is_redacted_like_the_object_it_copies() -> None:
    copy = json.dumps(
        {"spec": {"config": {"control": {"joinToken": "join-abc", "controlVIP": "x"}}}}
    )
    obj = {
        "apiVersion": "a/v1",
        "kind": "K",
        "metadata": {"name": "n", "annotations": {"tool/copy": copy}},
    }

    out = redact_object(obj, group="a", kind="K")

    annotation = json.loads(out["metadata"]["annotations"]["tool/copy"])
    assert annotation == {
        "spec": {"config": {"control": {"joinToken": REDACTED, "controlVIP": "x"}}}
    }


def test_labels_keep_relations_even_when_a_name_looks_like_a_secret_word() -> None:
    labels = {"switch.fabric.githedgehog.com/token-ring-1": "true"}
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "labels": labels}}

    assert redact_object(obj, group="a", kind="K")["metadata"]["labels"] == labels


def test_redaction_leaves_the_input_untouched() -> None:
    sample = agent("leaf-01", "default", heartbeat="2025-03-01T10:00:00Z")
    before = json.dumps(sample.body, sort_keys=True)

    redact_object(sample.body, group="agent.githedgehog.com", kind="Agent")

    assert json.dumps(sample.body, sort_keys=True) == before
