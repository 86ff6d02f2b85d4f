"""doctor's judgement of an installed CRD against this build's, and of a database's schema version."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory_sync.doctoring import crds, database
from inventory_sync.doctoring.findings import Level, Report, failed, passed, warned
from inventory_sync.store.migrating import available_migrations
from inventory_sync.store.versions import SchemaState

REPO = Path(__file__).resolve().parents[3]


def installed(name: str) -> dict[str, Any]:
    """The CRD as the API server returns it: what was applied, plus Established status."""
    body = yaml.safe_load((REPO / "crds" / f"{name}.yaml").read_text())
    body["status"] = {
        "conditions": [
            {"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"},
        ]
    }
    return dict(body)


def expected(name: str) -> crds.Expected:
    (found,) = [e for e in crds.expected_crds() if e.name == name.removeprefix("inventorysync.dev_")
                + ".inventorysync.dev"]  # fmt: skip
    return found


SCHEDULES = "inventorysync.dev_syncschedules"


def spec_properties(body: dict[str, Any]) -> dict[str, Any]:
    schema = body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found: dict[str, Any] = schema["properties"]["spec"]["properties"]
    return found  # the very dict: the edits below change the CRD


def test_the_packaged_crds_are_the_repository_crds() -> None:
    names = sorted(e.name for e in crds.expected_crds())
    assert names == ["fabrics.inventorysync.dev", "syncschedules.inventorysync.dev"]
    for e in crds.expected_crds():
        source = yaml.safe_load(
            (REPO / "crds" / f"inventorysync.dev_{e.name.split('.')[0]}.yaml").read_text()
        )
        assert e.versions == {v["name"]: v for v in source["spec"]["versions"]}


def _drop_history_limit(body: dict[str, Any]) -> None:
    del spec_properties(body)["historyLimit"]


def _add_field(body: dict[str, Any]) -> None:
    spec_properties(body)["priority"] = {"type": "integer"}


def _tighten(body: dict[str, Any]) -> None:
    spec_properties(body)["historyLimit"]["maximum"] = 50


def _no_status_subresource(body: dict[str, Any]) -> None:
    del body["spec"]["versions"][0]["subresources"]


def _not_served(body: dict[str, Any]) -> None:
    body["spec"]["versions"][0]["served"] = False


def _not_established(body: dict[str, Any]) -> None:
    body["status"]["conditions"][1] = {"type": "Established", "status": "False",
                                       "message": "not all names are accepted"}  # fmt: skip


CHANGES = [
    pytest.param(_drop_history_limit, Level.FAIL,
                 "v1alpha1 is older than this build: it lacks 1 field(s) this build uses "
                 "(spec.historyLimit)", id="an older CRD lacking a field fails, naming it"),
    pytest.param(_add_field, Level.WARN, "has 1 field(s) this build does not know "
                 "(spec.priority)", id="a newer CRD with an extra field warns"),
    pytest.param(_tighten, Level.WARN, "schema differs from this build's (validation or defaults",
                 id="changed validation only warns"),
    pytest.param(_no_status_subresource, Level.FAIL, "no status subresource",
                 id="without the status subresource the operator cannot write status"),
    pytest.param(_not_served, Level.FAIL, "v1alpha1 is not served", id="version not served"),
    pytest.param(_not_established, Level.FAIL, "not Established: not all names are accepted",
                 id="not Established"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "level", "text"), CHANGES)
def test_an_installed_crd_unlike_this_builds(change: Any, level: Level, text: str) -> None:
    live = installed(SCHEDULES)
    change(live)
    finding = crds.judge(expected(SCHEDULES), live)
    assert finding.level is level
    assert text in finding.message
    if level is not Level.PASS and "Established" not in text:
        assert "kubectl apply --server-side -f crds/" in finding.message


def test_the_same_crd_passes_and_a_missing_one_fails_with_the_upgrade_command() -> None:
    assert crds.judge(expected(SCHEDULES), installed(SCHEDULES)).level is Level.PASS
    missing = crds.judge(expected(SCHEDULES), None)
    assert missing.level is Level.FAIL
    assert missing.message.startswith("not installed: kubectl apply --server-side -f crds/")


def test_field_paths_walk_properties_items_and_maps() -> None:
    schema = {"properties": {"spec": {"properties": {
        "sources": {"items": {"properties": {"name": {}}}},
        "labels": {"additionalProperties": {"properties": {"x": {}}}},
    }}}}  # fmt: skip
    assert crds.field_paths(schema) == {
        "spec", "spec.sources", "spec.sources[].name", "spec.labels", "spec.labels{}.x",
    }  # fmt: skip


def test_the_digest_ignores_key_order_but_not_content() -> None:
    version = copy.deepcopy(expected(SCHEDULES).versions["v1alpha1"])
    reordered = copy.deepcopy(dict(reversed(list(version.items()))))
    assert crds.digest(reordered) == crds.digest(version)
    version["schema"]["openAPIV3Schema"]["description"] = "changed"
    assert crds.digest(version) != crds.digest(reordered)


# --------------------------------------------------------------------------- database schema

SHIPPED = tuple(available_migrations())
ALL = frozenset(m.version for m in SHIPPED)
NEWEST = max(ALL)


@pytest.mark.parametrize(
    ("applied", "levels", "text"),
    [
        pytest.param(ALL, [Level.PASS], f"at {NEWEST:04d} ({len(SHIPPED)} migrations)",
                     id="every shipped migration applied: pass"),
        pytest.param(ALL - {NEWEST}, [Level.FAIL], "behind this build", id="behind: fail"),
        pytest.param(ALL | {9999}, [Level.WARN], "ahead of this build: migration(s) 9999",
                     id="ahead: a newer operator migrated it, warn"),
        pytest.param(ALL - {NEWEST} | {9999}, [Level.FAIL, Level.WARN], "behind this build",
                     id="both behind and ahead: both said"),
        pytest.param(None, [Level.FAIL], "not migrated (no schema_migrations table)",
                     id="never migrated"),
    ],
)  # fmt: skip
def test_schema_findings(applied: frozenset[int] | None, levels: list[Level], text: str) -> None:
    found = database.schema_findings(SchemaState("17.2", applied, SHIPPED))
    assert [f.level for f in found] == levels
    assert text in found[0].message


def test_behind_names_each_missing_migration_and_how_to_apply_them() -> None:
    newest = SHIPPED[-1]
    (finding,) = database.schema_findings(SchemaState("17.2", ALL - {NEWEST}, SHIPPED))
    assert f"{newest.version:04d}_{newest.name}" in finding.message
    assert "inventory-sync migrate" in finding.message


# --------------------------------------------------------------------------- the report


def test_exit_code_is_one_on_any_failure_and_warnings_do_not_fail() -> None:
    ok = Report.of([passed("crds", "a", "fine"), warned("database", "b", "not checked")])
    assert ok.exit_code == 0
    assert Report.of([*ok.findings, failed("rbac", "c", "missing watch")]).exit_code == 1


def test_messages_are_sanitised_before_they_are_printed() -> None:
    finding = failed(
        "credentials", "x", 'answer {"client_secret": "hunter2"} from https://h/t?token=abc'
    )
    assert "hunter2" not in finding.message
    assert "token=abc" not in finding.message


def test_text_and_json_carry_the_same_lines() -> None:
    report = Report.of([passed("crds", "a", "fine"), failed("rbac", "b", "missing watch")])
    assert report.text().splitlines() == [
        "PASS  crds        a: fine",
        "FAIL  rbac        b: missing watch",
        "1 passed, 0 warnings, 1 failed",
    ]
    import json

    body = json.loads(report.json())
    assert body["ok"] is False
    assert body["summary"] == {"pass": 1, "warn": 0, "fail": 1}
    assert body["checks"][1] == {"check": "rbac", "subject": "b", "level": "FAIL",
                                 "message": "missing watch"}  # fmt: skip


# --------------------------------------------------------------------------- the command line


def test_a_malformed_as_operator_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    from inventory_sync import cli

    assert cli.main(["doctor", "--as-operator", "no-slash"]) == 2
    assert "--as-operator 'no-slash': use NAMESPACE/NAME" in capsys.readouterr().err


def test_an_unusable_kubeconfig_is_a_failed_check_and_the_database_is_still_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from inventory_sync import cli

    monkeypatch.delenv("INVENTORY_SYNC_DATABASE_URL", raising=False)
    code = cli.main(["doctor", "--kubeconfig", str(tmp_path / "absent")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith("FAIL  kubernetes  kubeconfig: ")
    assert lines[1].startswith("WARN  database    connection: not checked")
