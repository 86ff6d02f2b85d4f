"""Running the real operator in-process against the real API server, as the operator's identity."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import kopf

from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.operating.context import OperatorContext
from inventory_sync.operating.handlers import build_registry
from inventory_sync.settings import Settings

T = TypeVar("T")


class ShiftableClock:
    """Real time plus an offset tests can advance, so "15 minutes later" takes no time."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class OperatorProcess:
    """The operator exactly as `inventory-sync run` builds it, in a thread with its own loop
    (kopf's embedding recipe), stoppable and restartable."""

    def __init__(
        self,
        *,
        connection: KubeConnection,
        database_url: str,
        clock: ShiftableClock,
        max_concurrent_runs: int = 4,
    ) -> None:
        self.context = OperatorContext(
            settings=Settings(
                database_url=database_url,
                metrics_port=0,
                health_port=0,
                instance="test-operator",
                max_concurrent_runs=max_concurrent_runs,
            ),
            connection=connection,
            database_url=database_url,
            clock=clock,
            recheck_after_error=timedelta(seconds=1),
        )
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="operator", daemon=True)
        self.crashed: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=build_registry(self.context),
                    clusterwide=True,
                    standalone=True,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                )
            )
        except BaseException as error:
            self.crashed = error

    def start(self) -> OperatorProcess:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"operator did not get ready: {self.crashed!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "operator did not stop within 30 s"


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 20.0, what: str = "condition"
) -> T:
    """Poll until probe returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within}s waiting for {what} (last: {last!r})")


def condition(body: dict[str, Any] | None, type: str) -> dict[str, Any] | None:
    if not body:
        return None
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type), None)


async def admin_client(kubeconfig: str) -> KubeClient:
    return KubeClient(KubeConnection.from_kubeconfig_file(kubeconfig))


async def service_account_connection(
    admin: KubeClient, *, server: str, ca_file: str, namespace: str, name: str, seconds: int = 3600
) -> KubeConnection:
    """A separate identity: a ServiceAccount (created if absent) and a bound token for it from
    the TokenRequest API, as a kubelet would mint one; the API server signs it."""
    accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    if await admin.get(f"{accounts}/{name}") is None:
        await admin.create(
            accounts, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        )
    minted = await admin.create(
        f"{accounts}/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    return KubeConnection(
        server=server,
        ca_file=ca_file,
        token=minted["status"]["token"],
        origin=f"serviceaccount {namespace}/{name}",
    )


async def can_i(
    client: KubeClient, verb: str, resource: str, *, namespace: str, group: str = ""
) -> bool:
    """A SelfSubjectAccessReview as `client`'s identity; `resource` may name a subresource
    (`syncschedules/status`)."""
    plural, _, subresource = resource.partition("/")
    review = await client.create(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": plural,
                    "subresource": subresource,
                }
            },
        },
    )
    return bool(review["status"].get("allowed"))
