"""Progress callbacks a run emits as sources start, merge pages and finish (syncing layer)."""

from __future__ import annotations

from typing import Protocol

from inventory_sync.results import SourceOutcome


class ProgressListener(Protocol):
    def source_started(self, outcome: SourceOutcome) -> None: ...

    def page_merged(self, outcome: SourceOutcome, *, total: int | None) -> None: ...

    def source_finished(self, outcome: SourceOutcome) -> None: ...


class NoProgress:
    """The listener for callers that do not display progress (the operator)."""

    def source_started(self, outcome: SourceOutcome) -> None:
        pass

    def page_merged(self, outcome: SourceOutcome, *, total: int | None) -> None:
        pass

    def source_finished(self, outcome: SourceOutcome) -> None:
        pass
