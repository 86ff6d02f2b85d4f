"""The simulator's aiohttp application: every upstream's routes plus stats, faults, errors."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from aiohttp.typedefs import Handler

from inventory_sync.simulator import admin, auth, central, classic, dialects, glp
from inventory_sync.simulator.admission import BUILDER_KEY
from inventory_sync.simulator.faults import Classifier, Dropped, fault_middleware
from inventory_sync.simulator.responses import ApiError, error_body, json_response
from inventory_sync.simulator.state import STATE_KEY, SimulatorState

logger = logging.getLogger(__name__)

#: Endpoint family per route path: what fault rules, quotas and latency are keyed by.
FAMILIES: dict[str, str] = {
    auth.TOKEN_PATH: "token",
    auth.WORKSPACE_TOKEN_PATH: "token",
    glp.DEVICES_PATH: "glp_devices",
    glp.SUBSCRIPTIONS_PATH: "glp_subscriptions",
    glp.SUBSCRIPTION_PATH: "glp_subscription_get",
    **dict.fromkeys(central.INVENTORY_PATHS + central.DEVICES_PATHS, "central"),
    classic.TOKEN_PATH: "token",
    **dict.fromkeys(classic.API_PATHS, "classic_central"),
}


def route_label(request: web.Request) -> str:
    """The matched route, e.g. `GET /subscriptions/v1/subscriptions/{id}` (ids not expanded)."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else "(unmatched)"
    return f"{request.method} {path}"


def _classify(state: SimulatorState) -> Classifier:
    def classify(request: web.Request) -> tuple[str | None, str | None]:
        resource = request.match_info.route.resource
        family = FAMILIES.get(resource.canonical) if resource is not None else None
        session = auth.peek_session(state, request)
        if session is not None:
            return family, session.workspace_id
        legacy = classic.peek_session(state, request)
        return family, state.classic.account(legacy.customer_id).workspace_id if legacy else None

    return classify


@web.middleware
async def _count(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: count every request by route and final status ("reset" when dropped)."""
    stats = request.app[STATE_KEY].stats
    try:
        response = await handler(request)
    except web.HTTPException as error:
        stats.record(route_label(request), str(error.status))
        raise
    except Exception:
        stats.record(route_label(request), "500")
        raise
    stats.record(
        route_label(request), "reset" if isinstance(response, Dropped) else str(response.status)
    )
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: ApiError and aiohttp's own 4xx (unknown path, wrong method) as vendor bodies."""
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() == "allow"}
        body = error_body(error.status, error.reason)
        return json_response(body, status=error.status, headers=headers)
    except Exception:
        # A simulator bug: answer like the upstream would, and leave the traceback in the log.
        logger.exception("simulator error on %s %s", request.method, request.path)
        return json_response(error_body(500), status=500)


def build_app(state: SimulatorState) -> web.Application:
    """The application serving `state`: GreenLake, New and classic Central, both token
    endpoints, the admin API."""
    app = web.Application(
        middlewares=[
            _count,
            fault_middleware(state.faults, _classify(state), dialects.dialect_for(state)),
            _errors,
        ]
    )
    app[STATE_KEY] = state
    builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulator-pages")
    app[BUILDER_KEY] = builder

    async def stop_builder(_: web.Application) -> None:
        builder.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(stop_builder)
    auth.add_routes(app)
    glp.add_routes(app)
    central.add_routes(app)
    classic.add_routes(app)
    admin.add_routes(app)
    return app
