"""Terminal output for the CLI: live progress bars per source and the status block."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from inventory_sync.results import RunResult, SourceOutcome


class ProgressBars:
    """A ProgressListener drawing one bar per source (items fetched of the upstream total)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[source]:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _task(self, outcome: SourceOutcome) -> TaskID:
        if outcome.name not in self._tasks:
            self._tasks[outcome.name] = self.progress.add_task(
                "", total=None, source=outcome.name, state="waiting"
            )
        return self._tasks[outcome.name]

    def source_started(self, outcome: SourceOutcome) -> None:
        self.progress.update(self._task(outcome), state="running")

    def page_merged(self, outcome: SourceOutcome, *, total: int | None) -> None:
        self.progress.update(self._task(outcome), completed=outcome.fetched, total=total)

    def source_finished(self, outcome: SourceOutcome) -> None:
        task = self._task(outcome)
        total = self.progress.tasks[task].total
        self.progress.update(
            task,
            completed=outcome.fetched,
            total=total if total is not None else outcome.fetched,
            state=outcome.state.value,
        )


def status_block(result: RunResult) -> dict[str, Any]:
    """The status fields a run produces, shaped as the operator writes them to the resource."""
    return {
        "status": {
            "lastSyncTime": result.finished_at.isoformat(),
            "lastDurationSeconds": result.seconds,
            "result": result.state.value,
            "message": result.message,
            "sources": [
                s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in result.sources
            ],
        }
    }


def print_status(console: Console, result: RunResult) -> None:
    console.print(
        yaml.safe_dump(status_block(result), sort_keys=False).rstrip(),
        markup=False,
        highlight=False,
    )


def print_operator_status(console: Console, status: dict[str, Any]) -> None:
    """The status the operator would have written to the resource, as `kubectl get -o yaml`
    shows it."""
    console.print(
        yaml.safe_dump({"operatorStatus": status}, sort_keys=False).rstrip(),
        markup=False,
        highlight=False,
    )
