"""The vendor SDKs' own environments and the loopback plumbing that points them at the simulator.

Each SDK version lives in a virtualenv of its own under a cache folder keyed by its pinned
requirement (pycentral 1.x and 2.x are one distribution name: they cannot share a venv), and runs
our scenario scripts (sdk_scripts/) in a subprocess. The SDKs are configured only as their docs
say: base URLs and credentials in `token_info`/`central_info`, the CA through the standard
`SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE`, and `HTTPS_PROXY` for the token URLs an SDK hard-codes
(HPE SSO, GreenLake's workspace token issuer): a loopback CONNECT proxy tunnels those names, and
only those, to the simulator, whose certificate names them. Nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The SDK versions the contract is proven against: pinned, test-only, one venv each.
SDKS = {
    # 2.x pre-releases cover GreenLake and New Central (2.0a15 moved monitoring to v1).
    "pycentral-v2": "pycentral==2.0a25",
    # The stable line, classic Central only.
    "pycentral-v1": "pycentral==1.4.3",
}
SCRIPTS = Path(__file__).resolve().parent / "sdk_scripts"
#: The hosts the SDKs hard-code for tokens (and GreenLake's default API host): tunnelled to
#: the simulator, which serves a certificate naming them from its throwaway CA.
VENDOR_HOSTS = ("sso.common.cloud.hpe.com", "global.api.greenlake.hpe.com")
_NETWORK_ERRORS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "ProxyError",
    "No matching distribution",
    "Could not find a version",
)


def _cache_root() -> Path:
    configured = os.environ.get("INVENTORY_SYNC_SDK_CACHE")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "inventory-sync" / "sdk-venvs"


def sdk_python(name: str) -> Path:
    """The interpreter of `name`'s venv, built on first use (under a lock: several test runs
    may share the cache); skips the test when no package index is reachable, unless
    INVENTORY_SYNC_REQUIRE_SDKS=1 (CI) makes that a failure."""
    requirement = SDKS[name]
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    directory = _cache_root() / f"{requirement.replace('==', '-')}-{version}"
    python = directory / "bin" / "python"
    marker = directory / ".complete"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return python
        shutil.rmtree(directory, ignore_errors=True)  # a half-built one from an interrupted run
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(directory)], check=True, capture_output=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             requirement],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        output = install.stdout + install.stderr
        if install.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            if any(m in output for m in _NETWORK_ERRORS) and not os.environ.get(
                "INVENTORY_SYNC_REQUIRE_SDKS"
            ):
                pytest.skip(f"cannot install {requirement}: {output.strip().splitlines()[-1]}")
            raise AssertionError(f"installing {requirement} failed:\n{output[-3000:]}")
        marker.write_text(requirement)
    return python


@dataclass(frozen=True)
class SdkRun:
    """One scenario's outcome: the JSON it printed, and its log (stderr) for failure messages."""

    result: dict[str, Any]
    log: str


def run_scenario(
    python: Path,
    script: str,
    scenario: str,
    params: dict[str, Any],
    *,
    ca_file: Path,
    proxy_url: str,
    timeout: float = 120,
) -> SdkRun:
    """Run sdk_scripts/`script` `scenario` with `params` (JSON on stdin) in the SDK's venv."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        # The standard knobs both HTTP stacks honour: trust the simulator's CA, send the
        # vendor host names through the loopback tunnel, and nothing else through it.
        "SSL_CERT_FILE": str(ca_file),
        "REQUESTS_CA_BUNDLE": str(ca_file),
        "HTTPS_PROXY": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    completed = subprocess.run(
        [str(python), str(SCRIPTS / script), scenario],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    log = completed.stderr[-6000:]
    assert completed.returncode == 0, f"{script} {scenario} exited {completed.returncode}:\n{log}"
    lines = completed.stdout.strip().splitlines()
    assert lines, f"{script} {scenario} printed nothing:\n{log}"
    return SdkRun(result=json.loads(lines[-1]), log=log)


class TunnelProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels the allowed host names, whatever port
    they ask for, to one loopback port; any other name is refused (403) and recorded."""

    def __init__(self, *, target_port: int, allowed_hosts: tuple[str, ...]) -> None:
        self._target_port = target_port
        self._allowed = set(allowed_hosts)
        self.tunnelled: list[str] = []
        self.refused: list[str] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TunnelProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(timeout=10)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            host = target.rsplit(":", 1)[0]
            if method != "CONNECT" or host not in self._allowed:
                self.refused.append(target)
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            self.tunnelled.append(host)
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._target_port
            )
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


@contextlib.contextmanager
def tunnel(*, target_port: int) -> Iterator[TunnelProxy]:
    """A started TunnelProxy for the vendor host names; stopped on exit."""
    proxy = TunnelProxy(target_port=target_port, allowed_hosts=VENDOR_HOSTS).start()
    try:
        yield proxy
    finally:
        proxy.stop()
