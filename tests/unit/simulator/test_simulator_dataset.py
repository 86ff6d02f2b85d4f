"""The generated dataset: seed-000 counts, exact upstream field names, determinism, realism."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from inventory_sync.simulator.config import DatasetSize, SimulatorConfig, WorkspaceConfig
from inventory_sync.simulator.dataset import (
    CENTRAL_DEVICE_FIELDS,
    GLP_DEVICE_FIELDS,
    SUBSCRIPTION_FIELDS,
    Dataset,
    generate_workspace,
)

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def default() -> Dataset:
    return generate_workspace(WorkspaceConfig(), seed=SimulatorConfig().seed)


def small(seed: int = 7, **sizes: int) -> Dataset:
    config = WorkspaceConfig(dataset=DatasetSize().scaled(0.02).model_copy(update=sizes))
    return generate_workspace(config, seed=seed)


def test_default_dataset_has_the_seed_000_counts(default: Dataset) -> None:
    known = {s["id"] for s in default.subscriptions}
    linked = [d for d in default.glp_devices if d["subscription"]]
    unknown = [d for d in linked if d["subscription"][0]["id"] not in known]
    serials = {d["serialNumber"] for d in default.glp_devices}
    overlap = [c for c in default.central_devices if c["serialNumber"] in serials]
    assert len(default.subscriptions) == 27
    assert len(default.glp_devices) == 11727
    assert len(linked) == 9099
    assert all(len(d["subscription"]) == 1 for d in linked)
    assert len(unknown) == 12
    assert len(default.central_devices) == 8978
    assert len(overlap) == 6400


def test_items_carry_exactly_the_upstream_field_names(default: Dataset) -> None:
    assert all(set(d) == GLP_DEVICE_FIELDS for d in default.glp_devices)
    assert all(set(s) == SUBSCRIPTION_FIELDS for s in default.subscriptions)
    assert all(set(c) == CENTRAL_DEVICE_FIELDS for c in default.central_devices)


def test_devices_look_like_greenlake_devices(default: Dataset) -> None:
    device = next(d for d in default.glp_devices if d["subscription"])
    assert UUID.match(device["id"])
    assert device["type"] == "devices/device"
    assert TIMESTAMP.match(device["createdAt"])
    assert TIMESTAMP.match(device["updatedAt"])
    assert device["updatedAt"] >= device["createdAt"]
    link = device["subscription"][0]
    assert link["resourceUri"] == f"/subscriptions/v1/subscriptions/{link['id']}"
    assigned = next(d for d in default.glp_devices if d["application"])
    assert set(assigned["application"]) == {"id", "resourceUri"}
    assert any(
        d["location"] and set(d["location"]) == {"id", "resourceUri"} for d in default.glp_devices
    )
    assert all(d["warranty"] == {} for d in default.glp_devices)


def test_assigned_state_is_open_ended(default: Dataset) -> None:
    states = {d["assignedState"] for d in default.glp_devices}
    assert {"ASSIGNED_TO_SERVICE", "UNASSIGNED", "ASSIGNED_TO_ACTIVATE_CONFIG"} <= states
    assert states - {"ASSIGNED_TO_SERVICE", "UNASSIGNED", "ASSIGNED_TO_ACTIVATE_CONFIG"}


def test_subscription_quantities_are_strings_and_add_up(default: Dataset) -> None:
    links: dict[str, int] = {}
    for device in default.glp_devices:
        for link in device["subscription"]:
            links[link["id"]] = links.get(link["id"], 0) + 1
    for subscription in default.subscriptions:
        assert isinstance(subscription["quantity"], str)
        assert isinstance(subscription["availableQuantity"], str)
        used = int(subscription["quantity"]) - int(subscription["availableQuantity"])
        assert used == links.get(subscription["id"], 0)
    types = {s["subscriptionType"] for s in default.subscriptions}
    assert {"CENTRAL_AP", "CENTRAL_SWITCH", "CENTRAL_GW"} <= types


def test_central_devices_share_hardware_facts_with_their_greenlake_twin(default: Dataset) -> None:
    by_serial = {d["serialNumber"]: d for d in default.glp_devices}
    for item in default.central_devices[:500]:
        assert item["deviceType"] in {"ACCESS_POINT", "SWITCH", "GATEWAY"}
        twin = by_serial.get(item["serialNumber"])
        if twin is not None:
            assert item["macAddress"] == twin["macAddress"].lower()
            assert item["partNumber"] == twin["partNumber"]


def test_same_seed_gives_same_items_and_another_seed_other_ids() -> None:
    first, again, other = small(seed=1), small(seed=1), small(seed=2)
    assert first.glp_devices == again.glp_devices
    assert [c["id"] for c in first.central_devices] == [c["id"] for c in again.central_devices]
    assert {d["id"] for d in first.glp_devices}.isdisjoint(d["id"] for d in other.glp_devices)


def test_scaled_sizes_keep_the_proportions() -> None:
    size = DatasetSize().scaled(0.1)
    assert (size.subscriptions, size.glp_devices, size.linked_devices) == (3, 1173, 910)
    assert (size.unknown_subscription_links, size.central_devices, size.central_overlap) == (
        1,
        898,
        640,
    )


def test_not_onboarded_central_devices_have_nothing_observed() -> None:
    data = small(central_not_onboarded=5)
    waiting = [c for c in data.central_devices if c["isProvisioned"] == "NO"]
    assert len(waiting) == 5
    assert all(c["status"] is None and c["lastSeenAt"] is None for c in waiting)
    assert all(c["configStatus"] is None for c in waiting)


def test_central_items_are_keyed_by_their_serial_number(default: Dataset) -> None:
    """The vendor's example items repeat the serial number as `id`; so does the simulator."""
    assert all(c["id"] == c["serialNumber"] for c in default.central_devices)
    assert len({c["id"] for c in default.central_devices}) == len(default.central_devices)
    assert {c["type"] for c in default.central_devices} == {"network-monitoring/device-monitoring"}
    assert {c["isProvisioned"] for c in default.central_devices} <= {"YES", "NO"}


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param({"glp_devices": 10, "linked_devices": 11}, id="more links than devices"),
        pytest.param({"linked_devices": 5, "unknown_subscription_links": 6}, id="unknown > linked"),
        pytest.param({"central_devices": 5, "central_overlap": 6}, id="overlap > central"),
        pytest.param({"subscriptions": 0, "linked_devices": 5}, id="links without subscriptions"),
    ],
)
def test_inconsistent_sizes_are_rejected(sizes: dict[str, int]) -> None:
    base = {
        "subscriptions": 2,
        "glp_devices": 20,
        "linked_devices": 5,
        "unknown_subscription_links": 0,
    }
    base |= {"central_devices": 10, "central_overlap": 2}
    with pytest.raises(ValidationError):
        DatasetSize(**(base | sizes))
