"""One run of a Fabric: list each Hedgehog kind page by page from the fabric cluster into fabric_objects (syncing layer).

Each kind is its own source in the result (name = Kind, kind = "group/version") and its own
merge scope ("<fabric uid>/<group>/<Kind>"), so a kind whose list failed deletes nothing while
its siblings carry on. Kubernetes serves every chunk of a `limit`/`continue` walk from one
snapshot, so a walk that ends without error is complete and consistent; when a continue token
expires (410 Gone) the kind fails and the next run catches up.
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

from inventory_sync.errors import CredentialsError, InventorySyncError, KubeNotFound, public_message
from inventory_sync.kube import APIResource, KubeClient, KubeConnection, resource_path
from inventory_sync.models import FabricSpec, KindRef
from inventory_sync.results import RunResult, RunState, SourceOutcome, SourceState
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.store.tables import FABRIC_OBJECTS
from inventory_sync.syncing import streaming
from inventory_sync.syncing.pipeline import utcnow
from inventory_sync.syncing.progress import NoProgress, ProgressListener

logger = logging.getLogger(__name__)

NOT_INSTALLED = "CRD not installed in the fabric"
NOT_ATTEMPTED = "not attempted: the fabric could not be reached"
# Metadata that changes without the object changing (managedFields timestamps, the version
# counter) or that duplicates the object (kubectl's last-applied copy): kept out of `data`
# so an untouched object is an unchanged row. resourceVersion moves to a top-level key.
_DROPPED_METADATA = ("managedFields", "resourceVersion", "selfLink")
_DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})


@dataclass(frozen=True)
class _StagedPage:
    items: list[dict[str, Any]]
    # Kubernetes only estimates the total (remainingItemCount): never a consistency check.
    total: int | None = None


async def run_fabric_sync(
    spec: FabricSpec,
    *,
    fabric: ResourceIdentity,
    client: KubeClient,
    pool: asyncpg.Pool,
    trigger: str,
    progress: ProgressListener | None = None,
    clock: Callable[[], datetime] = utcnow,
    max_concurrent_kinds: int = 4,
) -> RunResult:
    """List every kind of `spec` from the fabric behind `client` into PostgreSQL.

    Never raises for a kind's failure: the result says which kinds failed (the run is then
    Failed) or were skipped because their CRD is not served (the run can still succeed).
    """
    if max_concurrent_kinds < 1:
        raise ValueError("max_concurrent_kinds must be at least 1")
    started = clock()
    t0 = time.monotonic()
    listener = progress or NoProgress()
    kinds = _unique_kinds(spec.kinds)
    outcomes = [SourceOutcome(name=k.kind, kind=f"{k.group}/{k.version}") for k in kinds]
    unreachable = await _unreachable(client)
    if unreachable is not None:
        # Said once for the run: every kind would fail the same way, at length, in parallel.
        for outcome in outcomes:
            outcome.state, outcome.message = SourceState.SKIPPED, NOT_ATTEMPTED
        logger.warning("fabric %s: %s", fabric.name, unreachable)
        return RunResult(
            state=RunState.FAILED, trigger=trigger, started_at=started, finished_at=clock(),
            seconds=round(time.monotonic() - t0, 3), sources=outcomes, message=unreachable,
        )  # fmt: skip
    discovery = _Discovery(client)
    slots = asyncio.Semaphore(max_concurrent_kinds)

    async def run_one(ref: KindRef, outcome: SourceOutcome) -> None:
        async with slots:
            await _run_kind(
                ref,
                outcome,
                spec=spec,
                fabric=fabric,
                client=client,
                pool=pool,
                discovery=discovery,
                progress=listener,
                now=started,
                clock=clock,
            )

    tasks = [
        asyncio.create_task(run_one(ref, outcome), name=f"fabric-kind:{ref.kind}")
        for ref, outcome in zip(kinds, outcomes, strict=True)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        # gather() does not cancel siblings on our own cancellation; make sure none outlive us.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    failed = [o for o in outcomes if o.state is SourceState.FAILED]
    return RunResult(
        state=RunState.FAILED if failed else RunState.SUCCEEDED,
        trigger=trigger,
        started_at=started,
        finished_at=clock(),
        seconds=round(time.monotonic() - t0, 3),
        sources=outcomes,
        message="; ".join(f"{o.name}: {o.message or o.state.value}" for o in failed) or None,
    )


async def _unreachable(client: KubeClient) -> str | None:
    """Why the fabric's API server cannot be used at all (TLS, DNS, refused, 401), or None.
    GET /version: every authenticated identity may read it (system:public-info-viewer)."""
    try:
        await client.get("/version")
    except InventorySyncError as error:
        return f"cannot reach the fabric: {public_message(error, limit=400)}"
    return None


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
    """The item merged for one object: the object minus volatile metadata, plus `id` (its
    uid), `fabric` and a top-level `resourceVersion` that the change check ignores."""
    metadata = dict(obj.get("metadata") or {})
    resource_version = metadata.get("resourceVersion")
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
    return {
        **obj,
        # Items of a list carry their own apiVersion/kind for custom resources; fill them anyway.
        "apiVersion": obj.get("apiVersion") or api_version,
        "kind": obj.get("kind") or kind,
        "metadata": metadata,
        "id": metadata.get("uid"),
        "resourceVersion": resource_version,
        "fabric": {"uid": fabric.uid, "namespace": fabric.namespace, "name": fabric.name},
    }


def _unique_kinds(kinds: list[KindRef]) -> list[KindRef]:
    # Two entries for one group/Kind would merge into the same scope at once: keep the first.
    seen: dict[tuple[str, str], KindRef] = {}
    for ref in kinds:
        seen.setdefault((ref.group, ref.kind), ref)
    return list(seen.values())


class _Discovery:
    """Discovery documents fetched once per group/version per run, shared by all kinds."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._served: dict[tuple[str, str], dict[str, APIResource]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def resolve(self, ref: KindRef) -> APIResource | None:
        """The resource to list for `ref`, or None when the fabric does not serve it.
        `ref.plural` wins over discovery's plural; discovery still says if it is namespaced."""
        key = (ref.group, ref.version)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._served:
                self._served[key] = await self._client.discover(ref.group, ref.version)
        served = self._served[key]
        found = served.get(ref.kind)
        if ref.plural is not None:
            by_plural = next((r for r in served.values() if r.plural == ref.plural), None)
            found = by_plural or found
            if found is not None:
                return APIResource(
                    plural=ref.plural, kind=ref.kind, namespaced=found.namespaced, verbs=found.verbs
                )
        return found


