"""The GreenLake filter/sort/select language as the simulator understands it."""

from __future__ import annotations

from typing import Any

import pytest

from inventory_sync.simulator.dataset import GLP_DEVICE_FIELDS
from inventory_sync.simulator.filtering import (
    FilterError,
    matches,
    parse_filter,
    parse_select,
    parse_sort,
    project,
    sort_items,
)

DEVICES: list[dict[str, Any]] = [
    {
        "id": "a",
        "serialNumber": "CN1",
        "deviceType": "AP",
        "archived": False,
        "updatedAt": "2024-02-18T19:53:51.480Z",
        "application": {"id": "app-1"},
        "subscription": [{"id": "s1"}],
        "region": None,
    },
    {
        "id": "b",
        "serialNumber": "O'Brien",
        "deviceType": "SWITCH",
        "archived": True,
        "updatedAt": "2024-02-18T19:53:51.000Z",
        "application": None,
        "subscription": [],
        "region": "us-west",
    },
    {
        "id": "c",
        "serialNumber": "CN3",
        "deviceType": "AP",
        "archived": True,
        "updatedAt": "2025-01-01T00:00:00.000Z",
        "application": {"id": "app-2"},
        "subscription": [{"id": "s2"}],
        "region": "eu-central",
    },
]


def selected(text: str) -> list[str]:
    expr = parse_filter(text, fields=GLP_DEVICE_FIELDS)
    return [d["id"] for d in DEVICES if matches(expr, d)]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        pytest.param("updatedAt gt '2024-02-18T19:53:51.480Z'", ["c"], id="updatedAt gt timestamp"),
        pytest.param(
            "updatedAt gt '2024-02-18T19:53:51Z'", ["a", "c"], id="timestamps compare as instants"
        ),
        pytest.param("id in ('a','b')", ["a", "b"], id="id in list"),
        pytest.param("serialNumber eq 'O''Brien'", ["b"], id="doubled quote escapes"),
        pytest.param(
            "not (archived eq true) and deviceType eq 'AP'", ["a"], id="not, parentheses, and"
        ),
        pytest.param("deviceType eq 'SWITCH' or id eq 'c'", ["b", "c"], id="or"),
        pytest.param("id eq 'a' or id eq 'b' and archived eq false", ["a"], id="and binds tighter"),
        pytest.param("application/id eq 'app-2'", ["c"], id="nested path with slash"),
        pytest.param("application.id ne 'app-2'", ["a", "b"], id="nested path with dot, ne"),
        pytest.param("subscription/id eq 's1'", ["a"], id="path through a list matches any"),
        pytest.param("region eq null", ["a"], id="eq null"),
        pytest.param("updatedAt le '2024-02-18T19:53:51.480Z'", ["a", "b"], id="le"),
        pytest.param("archived eq 1", [], id="a type mismatch never matches"),
        pytest.param("id IN ('a') AND NOT archived EQ TRUE", ["a"], id="keywords ignore case"),
    ],
)
def test_filter_selects(text: str, ids: list[str]) -> None:
    assert selected(text) == ids


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("updatedAt gt", id="missing value"),
        pytest.param("updatedAt gtt '2024'", id="unknown operator"),
        pytest.param("id in ('a', ", id="unclosed list"),
        pytest.param("(id eq 'a'", id="unclosed parenthesis"),
        pytest.param("id eq 'a' id eq 'b'", id="missing junction"),
        pytest.param("id eq 'unterminated", id="unterminated string"),
        pytest.param("colour eq 'red'", id="unknown field"),
        pytest.param("ID eq 'a'", id="field names are case-sensitive"),
        pytest.param("id eq 'a'; DROP TABLE", id="stray characters"),
        pytest.param("and or not", id="keywords only"),
    ],
)
def test_garbage_filters_are_rejected(text: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text, fields=GLP_DEVICE_FIELDS)
    assert caught.value.parameter == "filter"


def test_sort_orders_by_several_keys_and_keeps_ties_stable() -> None:
    keys = parse_sort("deviceType desc, updatedAt", fields=GLP_DEVICE_FIELDS)
    assert keys == [("deviceType", True), ("updatedAt", False)]
    assert [d["id"] for d in sort_items(DEVICES, keys)] == ["b", "a", "c"]
    assert [d["id"] for d in sort_items(DEVICES, parse_sort("region", fields={"region"}))] == [
        "a",
        "c",
        "b",
    ]


@pytest.mark.parametrize("text", ["colour", "updatedAt sideways", "updatedAt desc extra", ""])
def test_bad_sort_is_rejected(text: str) -> None:
    with pytest.raises(FilterError):
        parse_sort(text, fields=GLP_DEVICE_FIELDS)


def test_select_projects_the_named_fields() -> None:
    names = parse_select("id, serialNumber", fields=GLP_DEVICE_FIELDS)
    assert project(DEVICES[1], names) == {"id": "b", "serialNumber": "O'Brien"}
    with pytest.raises(FilterError):
        parse_select("id,colour", fields=GLP_DEVICE_FIELDS)
