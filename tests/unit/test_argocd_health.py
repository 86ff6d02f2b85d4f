"""The Argo CD health checks (health/argocd/*.lua), run by a real Lua 5.1 (what gopher-lua,
Argo CD's interpreter, implements): the states of tests/health_states.py (the table kstatus
is held to as well) and hand-made corner cases of status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ..health_judges import argocd_health, lua_script
from ..health_states import KINDS, STATES, HealthState, says

REPO = Path(__file__).resolve().parents[2]
ARGOCD_CM = REPO / "examples" / "argocd" / "argocd-cm-health.yaml"
script = lua_script


def evaluate(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run the check as Argo CD does: the live object as global `obj`, the script's return."""
    return argocd_health({**obj, "kind": kind})


def cond(kind: str, status: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": "Test", "message": message}


def resource(
    *,
    generation: int = 2,
    suspend: bool | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "inventorysync.dev/v1alpha1",
        "metadata": {"name": "inventory", "namespace": "team-a", "generation": generation},
        "spec": {"interval": "15m"},
    }
    if suspend is not None:
        body["spec"]["suspend"] = suspend
    if status is not None:
        body["status"] = status
    return body


def observed(*conditions: dict[str, Any], generation: int = 2) -> dict[str, Any]:
    return {"observedGeneration": generation, "conditions": list(conditions)}


READY = cond("Ready", "True", "3 sources synced: 11727 devices")
FAILED = cond("Ready", "False", "source devices: upstream returned 503")
STALLED = cond("Stalled", "True", "Secret team-a/glp-credentials not found")
RUNNING = cond("Reconciling", "True", "Run in progress (interval)")
IDLE = cond("Reconciling", "False", "Idle")

FIXTURES = [
    pytest.param(resource(status=observed(READY)), "Healthy", "11727 devices", id="ready and observed is Healthy"),
    pytest.param(resource(status=observed(IDLE, READY)), "Healthy", "synced", id="finished run (Reconciling=False) is Healthy"),
    pytest.param(resource(suspend=True, status=observed(STALLED, FAILED)), "Suspended", "suspend", id="suspended wins over degraded"),
    pytest.param(resource(suspend=True), "Suspended", "suspend", id="suspended before any status is Suspended"),
    pytest.param(resource(suspend=False, status=observed(READY)), "Healthy", "synced", id="suspend false is judged on status"),
    pytest.param(resource(), "Progressing", "record a status", id="no status yet is Progressing"),
    pytest.param(resource(generation=3, status=observed(READY, generation=2)), "Progressing", "generation 3", id="new generation not yet observed is Progressing"),
    pytest.param(resource(generation=3, status=observed(STALLED, generation=2)), "Progressing", "generation 3", id="stale Stalled of an older generation is Progressing"),
    pytest.param(resource(status={"conditions": [READY]}), "Progressing", "generation 2", id="status without observedGeneration is Progressing"),
    pytest.param(resource(status=observed(RUNNING, READY)), "Progressing", "Run in progress", id="run in progress is Progressing even when Ready"),
    pytest.param(resource(status=observed(RUNNING, cond("Ready", "False", "First run in progress"))), "Progressing", "Run in progress", id="first run in progress is Progressing, not Degraded"),
    pytest.param(resource(status=observed(STALLED, FAILED)), "Degraded", "not found", id="stalled spec is Degraded with its reason"),
    pytest.param(resource(status=observed(FAILED)), "Degraded", "503", id="failed last run is Degraded"),
    pytest.param(resource(status=observed(cond("Stalled", "False"), READY)), "Healthy", "synced", id="Stalled=False does not degrade"),
    pytest.param(resource(status=observed()), "Progressing", "Ready condition", id="observed but no conditions yet is Progressing"),
    pytest.param(resource(status=observed(cond("Ready", "Unknown"))), "Progressing", "Ready condition", id="Ready=Unknown is Progressing"),
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("obj", "expected", "message_part"), FIXTURES)
def test_health_check_maps_status_to_argocd_health(
    kind: str, obj: dict[str, Any], expected: str, message_part: str
) -> None:
    health = evaluate(kind, {**obj, "kind": kind})
    assert health["status"] == expected
    assert message_part in health["message"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", STATES, ids=lambda s: s.id)
def test_the_health_table_states_read_as_the_table_says(kind: str, state: HealthState) -> None:
    """tests/health_states.py: the rows kstatus is held to (tests/controlplane/
    test_kstatus_table.py), here composed by the operator's own status code."""
    if kind not in state.kinds:
        pytest.skip(f"a {kind} has no such state")
    obj = state.compose(kind)
    health = evaluate(kind, obj)
    assert health["status"] == state.argocd
    assert says(state.argocd_says, health["message"], obj), health["message"]


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.id)
def test_argocd_and_kstatus_agree_in_every_row(state: HealthState) -> None:
    """Healthy exactly when kstatus is Current (unless suspended: Argo CD says so first);
    a kstatus Failure is never shown as Healthy or Progressing."""
    if state.argocd == "Suspended":
        return
    assert (state.argocd == "Healthy") == (state.kstatus == "Current")
    if state.kstatus == "Failed":
        assert state.argocd == "Degraded"


def test_both_kinds_share_one_logic() -> None:
    """Only the first comment line (naming the kind) may differ."""
    bodies = {kind: script(kind).split("\n", 1) for kind in KINDS}
    assert all(kind in bodies[kind][0] for kind in KINDS)
    assert bodies["SyncSchedule"][1] == bodies["Fabric"][1]


def test_argocd_cm_snippet_embeds_the_scripts_verbatim() -> None:
    data = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    assert set(data) == {f"resource.customizations.health.inventorysync.dev_{k}" for k in KINDS}
    for kind in KINDS:
        assert data[f"resource.customizations.health.inventorysync.dev_{kind}"] == script(kind)
