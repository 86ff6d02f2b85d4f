"""Simulated classic Central: the refresh-token endpoint, the offset-paged device inventory and
the /monitoring lists, all behind the gateway's quotas."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from inventory_sync.simulator import classic_monitoring
from inventory_sync.simulator.admission import wait_until
from inventory_sync.simulator.classic_account import SKU_TYPES, ClassicSession, ClassicTokenRefused
from inventory_sync.simulator.classic_monitoring import APS_PATH, SWITCHES_PATH, MonitoredKind
from inventory_sync.simulator.ratelimit import TooManyInFlight
from inventory_sync.simulator.responses import json_response
from inventory_sync.simulator.state import STATE_KEY, SimulatorState

TOKEN_PATH = "/oauth2/token"
DEVICES_PATH = "/platform/device_inventory/v1/devices"
#: Every classic API route (the fault rules' `classic_central` family).
API_PATHS = (DEVICES_PATH, APS_PATH, SWITCHES_PATH)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: ClassicTokenRefused) -> web.Response:
    body = {"error": error.error, "error_description": error.description}
    return json_response(body, status=error.status, headers=_NO_STORE)


async def issue_token(request: web.Request) -> web.Response:
    """POST /oauth2/token?grant_type=refresh_token&client_id=&client_secret=&refresh_token=.

    Parameters come in the query string (as classic clients send them) or a form body. Each
    refresh rotates the refresh token: the one just used is refused from now on.
    """
    params: dict[str, str] = dict(request.query)
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    if params.get("grant_type") != "refresh_token":
        refused = ClassicTokenRefused(
            "unsupported_grant_type", "only grant_type=refresh_token is supported"
        )
        return _oauth_error(refused)
    client_id, secret = params.get("client_id"), params.get("client_secret")
    refresh_token = params.get("refresh_token")
    if not client_id or not secret or not refresh_token:
        missing = ClassicTokenRefused(
            "invalid_request", "client_id, client_secret and refresh_token are required"
        )
        return _oauth_error(missing)
    state = request.app[STATE_KEY]
    try:
        access, rotated = state.classic.refresh(client_id, secret, refresh_token)
    except ClassicTokenRefused as refused:
        return _oauth_error(refused)
    body = {
        "access_token": access,
        "refresh_token": rotated,
        "expires_in": math.ceil(state.config.classic_token_lifetime_seconds),
        "token_type": "bearer",
    }
    return json_response(body, headers=_NO_STORE)


def peek_session(state: SimulatorState, request: web.Request) -> ClassicSession | None:
    """The classic session a request's bearer token names, if any (fault rules match on it)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return state.classic.session(token.strip())


def _invalid_token(description: str) -> web.Response:
    # Clients look for "invalid_token" in the body to tell an expired token from other 401s.
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    body = {"error": "invalid_token", "error_description": description}
    return json_response(body, status=401, headers={"WWW-Authenticate": challenge})


def _bad_request(description: str, headers: Mapping[str, str], *, service: str) -> web.Response:
    body = {"description": description, "error_code": "0001", "service_name": service}
    return json_response(body, status=400, headers=headers)


#: The classic gateway's 429 message (also what fault injection answers on classic routes).
TOO_MANY_MESSAGE = "API rate limit exceeded"


def too_many(message: str, headers: Mapping[str, str], retry_after: int) -> web.Response:
    """A classic 429: `{message}`, the X-RateLimit-* headers and Retry-After."""
    headers = {**headers, "Retry-After": str(retry_after)}
    return json_response({"message": message}, status=429, headers=headers)


class BadQuery(Exception):
    """A query parameter a classic API refuses (400)."""


