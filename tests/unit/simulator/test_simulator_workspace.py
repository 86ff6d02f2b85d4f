"""WorkspaceState: changes tests make, paging order, keyset pages, page mutations."""

from __future__ import annotations

import pytest

from inventory_sync.simulator.config import DatasetSize, WorkspaceConfig
from inventory_sync.simulator.workspace import WorkspaceState

SIZE = DatasetSize(
    subscriptions=4,
    glp_devices=300,
    linked_devices=200,
    unknown_subscription_links=2,
    central_devices=250,
    central_overlap=100,
    central_not_onboarded=20,
)


@pytest.fixture
def workspace() -> WorkspaceState:
    return WorkspaceState(WorkspaceConfig(dataset=SIZE), seed=11)


def order_key(item: dict[str, str]) -> tuple[str, str]:
    return (item["createdAt"], item["id"])


def test_devices_are_listed_by_created_at_then_id(workspace: WorkspaceState) -> None:
    devices = workspace.glp_devices()
    assert devices == sorted(devices, key=order_key)


def test_added_devices_are_listed_and_counted(workspace: WorkspaceState) -> None:
    added = workspace.add_glp_devices(3)
    assert len(set(added)) == 3
    assert workspace.counts()["glp_devices"] == 303
    assert all(workspace.glp_device(i) is not None for i in added)
    assert workspace.glp_devices()[-3:] == [workspace.glp_device(i) for i in added]


def test_deleting_reports_only_devices_that_existed(workspace: WorkspaceState) -> None:
    victim = workspace.glp_devices()[0]["id"]
    assert workspace.delete_glp_devices([victim, "no-such-id", victim]) == [victim]
    assert workspace.glp_device(victim) is None
    assert workspace.counts()["glp_devices"] == 299


def test_touching_changes_a_field_and_advances_updated_at(workspace: WorkspaceState) -> None:
    first, second = (d["id"] for d in workspace.glp_devices()[:2])
    before = workspace.glp_device(first)
    assert before is not None
    workspace.touch_glp_devices([first, second])
    after, other = workspace.glp_device(first), workspace.glp_device(second)
    assert after is not None
    assert other is not None
    assert after["updatedAt"] > before["updatedAt"]
    untouched = [d["updatedAt"] for d in workspace.glp_devices() if d["id"] not in (first, second)]
    assert after["updatedAt"] > max(untouched)
    assert other["updatedAt"] > after["updatedAt"]  # strictly increasing even in one millisecond
    assert after["tags"] != before["tags"]
    assert "simulatorTouch" not in before["tags"]  # replaced, not changed in place


def test_central_page_mutations_shift_later_pages_and_are_deterministic() -> None:
    runs = []
    for _ in range(2):
        workspace = WorkspaceState(WorkspaceConfig(dataset=SIZE), seed=11)
        before = [d["id"] for d in workspace.central_devices()]
        added, deleted = workspace.apply_central_page_mutations(10)
        after = [d["id"] for d in workspace.central_devices()]
        runs.append((len(added), deleted, after))
    (added_count, deleted, after), again = runs
    assert again == runs[0]
    assert added_count + len(deleted) == 10
    assert len(after) == len(before) + added_count - len(deleted)
    # New ids land anywhere in the id order, so page numbers shift like offsets.
    assert after[:50] != before[:50] or after[-50:] != before[-50:]


def test_onboarded_view_leaves_out_devices_not_yet_onboarded(workspace: WorkspaceState) -> None:
    assert len(workspace.central_devices()) == 250
    assert len(workspace.central_devices(onboarded_only=True)) == 230


def test_central_touch_flips_status_and_advances_last_seen(workspace: WorkspaceState) -> None:
    item = workspace.central_devices(onboarded_only=True)[0]
    workspace.touch_central_devices([item["id"]])
    after = next(c for c in workspace.central_devices() if c["id"] == item["id"])
    assert after["status"] != item["status"]
    assert after["lastSeenAt"] > item["lastSeenAt"]


def test_page_mutations_are_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        workspace = WorkspaceState(WorkspaceConfig(dataset=SIZE), seed=11)
        added, deleted = workspace.apply_page_mutations(10)
        runs.append((len(added), deleted, [d["createdAt"] for d in workspace.glp_devices()]))
    assert runs[0] == runs[1]
    assert runs[0][0] + len(runs[0][1]) == 10


def test_page_mutation_inserts_can_land_before_the_end(workspace: WorkspaceState) -> None:
    added, _ = workspace.apply_page_mutations(40)
    positions = [d["id"] for d in workspace.glp_devices()]
    assert any(positions.index(i) < len(positions) - len(added) for i in added)
