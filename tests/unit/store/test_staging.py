"""Encoding a page for its merge: what the content hash notices and what it ignores."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from inventory_sync.store.staging import HASH_BYTES, stage_page
from inventory_sync.store.tables import FABRIC_OBJECTS, GLP_DEVICES, TableSpec


def device(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "dev-1",
        "serialNumber": "SN1",
        "assignedState": "ASSIGNED_TO_SERVICE",
        "archived": False,
        "updatedAt": "2025-12-01T10:00:00.000Z",
        "tags": {"site": "Lab"},
        "subscription": [{"id": "sub-1", "resourceUri": "/subscriptions/v1/subscriptions/sub-1"}],
    }
    item.update(changes)
    return item


def content_hash(spec: TableSpec, item: dict[str, Any]) -> bytes:
    staged = stage_page(spec, [item])
    assert len(staged.hashes) == 1
    return staged.hashes[0]


def test_the_same_content_hashes_the_same() -> None:
    first = content_hash(GLP_DEVICES, device())

    assert content_hash(GLP_DEVICES, copy.deepcopy(device())) == first
    assert len(first) == HASH_BYTES


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"serialNumber": "SN2"}, id="a typed column's field"),
        pytest.param({"archived": True}, id="a boolean column"),
        pytest.param({"updatedAt": "2025-12-01T10:00:00.001Z"}, id="a timestamp by a millisecond"),
        pytest.param({"tags": {"site": "Lab2"}}, id="a nested field kept only in data"),
        pytest.param({"subscription": []}, id="the links"),
        pytest.param({"newVendorField": None}, id="a new field, even null"),
        pytest.param({"archived": 0}, id="false becoming 0"),
    ],
)
def test_any_change_to_the_item_changes_the_hash(change: dict[str, Any]) -> None:
    assert content_hash(GLP_DEVICES, device(**change)) != content_hash(GLP_DEVICES, device())


def test_a_changed_column_mapping_changes_every_hash() -> None:
    # A release that types one more column must rewrite each row once, to fill it.
    retyped = replace(GLP_DEVICES, columns={**GLP_DEVICES.columns, "tags": "d->'tags'"})

    assert content_hash(retyped, device()) != content_hash(GLP_DEVICES, device())


def test_volatile_keys_are_stored_but_not_hashed() -> None:
    obj = {"id": "uid-1", "kind": "Switch", "spec": {"ports": 48}, "resourceVersion": "100"}
    bumped = {**obj, "resourceVersion": "101"}

    assert content_hash(FABRIC_OBJECTS, bumped) == content_hash(FABRIC_OBJECTS, obj)
    assert content_hash(FABRIC_OBJECTS, {**obj, "spec": {"ports": 24}}) != content_hash(
        FABRIC_OBJECTS, obj
    )
    assert '"resourceVersion":"101"' in stage_page(FABRIC_OBJECTS, [bumped]).documents[0]


def test_an_id_repeated_in_a_page_is_merged_once_from_its_last_copy() -> None:
    staged = stage_page(GLP_DEVICES, [device(), device(id="dev-2"), device(serialNumber="SN-last")])

    assert staged.ids == ["dev-1", "dev-2"]
    assert staged.repeated_ids == ["dev-1"]
    assert staged.delivered == 3
    assert '"serialNumber":"SN-last"' in staged.documents[0]
    assert staged.hashes[0] == content_hash(GLP_DEVICES, device(serialNumber="SN-last"))


def test_links_come_from_the_item_without_a_database_round_trip() -> None:
    staged = stage_page(
        GLP_DEVICES,
        [
            device(
                subscription=[
                    {"id": "sub-1", "resourceUri": "/s/sub-1"},
                    {"id": "sub-1", "resourceUri": "/s/again"},  # the same link twice
                    {"id": ""},  # no id: not a link
                    "not an object",
                    {"id": 7},  # a number, as PostgreSQL's ->> would give it
                ]
            ),
            device(id="dev-2", subscription=None),
        ],
    )

    assert staged.links == [("dev-1", "sub-1", "/s/sub-1"), ("dev-1", "7", None)]


def test_items_without_a_string_id_are_rejected_with_examples() -> None:
    staged = stage_page(GLP_DEVICES, [device(), {"serialNumber": "X"}, "text", device(id=5)])

    assert staged.ids == ["dev-1"]
    assert staged.rejected == 3
    assert staged.rejected_examples[0] == '{"serialNumber":"X"}'


def test_what_orjson_refuses_is_still_staged() -> None:
    # JSON allows integers beyond 64 bits; the standard library encodes them.
    staged = stage_page(GLP_DEVICES, [device(counter=2**70)])

    assert f'"counter":{2**70}' in staged.documents[0]


def test_documents_travel_newline_separated_without_ambiguity() -> None:
    staged = stage_page(GLP_DEVICES, [device(deviceName="line1\nline2")])
    packed = staged.arguments(with_links=True)

    assert packed[2].count("\n") == 0
    assert "line1\\nline2" in packed[2]
