"""Running the simulator over HTTP(S) on 127.0.0.1: in the caller's loop, a thread, or forever."""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from aiohttp import web

from inventory_sync.simulator.app import build_app
from inventory_sync.simulator.auth import TOKEN_PATH
from inventory_sync.simulator.config import SimulatorConfig
from inventory_sync.simulator.state import SimulatorState
from inventory_sync.simulator.tls import TlsConfig, write_tls_files

#: Loopback only: the simulator has an unauthenticated admin API and demo credentials.
DEFAULT_HOST = "127.0.0.1"
#: Not 8080 (the operator's health port) nor 9090 (its metrics): the simulator and the
#: operator run side by side in the README's walkthrough. examples/demo.yaml points here.
DEFAULT_PORT = 8089
#: How long shutdown waits for in-flight requests (a `delay` fault may still be sleeping).
_SHUTDOWN_TIMEOUT = 1.0


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator accepting connections at `url`, serving `state`; over HTTPS, `ca_file` is
    the CA certificate a client must trust."""

    url: str
    state: SimulatorState
    ca_file: Path | None = None

    @property
    def token_url(self) -> str:
        """Where clients get tokens (the HPE SSO path)."""
        return self.url + TOKEN_PATH


@asynccontextmanager
async def serve(
    config: SimulatorConfig | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    state: SimulatorState | None = None,
    tls: TlsConfig | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve in the running event loop until the block exits; port 0 picks a free port.

    With `tls`, serve HTTPS with a certificate from a CA generated now (its key is never
    written out; the server's key lives in a private directory removed on exit).
    """
    if state is None:
        state = SimulatorState(config or SimulatorConfig())
    with ExitStack() as cleanup:
        files = None
        if tls is not None:
            directory = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="inventory-sync-simulator-tls-")
            )
            files = write_tls_files(tls, Path(directory))
        runner = web.AppRunner(
            build_app(state), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            context = files.server_context() if files is not None else None
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            scheme = "https" if files is not None else "http"
            yield RunningSimulator(
                url=f"{scheme}://{_url_host(bound_host)}:{bound_port}",
                state=state,
                ca_file=files.ca_file if files is not None else None,
            )
        finally:
            await runner.cleanup()


def _url_host(host: str) -> str:
    """An IPv6 address in brackets, as URLs write it."""
    return f"[{host}]" if ":" in host else host


class ThreadedSimulator:
    """A simulator on its own event loop in a daemon thread, so it never competes with the
    client's loop. Use `with start_in_thread(config) as sim:` or call `stop()`."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        tls: TlsConfig | None = None,
    ) -> None:
        # Built here, not in the thread: a bad config fails in the caller.
        self.state = SimulatorState(config)
        self.url = ""
        #: Over HTTPS: the CA certificate to trust (valid while the simulator runs).
        self.ca_file: Path | None = None
        self._host = host
        self._port = port
        self._tls = tls
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="upstream-simulator", daemon=True)

    @property
    def token_url(self) -> str:
        """Where clients get tokens (the HPE SSO path)."""
        return self.url + TOKEN_PATH

    def start(self, *, timeout: float = 30.0) -> Self:
        """Start serving; returns once the port is bound."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the simulator did not start in time")
        if self._error is not None:
            raise RuntimeError("the simulator failed to start") from self._error
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop may have finished meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            async with serve(
                state=self.state, host=self._host, port=self._port, tls=self._tls
            ) as sim:
                self.url, self.ca_file = sim.url, sim.ca_file
                self._ready.set()
                await self._stopping.wait()
        except BaseException as error:  # reported to start(); the thread must not die silently
            self._error = error
            self._ready.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    config: SimulatorConfig | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    tls: TlsConfig | None = None,
) -> ThreadedSimulator:
    """A started ThreadedSimulator; stop it with `.stop()` or use it as a context manager."""
    return ThreadedSimulator(config or SimulatorConfig(), host=host, port=port, tls=tls).start()


def describe(sim: RunningSimulator) -> str:
    """The banner `inventory-sync simulate` prints: endpoints, demo credentials, dataset."""
    lines = [
        f"Upstream simulator listening on {sim.url}",
        f"  token        POST {sim.token_url}",
        f"  GreenLake    {sim.url}/devices/v1/devices  {sim.url}/subscriptions/v1/subscriptions",
        f"  New Central  {sim.url}/network-monitoring/v1/device-inventory  (also v1alpha1)",
        f"  admin        {sim.url}/_simulator/stats",
    ]
    for workspace in sim.state.config.workspaces:
        counts = sim.state.workspace(workspace.workspace_id).counts()
        lines += [
            f"  workspace {workspace.workspace_id}",
            f"    client_id={workspace.client_id}  client_secret={workspace.client_secret}"
            "  (demo fixtures, not real secrets)",
            "    " + ", ".join(f"{n} {kind}" for kind, n in counts.items()),
        ]
        classic = sim.state.classic.account(workspace.classic.customer_id)
        lines += [
            f"    classic customer_id={classic.customer_id}  {classic.count()} devices",
            f"    classic client_id={workspace.classic.client_id}"
            f"  client_secret={workspace.classic.client_secret}"
            f"  refresh_token={classic.refresh_token}  (demo fixtures; the token rotates)",
        ]
    lines.append(
        f"  Classic      POST {sim.url}/oauth2/token  {sim.url}/platform/device_inventory/v1/devices"
    )
    if sim.ca_file is not None:
        lines += [
            f"  TLS CA       {sim.ca_file}  (removed on exit unless --tls-ca-file names it)",
            f"    trust it:  SSL_CERT_FILE={sim.ca_file} REQUESTS_CA_BUNDLE={sim.ca_file}",
        ]
    return "\n".join(lines)


def run_forever(
    config: SimulatorConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    out: TextIO | None = None,
    tls: TlsConfig | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, after printing the banner to `out` (stdout by default)."""

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):  # not in the main thread / Windows
                loop.add_signal_handler(signum, stopping.set)
        async with serve(config, host=host, port=port, tls=tls) as sim:
            print(describe(sim), file=out or sys.stdout, flush=True)
            await stopping.wait()

    asyncio.run(main())
