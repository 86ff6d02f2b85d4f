"""The gate every API call passes: token, concurrency cap, rate limit; then latency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from inventory_sync.simulator.auth import authenticate
from inventory_sync.simulator.config import Family
from inventory_sync.simulator.ratelimit import Quota, TooManyInFlight
from inventory_sync.simulator.responses import json_response, rate_limited
from inventory_sync.simulator.state import STATE_KEY, Session, SimulatorState
from inventory_sync.simulator.workspace import WorkspaceState


@dataclass(frozen=True)
class Admission:
    """An admitted request: whose it is and what its quota looks like."""

    state: SimulatorState
    session: Session
    workspace: WorkspaceState
    family: Family
    quota: Quota


@asynccontextmanager
async def admit(request: web.Request, family: Family) -> AsyncIterator[Admission]:
    """Admit an API call for its whole duration, or raise the 401/429 the upstream would send.

    Order as at a real gateway: authentication, then the client's concurrency cap (refused
    calls use no quota), then the workspace's sliding window. The concurrency slot is held
    until the answer is ready, latency included.
    """
    state = request.app[STATE_KEY]
    session = authenticate(state, request)
    key = (session.workspace_id, family)
    limit = state.config.rate_limits.for_family(family)
    try:
        state.concurrency.acquire(session.client_id)
    except TooManyInFlight:
        quota = state.limiter.hit(key, limit, record=False)
        message = f"Too many concurrent requests (at most {state.concurrency.limit} per client)"
        raise rate_limited(quota.headers(), 1, message) from None
    try:
        quota = state.limiter.hit(key, limit)
        if not quota.allowed:
            message = f"Rate limit of {limit} requests per {state.limiter.window:g} s exceeded"
            raise rate_limited(quota.headers(), quota.reset_seconds, message)
        yield Admission(state, session, state.workspace(session.workspace_id), family, quota)
    finally:
        state.concurrency.release(session.client_id)


async def reply(admission: Admission, body: Any, *, items: int) -> web.Response:
    """Wait out the latency model for `items` items, then answer `body` with the quota headers."""
    delay = admission.state.config.latency.for_family(admission.family).seconds(items)
    if delay > 0:
        await asyncio.sleep(delay)
    return json_response(body, headers=admission.quota.headers())
