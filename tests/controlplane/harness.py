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
