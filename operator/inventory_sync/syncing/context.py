"""What one source of a run gets from the run: pool, upstream session, secrets, clock (syncing layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from inventory_sync.syncing.credentials import SecretReader
from inventory_sync.syncing.progress import ProgressListener
from inventory_sync.syncing.session import UpstreamSession


@dataclass
class SourceContext:
    """Everything one source needs from its run."""

    pool: asyncpg.Pool
    session: UpstreamSession
    secrets: SecretReader
    namespace: str
    progress: ProgressListener
    now: datetime
    #: The run's sync_runs row, named by every change-log row its sources write (None when
    #: called outside a run, e.g. by a benchmark).
    run_id: int | None = None
