"""One run of a Fabric: list each configured kind page by page from the fabric cluster into fabric_objects (syncing layer).

Each kind is its own source in the result (name = Kind, kind = "group/Kind") and its own
merge scope ("<fabric uid>/<group>/<Kind>"), so a kind whose list failed deletes nothing while
its siblings carry on. The version listed comes from the fabric's discovery (fabric_discovery).
Kubernetes serves every chunk of a `limit`/`continue` walk from one snapshot, so a walk that
ends without error is complete and consistent; when a continue token expires (410 Gone) the
kind's list restarts once from scratch, and fails if that expires too.

Objects are redacted (redaction.py) before they are staged: no secret reaches PostgreSQL.
Rows that outlived their source are retired here: kinds the spec no longer lists, kinds the
fabric no longer serves. Deleted Fabrics are retired by fabric_retirement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from inventory_sync.errors import (
    CredentialsError,
    InventorySyncError,
    KubeForbidden,
    KubeGone,
    KubeNotFound,
    SpecError,
    public_message,
)
from inventory_sync.kube import APIResource, KubeClient, KubeConnection, RequestStats, resource_path
from inventory_sync.models import FabricSpec, KindRef
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState
from inventory_sync.store import fabric_lifecycle
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.store.tables import FABRIC_OBJECTS
from inventory_sync.syncing import streaming
from inventory_sync.syncing.fabric_discovery import (
    FabricDiscovery,
    Resolved,
    Unresolvable,
    Unresolved,
)
from inventory_sync.syncing.pipeline import utcnow
from inventory_sync.syncing.progress import NoProgress, ProgressListener
from inventory_sync.syncing.redaction import redact_object

logger = logging.getLogger(__name__)

NOT_ATTEMPTED = "not attempted: the fabric could not be reached"
# Metadata that changes without the object changing (managedFields timestamps, the version
# counter) or that duplicates the object (kubectl's last-applied copy, which would also carry
# every secret of the spec): kept out of `data`, so an untouched object is an unchanged row.
# resourceVersion moves to a top-level key.
_DROPPED_METADATA = ("managedFields", "resourceVersion", "selfLink")
_DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
# A run that inserted or retired this many rows has changed the table enough that planner
# statistics are refreshed at once (store.fabric_lifecycle.refresh_statistics says why).
ANALYZE_AFTER_ROWS = 1000
# Reasons of a kind's outcome that are not discovery's (fabric_discovery.Unresolvable).
FORBIDDEN = "Forbidden"
EXPIRED = "Expired"
UNREACHABLE = "Unreachable"


@dataclass(frozen=True)
class _StagedPage:
    items: list[dict[str, Any]]
    # Kubernetes only estimates the total (remainingItemCount): never a consistency check.
    total: int | None = None


def kind_scope(fabric_uid: str, ref: KindRef) -> str:
    """The merge scope of one kind of one Fabric: deletions are judged per kind."""
    return f"{fabric_uid}/{ref.group}/{ref.kind}"


async def run_fabric_sync(
    spec: FabricSpec,
    *,
    fabric: ResourceIdentity,
    client: KubeClient,
    pool: asyncpg.Pool,
    trigger: str,
    owner: str | None,
    progress: ProgressListener | None = None,
    clock: Callable[[], datetime] = utcnow,
    max_concurrent_kinds: int = 4,
    run_id: int | None = None,
) -> RunResult:
    """List every kind of `spec` from the fabric behind `client` into PostgreSQL.

    `owner` (the operator's cluster, see fabric_retirement) registers the Fabric so that its
    rows are retired once it is deleted; None registers nothing. `run_id` (the run's
    sync_runs row) is recorded with every change (store/changes.py). Never raises for a kind's
    failure: the run is Failed when a kind failed or when no kind could be synced at all.
    """
    if max_concurrent_kinds < 1:
        raise ValueError("max_concurrent_kinds must be at least 1")
    started = clock()
    t0 = time.monotonic()
    listener = progress or NoProgress()
    kinds = _unique_kinds(spec.kinds)
    outcomes = [SourceOutcome(name=ref.kind, kind=ref.label) for _, ref in kinds]
    unreachable = await _unreachable(client)
    if unreachable is not None:
        # Said once for the run: every kind would fail the same way, at length, in parallel.
        # Nothing is retired: an unreachable fabric says nothing about what it serves.
        for outcome in outcomes:
            outcome.state, outcome.message = SourceState.SKIPPED, NOT_ATTEMPTED
            outcome.reason = UNREACHABLE
        logger.warning("fabric %s: %s", fabric.name, unreachable)
        return RunResult(
            state=RunState.FAILED, trigger=trigger, started_at=started, finished_at=clock(),
            seconds=round(time.monotonic() - t0, 3), sources=outcomes, message=unreachable,
        )  # fmt: skip
    if owner is not None:
        await fabric_lifecycle.register_fabric(pool, fabric=fabric, owner=owner, now=started)
    discovery = FabricDiscovery(client)
    slots = asyncio.Semaphore(max_concurrent_kinds)

    async def run_one(index: int, ref: KindRef, outcome: SourceOutcome) -> None:
        async with slots:
            await _run_kind(
                index, ref, outcome, spec=spec, fabric=fabric, client=client, pool=pool,
                discovery=discovery, progress=listener, now=started, clock=clock,
                run_id=run_id,
            )  # fmt: skip

    tasks = [
        asyncio.create_task(run_one(index, ref, outcome), name=f"fabric-kind:{ref.kind}")
        for (index, ref), outcome in zip(kinds, outcomes, strict=True)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        # gather() does not cancel siblings on our own cancellation; make sure none outlive us.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    dropped = await fabric_lifecycle.retire_other_scopes(
        pool, fabric_uid=fabric.uid, keep=[kind_scope(fabric.uid, k) for _, k in kinds],
        now=started, run_id=run_id,
    )  # fmt: skip
    if dropped:
        logger.info("fabric %s: retired %d rows of kinds no longer listed", fabric.name, dropped)
    if dropped + sum(o.inserted + o.deleted for o in outcomes) >= ANALYZE_AFTER_ROWS:
        await fabric_lifecycle.refresh_statistics(pool)
    failed = [o for o in outcomes if o.state is SourceState.FAILED]
    synced = [o for o in outcomes if o.state is SourceState.SUCCEEDED]
    message = "; ".join(f"{o.name}: {o.message or o.state.value}" for o in failed) or None
    if not synced and not failed:
        # Every kind was skipped: the run read nothing, which is not a success.
        message = "no kind synced: " + "; ".join(f"{o.name}: {o.message}" for o in outcomes)
    return RunResult(
        state=RunState.SUCCEEDED if synced and not failed else RunState.FAILED,
        trigger=trigger,
        started_at=started,
        finished_at=clock(),
        seconds=round(time.monotonic() - t0, 3),
        sources=outcomes,
        message=message,
    )


async def _unreachable(client: KubeClient) -> str | None:
    """Why the fabric's API server cannot be used at all (TLS, DNS, refused, 401), or None.
    GET /version: every authenticated identity may read it (system:public-info-viewer)."""
    try:
        await client.get("/version")
    except InventorySyncError as error:
        return f"cannot reach the fabric: {public_message(error, limit=400)}"
    return None


async def check_kinds(spec: FabricSpec, *, client: KubeClient) -> None:
    """Raise SpecError naming `spec.kinds[i].kind` (or `.group`) for each kind the fabric's
    discovery shows to be misspelt. Any other problem is left to the run, which reports it."""
    discovery = FabricDiscovery(client)
    problems = []
    try:
        for index, ref in enumerate(spec.kinds):
            found = await discovery.resolve(ref)
            if isinstance(found, Unresolved) and found.reason is Unresolvable.UNKNOWN_KIND:
                problems.append(f"spec.kinds[{index}].{found.field}: {found.message}")
    except InventorySyncError:
        return
    if problems:
        raise SpecError("; ".join(problems))


async def fabric_connection(
    spec: FabricSpec, *, namespace: str, local: KubeClient
) -> KubeConnection:
    """How to reach the fabric: the kubeconfig in the Fabric's Secret (embedded credentials
    only; `spec.context`, else its current-context), or, without a reference, the cluster
    `local` talks to, as the operator itself."""
    ref = spec.kubeconfig_secret_ref
    if ref is None:
        return local.connection
    values = await local.read_secret(namespace, ref.name)
    if values is None:
        raise CredentialsError(f"Secret {namespace}/{ref.name} not found")
    text = values.get(ref.key)
    if not text:
        raise CredentialsError(f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
    return KubeConnection.from_kubeconfig_text(text, spec.context)


def stage_object(
    obj: Mapping[str, Any], *, api_version: str, kind: str, fabric: ResourceIdentity
) -> dict[str, Any]:
    """The item merged for one object: the object redacted and without volatile metadata, plus
    `id` (its uid), `fabric` and a top-level `resourceVersion` that the change check ignores."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    redacted = redact_object(_without_volatile(obj), group=group, kind=kind)
    metadata = redacted.get("metadata") or {}
    return {
        **redacted,
        # Items of a list carry their own apiVersion/kind for custom resources; fill them anyway.
        "apiVersion": obj.get("apiVersion") or api_version,
        "kind": obj.get("kind") or kind,
        "id": metadata.get("uid"),
        "resourceVersion": (obj.get("metadata") or {}).get("resourceVersion"),
        "fabric": {"uid": fabric.uid, "namespace": fabric.namespace, "name": fabric.name},
    }


