"""Which servers the upstream clients trust: the CA bundle httpx would use, built once per
process, against the simulator over real HTTPS."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from inventory_sync.simulator.config import SimulatorConfig
from inventory_sync.simulator.server import start_in_thread
from inventory_sync.simulator.tls import TlsConfig
from inventory_sync.upstream import build_http_client
from inventory_sync.upstream.httpclient import trusted_roots

pytestmark = pytest.mark.integration


async def _reset(url: str) -> int:
    async with build_http_client(timeout=5) as http:
        return (await http.post(f"{url}/_simulator/reset")).status_code


async def test_clients_share_one_context_per_ca_file_and_see_the_file_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    config = SimulatorConfig.small(scale=0.01)
    with start_in_thread(config, tls=TlsConfig(ca_file=ca_file)) as first:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await _reset(first.url)  # certifi's roots do not know a throwaway CA

        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        context = trusted_roots()
        assert trusted_roots() is context  # built once, not once per client
        assert await _reset(first.url) == 200

    # A new CA written to the same path (a remounted bundle) is trusted without a restart.
    with start_in_thread(config, tls=TlsConfig(ca_file=ca_file)) as second:
        assert trusted_roots() is not context
        assert await _reset(second.url) == 200
