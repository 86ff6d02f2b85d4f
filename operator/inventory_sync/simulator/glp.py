"""Simulated GreenLake list endpoints: devices and subscriptions with offset paging and queries."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from inventory_sync.simulator import filtering
from inventory_sync.simulator.admission import admit, reply
from inventory_sync.simulator.dataset import GLP_DEVICE_FIELDS, SUBSCRIPTION_FIELDS, JsonObject
from inventory_sync.simulator.responses import ApiError, bad_query, int_param

DEVICES_PATH = "/devices/v1/devices"
SUBSCRIPTIONS_PATH = "/subscriptions/v1/subscriptions"
SUBSCRIPTION_PATH = "/subscriptions/v1/subscriptions/{id}"

#: The devices API documents 2000 as both default and maximum page size.
DEVICES_MAX_LIMIT = 2000
#: Clients in the wild page subscriptions by 50; the v1 maximum is unconfirmed (accept 2000).
SUBSCRIPTIONS_DEFAULT_LIMIT = 50
SUBSCRIPTIONS_MAX_LIMIT = 2000


def _query(
    request: web.Request, items: list[JsonObject], fields: Collection[str]
) -> list[JsonObject]:
    """Apply filter, sort and select from the query string (in that order); 400 when one is bad."""
    try:
        text = request.query.get("filter")
        if text is not None:
            expr = filtering.parse_filter(text, fields=fields)
            items = [item for item in items if filtering.matches(expr, item)]
        text = request.query.get("sort")
        if text is not None:
            items = filtering.sort_items(items, filtering.parse_sort(text, fields=fields))
        text = request.query.get("select")
        if text is not None:
            names = filtering.parse_select(text, fields=fields)
            items = [filtering.project(item, names) for item in items]
    except filtering.FilterError as error:
        raise bad_query(error.parameter, str(error)) from None
    return items


def _page(
    request: web.Request, items: list[JsonObject], *, default_limit: int, max_limit: int
) -> JsonObject:
    """The offset envelope {items, count, offset, total}: no next link, clients add `limit`."""
    limit = int_param(request, "limit", default=default_limit, minimum=1, maximum=max_limit)
    offset = int_param(request, "offset", default=0, minimum=0)
    page = items[offset : offset + limit]
    return {"items": page, "count": len(page), "offset": offset, "total": len(items)}


async def list_devices(request: web.Request) -> web.Response:
    """GET /devices/v1/devices?limit=&offset=&filter=&sort=&select=."""
    async with admit(request, "glp_devices") as admission:
        items = _query(request, admission.workspace.glp_devices(), GLP_DEVICE_FIELDS)
        body = _page(request, items, default_limit=DEVICES_MAX_LIMIT, max_limit=DEVICES_MAX_LIMIT)
        mutations = admission.state.config.page_mutations
        if mutations:
            # Others change the inventory while this client pages: the next offset is stale.
            admission.workspace.apply_page_mutations(mutations)
        return await reply(admission, body, items=body["count"])


async def list_subscriptions(request: web.Request) -> web.Response:
    """GET /subscriptions/v1/subscriptions?limit=&offset=&filter=&sort=&select=."""
    async with admit(request, "glp_subscriptions") as admission:
        items = _query(request, admission.workspace.subscriptions(), SUBSCRIPTION_FIELDS)
        body = _page(
            request,
            items,
            default_limit=SUBSCRIPTIONS_DEFAULT_LIMIT,
            max_limit=SUBSCRIPTIONS_MAX_LIMIT,
        )
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
