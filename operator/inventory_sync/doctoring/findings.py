"""What each doctor check found, and the report as text lines or JSON (the last step of `doctor`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from inventory_sync.errors import public_message


class Level(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One line of the report: `check` is the family (crds, rbac, …), `subject` what it is about."""

    check: str
    subject: str
    level: Level
    message: str
    #: Since when the problem has lasted, where the status says (resources).
    since: datetime | None = None

    def line(self) -> str:
        return f"{self.level.value}  {self.check:<11} {self.subject}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "check": self.check,
            "subject": self.subject,
            "level": self.level.value,
            "message": self.message,
        }
        if self.since is not None:
            body["since"] = self.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return body


def passed(check: str, subject: str, message: str) -> Finding:
    return Finding(check, subject, Level.PASS, message)


def warned(check: str, subject: str, message: str, *, since: datetime | None = None) -> Finding:
    return Finding(check, subject, Level.WARN, _clean(message), since)


def failed(check: str, subject: str, message: str, *, since: datetime | None = None) -> Finding:
    return Finding(check, subject, Level.FAIL, _clean(message), since)


def _clean(message: str) -> str:
    # Problem messages quote API servers, upstreams and databases: pass them through the same
    # sanitiser as status and Events (no query strings, tokens or secret-named values).
    # A finding may be long (it names fields and fixes); the cap only stops runaway text.
    return public_message(ValueError(message), limit=2000)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Report:
        return cls(tuple(findings))

    def count(self, level: Level) -> int:
        return sum(1 for f in self.findings if f.level is level)

    @property
    def exit_code(self) -> int:
        """1 when any check failed, else 0 (warnings do not fail: they need a look, not a fix)."""
        return 1 if self.count(Level.FAIL) else 0

    def text(self) -> str:
        lines = [f.line() for f in self.findings]
        lines.append(
            f"{self.count(Level.PASS)} passed, {self.count(Level.WARN)} warnings, "
            f"{self.count(Level.FAIL)} failed"
        )
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps(
            {
                "checks": [f.as_json() for f in self.findings],
                "summary": {level.value.lower(): self.count(level) for level in Level},
                "ok": self.exit_code == 0,
            },
            indent=2,
        )


def ago(moment: datetime, now: datetime) -> str:
    """`3h12m ago`, `45s ago`: how long since `moment`, to the unit that matters."""
    return f"{age(now - moment)} ago"


def age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
