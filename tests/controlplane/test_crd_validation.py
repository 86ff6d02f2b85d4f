"""The CRDs as the real API server enforces them: what `kubectl create` rejects and with which
message, which defaults it fills in, and one table that the CRD and the pydantic models must
judge alike (the operator re-validates every spec it reads)."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from localcluster import ClusterInfo

from inventory_sync.errors import KubeInvalid, SpecError
from inventory_sync.kube import KubeClient
from inventory_sync.models import GROUP, VERSION, parse_fabric_spec, parse_sync_schedule_spec
from inventory_sync.simulator import ThreadedSimulator

from .harness import condition, eventually
from .test_operator import create_secret, path, schedule

pytestmark = pytest.mark.controlplane


Kind = Literal["SyncSchedule", "Fabric"]
PLURALS: dict[Kind, str] = {"SyncSchedule": "syncschedules", "Fabric": "fabrics"}


# --------------------------------------------------------------------------- spec builders


def greenlake(resource: str = "devices", **extra: Any) -> dict[str, Any]:
    return {
        "resource": resource,
        "workspaceId": "ws-1",
        "credentialsSecretRef": {"name": "glp-credentials"},
        **extra,
    }


def central(**extra: Any) -> dict[str, Any]:
    return {
        "endpoint": "https://de1.api.central.arubanetworks.com",
        "workspaceId": "ws-1",
        "credentialsSecretRef": {"name": "central-credentials"},
        **extra,
    }


def source(name: str, **typed: Any) -> dict[str, Any]:
    """One entry of spec.sources; `typed` holds greenlake=…, arubaCentral=…, dependsOn=…"""
    return {"name": name, **typed}


SUBSCRIPTIONS = source("subscriptions", greenlake=greenlake("subscriptions"))


def sync(*sources: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A SyncSchedule spec: interval 15m and one subscriptions source unless given."""
    return {"interval": "15m", "sources": list(sources) or [SUBSCRIPTIONS], **fields}


def fabric(**fields: Any) -> dict[str, Any]:
    return {"interval": "5m", **fields}


def manifest(kind: Kind, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": copy.deepcopy(spec),
    }


# --------------------------------------------------------------------------- the one table


@dataclass(frozen=True)
class Example:
    """A spec and how both validators must judge it.

    `kubectl_says`: fragments of the error `kubectl create` prints (the CRD's schema or CEL
    message); `model_says`: a fragment of the operator's SpecError for the same problem.
    `verdict="cycle"` is the one documented asymmetry: CEL has no recursion, so a dependsOn
    cycle through several sources passes the API server and the operator reports Stalled.
    """

    kind: Kind
    spec: dict[str, Any]
    verdict: Literal["valid", "invalid", "cycle"]
    kubectl_says: tuple[str, ...] = ()
    model_says: str = ""


def valid(kind: Kind, spec: dict[str, Any]) -> Example:
    return Example(kind, spec, "valid")


def invalid(kind: Kind, spec: dict[str, Any], *kubectl_says: str, model: str) -> Example:
    return Example(kind, spec, "invalid", kubectl_says, model)


PATTERN_DURATION = r"should match '^([0-9]+(\.[0-9]+)?(ms|h|m|s))+$'"