async def _run_kind(
    ref: KindRef,
    outcome: SourceOutcome,
    *,
    spec: FabricSpec,
    fabric: ResourceIdentity,
    client: KubeClient,
    pool: asyncpg.Pool,
    discovery: _Discovery,
    progress: ProgressListener,
    now: datetime,
    clock: Callable[[], datetime],
) -> None:
    """One kind to completion; its outcome says how it ended, exceptions stay here."""
    outcome.state = SourceState.RUNNING
    outcome.started_at = clock()
    t0 = time.monotonic()
    progress.source_started(outcome)
    try:
        resource = await discovery.resolve(ref)
        if resource is None:
            outcome.state, outcome.message = SourceState.SKIPPED, NOT_INSTALLED
            return
        pages = _object_pages(
            client,
            ref,
            resource,
            namespaces=spec.namespaces,
            page_size=spec.page_size,
            fabric=fabric,
        )
        await streaming.stream_into_scope(
            pages,
            pool=pool,
            spec=FABRIC_OBJECTS,
            scope=f"{fabric.uid}/{ref.group}/{ref.kind}",
            outcome=outcome,
            progress=progress,
            now=now,
        )
        outcome.state = SourceState.SUCCEEDED
    except KubeNotFound:
        # The CRD went away between discovery and the list; nothing was deleted.
        outcome.state, outcome.message = SourceState.SKIPPED, NOT_INSTALLED
    except asyncio.CancelledError:
        outcome.state, outcome.message = SourceState.CANCELLED, "cancelled"
        raise
    except InventorySyncError as error:
        outcome.state, outcome.message = SourceState.FAILED, public_message(error)
        logger.warning("fabric %s: kind %s failed: %s", fabric.name, ref.kind, outcome.message)
    except Exception as error:  # a bug must fail this kind, not its siblings or the operator
        outcome.state = SourceState.FAILED
        outcome.message = f"internal error: {type(error).__name__}"
        logger.exception("fabric %s: kind %s failed unexpectedly", fabric.name, ref.kind)
    finally:
        outcome.finished_at = clock()
        outcome.seconds = round(time.monotonic() - t0, 3)
        progress.source_finished(outcome)


async def _object_pages(
    client: KubeClient,
    ref: KindRef,
    resource: APIResource,
    *,
    namespaces: list[str],
    page_size: int,
    fabric: ResourceIdentity,
) -> AsyncGenerator[_StagedPage, None]:
    """Every object of one kind, all namespaces at once or one listed namespace after another."""
    api_version = f"{ref.group}/{ref.version}" if ref.group else ref.version
    # Cluster-scoped kinds ignore the namespace list; a repeated namespace is listed once
    # (twice would look like duplicates and block deletions).
    scopes: list[str | None] = (
        list(dict.fromkeys(namespaces)) if resource.namespaced and namespaces else [None]
    )
    for namespace in scopes:
        path = resource_path(ref.group, ref.version, resource.plural, namespace)
        async with aclosing(client.list_pages(path, limit=page_size)) as pages:
            async for page in pages:
                yield _StagedPage(
                    [
                        stage_object(o, api_version=api_version, kind=ref.kind, fabric=fabric)
                        for o in page.items
                    ]
                )
