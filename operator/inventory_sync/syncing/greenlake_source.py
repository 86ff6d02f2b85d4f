"""Syncing one GreenLake source: an incremental walk when the scope allows it, else a full walk
whose absences are confirmed as cheaply as the evidence allows (syncing layer)."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inventory_sync.models import GreenLakeSource
from inventory_sync.results import SourceOutcome
from inventory_sync.store import scopes
from inventory_sync.store.tables import GLP_DEVICES, GLP_SUBSCRIPTIONS, TableSpec
from inventory_sync.syncing import streaming
from inventory_sync.syncing.context import SourceContext
from inventory_sync.syncing.incremental import (
    CLOCK_SKEW_ALLOWANCE,
    HighWater,
    WalkPlan,
    add_counts,
    changed_since_filter,
    outcome_counts,
    plan_walk,
)
from inventory_sync.upstream import GreenLakeClient, Page, Prepare, Resource

#: Missing ids confirmed by id at most cost this share of the walk's requests (50 ids each).
BY_ID_SHARE = 0.1
#: ...or this many requests, whatever the walk's size (a seed-sized walk is 6 pages).
BY_ID_MINIMUM = 2
IDS_PER_REQUEST = 50


@dataclass
class _Sync:
    ctx: SourceContext
    client: GreenLakeClient
    resource: Resource
    spec: TableSpec
    workspace_id: str
    outcome: SourceOutcome


async def sync_greenlake(
    ctx: SourceContext, client: GreenLakeClient, glp: GreenLakeSource, outcome: SourceOutcome
) -> None:
    """Run one GreenLake source to completion, filling `outcome` (mode and reason included)."""
    subscriptions = glp.resource.value == "subscriptions"
    sync = _Sync(
        ctx=ctx,
        client=client,
        resource="subscriptions" if subscriptions else "devices",
        spec=GLP_SUBSCRIPTIONS if subscriptions else GLP_DEVICES,
        workspace_id=glp.workspace_id,
        outcome=outcome,
    )
    state = await scopes.read_scope(
        ctx.pool, source_kind=sync.spec.source_kind, scope=glp.workspace_id
    )
    plan = plan_walk(state, now=ctx.now, full_sync_interval=glp.effective_full_sync_interval)
    if plan.mode == "incremental":
        fallback = await _incremental(sync, plan)
        if fallback is None:
            return
        plan = fallback
    await _full(sync, plan)


async def _incremental(sync: _Sync, plan: WalkPlan) -> WalkPlan | None:
    """Merge what changed since the mark; None when the count check then agrees, else the full
    walk that must follow (in this run)."""
    assert plan.since is not None
    outcome = sync.outcome
    outcome.mode, outcome.mode_reason = "incremental", plan.reason
    watch = HighWater()
    pages = sync.client.pages(
        sync.resource, filter=changed_since_filter(plan.since), prepare=_staging(sync)
    )
    await _stream(sync, _watched(pages, watch), judge_deletions=False)
    # Deletions leave no trace in a changes-only list: the count tells whether any happened.
    upstream = await sync.client.count(sync.resource)
    stored = await scopes.live_count(sync.ctx.pool, sync.spec, sync.workspace_id)
    if upstream != stored:
        return WalkPlan(
            "full", f"count check after the changes: upstream {upstream}, stored {stored}"
        )
    if watch.mark is not None:
        await scopes.advance_high_water_mark(
            sync.ctx.pool,
            source_kind=sync.spec.source_kind,
            scope=sync.workspace_id,
            high_water_mark=watch.mark,
        )
    if sync.resource == "devices":
        await scopes.resolve_pending_links(
            sync.ctx.pool, workspace_id=sync.workspace_id, now=sync.ctx.now
        )
    return None


async def _full(sync: _Sync, plan: WalkPlan) -> None:
    outcome = sync.outcome
    earlier = outcome_counts(outcome) if outcome.mode == "incremental" else None
    outcome.mode, outcome.mode_reason = "full", plan.reason
    watch = HighWater()
    totals: list[int] = []

    async def confirm(missing: Sequence[str]) -> list[dict[str, Any]]:
        return await _confirm_absent(sync, missing, watch=watch, walk_total=max(totals, default=0))

    pages = _watched(sync.client.pages(sync.resource, prepare=_staging(sync)), watch, totals)
    try:
        await _stream(sync, pages, judge_deletions=True, confirm=confirm)
    finally:
        if earlier is not None:
            add_counts(outcome, earlier)
    if outcome.deletion_skipped is None:
        # Consistent and complete: later runs may continue from this walk's mark.
        await scopes.record_full_walk(
            sync.ctx.pool,
            source_kind=sync.spec.source_kind,
            scope=sync.workspace_id,
            at=sync.ctx.now,
            high_water_mark=watch.mark,
        )


def _staging(sync: _Sync) -> Prepare:
    """Pages staged where they are decoded (their newest `updatedAt` travels with them)."""
    return streaming.StagingWhereDecoded(sync.spec)


async def _watched(
    pages: AsyncGenerator[Page, None], watch: HighWater, totals: list[int] | None = None
) -> AsyncGenerator[Page, None]:
    """`pages`, each seen by `watch` as the walk yields it; each `total` a page states is
    appended to `totals`."""
    async with aclosing(pages) as walk:
        async for page in walk:
            watch.observe(page)
            if totals is not None and page.total is not None:
                totals.append(page.total)
            yield page


async def _stream(
    sync: _Sync,
    pages: Any,
    *,
    judge_deletions: bool,
    confirm: streaming.Confirm | None = None,
) -> None:
    await streaming.stream_into_scope(
        pages,
        pool=sync.ctx.pool,
        spec=sync.spec,
        scope=sync.workspace_id,
        outcome=sync.outcome,
        progress=sync.ctx.progress,
        now=sync.ctx.now,
        confirm_absent=confirm,
        judge_deletions=judge_deletions,
        run_id=sync.ctx.run_id,
    )


async def _confirm_absent(
    sync: _Sync, missing: Sequence[str], *, watch: HighWater, walk_total: int
) -> list[dict[str, Any]]:
    """Which of `missing` (stored, not delivered by a consistent walk) still exist upstream.

    Few: asked for by id (50 a request). Many: first the proof that the list did not move
    during the walk (two requests, see docs/sync-engine.md); failing that, by id when that
    costs less than walking again, else a second complete walk.
    """
    size = sync.client.page_size(sync.resource)
    walk_requests = max(1, math.ceil(walk_total / size))
    by_id = math.ceil(len(missing) / IDS_PER_REQUEST)
    if by_id <= max(BY_ID_MINIMUM, int(walk_requests * BY_ID_SHARE)):
        return await sync.client.fetch_by_ids(sync.resource, missing)
    if await _walk_was_undisturbed(sync, started=watch.server_start, walk_total=walk_total):
        return []
    if by_id <= walk_requests:
        return await sync.client.fetch_by_ids(sync.resource, missing)
    wanted = set(missing)
    found: list[dict[str, Any]] = []
    async with aclosing(sync.client.pages(sync.resource)) as pages:
        async for page in pages:
            found += [item for item in page.items if item.get("id") in wanted]
    return found


async def _walk_was_undisturbed(sync: _Sync, *, started: datetime | None, walk_total: int) -> bool:
    """True when nothing was added to or removed from the list since the walk began: the total
    is still the walk's, and no item changed (an added item is stamped) since then."""
    if started is None:  # no server clock to ask "since when"
        return False
    if await sync.client.count(sync.resource) != walk_total:
        return False
    since = started - CLOCK_SKEW_ALLOWANCE
    return await sync.client.count(sync.resource, filter=changed_since_filter(since)) == 0
