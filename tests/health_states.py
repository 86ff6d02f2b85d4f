"""One table of the states the operator leaves a SyncSchedule or Fabric in, and what each
health reader must say about it: kstatus (Flux's health checks, `sigs.k8s.io/cli-utils`) and
our Argo CD health check (health/argocd/*.lua).

The same rows drive both: tests/controlplane/test_kstatus_table.py produces each state for
real (the operator against the real kube-apiserver) and asks the real kstatus
(tools/kstatus) and the Lua about the object it reads back; tests/unit/test_argocd_health.py
asks the Lua about the same states composed by the operator's own status code
(`reconciling.status`), so the two readers can never be tested against different intents.

The intent, in one line per reader:
- kstatus: Current only once a run succeeded for the generation in the spec (or the resource
  is suspended with nothing to show); Failed only for a Stalled problem; InProgress otherwise,
  a failing run included (it is retried, as Flux's own objects are InProgress while retrying).
- Argo CD: Suspended wins; Healthy exactly when kstatus is Current; a failed run is Degraded
  (someone should look), a run or an unobserved generation Progressing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from inventory_sync.models import API_VERSION
from inventory_sync.reconciling import reasons
from inventory_sync.reconciling import status as st
from inventory_sync.reconciling.due import Trigger
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState

REPO = Path(__file__).resolve().parents[1]
KINDS = ("SyncSchedule", "Fabric")

# kstatus verdicts (status.Status in cli-utils) and Argo CD health statuses.
CURRENT, IN_PROGRESS, FAILED = "Current", "InProgress", "Failed"
HEALTHY, PROGRESSING, DEGRADED, SUSPENDED = "Healthy", "Progressing", "Degraded", "Suspended"

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MISSING_SECRET = "Secret team-a/glp-credentials not found"
CYCLE = "spec.sources: dependsOn forms a cycle: central -> devices -> subscriptions -> central"


@dataclass(frozen=True)
class HealthState:
    """A state, what kstatus and Argo CD say about it, and what each one's message holds:
    a part of it, or `=Type`: exactly the message of our condition of that type."""

    id: str
    kstatus: str
    kstatus_says: str
    argocd: str
    argocd_says: str
    #: The object in this state, built with the operator's own status code (kind → body).
    compose: Callable[[str], dict[str, Any]]
    #: Why the control-plane test does not produce it for real ("" when it does).
    composed_only: str = ""
    #: The kinds the state exists for (a Fabric has no runOnStartup).
    kinds: tuple[str, ...] = KINDS


# -- objects, as the operator's status code writes them ------------------------------------


def crd_status_default(kind: str) -> dict[str, Any]:
    """What the API server stores as status before the operator writes any: the CRD's default."""
    crd = yaml.safe_load((REPO / "crds" / f"inventorysync.dev_{kind.lower()}s.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["status"]["default"])


def body(
    kind: str, status: dict[str, Any] | None, *, generation: int = 1, suspend: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": "15m", "suspend": suspend}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": "inventory", "namespace": "team-a", "generation": generation},
        "spec": spec,
        "status": crd_status_default(kind) if status is None else status,
    }


def result(ok: bool) -> RunResult:
    source = SourceOutcome(
        name="devices", kind="greenlake/devices",
        state=SourceState.SUCCEEDED if ok else SourceState.FAILED, inserted=3 if ok else 0,
        message=None if ok else "last: HTTP 503",
    )  # fmt: skip
    return RunResult(
        state=RunState.SUCCEEDED if ok else RunState.FAILED, trigger="startup",
        started_at=NOW - timedelta(seconds=20), finished_at=NOW, seconds=20.0, sources=[source],
        message=None if ok else "devices: gave up after 6 attempts; last: HTTP 503",
    )  # fmt: skip


def merged(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of status, as the API server applies ours (None removes a field)."""
    out = copy.deepcopy(status)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def first_run(status: dict[str, Any], *, generation: int = 1) -> dict[str, Any]:
    started = st.started(status, generation=generation, trigger=Trigger.STARTUP, now=NOW)
    return merged(status, started)


def ran(ok: bool, *, generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status after a run that started at `generation` and ended well or badly."""
    running = first_run(status or {"observedGeneration": -1}, generation=generation)
    patch = st.finished(
        running, result(ok), generation=generation, interval=timedelta(minutes=15),
        history_limit=10, requested_at=None, anchor=NOW, now=NOW,
    )  # fmt: skip
    return merged(running, patch)


def stalled(
    reason: str, message: str, *, status: dict[str, Any] | None = None, generation: int = 1
) -> dict[str, Any]:
    before = status or {"observedGeneration": -1}
    patch = st.stalled(before, reason=reason, message=message, generation=generation, now=NOW)
    return merged(before, patch)


def manual_request_stalled() -> dict[str, Any]:
    """A synced resource whose Secret went: a manual request stalls and is answered."""
    synced = ran(True)
    patch = st.stalled(
        synced, reason=reasons.MISSING_CREDENTIALS, message=MISSING_SECRET, generation=1,
        now=NOW, requested_at="manual-1",
    )  # fmt: skip
    return merged(synced, patch)


def spec_stall_cleared() -> dict[str, Any]:
    """An older operator refused the spec (fields it did not know); this one parses it."""
    refused = stalled(reasons.INVALID_SPEC, "spec.sources[0]: unknown field", status=ran(True))
    return merged(refused, st.cleared_stall(refused, generation=1, now=NOW))


def refreshed(
    status: dict[str, Any], *, generation: int, suspend: bool, never_ran: bool
) -> dict[str, Any]:
    """Between runs: what the scheduler's refresh writes (observedGeneration, nextSyncTime and,
    for a resource that never ran and is not suspended, Ready=Unknown)."""
    patch: dict[str, Any] = {"observedGeneration": generation}
    if never_ran and not suspend:
        patch.update(st.awaiting_first_run(
            status, generation=generation, due_at=NOW + timedelta(minutes=15), now=NOW
        ))  # fmt: skip
    return merged(status, patch)


def waiting_first_run() -> dict[str, Any]:
    return refreshed({"observedGeneration": -1}, generation=1, suspend=False, never_ran=True)


def database_down() -> dict[str, Any]:
    synced = ran(True)
    patch = st.not_ready(
        synced, reason=reasons.STORE_UNAVAILABLE, message="PostgreSQL refused: gone",
        generation=1, now=NOW,
    )  # fmt: skip
    return merged(synced, patch)


def _compose(
    make: Callable[[], dict[str, Any]], *, generation: int = 1, suspend: bool = False
) -> Callable[[str], dict[str, Any]]:
    return lambda kind: body(kind, make(), generation=generation, suspend=suspend)


STATES = [
    HealthState(
        "just created, never seen by the operator",
        IN_PROGRESS,
        "generation is 1, but latest observed generation is -1",
        PROGRESSING,
        "observe generation 1",
        lambda kind: body(kind, None),
    ),
    HealthState(
        "seen, its first run not due yet (runOnStartup: false)",
        IN_PROGRESS,
        "=Ready",
        PROGRESSING,
        "=Ready",
        _compose(waiting_first_run),
        kinds=("SyncSchedule",),
    ),
    HealthState(
        "first run in flight",
        IN_PROGRESS,
        "=Reconciling",
        PROGRESSING,
        "=Reconciling",
        _compose(lambda: first_run({"observedGeneration": -1})),
    ),
    HealthState(
        "succeeded",
        CURRENT,
        "Resource is Ready",
        HEALTHY,
        "=Ready",
        _compose(lambda: ran(True)),
    ),
    HealthState(
        "a later run in flight after a success",
        IN_PROGRESS,
        "=Reconciling",
        PROGRESSING,
        "=Reconciling",
        _compose(lambda: first_run(ran(True))),
    ),
    HealthState(
        "failed and retrying",
        IN_PROGRESS,
        "=Ready",
        DEGRADED,
        "=Ready",
        _compose(lambda: ran(False)),
    ),
    HealthState(
        "stalled: a missing Secret",
        FAILED,
        "=Stalled",
        DEGRADED,
        "=Stalled",
        _compose(lambda: stalled(reasons.MISSING_CREDENTIALS, MISSING_SECRET)),
    ),
    HealthState(
        "stalled: an invalid spec",
        FAILED,
        "=Stalled",
        DEGRADED,
        "=Stalled",
        _compose(lambda: stalled(reasons.INVALID_SPEC, CYCLE)),
    ),
    HealthState(
        "stalled: a missing Secret, after a manual request was answered",
        FAILED,
        "=Stalled",
        DEGRADED,
        "=Stalled",
        _compose(manual_request_stalled),
        kinds=("SyncSchedule",),
    ),
    HealthState(
        "a refused spec accepted between runs (an older operator refused it)",
        IN_PROGRESS,
        "=Ready",
        PROGRESSING,
        "=Ready",
        _compose(spec_stall_cleared),
        composed_only="needs an older operator's stall; tests/node/test_chart_upgrade.py makes "
        "one on the node (0.1.0 refusing the new CRDs' defaults)",
    ),
    HealthState(
        "suspended before it ever ran",
        CURRENT,
        "Resource is current",
        SUSPENDED,
        "spec.suspend",
        _compose(
            lambda: refreshed(
                {"observedGeneration": -1}, generation=1, suspend=True, never_ran=True
            ),
            suspend=True,
        ),
    ),
    HealthState(
        "suspended after a success",
        CURRENT,
        "Resource is Ready",
        SUSPENDED,
        "spec.suspend",
        _compose(
            lambda: refreshed(ran(True), generation=2, suspend=True, never_ran=False),
            generation=2,
            suspend=True,
        ),
    ),
    HealthState(
        "spec edited during a run",
        IN_PROGRESS,
        "generation is 2, but latest observed generation is 1",
        PROGRESSING,
        "observe generation 2",
        _compose(lambda: first_run({"observedGeneration": -1}), generation=2),
    ),
    HealthState(
        "spec edited during a run that then succeeded with the old spec",
        IN_PROGRESS,
        "generation is 2, but latest observed generation is 1",
        PROGRESSING,
        "observe generation 2",
        _compose(lambda: ran(True), generation=2),
        composed_only="lasts only until the spec-change run starts, a few milliseconds",
    ),
    HealthState(
        "a run that could not start (database down)",
        IN_PROGRESS,
        "=Ready",
        DEGRADED,
        "=Ready",
        _compose(database_down),
        composed_only="needs PostgreSQL stopped under a running operator",
    ),
]

BY_ID = {state.id: state for state in STATES}


def says(expected: str, message: str, obj: dict[str, Any]) -> bool:
    """Whether `message` is what `expected` (a HealthState message field) asks for."""
    if not expected.startswith("="):
        return expected in message
    conditions = (obj.get("status") or {}).get("conditions") or []
    found = next((c for c in conditions if c.get("type") == expected[1:]), None)
    return found is not None and bool(found.get("message")) and message == found["message"]


def of_kind(kind: str) -> list[HealthState]:
    return [state for state in STATES if kind in state.kinds]
