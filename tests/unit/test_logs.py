"""JSON log lines carry the resource they are about, from our context or kopf's k8s_ref."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from inventory_sync import logs
from inventory_sync.cli import main


def _line(record: logging.LogRecord) -> dict[str, object]:
    return json.loads(logs.JsonFormatter().format(record))  # type: ignore[no-any-return]


def test_a_line_inside_a_resource_block_and_its_tasks_carries_the_resource() -> None:
    logger = logging.getLogger("inventory_sync.test")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            record.rendered = logs.JsonFormatter().format(record)  # type: ignore[attr-defined]

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def run() -> None:
        logger.info("in the run task")

    async def scenario() -> None:
        with logs.about(kind="SyncSchedule", namespace="team-a", name="inventory", uid="u-1"):
            task = asyncio.create_task(run())  # created inside: inherits the resource
        await task
        logger.info("outside")

    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(r.rendered) for r in records)  # type: ignore[attr-defined]
    assert inside["resource"] == {
        "kind": "SyncSchedule", "namespace": "team-a", "name": "inventory", "uid": "u-1"
    }  # fmt: skip
    assert inside["message"] == "in the run task"
    assert inside["level"] == "INFO"
    assert "resource" not in outside


def test_kopfs_object_lines_get_the_same_field() -> None:
    record = logging.makeLogRecord(
        {
            "name": "kopf.objects",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "Handler succeeded.",
            "k8s_ref": {"apiVersion": "inventorysync.dev/v1alpha1", "kind": "Fabric",
                        "name": "fab-a", "namespace": "ns", "uid": "u-2"},
            "k8s_skip": False,
        }
    )  # fmt: skip
    line = _line(record)
    assert line["resource"] == {"kind": "Fabric", "namespace": "ns", "name": "fab-a", "uid": "u-2"}
    assert "k8s_ref" not in line
    text = logs.TextFormatter().format(record)
    assert text.endswith("kopf.objects: [ns/fab-a] Handler succeeded.")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """main() configures the root logger: put it back for the tests after this one."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_the_cli_takes_log_format_before_or_after_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    code = main(["trigger", "fabric/x", "--log-format", "json"])
    assert code == 2  # no kubeconfig: a bad-input exit, printed as a plain error line
    assert logging.getLogger().handlers[0].formatter.__class__ is logs.JsonFormatter
    assert "KUBECONFIG names no existing file" in stream.getvalue()
