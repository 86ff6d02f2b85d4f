"""Which PostgreSQL the CLI uses: the configured one, or a private embedded server."""

from __future__ import annotations

from collections.abc import Callable

from inventory_sync.settings import Settings
from inventory_sync.store.embedded import (
    HOW_TO_USE_A_REAL_SERVER,
    require_embedded,
    start_embedded,
)


def choose_database_url(
    explicit: str | None, settings: Settings, announce: Callable[[str], None]
) -> str:
    """--database-url, else INVENTORY_SYNC_DATABASE_URL, else embedded (announced with how to change)."""
    url = explicit or settings.database_url
    if url:
        return url
    require_embedded()  # before the announcement: say what to install, not what we will use
    announce(
        f"No database URL configured: using an embedded PostgreSQL ({HOW_TO_USE_A_REAL_SERVER})."
    )
    return start_embedded()
