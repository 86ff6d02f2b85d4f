"""Syncing one source: walk its upstream pages into a staged merge, then judge deletions (syncing layer)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from inventory_sync.models import Source
from inventory_sync.results import SourceOutcome
from inventory_sync.store.tables import CENTRAL_DEVICES, GLP_DEVICES, GLP_SUBSCRIPTIONS, TableSpec
from inventory_sync.syncing import streaming
from inventory_sync.syncing.credentials import SecretReader, resolve_credentials
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import CentralClient, GreenLakeClient, Page


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
    confirm_absent: streaming.Confirm | None
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
    await streaming.stream_into_scope(
        walk.pages,
        pool=ctx.pool,
        spec=walk.spec,
        scope=walk.workspace_id,
        outcome=outcome,
        progress=ctx.progress,
        now=ctx.now,
        confirm_absent=walk.confirm_absent,
    )


def _copy_request_stats(stats: Any, outcome: SourceOutcome) -> None:
    outcome.requests = int(getattr(stats, "requests", 0))
    outcome.retries = int(getattr(stats, "retries", 0))
    outcome.rate_limit_wait_seconds = round(
        float(getattr(stats, "rate_limit_wait_seconds", 0.0)), 3
    )
    codes = {str(code): n for code, n in getattr(stats, "by_status", {}).items()}
    codes.update({str(kind): n for kind, n in getattr(stats, "errors", {}).items()})
    outcome.status_codes = codes