EXAMPLES = {
    # ---- valid
    "minimal schedule": valid("SyncSchedule", sync()),
    "every field set": valid(
        "SyncSchedule",
        sync(
            SUBSCRIPTIONS,
            source(
                "devices",
                dependsOn=["subscriptions"],
                greenlake=greenlake(
                    "devices",
                    pageSize=2000,
                    endpoint="https://eu.api.greenlake.hpe.com",
                    tokenUrl="https://sso.example.com/token",
                    credentialsSecretRef={
                        "name": "glp.creds",
                        "clientIdKey": "id",
                        "clientSecretKey": "secret",
                    },
                ),
            ),
            source(
                "central", dependsOn=[], arubaCentral=central(apiVersion="v1alpha1", pageSize=1000)
            ),
            interval="1h30m",
            timeout="1h30m",
            suspend=True,
            runOnStartup=False,
            concurrencyPolicy="Replace",
            historyLimit=0,
        ),
    ),
    "interval of exactly 1m": valid("SyncSchedule", sync(interval="60s", timeout="500ms")),
    "fractional interval": valid("SyncSchedule", sync(interval="1.5h")),
    "minimal fabric": valid("Fabric", fabric()),
    "fabric with every field set": valid(
        "Fabric",
        fabric(
            interval="1m",
            suspend=True,
            kubeconfigSecretRef={"name": "fabric-a", "key": "value"},
            namespaces=["default", "n" * 63],
            kinds=[
                {
                    "group": "wiring.githedgehog.com",
                    "kind": "Switch",
                    "plural": "switches",
                    "version": "v1alpha2",
                },
            ],
            pageSize=5000,
        ),
    ),
    # ---- rejected by both, with the message a user sees
    "interval 5x breaks the duration pattern": invalid(
        "SyncSchedule",
        sync(interval="5x"),
        'spec.interval: Invalid value: "5x"',
        PATTERN_DURATION,
        model="spec.interval: invalid duration '5x'",
    ),
    "interval 30s is below the 1m minimum": invalid(
        "SyncSchedule",
        sync(interval="30s"),
        'spec.interval: Invalid value: "30s": interval must be at least 1m',
        model="spec.interval: must be at least 1m",
    ),
    "missing interval": invalid(
        "SyncSchedule",
        {"sources": [SUBSCRIPTIONS]},
        "spec.interval: Required value",
        model="spec.interval: Field required",
    ),
    "timeout longer than the interval": invalid(
        "SyncSchedule",
        sync(interval="15m", timeout="20m"),
        "spec.timeout: Invalid value",
        "timeout must not exceed interval",
        model="timeout must not exceed interval",
    ),
    "zero timeout": invalid(
        "SyncSchedule",
        sync(timeout="0s"),
        'spec.timeout: Invalid value: "0s": timeout must be positive',
        model="spec.timeout: must be positive",
    ),
    "fullSyncInterval 30s is below 1m": invalid(
        "SyncSchedule",
        sync(source("devices", greenlake=greenlake(fullSyncInterval="30s"))),
        'spec.sources[0].greenlake.fullSyncInterval: Invalid value: "30s": fullSyncInterval must be 0s',
        model="spec.sources[0].greenlake.fullSyncInterval: fullSyncInterval must be 0s",
    ),
    "fullSyncInterval 0s (always walk everything)": valid(
        "SyncSchedule", sync(source("devices", greenlake=greenlake(fullSyncInterval="0s")))
    ),
    "an unknown Central API version": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(apiVersion="v2"))),
        'spec.sources[0].arubaCentral.apiVersion: Unsupported value: "v2"',
        model="spec.sources[0].arubaCentral.apiVersion",
    ),
    "no sources": invalid(
        "SyncSchedule",
        {"interval": "15m", "sources": []},
        "spec.sources in body should have at least 1 items",
        model="spec.sources: List should have at least 1 item",
    ),
    "a source with both greenlake and arubaCentral": invalid(
        "SyncSchedule",
        sync(source("both", greenlake=greenlake(), arubaCentral=central())),
        "spec.sources[0]: Invalid value: exactly one of greenlake, arubaCentral or arubaCentralClassic must be set",
        model="spec.sources[0]: exactly one of greenlake, arubaCentral or arubaCentralClassic must be set",
    ),
    "a source with no type": invalid(
        "SyncSchedule",
        sync(source("untyped")),
        "spec.sources[0]: Invalid value: exactly one of greenlake, arubaCentral or arubaCentralClassic must be set",
        model="spec.sources[0]: exactly one of greenlake, arubaCentral or arubaCentralClassic must be set",
    ),
    "duplicate source names": invalid(
        "SyncSchedule",
        sync(SUBSCRIPTIONS, SUBSCRIPTIONS),
        "spec.sources: Invalid value: source names must be unique",
        model="source names must be unique: subscriptions",
    ),
    "dependsOn names an unknown source": invalid(
        "SyncSchedule",
        sync(SUBSCRIPTIONS, source("devices", dependsOn=["subscription"], greenlake=greenlake())),
        "spec.sources: Invalid value: dependsOn must name sources of this schedule",
        model="source 'devices' dependsOn unknown source 'subscription'",
    ),
    "a source depending on itself": invalid(
        "SyncSchedule",
        sync(source("devices", dependsOn=["devices"], greenlake=greenlake())),
        "spec.sources[0]: Invalid value: a source must not depend on itself",
        model="source 'devices' depends on itself",
    ),
    "greenlake resource switches is not in the enum": invalid(
        "SyncSchedule",
        sync(source("switches", greenlake=greenlake("switches"))),
        'spec.sources[0].greenlake.resource: Unsupported value: "switches"',
        'supported values: "subscriptions", "devices"',
        model="spec.sources[0].greenlake.resource: Input should be 'subscriptions' or 'devices'",
    ),
    "concurrencyPolicy Allow is not in the enum": invalid(
        "SyncSchedule",
        sync(concurrencyPolicy="Allow"),
        'spec.concurrencyPolicy: Unsupported value: "Allow": supported values: "Forbid", "Replace"',
        model="spec.concurrencyPolicy: Input should be 'Forbid' or 'Replace'",
    ),
    "arubaCentral pageSize over 1000": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(pageSize=5000))),
        "spec.sources[0].arubaCentral.pageSize in body should be less than or equal to 1000",
        model="spec.sources[0].arubaCentral.pageSize: Input should be less than or equal to 1000",
    ),
    "historyLimit over 100": invalid(
        "SyncSchedule",
        sync(historyLimit=101),
        "spec.historyLimit in body should be less than or equal to 100",
        model="spec.historyLimit: Input should be less than or equal to 100",
    ),
    "greenlake without credentialsSecretRef": invalid(
        "SyncSchedule",
        sync(source("devices", greenlake={"resource": "devices", "workspaceId": "ws-1"})),
        "spec.sources[0].greenlake.credentialsSecretRef: Required value",
        model="spec.sources[0].greenlake.credentialsSecretRef: Field required",
    ),
    "source name with capitals and an underscore": invalid(
        "SyncSchedule",
        sync(source("Bad_Name", greenlake=greenlake())),
        'spec.sources[0].name: Invalid value: "Bad_Name"',
        "should match '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'",
        model="spec.sources[0].name: String should match pattern",
    ),
    "suspend as the string yes": invalid(
        "SyncSchedule",
        sync(suspend="yes"),
        "spec.suspend in body must be of type boolean",
        model="spec.suspend: Input should be a valid boolean",
    ),
    "a misspelt field under strict field validation": invalid(
        "SyncSchedule",
        sync(source("devices", greenlake=greenlake(resourse="devices"))),
        'strict decoding error: unknown field "spec.sources[0].greenlake.resourse"',
        model="spec.sources[0].greenlake.resourse: unknown field",
    ),
    "fabric kind in lower case": invalid(
        "Fabric",
        fabric(kinds=[{"group": "wiring.githedgehog.com", "kind": "switch"}]),
        'spec.kinds[0].kind: Invalid value: "switch"',
        "should match '^[A-Z][A-Za-z0-9]*$'",
        model="spec.kinds[0].kind: String should match pattern",
    ),
    "fabric interval 10s is below the 1m minimum": invalid(
        "Fabric",
        fabric(interval="10s"),
        'spec.interval: Invalid value: "10s": interval must be at least 1m',
        model="spec.interval: must be at least 1m",
    ),
    "fabric namespace longer than 63 characters": invalid(
        "Fabric",
        fabric(namespaces=["n" * 64]),
        "spec.namespaces[0]: Too long: may not be more than 63 bytes",
        model="spec.namespaces[0]: String should have at most 63 characters",
    ),
    "fabric namespace that walks the URL tree": invalid(
        "Fabric",
        fabric(namespaces=["../etc"]),
        'spec.namespaces[0]: Invalid value: "../etc"',
        "should match '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'",
        model="spec.namespaces[0]: String should match pattern",
    ),
    "fabric namespace empty": invalid(
        "Fabric",
        fabric(namespaces=["default", ""]),
        'spec.namespaces[1]: Invalid value: ""',
        model="spec.namespaces[1]: String should match pattern",
    ),
    "fabric with no kinds": invalid(
        "Fabric",
        fabric(kinds=[]),
        "spec.kinds: Invalid value: 0: spec.kinds in body should have at least 1 items",
        model="spec.kinds: List should have at least 1 item",
    ),
    "fabric kind version that is no API version": invalid(
        "Fabric",
        fabric(kinds=[{"group": "wiring.githedgehog.com", "kind": "Switch", "version": "beta1"}]),
        'spec.kinds[0].version: Invalid value: "beta1"',
        model="spec.kinds[0].version: String should match pattern",
    ),
    "fabric pageSize 0": invalid(
        "Fabric",
        fabric(pageSize=0),
        "spec.pageSize in body should be greater than or equal to 1",
        model="spec.pageSize: Input should be greater than or equal to 1",
    ),
    "fabric kind listed twice": invalid(
        "Fabric",
        fabric(kinds=[{"group": "wiring.githedgehog.com", "kind": "Switch"}] * 2),
        "spec.kinds: Invalid value",
        "kinds must be unique",
        model="spec: kinds must be unique: wiring.githedgehog.com/Switch",
    ),
    # ---- where credentials may go (docs/credentials.md)
    "plain http to the simulator on loopback": valid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="http://127.0.0.1:8089"))),
    ),
    "an in-cluster name (the allow-list is the operator's)": valid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="https://central.proxy.svc"))),
    ),
    "plain http to a non-loopback host": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="http://central.example.test"))),
        "plain http is allowed only to a loopback host",
        model="plain http is allowed only to a loopback host",
    ),
    "the metadata address as tokenUrl": invalid(
        "SyncSchedule",
        sync(source("s", greenlake=greenlake(tokenUrl="https://169.254.169.254/latest/"))),
        "must not be a link-local, unspecified or cloud metadata address",
        model="169.254.169.254 is a link-local address",
    ),
    "the metadata address written as one number": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="https://2852039166/"))),
        "a numeric host must be a plain IP address",
        model="169.254.169.254 is a link-local address",
    ),
    "a metadata service name": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="https://metadata.google.internal"))),
        "must not be a cloud metadata service",
        model="metadata.google.internal is a cloud metadata service",
    ),
    "a newline in a URL": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="https://central.example.test\n/x"))),
        "spec.sources[0].arubaCentral.endpoint: Invalid value",
        model="spec.sources[0].arubaCentral.endpoint: String should match pattern",
    ),
    "user information in a URL": invalid(
        "SyncSchedule",
        sync(source("s", greenlake=greenlake(tokenUrl="https://u:secret@sso.example.test/t"))),
        "spec.sources[0].greenlake.tokenUrl: Invalid value",
        model="spec.sources[0].greenlake.tokenUrl: String should match pattern",
    ),
    "an IPv6 link-local endpoint": invalid(
        "SyncSchedule",
        sync(source("central", arubaCentral=central(endpoint="https://[fe80::1]/"))),
        "must not be a link-local, unspecified or cloud metadata address",
        model="fe80::1 is a link-local address",
    ),
    "fabric context with its kubeconfig Secret": valid(
        "Fabric",
        fabric(
            kubeconfigSecretRef={"name": "fabrics"}, context="arn:aws:eks:eu-west-1:1:cluster/a"
        ),
    ),
    "fabric context without a kubeconfig Secret": invalid(
        "Fabric",
        fabric(context="fabric-b"),
        "spec.context: Invalid value",
        "set kubeconfigSecretRef too",
        model="spec: context picks a context of the kubeconfig Secret: set kubeconfigSecretRef too",
    ),
    # ---- the documented asymmetry
    "a dependsOn cycle through three sources": Example(
        "SyncSchedule",
        sync(
            source("a", dependsOn=["c"], greenlake=greenlake()),
            source("b", dependsOn=["a"], greenlake=greenlake()),
            source("c", dependsOn=["b"], arubaCentral=central()),
        ),
        "cycle",
        model_says="dependsOn forms a cycle: a -> c -> b -> a",
    ),
}

