"""Streaming pages into a staged merge, then judging deletions: the loop every source shares (syncing layer)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from inventory_sync.results import SourceOutcome
from inventory_sync.store.changes import Provenance
from inventory_sync.store.merging import ScopeMerge, WalkShape
from inventory_sync.store.staging import StagedPage, stage_page
from inventory_sync.store.tables import TableSpec
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.upstream import Page

#: Re-asks the upstream about ids the walk missed; returns the items that still exist.
Confirm = Callable[[Sequence[str]], Awaitable[list[dict[str, Any]]]]


class Paged(Protocol):
    """What the loop needs of a page: its items (each with a string `id`) and, when the
    upstream reports one, the total it claims for the whole walk."""

    @property
    def items(self) -> Sequence[Any]: ...

    @property
    def total(self) -> int | None: ...


async def stream_into_scope(
    pages: AsyncGenerator[Paged, None],
    *,
    pool: asyncpg.Pool,
    spec: TableSpec,
    scope: str,
    outcome: SourceOutcome,
    progress: ProgressListener,
    now: datetime,
    confirm_absent: Confirm | None = None,
    judge_deletions: bool = True,
    run_id: int | None = None,
) -> None:
    """Merge every page of one walk into `scope`, then soft-delete what vanished, if it may.

    `judge_deletions=False` merges only (an incremental walk lists what changed, not what
    exists, so its absences mean nothing). Every row written is logged in the change log as
    made by run `run_id` (None outside a run) and the source `outcome.name`.

    Counts land in `outcome` as pages merge. A page that fails raises out of here before the
    deletion step, so a partial walk deletes nothing; an inconsistent one (items without id,
    duplicates, a moving total, ids still present upstream) says why in `deletion_skipped`.
    """
    totals: set[int] = set()
    # aclosing: a failed merge must stop the page fetchers now, not when garbage-collected.
    # The merge borrows a pooled connection per page, not for the walk: a source waiting on
    # its upstream holds none, so many small sources never queue behind the pool's size.
    merge = ScopeMerge(
        pool, spec=spec, workspace_id=scope, now=now,
        provenance=Provenance(run_id, outcome.name),
    )  # fmt: skip
    try:
        async with aclosing(pages) as walk, merge:
            async for page in walk:
                staged = _staged(page, spec)
                outcome.fetched += staged.delivered + staged.rejected
                if page.total is not None:
                    totals.add(page.total)
                # Returns once the previous page is merged: this one merges while the next
                # page is fetched, so counts lag one page until the flush below.
                await merge.merge_staged(staged)
                _copy_merge_counts(merge, outcome)
                progress.page_merged(outcome, total=max(totals) if totals else None)
            await merge.flush()
            if judge_deletions:
                # Only a walk that ended normally gets here: a failed page raised above, so a
                # partial fetch never deletes anything.
                await _delete_what_vanished(merge, totals, confirm_absent, outcome)
    finally:
        # Copied after the merge has exited: a failed or cancelled walk's last page
        # statements have settled by then, and their rows are counted.
        _copy_merge_counts(merge, outcome)


@dataclass(frozen=True)
class StagingWhereDecoded:
    """A `Prepare` (pass it to a client's `pages`) that stages each page for `spec` where the
    page is decoded: in the page worker process, off this process's event loop and GIL (see
    `upstream.offloading`). Plain data, so it can be sent there.

    A page waiting in the walk's queue then holds JSON text and hashes, not 2,000 decoded
    dicts: a full garbage collection scanned up to 16 such pages and paused the event loop
    (every source's) for up to 355 ms; the dicts now never reach this process.
    """

    spec: TableSpec

    def __call__(self, page: Page) -> Page:
        return dataclasses.replace(page, items=[], prepared=stage_page(self.spec, page.items))


def _staged(page: Paged, spec: TableSpec) -> StagedPage:
    prepared = getattr(page, "prepared", None)
    if isinstance(prepared, StagedPage):
        return prepared
    return stage_page(spec, page.items)


async def _delete_what_vanished(
    merge: ScopeMerge, totals: set[int], confirm_absent: Confirm | None, outcome: SourceOutcome
) -> None:
    """Soft-delete the rows this complete walk did not deliver, if the walk can be trusted."""
    shape = await merge.walk_shape()
    reason = _inconsistency(shape, totals, rejected=merge.counts.rejected)
    missing = await merge.missing_ids() if reason is None else []
    if missing and confirm_absent is not None:
        present = {item.get("id") for item in await confirm_absent(missing)}
        still_there = [i for i in missing if i in present]
        if still_there:
            reason = (
                f"{len(still_there)} items missing from the walk still exist upstream "
                "(items shifted between pages)"
            )
    if reason is not None:
        outcome.deletion_skipped = reason
        return
    outcome.deleted = await merge.mark_deleted(missing)


def _inconsistency(shape: WalkShape, totals: set[int], *, rejected: int) -> str | None:
    """Why this walk cannot be trusted to say what is gone, or None when it can."""
    if rejected:
        return f"{rejected} items had no id"
    if shape.delivered != shape.distinct:
        return f"{shape.delivered - shape.distinct} duplicate items: items shifted between pages"
    if len(totals) > 1:
        return f"total changed during the walk ({min(totals)}..{max(totals)})"
    if totals and shape.distinct != next(iter(totals)):
        return f"walk delivered {shape.distinct} of {next(iter(totals))} items"
    return None


def _copy_merge_counts(merge: ScopeMerge, outcome: SourceOutcome) -> None:
    counts = merge.counts
    outcome.inserted = counts.inserted
    outcome.updated = counts.updated
    outcome.unchanged = counts.unchanged
    outcome.errors = counts.rejected
    outcome.unresolved_links = counts.unresolved_links
