"""Syncing one source: walk its upstream pages into a staged merge, then judge deletions (syncing layer)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from inventory_sync.models import Source
from inventory_sync.results import SourceOutcome
from inventory_sync.store.merging import ScopeMerge, WalkShape
from inventory_sync.store.tables import CENTRAL_DEVICES, GLP_DEVICES, GLP_SUBSCRIPTIONS, TableSpec
from inventory_sync.syncing.credentials import SecretReader, resolve_credentials
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import CentralClient, GreenLakeClient, Page

Confirm = Callable[[Sequence[str]], Awaitable[list[dict[str, Any]]]]


@dataclass
class SourceContext:
    """Everything one source needs from its run."""

    pool: asyncpg.Pool
    session: UpstreamSession
    secrets: SecretReader
    namespace: str
    progress: ProgressListener
    now: datetime


@dataclass(frozen=True)
class _Walk:
    spec: TableSpec
    workspace_id: str
    pages: AsyncGenerator[Page, None]
    #: Re-asks the upstream about ids the walk missed; None where the API cannot.
    confirm_absent: Confirm | None
    stats: Any


async def sync_source(ctx: SourceContext, source: Source, outcome: SourceOutcome) -> None:
    """Run one source to completion, filling `outcome`; raises on failure (counts so far stay)."""
    walk = await _open_walk(ctx, source)
    try:
        await _stream(ctx, walk, outcome)
    finally:
        _copy_request_stats(walk.stats, outcome)


async def _open_walk(ctx: SourceContext, source: Source) -> _Walk:
    credentials = await resolve_credentials(
        ctx.secrets, namespace=ctx.namespace, ref=source.secret_ref
    )
    session = ctx.session
    if source.greenlake is not None:
        glp = source.greenlake
        client = GreenLakeClient(
            session.http_for(glp.endpoint),
            base_url=glp.endpoint,
            tokens=session.tokens_for(glp.token_url, credentials),
            limiters=session.limiters,
            workspace_id=glp.workspace_id,
            policy=session.policy,
            page_size=glp.page_size,
        )
        resource: Literal["devices", "subscriptions"] = (
            "subscriptions" if source.is_subscriptions else "devices"
        )

        async def confirm(ids: Sequence[str]) -> list[dict[str, Any]]:
            return await client.fetch_by_ids(resource, ids)

        spec = GLP_SUBSCRIPTIONS if source.is_subscriptions else GLP_DEVICES
        return _Walk(spec, glp.workspace_id, client.pages(resource), confirm, client.stats)
    central = source.aruba_central
    assert central is not None
    central_client = CentralClient(
        session.http_for(central.endpoint),
        base_url=central.endpoint,
        tokens=session.tokens_for(central.token_url, credentials),
        limiters=session.limiters,
        workspace_id=central.workspace_id,
        policy=session.policy,
        page_size=central.page_size,
    )
    # The cursor is keyset-based upstream, so a complete walk is already consistent.
    return _Walk(
        CENTRAL_DEVICES, central.workspace_id, central_client.pages(), None, central_client.stats
    )


async def _stream(ctx: SourceContext, walk: _Walk, outcome: SourceOutcome) -> None:
    totals: set[int] = set()
    # aclosing: a failed merge must stop the page fetchers now, not when garbage-collected.
    async with (
        aclosing(walk.pages) as pages,
        ctx.pool.acquire() as connection,
        ScopeMerge(
            connection, spec=walk.spec, workspace_id=walk.workspace_id, now=ctx.now
        ) as merge,
    ):
        try:
            async for page in pages:
                outcome.fetched += len(page.items)
                if page.total is not None:
                    totals.add(page.total)
                await merge.merge_page(page.items)
                _copy_merge_counts(merge, outcome)
                ctx.progress.page_merged(outcome, total=max(totals) if totals else None)
        finally:
            _copy_merge_counts(merge, outcome)
        # Only a walk that ended normally reaches this point: a failed page raised above,
        # so a partial fetch never deletes anything.
        shape = await merge.walk_shape()
        reason = _inconsistency(shape, totals, rejected=merge.counts.rejected)
        missing = await merge.missing_ids() if reason is None else []
        if missing and walk.confirm_absent is not None:
            present = {item.get("id") for item in await walk.confirm_absent(missing)}
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


def _copy_request_stats(stats: Any, outcome: SourceOutcome) -> None:
    outcome.requests = int(getattr(stats, "requests", 0))
    outcome.retries = int(getattr(stats, "retries", 0))
    outcome.rate_limit_wait_seconds = round(
        float(getattr(stats, "rate_limit_wait_seconds", 0.0)), 3
    )
    codes = {str(code): n for code, n in getattr(stats, "by_status", {}).items()}
    codes.update({str(kind): n for kind, n in getattr(stats, "errors", {}).items()})
    outcome.status_codes = codes