REJECTED = {key: example for key, example in EXAMPLES.items() if example.verdict == "invalid"}


def model_verdict(example: Example) -> str | None:
    """None when the operator's models accept the spec, else the SpecError message."""
    parse = parse_sync_schedule_spec if example.kind == "SyncSchedule" else parse_fabric_spec
    try:
        parse(copy.deepcopy(example.spec))
    except SpecError as error:
        return str(error)
    return None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def namespace(control_plane: ClusterInfo) -> Iterator[str]:
    """One namespace for the module: rejected objects never exist, dry runs persist nothing."""
    name = f"t-crd-validation-{secrets.token_hex(3)}"
    control_plane.kubectl_run("create", "namespace", name)
    control_plane.kubectl_run("label", "namespace", name, "inventory-sync.test/scratch=true")
    yield name
    # The defaults test stores one schedule: operators started later must not pick it up.
    control_plane.kubectl_run("delete", "syncschedules", "--all", "-n", name, check=False)
    if control_plane.expected_version is None:  # external cluster: let it clean up
        control_plane.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
async def tidy_namespace(test_namespace: str, admin: KubeClient) -> AsyncIterator[str]:
    """test_namespace; its SyncSchedules are deleted afterwards so that operators started later
    in this session do not pick them up."""
    yield test_namespace
    await admin.delete(path(test_namespace))


