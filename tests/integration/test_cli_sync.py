"""`inventory-sync sync -f FILE`: exit codes, the one-line errors, and that bad input writes nothing.

These tests are synchronous: the CLI runs its own event loop, as it does for a user.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from inventory_sync.cli import main
from inventory_sync.simulator import ThreadedSimulator

pytestmark = pytest.mark.integration


def manifest(
    simulator: ThreadedSimulator, *, secret: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    client_id, client_secret = simulator.state.credentials()
    connection = {
        "workspaceId": "3f1c2a4e-demo-workspace",
        "endpoint": simulator.url,
        "tokenUrl": simulator.token_url,
        "credentialsSecretRef": {"name": "glp"},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "glp", "namespace": "default"},
            "stringData": secret or {"client_id": client_id, "client_secret": client_secret},
        },
        {
            "apiVersion": "inventorysync.dev/v1alpha1",
            "kind": "SyncSchedule",
            "metadata": {"name": "cli-test", "namespace": "default"},
            "spec": {
                "interval": "15m",
                "sources": [
                    {
                        "name": "subscriptions",
                        "greenlake": {"resource": "subscriptions", **connection},
                    },
                    {"name": "devices", "greenlake": {"resource": "devices", **connection}},
                    {"name": "central", "arubaCentral": dict(connection)},
                ],
            },
        },
    ]


def write(tmp_path: Path, documents: list[dict[str, Any]]) -> Path:
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return path


async def tables_in(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        )
    finally:
        await connection.close()


async def fetch_row(database_url: str, query: str) -> dict[str, Any] | None:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(query)
    finally:
        await connection.close()
    return None if row is None else dict(row)


def _spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = docs[1]["spec"]
    return spec


BAD_MANIFESTS = [
    (
        "unknown source type",
        lambda d: _spec(d)["sources"][2].update(arubaCentral=None, netbox={"url": "x"}),
        "spec.sources[2].netbox",
    ),
    (
        "bad duration",
        lambda d: _spec(d).update(interval="fortnightly"),
        "spec.interval: invalid duration",
    ),
    (
        "missing credential key",
        lambda d: d[0]["stringData"].pop("client_secret"),
        "Secret default/glp has no key 'client_secret'",
    ),
    ("missing Secret", lambda d: d.pop(0), "Secret default/glp not found"),
    (
        "duplicate source names",
        lambda d: _spec(d)["sources"][2].update(name="devices"),
        "source names must be unique: devices",
    ),
    (
        "dependsOn cycle",
        lambda d: (
            _spec(d)["sources"][0].update(dependsOn=["devices"]),
            _spec(d)["sources"][1].update(dependsOn=["subscriptions"]),
        ),
        "dependsOn forms a cycle",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BAD_MANIFESTS], ids=[b[0] for b in BAD_MANIFESTS]
)
def test_a_bad_manifest_exits_2_with_one_line_naming_the_field_and_writes_nothing(
    tmp_path: Path,
    database_url: str,
    small_simulator: ThreadedSimulator,
    capsys: pytest.CaptureFixture[str],
    mutate: Any,
    expected: str,
) -> None:
    documents = manifest(small_simulator)
    mutate(documents)

    code = main(["sync", "-f", str(write(tmp_path, documents)), "--database-url", database_url])

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert expected in err
    assert asyncio.run(tables_in(database_url)) == 0  # not even the schema was created
    assert small_simulator.state.stats.count("POST /as/token.oauth2") == 0


def test_a_good_manifest_syncs_and_prints_the_status_block(
    tmp_path: Path,
    database_url: str,
    small_simulator: ThreadedSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "sync",
            "-f",
            str(write(tmp_path, manifest(small_simulator))),
            "--database-url",
            database_url,
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    status = yaml.safe_load(out[out.index("status:") :])["status"]
    assert status["result"] == "Succeeded"
    assert [s["name"] for s in status["sources"]] == ["subscriptions", "devices", "central"]
    assert all(s["state"] == "Succeeded" for s in status["sources"])
    run = asyncio.run(
        fetch_row(database_url, "SELECT state, trigger, resource_name FROM sync_runs")
    )
    assert run == {"state": "Succeeded", "trigger": "cli", "resource_name": "cli-test"}


def test_an_upstream_that_refuses_the_credentials_fails_the_run_with_exit_1(
    tmp_path: Path,
    database_url: str,
    small_simulator: ThreadedSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    documents = manifest(
        small_simulator, secret={"client_id": "demo-client", "client_secret": "wrong-secret-value"}
    )

    code = main(["sync", "-f", str(write(tmp_path, documents)), "--database-url", database_url])

    captured = capsys.readouterr()
    assert code == 1
    assert "Failed" in captured.out
    assert "wrong-secret-value" not in captured.out + captured.err


def test_credentials_can_come_from_the_environment(
    tmp_path: Path,
    small_simulator: ThreadedSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    documents = manifest(
        small_simulator, secret={"client_id": "demo-client", "client_secret": "placeholder"}
    )
    monkeypatch.setenv(
        "INVENTORY_SYNC_SECRET_GLP_CLIENT_SECRET", small_simulator.state.credentials()[1]
    )

    code = main(["sync", "-f", str(write(tmp_path, documents)), "--database-url", database_url])

    assert code == 0, capsys.readouterr().err


def test_the_one_shot_prints_the_status_the_operator_would_write(
    tmp_path: Path,
    database_url: str,
    small_simulator: ThreadedSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(write(tmp_path, manifest(small_simulator)))

    code = main(["sync", "-f", path, "--database-url", database_url, "--operator-status"])

    out = capsys.readouterr().out
    assert code == 0
    status = yaml.safe_load(out[out.index("operatorStatus:") :])["operatorStatus"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(conditions) == {"Ready"}  # Reconciling came and went, as on a cluster
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "Succeeded")
    assert status["observedGeneration"] == 1
    assert status["sourceSummary"] == "3/3 succeeded"
    assert status["syncStatus"] == "InSync"
    assert status["history"][0]["trigger"] == "cli"
    assert status["nextSyncTime"] > status["lastSyncTime"]
