"""The gate every API call passes: token, concurrency cap, rate limit; then latency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from inventory_sync.simulator.auth import authenticate
from inventory_sync.simulator.config import Family
from inventory_sync.simulator.ratelimit import Quota, TooManyInFlight
from inventory_sync.simulator.responses import json_response, rate_limited
from inventory_sync.simulator.state import STATE_KEY, Session, SimulatorState
from inventory_sync.simulator.workspace import WorkspaceState

_T = TypeVar("_T")

#: The app's page builder: one thread, so the event loop keeps admitting requests while a
#: page is generated (see `built`).
BUILDER_KEY: web.AppKey[Executor] = web.AppKey("simulator_page_builder", Executor)


@dataclass(frozen=True)
class Admission:
    """An admitted request: whose it is and what its quota looks like."""

    state: SimulatorState
    session: Session
    workspace: WorkspaceState
    family: Family
    quota: Quota
    #: The event loop's clock when the call was admitted: the latency model counts from here.
    admitted_at: float
    builder: Executor


@asynccontextmanager
async def admit(request: web.Request, family: Family) -> AsyncIterator[Admission]:
    """Admit an API call for its whole duration, or raise the 401/429 the upstream would send.

    Order as at a real gateway: authentication, then the client's concurrency cap (refused
    calls use no quota), then the workspace's sliding window. The concurrency slot is held
    until the answer is ready, latency included.
    """
    admitted_at = asyncio.get_running_loop().time()
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
        workspace = state.workspace(session.workspace_id)
        builder = request.app[BUILDER_KEY]
        yield Admission(state, session, workspace, family, quota, admitted_at, builder)
    finally:
        state.concurrency.release(session.client_id)


async def built(admission: Admission, build: Callable[[], _T]) -> _T:
    """`build` (a page: generating items is CPU work) in the app's builder thread.

    Built on the event loop, a 2,000-device page held it for ~0.2 s, so of 8 requests sent
    together the last was admitted ~1.5 s late and answered that much after its modelled
    time, as no real upstream with threads of its own would. Now every request is admitted
    (its latency starts) on arrival, and pages are built one at a time, first come first
    served, while the earlier ones wait out their latency.
    """
    return await asyncio.get_running_loop().run_in_executor(admission.builder, build)


async def reply(admission: Admission, body: Any, *, items: int) -> web.Response:
    """Answer `body` with the quota headers once the latency model for `items` items has
    passed since admission."""
    response = json_response(body, headers=admission.quota.headers())
    model = admission.state.config.latency.for_family(admission.family)
    await wait_until(admission.admitted_at + model.seconds(items))
    return response


async def wait_until(deadline: float) -> None:
    """Sleep until the event loop's clock reads `deadline` (at once if it has passed).

    The latency model is the whole time an upstream takes to answer, its own work included:
    building and encoding a page overlaps the modelled wait instead of adding to it, so a
    benchmark's floor (computed from the model) is what a client can reach.
    """
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining > 0:
        await asyncio.sleep(remaining)
