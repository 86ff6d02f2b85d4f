"""How each upstream family words an injected error (fault rules answer like the real service)."""

from __future__ import annotations

from aiohttp import web

from inventory_sync.simulator import classic
from inventory_sync.simulator.classic_quota import UNLIMITED
from inventory_sync.simulator.faults import Dialect, DialectFor
from inventory_sync.simulator.responses import json_response
from inventory_sync.simulator.state import SimulatorState


class ClassicDialect:
    """Classic Central: a 429 is `{message}` with the account's X-RateLimit-* headers, its
    per-second window spent (what the vendor SDK reads, unconditionally); other errors are
    `{message}` too, with the headers, as every classic answer carries them."""

    def __init__(self, state: SimulatorState, request: web.Request) -> None:
        session = classic.peek_session(state, request)
        if session is not None:
            self._headers = state.classic.hit(session.customer_id, record=False).headers
        else:  # no account to report on: the gateway's nominal numbers
            nominal = str(UNLIMITED)
            self._headers = {
                f"X-RateLimit-{kind}-{window}": nominal
                for kind in ("Limit", "Remaining")
                for window in ("day", "second")
            }

    def error(self, status: int, message: str) -> web.Response:
        return json_response({"message": message}, status=status, headers=self._headers)

    def rate_limited(self, retry_after: int) -> web.Response:
        headers = {**self._headers, "X-RateLimit-Remaining-second": "0"}
        return classic.too_many(classic.TOO_MANY_MESSAGE, headers, retry_after)


class OAuthDialect:
    """Both token endpoints: OAuth2 error bodies `{error, error_description}` (RFC 6749)."""

    def error(self, status: int, message: str) -> web.Response:
        body = {"error": "server_error" if status >= 500 else "invalid_request"}
        return json_response({**body, "error_description": message}, status=status)

    def rate_limited(self, retry_after: int) -> web.Response:
        body = {"error": "slow_down", "error_description": "Too many token requests"}
        return json_response(body, status=429, headers={"Retry-After": str(retry_after)})


def dialect_for(state: SimulatorState) -> DialectFor:
    """The `dialect_for` hook of the fault middleware for `state`'s simulator."""

    def pick(request: web.Request, family: str | None) -> Dialect | None:
        if family == "classic_central":
            return ClassicDialect(state, request)
        if family == "token":
            return OAuthDialect()
        return None  # GreenLake and New Central share the vendor body

    return pick
