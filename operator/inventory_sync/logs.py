"""Log output of the operator and the CLI (bottom layer): text on a terminal, JSON lines in a pod,
with the resource a line is about as fields, since on-call people search logs by resource.

`about(kind=…, namespace=…, name=…)` sets a context variable. asyncio tasks copy the context
they are created in, so every line a run logs (scheduler, upstream clients, store) carries the
resource without each call passing it. kopf's own per-object lines carry `k8s_ref`, which
becomes the same `resource` field, so kopf's logs come out in the same shape.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_resource: ContextVar[dict[str, str] | None] = ContextVar("inventory_sync_resource", default=None)
# What every LogRecord has; anything else was passed with `extra=` and is worth a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# kopf's per-object records: kopf decides for itself whether to post them as Events.
_KOPF_FIELDS = frozenset({"k8s_ref", "k8s_skip", "settings"})


@contextmanager
def about(*, kind: str, namespace: str | None, name: str, uid: str | None = None) -> Iterator[None]:
    """Log lines inside this block (and in tasks created inside it) are about this resource."""
    fields = {"kind": kind, "name": name}
    if namespace:
        fields["namespace"] = namespace
    if uid:
        fields["uid"] = uid
    token = _resource.set(fields)
    try:
        yield
    finally:
        _resource.reset(token)


def resource_of(record: logging.LogRecord) -> dict[str, str] | None:
    """The resource a record is about: kopf's k8s_ref, else the context's."""
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict) and ref.get("name"):
        return {k: str(ref[k]) for k in ("kind", "namespace", "name", "uid") if ref.get(k)}
    return _resource.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, resource, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        resource = resource_of(record)
        if resource:
            out["resource"] = resource
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _KOPF_FIELDS and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line; kopf's per-object lines get kopf's "[namespace/name]" prefix back."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            where = "/".join(str(ref[k]) for k in ("namespace", "name") if ref.get(k))
            record.message = f"[{where}] {record.message}"
        return super().formatMessage(record)


def default_format(stream: TextIO | None = None) -> LogFormat:
    """Text for a person at a terminal, JSON for a log collector."""
    target = sys.stderr if stream is None else stream
    return "text" if target.isatty() else "json"


def configure(*, log_format: LogFormat | None, level: str | int) -> LogFormat:
    """Send every logger (ours, kopf's, httpx's) to stderr in one format; returns the format."""
    chosen = log_format or default_format()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return chosen
