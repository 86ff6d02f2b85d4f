"""`inventory-sync sync` with a classic Central source: the rotated refresh token goes to a
private per-user file and the next run uses it instead of the manifest's spent one."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from inventory_sync.cli import main
from inventory_sync.simulator import SimulatorConfig, ThreadedSimulator, start_in_thread

pytestmark = pytest.mark.integration

CLIENT_SECRET = "demo-classic-secret-not-real"


@pytest.fixture
def sim() -> Iterator[ThreadedSimulator]:
    with start_in_thread(SimulatorConfig.small(scale=0.02)) as simulator:  # 100 classic devices
        yield simulator


def manifest(sim: ThreadedSimulator, tmp_path: Path) -> Path:
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "classic", "namespace": "default"},
            "stringData": {
                "client_id": "demo-classic-client",
                "client_secret": CLIENT_SECRET,
                "refresh_token": "demo-classic-refresh-0",
            },
        },
        {
            "apiVersion": "inventorysync.dev/v1alpha1",
            "kind": "SyncSchedule",
            "metadata": {"name": "classic-cli", "namespace": "default"},
            "spec": {
                "interval": "15m",
                "sources": [
                    {
                        "name": "classic",
                        "arubaCentralClassic": {
                            "endpoint": sim.url,
                            "accountId": "demo-classic-customer",
                            "credentialsSecretRef": {"name": "classic"},
                        },
                    }
                ],
            },
        },
    ]
    path = tmp_path / "classic.yaml"
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return path


def test_the_rotated_token_file_is_private_and_reused_by_the_next_run(
    tmp_path: Path,
    database_url: str,
    sim: ThreadedSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    arguments = ["sync", "-f", str(manifest(sim, tmp_path)), "--database-url", database_url]

    assert main(arguments) == 0
    saved = cache / "inventory-sync" / "rotated-tokens" / "default_classic.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    first = json.loads(saved.read_text())["keys"]["refresh_token"]["value"]
    assert first == sim.state.classic.account().refresh_token
    assert (
        httpx.post(  # the manifest's token is spent: only the saved one works now
            f"{sim.url}/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "demo-classic-client",
                "client_secret": CLIENT_SECRET,
                "refresh_token": "demo-classic-refresh-0",
            },
        ).status_code
        == 400
    )

    assert main(arguments) == 0  # would be invalid_grant with the manifest's token

    second = json.loads(saved.read_text())["keys"]["refresh_token"]["value"]
    assert second != first
    assert second == sim.state.classic.account().refresh_token
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert [p.name for p in saved.parent.iterdir()] == ["default_classic.json"]  # no leftovers
    output = capsys.readouterr()
    for secret in (first, second, CLIENT_SECRET):
        assert secret not in output.out + output.err