def _without_volatile(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = dict(obj.get("metadata") or {})
    for key in _DROPPED_METADATA:
        metadata.pop(key, None)
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if k not in _DROPPED_ANNOTATIONS
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return {**obj, "metadata": metadata}


def _unique_kinds(kinds: list[KindRef]) -> list[tuple[int, KindRef]]:
    """(index in spec.kinds, kind) of each distinct kind. Two entries for one group/Kind would
    merge into the same scope at once (the model refuses them; keep the first regardless)."""
    seen: dict[tuple[str, str], tuple[int, KindRef]] = {}
    for index, ref in enumerate(kinds):
        seen.setdefault((ref.group, ref.kind), (index, ref))
    return list(seen.values())


async def _run_kind(
    index: int,
    ref: KindRef,
    outcome: SourceOutcome,
    *,
    spec: FabricSpec,
    fabric: ResourceIdentity,
    client: KubeClient,
    pool: asyncpg.Pool,
    discovery: FabricDiscovery,
    progress: ProgressListener,
    now: datetime,
    clock: Callable[[], datetime],
    run_id: int | None,
) -> None:
    """One kind to completion; its outcome says how it ended, exceptions stay here."""
    outcome.state = SourceState.RUNNING
    outcome.started_at = clock()
    t0 = time.monotonic()
    stats = RequestStats()
    progress.source_started(outcome)
    try:
        found = await discovery.resolve(ref)
        if isinstance(found, Unresolved):
            await _unresolved(
                index, ref, outcome, found, fabric=fabric, pool=pool, now=now, run_id=run_id
            )
            return
        outcome.api_version = found.api_version(ref.group)
        await _list_kind(
            ref, found, outcome, spec=spec, fabric=fabric, client=client, pool=pool,
            progress=progress, now=now, stats=stats, run_id=run_id,
        )  # fmt: skip
        outcome.state = SourceState.SUCCEEDED
    except KubeNotFound:
        # The CRD went away between discovery and the list; the next run's discovery decides.
        outcome.state, outcome.reason = SourceState.SKIPPED, Unresolvable.NOT_INSTALLED.value
        outcome.message = "not installed: the resource disappeared during the run"
    except asyncio.CancelledError:
        outcome.state, outcome.message = SourceState.CANCELLED, "cancelled"
        raise
    except InventorySyncError as error:
        outcome.state, outcome.message = SourceState.FAILED, public_message(error)
        if isinstance(error, KubeForbidden):
            outcome.reason = FORBIDDEN
        elif isinstance(error, KubeGone):
            outcome.reason = EXPIRED
        logger.warning("fabric %s: kind %s failed: %s", fabric.name, ref.kind, outcome.message)
    except Exception as error:  # a bug must fail this kind, not its siblings or the operator
        outcome.state = SourceState.FAILED
        outcome.message = f"internal error: {type(error).__name__}"
        logger.exception("fabric %s: kind %s failed unexpectedly", fabric.name, ref.kind)
    finally:
        outcome.requests, outcome.retries = stats.requests, stats.retries
        outcome.status_codes = dict(stats.status_codes)
        outcome.finished_at = clock()
        outcome.seconds = round(time.monotonic() - t0, 3)
        progress.source_finished(outcome)


async def _unresolved(
    index: int,
    ref: KindRef,
    outcome: SourceOutcome,
    found: Unresolved,
    *,
    fabric: ResourceIdentity,
    pool: asyncpg.Pool,
    now: datetime,
    run_id: int | None,
) -> None:
    """A kind the fabric does not serve as asked: skipped, or failed for a misspelt spec; its
    rows are retired only when the fabric serves the kind at no version any more."""
    outcome.reason = found.reason.value
    if found.reason is Unresolvable.UNKNOWN_KIND:
        outcome.state = SourceState.FAILED
        outcome.message = f"spec.kinds[{index}].{found.field}: {found.message}"
        return
    outcome.state, outcome.message = SourceState.SKIPPED, found.message
    if found.reason is Unresolvable.NOT_INSTALLED:
        outcome.deleted = await fabric_lifecycle.retire_scope(
            pool, scope=kind_scope(fabric.uid, ref), reason=fabric_lifecycle.CRD_REMOVED, now=now,
            run_id=run_id,
        )  # fmt: skip


async def _list_kind(
    ref: KindRef,
    found: Resolved,
    outcome: SourceOutcome,
    *,
    spec: FabricSpec,
    fabric: ResourceIdentity,
    client: KubeClient,
    pool: asyncpg.Pool,
    progress: ProgressListener,
    now: datetime,
    stats: RequestStats,
    run_id: int | None,
) -> None:
    """Walk the kind into its scope; after a 410 Gone start over once with a fresh list.

    The pages merged before the token expired were real objects and stay merged; the second
    walk alone decides what was deleted. Its counts see those rows as unchanged, so the first
    walk's inserts and updates are carried over.
    """
    scope = kind_scope(fabric.uid, ref)

    async def walk() -> None:
        pages = _object_pages(
            client, ref, found, namespaces=spec.namespaces, page_size=spec.page_size,
            fabric=fabric, stats=stats,
        )  # fmt: skip
        await streaming.stream_into_scope(
            pages, pool=pool, spec=FABRIC_OBJECTS, scope=scope, outcome=outcome,
            progress=progress, now=now, run_id=run_id,
        )  # fmt: skip

    try:
        await walk()
        return
    except KubeGone:
        logger.info(
            "fabric %s: %s list expired between pages; listing again", fabric.name, ref.kind
        )
    carried_inserted, carried_updated = outcome.inserted, outcome.updated
    outcome.fetched = 0
    try:
        await walk()  # a second 410 fails the kind
    finally:
        outcome.inserted += carried_inserted
        outcome.updated += carried_updated
        outcome.unchanged = max(0, outcome.unchanged - carried_inserted - carried_updated)
    outcome.message = "listed twice: the first list expired between pages (410 Gone)"


async def _object_pages(
    client: KubeClient,
    ref: KindRef,
    found: Resolved,
    *,
    namespaces: list[str],
    page_size: int,
    fabric: ResourceIdentity,
    stats: RequestStats,
) -> AsyncGenerator[_StagedPage, None]:
    """Every object of one kind, all namespaces at once or one listed namespace after another."""
    resource: APIResource = found.resource
    api_version = found.api_version(ref.group)
    # Cluster-scoped kinds ignore the namespace list; a repeated namespace is listed once
    # (twice would look like duplicates and block deletions).
    scopes: list[str | None] = (
        list(dict.fromkeys(namespaces)) if resource.namespaced and namespaces else [None]
    )
    for namespace in scopes:
        path = resource_path(ref.group, found.version, resource.plural, namespace)
        async with aclosing(client.list_pages(path, limit=page_size, stats=stats)) as pages:
            async for page in pages:
                yield _StagedPage(
                    [
                        stage_object(o, api_version=api_version, kind=ref.kind, fabric=fabric)
                        for o in page.items
                    ]
                )
