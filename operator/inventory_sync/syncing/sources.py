"""Syncing one source: walk its upstream pages into a staged merge, then judge deletions (syncing layer)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from inventory_sync.models import ArubaCentralClassicSource, Source
from inventory_sync.results import SourceOutcome
from inventory_sync.store.tables import (
    CENTRAL_CLASSIC_DEVICES,
    CENTRAL_DEVICES,
    TableSpec,
)
from inventory_sync.syncing import streaming
from inventory_sync.syncing.context import SourceContext
from inventory_sync.syncing.credentials import (
    ensure_rotated_token_writable,
    refresh_token_saver,
    resolve_credentials,
    resolve_refresh_credentials,
)
from inventory_sync.syncing.greenlake_source import sync_greenlake
from inventory_sync.upstream import CentralClient, ClassicCentralClient, GreenLakeClient, Page


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
    if source.greenlake is not None:
        client = await _greenlake_client(ctx, source)
        try:
            await sync_greenlake(ctx, client, source.greenlake, outcome)
        finally:
            _copy_request_stats(client.stats, outcome)
        return
    walk = await _open_walk(ctx, source)
    try:
        await _stream(ctx, walk, outcome)
    finally:
        _copy_request_stats(walk.stats, outcome)


async def _open_walk(ctx: SourceContext, source: Source) -> _Walk:
    if source.aruba_central_classic is not None:
        return await _open_classic_walk(ctx, source.aruba_central_classic)
    credentials = await resolve_credentials(
        ctx.secrets, namespace=ctx.namespace, ref=source.secret_ref
    )
    session = ctx.session
    central = source.aruba_central
    assert central is not None
    central_client = CentralClient(
        session.http_for(central.endpoint),
        base_url=central.endpoint,
        tokens=session.tokens_for(central.token_url, credentials),
        limiters=session.limiters,
        workspace_id=central.workspace_id,
        policy=session.policy,
        api_version=central.api_version,
        page_size=central.page_size,
        max_concurrent_pages=session.concurrency.central,
        gate=session.gate_for(central.token_url, credentials.client_id),
    )

    async def confirm_central(ids: Sequence[str]) -> list[dict[str, Any]]:
        # Page numbers shift like offsets, and the API has no documented lookup by id: when a
        # complete walk missed stored rows, a second walk tells whether they still exist.
        return await _rewalk(central_client.pages(), ids, id_field="serialNumber")

    return _Walk(
        CENTRAL_DEVICES,
        central.workspace_id,
        central_client.pages(prepare=streaming.StagingWhereDecoded(CENTRAL_DEVICES)),
        confirm_central,
        central_client.stats,
    )


async def _greenlake_client(ctx: SourceContext, source: Source) -> GreenLakeClient:
    glp = source.greenlake
    assert glp is not None
    credentials = await resolve_credentials(
        ctx.secrets, namespace=ctx.namespace, ref=source.secret_ref
    )
    session = ctx.session
    return GreenLakeClient(
        session.http_for(glp.endpoint),
        base_url=glp.endpoint,
        tokens=session.tokens_for(glp.token_url, credentials),
        limiters=session.limiters,
        workspace_id=glp.workspace_id,
        policy=session.policy,
        page_size=glp.page_size,
        max_concurrent_pages=session.concurrency.greenlake,
        gate=session.gate_for(glp.token_url, credentials.client_id),
    )


async def _rewalk(
    pages: AsyncGenerator[Page, None], ids: Sequence[str], *, id_field: str
) -> list[dict[str, Any]]:
    """The items among `ids` (by `id_field`) that a fresh walk still lists, as {"id": ...}."""
    wanted = set(ids)
    found: list[dict[str, Any]] = []
    async with aclosing(pages) as walk:
        async for page in walk:
            found += [{"id": i[id_field]} for i in page.items if i.get(id_field) in wanted]
    return found


async def _open_classic_walk(ctx: SourceContext, classic: ArubaCentralClassicSource) -> _Walk:
    ref = classic.credentials_secret_ref
    credentials = await resolve_refresh_credentials(ctx.secrets, namespace=ctx.namespace, ref=ref)
    # Before the first refresh: a rotated token nobody can store must never be asked for.
    await ensure_rotated_token_writable(ctx.secrets, namespace=ctx.namespace, ref=ref)
    save = refresh_token_saver(ctx.secrets, namespace=ctx.namespace, ref=ref)
    session = ctx.session
    tokens = session.refresh_tokens_for(
        classic.effective_token_url,
        credentials,
        stored_at=f"{ctx.namespace}/{ref.name}/{ref.refresh_token_key}",
        on_rotate=save,
    )
    client = ClassicCentralClient(
        session.http_for(classic.endpoint),
        base_url=classic.endpoint,
        tokens=tokens,
        limiters=session.limiters,
        account_id=classic.account_id,
        policy=session.policy,
        page_size=classic.page_size,
        max_concurrent_pages=session.concurrency.classic,
    )

    async def confirm(serials: Sequence[str]) -> list[dict[str, Any]]:
        # The inventory has no lookup by serial: a second walk tells which still exist
        # (only when the first one missed something, so deletions stay cheap and rare).
        return await _rewalk(client.pages(), serials, id_field="serial")

    # Rows are keyed by serial (CENTRAL_CLASSIC_DEVICES.id_field): items carry no id.
    return _Walk(CENTRAL_CLASSIC_DEVICES, classic.account_id, client.pages(), confirm, client.stats)


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
        run_id=ctx.run_id,
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