def int_param(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or BadQuery."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadQuery(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadQuery(f"{name} must be between {low} and {high}, got {value}")
    return value


#: Builds a classic API answer once the call is admitted: (body, items in it) or BadQuery.
Answer = Callable[[web.Request, ClassicSession], tuple[dict[str, Any], int]]


async def serve_classic(request: web.Request, answer: Answer, *, service: str) -> web.Response:
    """Admit a classic API call as the gateway does, then answer it.

    Order at the gateway: token, the client's concurrency cap, the account's per-second and
    per-day quotas (every answer from here on carries X-RateLimit-*), then the parameters
    (a BadQuery is a 400 naming `service`), then the latency model.
    """
    admitted_at = asyncio.get_running_loop().time()
    state = request.app[STATE_KEY]
    session = peek_session(state, request)
    if session is None:
        return _invalid_token("Invalid access token")
    if state.classic.is_expired(session):
        return _invalid_token("Access token expired")
    client = f"classic:{session.client_id}"
    try:
        state.concurrency.acquire(client)
    except TooManyInFlight:
        quota = state.classic.hit(session.customer_id, record=False)
        return too_many("Too many concurrent requests", quota.headers, 1)
    try:
        quota = state.classic.hit(session.customer_id)
        if not quota.allowed:
            return too_many(TOO_MANY_MESSAGE, quota.headers, quota.retry_after)
        try:
            body, items = answer(request, session)
        except BadQuery as problem:
            return _bad_request(str(problem), quota.headers, service=service)
        response = json_response(body, headers=quota.headers)
        await wait_until(admitted_at + state.config.latency.classic_central.seconds(items))
        return response
    finally:
        state.concurrency.release(client)


def _inventory(request: web.Request, session: ClassicSession) -> tuple[dict[str, Any], int]:
    bounds = request.app[STATE_KEY].config.page_sizes.classic_central
    limit = int_param(request, "limit", default=bounds.default, low=1, high=bounds.maximum)
    offset = int_param(request, "offset", default=0, low=0, high=2**31)
    sku_type = request.query.get("sku_type", "all")
    if sku_type not in SKU_TYPES:
        raise BadQuery(f"sku_type must be one of {', '.join(sorted(SKU_TYPES))}")
    account = request.app[STATE_KEY].classic.account(session.customer_id)
    devices = account.devices(sku_type=sku_type)
    page = devices[offset : offset + limit]
    return {"devices": page, "total": len(devices)}, len(page)


async def list_devices(request: web.Request) -> web.Response:
    """GET /platform/device_inventory/v1/devices?limit=&offset=&sku_type= → {devices, total}."""
    return await serve_classic(request, _inventory, service="Device Inventory")


def add_routes(app: web.Application) -> None:
    """Mount the classic Central endpoints."""
    app.router.add_post(TOKEN_PATH, issue_token)
    app.router.add_get(DEVICES_PATH, list_devices)
    app.router.add_get(APS_PATH, list_aps)
    app.router.add_get(SWITCHES_PATH, list_switches)


async def list_aps(request: web.Request) -> web.Response:
    """GET /monitoring/v2/aps?limit=&offset=&calculate_total= → {aps, count[, total]}."""
    return await _monitoring_list(request, kind="aps")


async def list_switches(request: web.Request) -> web.Response:
    """GET /monitoring/v1/switches?limit=&offset=&calculate_total= → {switches, count[, total]}."""
    return await _monitoring_list(request, kind="switches")


async def _monitoring_list(request: web.Request, *, kind: MonitoredKind) -> web.Response:

    def answer(request: web.Request, session: ClassicSession) -> tuple[dict[str, Any], int]:
        bounds = request.app[STATE_KEY].config.page_sizes.classic_monitoring
        limit = int_param(request, "limit", default=bounds.default, low=1, high=bounds.maximum)
        offset = int_param(request, "offset", default=0, low=0, high=2**31)
        account = request.app[STATE_KEY].classic.account(session.customer_id)
        total = request.query.get("calculate_total", "false").lower() == "true"
        body = classic_monitoring.page(account, kind, offset=offset, limit=limit, total=total)
        return body, body["count"]

    return await serve_classic(request, answer, service="Monitoring")
