"""Retiring the rows of deleted Fabrics and of kinds a Fabric no longer lists, by reconciling the store against the live Fabric resources (syncing layer).

No finalizer: a Fabric deleted while the operator was down must be retired too, so the
operator compares what it registered (store.fabric_lifecycle) with a complete list of the
Fabrics that exist, at start and then periodically. Only a complete list is trusted: when
listing fails, nothing is retired.

An operator retires only Fabrics it owns: those registered with its own cluster's identity
(`cluster_owner`) and, when it watches a namespace list, in those namespaces. Two operators
sharing a database therefore never retire each other's Fabrics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from inventory_sync.errors import KubeNotFound, SpecError
from inventory_sync.kube import KubeClient, resource_path
from inventory_sync.models import GROUP, VERSION, parse_fabric_spec
from inventory_sync.store import fabric_lifecycle
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import kind_scope

logger = logging.getLogger(__name__)

FABRIC_CRD = f"fabrics.{GROUP}"
# Enough for thousands of Fabrics in a few requests; each is small.
_PAGE_SIZE = 500


@dataclass
class RetirementReport:
    """What one reconciliation retired: Fabrics by namespace/name, and row counts."""

    fabrics: list[str] = field(default_factory=list)
    fabric_rows: int = 0
    dropped_kind_rows: int = 0


async def cluster_owner(kube: KubeClient) -> str:
    """This cluster's identity as a Fabric owner: the uid of its Fabric CRD (readable with the
    rights kopf needs anyway). It changes only if the CRD is recreated, which deletes every
    Fabric of the cluster with it."""
    path = resource_path(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", None, FABRIC_CRD
    )
    body = await kube.get(path)
    uid = ((body or {}).get("metadata") or {}).get("uid")
    if not isinstance(uid, str) or not uid:
        raise KubeNotFound(f"CustomResourceDefinition {FABRIC_CRD} not found")
    return uid


async def live_fabrics(kube: KubeClient, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """Every Fabric that exists, in `namespaces` (empty: all). Raises on any failure: a partial
    list must never make a Fabric look deleted."""
    scopes: list[str | None] = list(dict.fromkeys(namespaces)) or [None]
    found: list[dict[str, Any]] = []
    for namespace in scopes:
        path = resource_path(GROUP, VERSION, "fabrics", namespace)
        async with aclosing(kube.list_pages(path, limit=_PAGE_SIZE)) as pages:
            async for page in pages:
                found.extend(page.items)
    return found


async def reconcile_fabrics(
    *,
    kube: KubeClient,
    pool: asyncpg.Pool,
    owner: str,
    namespaces: Sequence[str],
    now: datetime,
) -> RetirementReport:
    """Register the live Fabrics, retire the kinds each no longer lists, and retire the
    registered Fabrics that no longer exist (with every row they synced)."""
    report = RetirementReport()
    live = await live_fabrics(kube, namespaces)
    live_uids = set()
    for body in live:
        meta = body.get("metadata") or {}
        fabric = ResourceIdentity(
            kind="Fabric", namespace=str(meta.get("namespace") or ""), name=str(meta.get("name")),
            uid=str(meta.get("uid")),
        )  # fmt: skip
        live_uids.add(fabric.uid)
        await fabric_lifecycle.register_fabric(pool, fabric=fabric, owner=owner, now=now)
        try:
            spec = parse_fabric_spec(body.get("spec") or {})
        except SpecError:
            continue  # its kinds are unknown until the spec is fixed: retire none of them
        report.dropped_kind_rows += await fabric_lifecycle.retire_other_scopes(
            pool, fabric_uid=fabric.uid, keep=[kind_scope(fabric.uid, k) for k in spec.kinds],
            now=now,
        )  # fmt: skip
    registered = await fabric_lifecycle.registered_fabrics(
        pool, owner=owner, namespaces=list(namespaces) or None
    )
    for gone in registered:
        if gone.uid in live_uids:
            continue
        report.fabric_rows += await fabric_lifecycle.retire_fabric(
            pool, fabric_uid=gone.uid, now=now
        )
        report.fabrics.append(f"{gone.namespace}/{gone.name}")
    if report.fabrics or report.dropped_kind_rows:
        logger.info(
            "retired %d deleted Fabrics (%s; %d rows) and %d rows of dropped kinds",
            len(report.fabrics), ", ".join(report.fabrics) or "none", report.fabric_rows,
            report.dropped_kind_rows,
        )  # fmt: skip
    return report
