"""Status read back as untrusted input: parsed, bounded, and every unusable field named (pure).

Anyone with status-write access can put anything the CRD schema accepts there (a
`lastSyncTime` of 9999-12-31 is a valid date-time), and a watch can deliver a status written
by an older operator. Scheduling must neither crash on it (datetime overflow) nor obey it
(a run postponed to 2099), so every field the scheduler reads passes through here first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Replicas' clocks may disagree a little; a time further ahead than this was not written by
# a healthy replica of ours (and would postpone runs by as much).
MAX_FUTURE_SKEW = timedelta(minutes=10)
# Before the project existed: not a time one of our runs wrote.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# 2**16 backoff steps are already capped by the interval; a bigger count carries no meaning.
MAX_FAILURES = 1_000_000


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as an aware datetime (naive → UTC); None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StatusView:
    """What the scheduler may rely on from a resource's status."""

    last_sync: datetime | None = None
    last_success: datetime | None = None
    last_schedule: datetime | None = None
    observed_generation: int | None = None
    failures: int = 0
    handled_request: str | None = None
    #: One line per unusable field, naming it and its value; empty when all is well.
    problems: tuple[str, ...] = ()
    #: lastSyncTime was present but unusable: the schedule cannot count from it.
    last_sync_unusable: bool = False
    #: A digest of the unusable values: every replica derives the same one.
    fingerprint: str = ""
    #: Stalled=True is shown.
    stalled: bool = False
    #: The generation the last finished run used (its history entry); None when unknown.
    last_run_generation: int | None = None


def read_status(status: Mapping[str, Any] | None, *, now: datetime) -> StatusView:
    """Parse and bound the fields decisions are made on; unusable ones read as absent."""
    status = status if isinstance(status, Mapping) else {}
    problems: list[str] = []
    bad: list[str] = []

    def time_field(name: str) -> datetime | None:
        raw = status.get(name)
        if raw is None:
            return None
        problem = _time_problem(raw, now=now)
        if problem is None:
            return parse_time(raw)
        problems.append(f"status.{name} {_shown(raw)} {problem}; ignored")
        bad.append(f"{name}={raw!r}")
        return None

    last_sync = time_field("lastSyncTime")
    last_run_generation = _last_run_generation(status.get("history"), problems)
    view = StatusView(
        last_sync=last_sync,
        last_success=time_field("lastSuccessfulSyncTime"),
        last_schedule=time_field("lastScheduleTime"),
        observed_generation=_generation(status.get("observedGeneration"), problems),
        failures=_failures(status.get("consecutiveFailures"), problems),
        handled_request=_text(status.get("lastHandledReconcileAt")),
        problems=tuple(problems),
        last_sync_unusable=status.get("lastSyncTime") is not None and last_sync is None,
        fingerprint=hashlib.sha256("\n".join(bad).encode()).hexdigest()[:16] if bad else "",
        stalled=_stalled(status.get("conditions")),
        last_run_generation=last_run_generation,
    )
    return view


def _time_problem(raw: Any, *, now: datetime) -> str | None:
    parsed = parse_time(raw)
    if parsed is None:
        return "is not an RFC 3339 time"
    if parsed < EARLIEST:
        return f"is before {EARLIEST.year}"
    if parsed > now + MAX_FUTURE_SKEW:
        return "is in the future"
    return None


def _generation(raw: Any, problems: list[str]) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        problems.append(f"status.observedGeneration {_shown(raw)} is not an integer; ignored")
        return None
    return raw


def _stalled(conditions: Any) -> bool:
    return isinstance(conditions, list) and any(
        isinstance(c, dict) and c.get("type") == "Stalled" and c.get("status") == "True"
        for c in conditions
    )


def _last_run_generation(history: Any, problems: list[str]) -> int | None:
    if not isinstance(history, list) or not history or not isinstance(history[0], dict):
        return None
    raw = history[0].get("generation")
    if raw is None:  # written by a version that did not record it
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        problems.append(f"status.history[0].generation {_shown(raw)} is not a generation; ignored")
        return None
    return raw


def _failures(raw: Any, problems: list[str]) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        problems.append(f"status.consecutiveFailures {_shown(raw)} is not a count; ignored")
        return 0
    return min(raw, MAX_FAILURES)


def _text(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


def _shown(raw: Any) -> str:
    # Status values end up in Events and logs: keep them short.
    text = repr(raw)
    return text if len(text) <= 64 else text[:63] + "…"