def kubectl_create(
    control_plane: ClusterInfo, namespace: str, body: dict[str, Any]
) -> tuple[int, str]:
    """`kubectl create --validate=strict -f -` as the admin: (exit code, what it printed)."""
    result = control_plane.kubectl_run(
        "create", "--validate=strict", "-n", namespace, "-o", "json", "-f", "-",
        stdin=json.dumps(body), check=False,
    )  # fmt: skip
    return result.returncode, (result.stderr or result.stdout).strip()


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("key", list(REJECTED))
def test_kubectl_create_rejects_an_invalid_resource_with_a_clear_message(
    control_plane: ClusterInfo, namespace: str, key: str
) -> None:
    example = REJECTED[key]
    name = f"bad-{secrets.token_hex(3)}"

    code, output = kubectl_create(
        control_plane, namespace, manifest(example.kind, name, example.spec)
    )

    assert code != 0, f"the API server accepted {key!r}"
    for fragment in example.kubectl_says:
        assert fragment in output
    missing = control_plane.kubectl_run(
        "get", PLURALS[example.kind], name, "-n", namespace, check=False
    )
    assert missing.returncode != 0  # nothing half-created


@pytest.mark.parametrize("key", list(EXAMPLES))
async def test_the_api_server_and_the_operators_models_judge_each_spec_alike(
    admin: KubeClient, namespace: str, key: str
) -> None:
    example = EXAMPLES[key]
    collection = path(namespace, PLURALS[example.kind])
    # dryRun=All: admission and validation run in full, nothing is stored. fieldValidation=Strict
    # is what kubectl sends by default; without it unknown fields are pruned with a warning.
    try:
        await admin.create(
            f"{collection}?dryRun=All&fieldValidation=Strict",
            manifest(example.kind, f"dry-{secrets.token_hex(3)}", example.spec),
        )
        api_rejection = None
    except KubeInvalid as error:
        api_rejection = str(error)
    model_rejection = model_verdict(example)

    if example.verdict == "valid":
        assert (api_rejection, model_rejection) == (None, None)
    elif example.verdict == "invalid":
        assert api_rejection is not None, "the API server accepted it"
        assert model_rejection is not None, "the operator's models accepted it"
        assert example.model_says in model_rejection
    else:  # cycle: the one rule the CRD cannot express
        assert api_rejection is None
        assert model_rejection is not None
        assert example.model_says in model_rejection


