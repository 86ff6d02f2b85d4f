"""`inventory-sync trigger KIND/NAME`: which of our resources a target names (never Hedgehog's)."""

from __future__ import annotations

import pytest

from inventory_sync.errors import SpecError
from inventory_sync.operating.main import parse_target
from inventory_sync.running.resource import FABRIC, SYNC_SCHEDULE, ResourceKind


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        pytest.param("fabrics/fabric-a", FABRIC, id="plural"),
        pytest.param("fabric/fabric-a", FABRIC, id="singular"),
        pytest.param("fabrics.inventorysync.dev/fabric-a", FABRIC, id="fully qualified"),
        pytest.param("Fabric.inventorysync.dev/fabric-a", FABRIC, id="kind, fully qualified"),
        pytest.param("syncschedules/fabric-a", SYNC_SCHEDULE, id="schedule plural"),
        pytest.param("ss/fabric-a", SYNC_SCHEDULE, id="schedule short name"),
    ],
)
def test_a_target_names_one_of_our_resources(target: str, kind: ResourceKind) -> None:
    assert parse_target(target) == (kind, "fabric-a")


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("fab/fabric-a", id="fab is Fabricator's short name, no longer ours"),
        pytest.param("fabrics.fabricator.githedgehog.com/x", id="another group's resource"),
        pytest.param("switches/leaf-1", id="a Hedgehog kind"),
        pytest.param("fabrics/", id="no name"),
    ],
)
def test_anything_else_is_refused_with_the_accepted_forms(target: str) -> None:
    with pytest.raises(SpecError, match="use syncschedules/NAME or fabrics/NAME"):
        parse_target(target)
