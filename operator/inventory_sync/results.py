"""What a run did, per source and overall: the result model the CLI prints and the operator writes to status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class SourceState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"  # a prerequisite failed
    CANCELLED = "Cancelled"  # the run timed out or was replaced


class RunState(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"  # replaced by a newer run, or the resource was deleted


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SourceOutcome(_Out):
    """One source's outcome; counts are rows in PostgreSQL, not upstream requests."""

    name: str
    kind: str
    state: SourceState = SourceState.PENDING
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: int = 0
    #: GreenLake device links whose subscription is unknown upstream (kept, not dropped).
    unresolved_links: int = 0
    #: Why nothing was soft-deleted although the walk finished (e.g. "items shifted between pages").
    deletion_skipped: str | None = None
    #: A machine-readable cause next to `message` (a fabric kind: NotInstalled,
    #: VersionNotServed, UnknownKind, Forbidden, Expired).
    reason: str | None = None
    #: "full" (every item walked; deletions judged) or "incremental" (only items changed since
    #: the scope's high-water mark); None for sources that always walk fully.
    mode: str | None = None
    #: Why this mode: e.g. "no full walk yet", "fullSyncInterval 24h elapsed", "count check:
    #: upstream 1000 vs stored 1001".
    mode_reason: str | None = None
    message: str | None = None
    #: A fabric kind: the group/version it was listed at (resolved through discovery).
    api_version: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float = 0.0
    requests: int = 0
    retries: int = 0
    rate_limit_wait_seconds: float = 0.0
    #: Upstream responses by HTTP status ("reset"/"timeout" for transport errors); for metrics,
    #: left out of the resource's status.
    status_codes: dict[str, int] = Field(default_factory=dict, exclude=True)

    @property
    def rows_written(self) -> int:
        return self.inserted + self.updated + self.deleted


class RunResult(_Out):
    """A whole run: the sources in start order, and the overall verdict."""

    state: RunState
    trigger: str
    started_at: datetime
    finished_at: datetime
    seconds: float
    sources: list[SourceOutcome] = Field(default_factory=list)
    message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state is RunState.SUCCEEDED

    @property
    def rows_written(self) -> int:
        return sum(s.rows_written for s in self.sources)

    def source(self, name: str) -> SourceOutcome:
        return next(s for s in self.sources if s.name == name)
