"""Everything a running simulator remembers: workspaces, tokens, quotas, faults and statistics."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from inventory_sync.simulator.classic_account import ClassicCentral
from inventory_sync.simulator.config import SimulatorConfig, WorkspaceConfig
from inventory_sync.simulator.faults import FaultPlan
from inventory_sync.simulator.ratelimit import Clock, ConcurrencyGauge, SlidingWindowLimiter
from inventory_sync.simulator.workspace import WorkspaceState


@dataclass(frozen=True)
class Session:
    """What an access token stands for."""

    workspace_id: str
    client_id: str
    expires_at: float  # on the simulator's clock


class TokenStore:
    """Opaque bearer tokens mapped to their workspace and expiry."""

    def __init__(self, *, lifetime: float, clock: Clock) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, workspace: WorkspaceConfig) -> str:
        """A new token for `workspace`, valid for `lifetime` seconds."""
        token = secrets.token_urlsafe(32)
        session = Session(
            workspace.workspace_id, workspace.client_id, self._clock() + self.lifetime
        )
        with self._lock:
            self._sessions[token] = session
            self.issued += 1
        return token

    def lookup(self, token: str) -> Session | None:
        """The session of a known token, expired or not."""
        with self._lock:
            return self._sessions.get(token)

    def is_expired(self, session: Session) -> bool:
        """Whether `session` has outlived its token."""
        return self._clock() >= session.expires_at

    def expire_all(self) -> int:
        """Expire every token now (a mid-sync expiry on demand); returns how many."""
        now = self._clock()
        with self._lock:
            for token, session in self._sessions.items():
                self._sessions[token] = Session(session.workspace_id, session.client_id, now)
            return len(self._sessions)

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._sessions.clear()
            self.issued = 0


class Stats:
    """Requests per route and status ("reset" for dropped connections); thread-safe."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, route: str, status: str) -> None:
        """Count one request of `route` (e.g. "GET /devices/v1/devices") answered with `status`."""
        with self._lock:
            self._counts[(route, status)] += 1

    def count(self, route: str, status: int | str | None = None) -> int:
        """Requests of `route`, all of them or only those answered with `status`."""
        with self._lock:
            return sum(
                n
                for (r, s), n in self._counts.items()
                if r == route and (status is None or s == str(status))
            )

    def by_route(self) -> dict[str, dict[str, int]]:
        """{route: {status: count}}."""
        result: dict[str, dict[str, int]] = {}
        with self._lock:
            for (route, status), n in sorted(self._counts.items()):
                result.setdefault(route, {})[status] = n
        return result

    def clear(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._counts.clear()


class SimulatorState:
    """The whole mutable state behind one simulator; shared by its handlers and by tests."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.tokens = TokenStore(lifetime=config.token_lifetime_seconds, clock=clock)
        self.limiter = SlidingWindowLimiter(window=config.rate_limits.window_seconds, clock=clock)
        self.concurrency = ConcurrencyGauge(limit=config.max_concurrent_requests_per_client)
        self.stats = Stats()
        self.faults = FaultPlan(config.faults, seed=config.seed)
        self.workspaces = {
            w.workspace_id: WorkspaceState(w, seed=config.seed) for w in config.workspaces
        }
        #: Classic Central: one account per workspace, its rotating refresh token and quotas.
        self.classic = ClassicCentral(config, clock=clock, wall_clock=wall_clock)

    def workspace(self, workspace_id: str | None = None) -> WorkspaceState:
        """A workspace by id; without one, the first configured (the usual single workspace)."""
        if workspace_id is None:
            workspace_id = self.config.workspaces[0].workspace_id
        try:
            return self.workspaces[workspace_id]
        except KeyError:
            raise KeyError(f"no workspace {workspace_id!r}") from None

    def credentials(self, workspace_id: str | None = None) -> tuple[str, str]:
        """(client_id, client_secret) of a workspace: the demo fixtures by default."""
        config = self.workspace(workspace_id).config
        return config.client_id, config.client_secret

    def check_client(self, client_id: str, client_secret: str) -> WorkspaceConfig | None:
        """The workspace these client credentials open, or None."""
        for workspace in self.config.workspaces:
            # Constant-time compare, as an OAuth server should; the secrets are demo fixtures.
            same_id = hmac.compare_digest(workspace.client_id.encode(), client_id.encode())
            same_secret = hmac.compare_digest(
                workspace.client_secret.encode(), client_secret.encode()
            )
            if same_id and same_secret:
                return workspace
        return None

    def reset(self) -> None:
        """Back to the start: data regenerated; tokens, quotas, stats and faults cleared (classic
        refresh tokens back to the configured ones)."""
        for workspace in self.workspaces.values():
            workspace.reset()
        self.tokens.clear()
        self.classic.reset()
        self.limiter.clear()
        self.concurrency.clear()
        self.stats.clear()
        self.faults.replace(self.config.faults)

    def snapshot(self) -> dict[str, Any]:
        """What GET /_simulator/stats answers."""
        return {
            "requests": self.stats.by_route(),
            "max_concurrency": self.concurrency.peaks(),
            "tokens_issued": self.tokens.issued,
            "workspaces": {wid: ws.counts() for wid, ws in self.workspaces.items()},
            "classic_tokens_issued": self.classic.tokens_issued,
            "classic_accounts": self.classic.snapshot(),
            "faults": self.faults.report(),
        }


#: Where build_app keeps the state in the aiohttp application.
STATE_KEY: web.AppKey[SimulatorState] = web.AppKey("simulator_state", SimulatorState)
