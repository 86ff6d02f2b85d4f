"""Fabrics through the real operator, as its ServiceAccount: misspelt kinds stall, a fabric with nothing to read is not Ready, a deleted Fabric's rows are retired."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from inventory_sync.kube import KubeClient
from inventory_sync.models import API_VERSION

from . import test_operator as operator_tests
from .harness import condition, eventually
from .hedgehog import WIRING, switch
from .test_operator import path, ready

pytestmark = pytest.mark.controlplane


@pytest.fixture
async def namespace(test_namespace: str, admin: KubeClient) -> AsyncIterator[str]:
    """test_namespace; its Fabrics are deleted afterwards so that operators started later in
    this session do not run them."""
    yield test_namespace
    await admin.delete(path(test_namespace, "fabrics"))


def fabric(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Fabric", "metadata": {"name": name},
            "spec": {"interval": "5m", **spec}}  # fmt: skip


async def stalled(admin: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    found = condition(await admin.get(path(namespace, "fabrics", name)), "Stalled")
    return found if found and found["status"] == "True" else None


async def test_a_misspelt_kind_stalls_naming_the_field_and_nothing_runs(
    operator: Any, admin: KubeClient, namespace: str, hedgehog_crds: Any, database_url: str
) -> None:
    operator()
    kinds = [{"group": WIRING, "kind": "Switch"}, {"group": WIRING, "kind": "Swich"}]
    created = await admin.create(
        path(namespace, "fabrics"), fabric("typo", namespaces=[namespace], kinds=kinds)
    )

    found = await eventually(lambda: stalled(admin, namespace, "typo"), what="Stalled")

    assert found["reason"] == "InvalidSpec"
    assert (
        found["message"]
        == f"spec.kinds[1].kind: {WIRING} serves no kind Swich; did you mean Switch?"
        " (the next run checks again)"
    )
    ready_condition = condition(await admin.get(path(namespace, "fabrics", "typo")), "Ready")
    assert ready_condition is not None
    assert ready_condition["status"] == "False"
    assert await operator_tests.runs_of(database_url, created["metadata"]["uid"]) == []

    await admin.patch_merge(path(namespace, "fabrics", "typo"),
                            {"spec": {"kinds": [{"group": WIRING, "kind": "Switch"}]}})  # fmt: skip
    body = await eventually(lambda: ready(admin, namespace, "typo", plural="fabrics"), what="Ready")
    assert condition(body, "Stalled") is None


async def test_a_fabric_serving_nothing_readable_is_not_ready_and_says_why(
    operator: Any, admin: KubeClient, namespace: str, hedgehog_crds: Any
) -> None:
    operator()
    kinds = [{"group": "nothing.example.com", "kind": "Thing"}]
    await admin.create(
        path(namespace, "fabrics"), fabric("empty", namespaces=[namespace], kinds=kinds)
    )

    async def failed() -> dict[str, Any] | None:
        # Ready=False first says Progressing (the first run is in flight): wait for its end.
        body = await ready(admin, namespace, "empty", status="False", plural="fabrics")
        return body if (condition(body, "Ready") or {}).get("reason") == "SyncFailed" else None

    body = await eventually(failed, what="Ready=False after the run")

    found = condition(body, "Ready")
    assert found is not None
    assert found["reason"] == "SyncFailed"
    assert (
        found["message"]
        == "no kind synced: Thing: not installed: the fabric serves no API group nothing.example.com"
    )
    assert body["status"]["sources"][0]["reason"] == "NotInstalled"


async def live_rows(database_url: str, uid: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT coalesce(deleted_reason, 'live') AS state, count(*) AS n FROM fabric_objects"
            " WHERE fabric_uid = $1 GROUP BY 1",
            uid,
        )
    finally:
        await connection.close()
    return {r["state"]: r["n"] for r in rows}


async def test_deleting_a_fabric_retires_exactly_its_rows(
    operator: Any, admin: KubeClient, namespace: str, hedgehog_crds: Any, database_url: str
) -> None:
    for n in range(3):
        await admin.create(
            f"/apis/{WIRING}/v1beta1/namespaces/{namespace}/switches",
            switch(f"leaf-{n}", namespace),
        )
    operator()
    kinds = [{"group": WIRING, "kind": "Switch"}]
    uids = {}
    for name in ("keep", "drop"):
        body = await admin.create(
            path(namespace, "fabrics"), fabric(name, namespaces=[namespace], kinds=kinds)
        )
        uids[name] = body["metadata"]["uid"]
    for name in uids:
        await eventually(
            lambda name=name: ready(admin, namespace, name, plural="fabrics"), what=f"{name} Ready"
        )

    await admin.delete(path(namespace, "fabrics", "drop"))

    async def retired() -> dict[str, int] | None:
        rows = await live_rows(database_url, uids["drop"])
        return rows if rows == {"fabric-deleted": 3} else None

    await eventually(retired, within=20, what="the deleted Fabric's rows retired")
    assert await live_rows(database_url, uids["keep"]) == {"live": 3}
