"""Simulated GreenLake list endpoints: devices and subscriptions with offset paging and queries."""

from __future__ import annotations

from aiohttp import web

from inventory_sync.simulator.admission import admit, built, reply
from inventory_sync.simulator.dataset import GLP_DEVICE_FIELDS, SUBSCRIPTION_FIELDS, JsonObject
from inventory_sync.simulator.pagesizes import PageLimit
from inventory_sync.simulator.querying import Rows, project, select_rows
from inventory_sync.simulator.responses import ApiError, int_param

DEVICES_PATH = "/devices/v1/devices"
SUBSCRIPTIONS_PATH = "/subscriptions/v1/subscriptions"
SUBSCRIPTION_PATH = "/subscriptions/v1/subscriptions/{id}"


def _page(
    request: web.Request, items: Rows, bounds: PageLimit, fields: frozenset[str]
) -> JsonObject:
    """The offset envelope {items, count, offset, total}: no next link, clients add `limit`.
    Only the page is built (and projected): a lazy list pays for its slice alone."""
    limit = int_param(request, "limit", default=bounds.default, minimum=1, maximum=bounds.maximum)
    offset = int_param(request, "offset", default=0, minimum=0)
    if isinstance(items, list):
        page = items[offset : offset + limit]
    else:
        page = items.slice(offset, offset + limit)
    page = project(request, page, fields)
    return {"items": page, "count": len(page), "offset": offset, "total": len(items)}


async def list_devices(request: web.Request) -> web.Response:
    """GET /devices/v1/devices?limit=&offset=&filter=&sort=&select=."""
    async with admit(request, "glp_devices") as admission:
        workspace = admission.workspace
        bounds = admission.state.config.page_sizes.glp_devices

        def build() -> JsonObject:
            with workspace.lock:
                items = select_rows(request, workspace.glp_list(), GLP_DEVICE_FIELDS)
                return _page(request, items, bounds, GLP_DEVICE_FIELDS)

        body = await built(admission, build)
        mutations = admission.state.config.page_mutations
        if mutations:
            # Others change the inventory while this client pages: the next offset is stale.
            admission.workspace.apply_page_mutations(mutations)
        return await reply(admission, body, items=body["count"])


async def list_subscriptions(request: web.Request) -> web.Response:
    """GET /subscriptions/v1/subscriptions?limit=&offset=&filter=&sort=&select=."""
    async with admit(request, "glp_subscriptions") as admission:
        items = select_rows(request, admission.workspace.subscriptions(), SUBSCRIPTION_FIELDS)
        bounds = admission.state.config.page_sizes.glp_subscriptions
        body = _page(request, items, bounds, SUBSCRIPTION_FIELDS)
        return await reply(admission, body, items=body["count"])


async def get_subscription(request: web.Request) -> web.Response:
    """GET /subscriptions/v1/subscriptions/{id}: one item, or 404 with the vendor body."""
    async with admit(request, "glp_subscription_get") as admission:
        subscription_id = request.match_info["id"]
        item = admission.workspace.subscription(subscription_id)
        if item is None:
            raise ApiError(404, f"Subscription {subscription_id} not found")
        return await reply(admission, item, items=1)


def add_routes(app: web.Application) -> None:
    """Mount the GreenLake endpoints."""
    app.router.add_get(DEVICES_PATH, list_devices)
    app.router.add_get(SUBSCRIPTIONS_PATH, list_subscriptions)
    app.router.add_get(SUBSCRIPTION_PATH, get_subscription)
