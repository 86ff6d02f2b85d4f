"""metav1.Condition handling: lastTransitionTime moves only when a condition's status changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp form: UTC, second precision, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_millis(moment: datetime) -> str:
    """UTC with milliseconds: for times the schedule counts from, where a second is too coarse
    (resources sharing a second of their grid would all fall due at once)."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    type: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """A new list with `type` set (status None: `Unknown`); the transition time is kept when the
    status did not change."""
    wanted = "Unknown" if status is None else "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == type), None)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == wanted and previous.get("lastTransitionTime")
        else rfc3339(now)
    )
    condition: dict[str, Any] = {
        "type": type,
        "status": wanted,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return [*(c for c in conditions if c.get("type") != type), condition]


def remove_condition(conditions: list[dict[str, Any]], type: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type]


def find(conditions: list[dict[str, Any]], type: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type), None)
