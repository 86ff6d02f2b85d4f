"""Go-style durations (`90s`, `15m`, `1h30m`) as used by spec.interval and spec.timeout."""

from __future__ import annotations

import re
from datetime import timedelta

# The units Kubernetes users write in Flux and CronJob-adjacent specs; Go's ns/us are pointless
# for sync intervals and rejected so a typo like `5us` is not silently accepted.
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|h|m|s))+$"


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration; raise ValueError naming the bad text."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text.strip()):
        raise ValueError(f"invalid duration {text!r}: use Go style such as 90s, 15m, 1h30m")
    seconds = sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text.strip())
    )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta back in Go style, largest units first (`1h30m`, `45s`)."""
    total = value.total_seconds()
    if total < 1 and total > 0:
        return f"{round(total * 1000)}ms"
    whole = int(total)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{seconds}s" if seconds or not (hours or minutes) else "")
    return "".join(parts)