def test_the_table_covers_both_kinds_and_every_verdict() -> None:
    kinds = {(e.kind, e.verdict) for e in EXAMPLES.values()}

    assert len(EXAMPLES) >= 15
    assert {
        ("SyncSchedule", "valid"),
        ("SyncSchedule", "invalid"),
        ("SyncSchedule", "cycle"),
    } <= kinds
    assert {("Fabric", "valid"), ("Fabric", "invalid")} <= kinds


async def test_the_api_server_fills_in_the_documented_defaults(
    admin: KubeClient, namespace: str
) -> None:
    raw = sync(SUBSCRIPTIONS, source("central", arubaCentral=central()))
    created = await admin.create(
        path(namespace), manifest("SyncSchedule", f"defaults-{secrets.token_hex(3)}", raw)
    )

    spec = created["spec"]
    assert {
        k: spec[k] for k in ("suspend", "runOnStartup", "concurrencyPolicy", "historyLimit")
    } == {
        "suspend": False,
        "runOnStartup": True,
        "concurrencyPolicy": "Forbid",
        "historyLimit": 10,
    }
    assert "timeout" not in spec  # the operator derives it: min(10m, interval)
    glp, aruba = spec["sources"][0]["greenlake"], spec["sources"][1]["arubaCentral"]
    assert glp["endpoint"] == "https://global.api.greenlake.hpe.com"
    assert (
        glp["tokenUrl"] == aruba["tokenUrl"] == "https://sso.common.cloud.hpe.com/as/token.oauth2"
    )
    assert "pageSize" not in glp  # the client picks per resource
    assert (aruba["apiVersion"], aruba["pageSize"]) == ("v1", 1000)
    for typed in (glp, aruba):
        assert typed["credentialsSecretRef"] == {
            "name": typed["credentialsSecretRef"]["name"],
            "clientIdKey": "client_id",
            "clientSecretKey": "client_secret",
        }
    # The models' defaults are the same: the raw and the defaulted spec parse alike.
    assert parse_sync_schedule_spec(spec) == parse_sync_schedule_spec(raw)


async def test_a_dependsOn_cycle_the_crd_cannot_catch_makes_the_operator_report_stalled(
    operator: Any, admin: KubeClient, tidy_namespace: str, simulator: ThreadedSimulator
) -> None:
    await create_secret(admin, tidy_namespace, simulator)
    body = schedule(simulator)
    subscriptions, devices, central_source = body["spec"]["sources"]
    subscriptions["dependsOn"] = ["central"]
    devices["dependsOn"] = ["subscriptions"]
    central_source["dependsOn"] = ["devices"]
    operator()
    await admin.create(path(tidy_namespace), body)  # accepted: CEL has no recursion

    async def stalled() -> dict[str, Any] | None:
        found = condition(await admin.get(path(tidy_namespace, name="inventory")), "Stalled")
        return found if found and found["status"] == "True" else None

    found = await eventually(stalled, within=10, what="Stalled=True")
    assert found["reason"] == "InvalidSpec"
    assert "dependsOn forms a cycle" in found["message"]
    ready = condition(await admin.get(path(tidy_namespace, name="inventory")), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
