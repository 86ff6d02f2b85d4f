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
        instance: str = "test-operator",
        **settings: Any,
    ) -> None:
        self.health_port = int(settings.pop("health_port", 0))
        self.context = OperatorContext(
            settings=Settings(
                database_url=database_url,
                metrics_port=0,
                health_port=self.health_port,
                instance=instance,
                max_concurrent_runs=max_concurrent_runs,
                **settings,
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
        self.loop: asyncio.AbstractEventLoop | None = None

    def _main(self) -> None:
        try:
            asyncio.run(self._operate())
        except BaseException as error:
            self.crashed = error

    async def _operate(self) -> None:
        self.loop = asyncio.get_running_loop()  # tests look for what it leaves open
        await kopf.operator(
            registry=build_registry(self.context),
            # As `operating.main` runs it: named namespaces, or the whole cluster.
            clusterwide=not self.context.settings.namespaces,
            namespaces=self.context.settings.namespaces,
            standalone=True,
            stop_flag=self._stop,
            ready_flag=self._ready,
            liveness_endpoint=(
                f"http://127.0.0.1:{self.health_port}/healthz" if self.health_port else None
            ),
        )

    def start(self) -> OperatorProcess:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"operator did not get ready: {self.crashed!r}")
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "operator did not stop within 30 s"

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` in the operator's own event loop (its scheduler is not thread-safe)."""
        task = self.context._task
        assert task is not None, "the operator has not started its scheduler"

        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), task.get_loop()).result(10)


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


class OperatorSubprocess:
    """`python -m inventory_sync run` in a process of its own, as a pod runs it: for SIGKILL,
    SIGTERM and /healthz, which an operator in a test's thread cannot show."""

    def __init__(
        self, *, kubeconfig: str, database_url: str, log_path: str, instance: str,
        **settings: Any,
    ) -> None:  # fmt: skip
        import os
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.health_port = probe.getsockname()[1]
        self.env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "INVENTORY_SYNC_DATABASE_URL": database_url,
            "INVENTORY_SYNC_HEALTH_PORT": str(self.health_port),
            "INVENTORY_SYNC_METRICS_PORT": "0",
            "INVENTORY_SYNC_INSTANCE": instance,
            **{f"INVENTORY_SYNC_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.log_path = log_path
        self.process: Any = None

    def start(self, *, within: float = 30.0) -> OperatorSubprocess:
        import subprocess
        import sys

        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory_sync", "run"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + within
        while self.healthz() != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start; log {self.log_path}:\n{self.log()}")
            time.sleep(0.2)
        return self

    def healthz(self, *, timeout: float = 2.0) -> int | None:
        """The HTTP status of /healthz; None when it does not answer within `timeout`."""
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)
        except OSError:  # refused, reset, or timed out
            return None

    def kill(self) -> None:
        """SIGKILL: no cleanup handler, no lease released, the run's row left Running."""
        self.process.kill()
        self.process.wait(10)

    def terminate(self, *, within: float) -> float | None:
        """SIGTERM; the seconds it took to exit, or None (then SIGKILL) if it did not."""
        import subprocess

        started = time.monotonic()
        self.process.terminate()
        try:
            self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate(within=15)

    def log(self, lines: int = 40) -> str:
        with open(self.log_path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
