"""Simulated New Central device lists (v1 and v1alpha1): page-number paging (`limit` + `next`)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from inventory_sync.simulator.admission import admit, built, reply
from inventory_sync.simulator.dataset import (
    CENTRAL_INVENTORY_FIELDS,
    CENTRAL_MONITORING_FIELDS,
    JsonObject,
)
from inventory_sync.simulator.querying import project, select_rows
from inventory_sync.simulator.responses import bad_query, int_param

#: Both API versions are served by the same handlers: v1 (what current clients call) and
#: v1alpha1 (the older path).
API_VERSIONS = ("v1", "v1alpha1")
INVENTORY_PATHS = tuple(f"/network-monitoring/{v}/device-inventory" for v in API_VERSIONS)
DEVICES_PATHS = tuple(f"/network-monitoring/{v}/devices" for v in API_VERSIONS)
#: `site-assigned` on the inventory: devices with a site, or without one.
_SITE_ASSIGNED = {"ASSIGNED": True, "UNASSIGNED": False}


def _keep(request: web.Request, *, onboarded_only: bool) -> Callable[[JsonObject], bool] | None:
    """The endpoint's own selection: onboarded devices on /devices, `site-assigned` on the
    inventory (devices with a site, or without one)."""
    if onboarded_only:
        return lambda item: item["status"] is not None
    raw = request.query.get("site-assigned")
    if raw is None:
        return None
    if raw not in _SITE_ASSIGNED:
        raise bad_query("site-assigned", "site-assigned must be ASSIGNED or UNASSIGNED")
    wanted = _SITE_ASSIGNED[raw]
    return lambda item: (item["siteId"] is not None) == wanted


async def _list(request: web.Request, *, onboarded_only: bool) -> web.Response:
    """One page of the inventory (all devices) or of the onboarded devices.

    `next` is a 1-based page number (absent: 1); the answer's `next` is the following page
    number, or null on the last page. Pages are slices of the current list, so a device
    added or removed between two requests shifts every later page, as offsets do.
    """
    async with admit(request, "central") as admission:
        bounds = admission.state.config.page_sizes.central
        limit = int_param(
            request, "limit", default=bounds.default, minimum=1, maximum=bounds.maximum
        )
        page_number = int_param(request, "next", default=1, minimum=1)
        fields = CENTRAL_MONITORING_FIELDS if onboarded_only else CENTRAL_INVENTORY_FIELDS
        start = (page_number - 1) * limit
        workspace = admission.workspace
        keep = _keep(request, onboarded_only=onboarded_only)

        def build() -> tuple[list[JsonObject], int]:
            with workspace.lock:
                items = select_rows(request, workspace.central_list(), fields, keep=keep)
                if isinstance(items, list):
                    return items[start : start + limit], len(items)
                return items.slice(start, start + limit), len(items)

        sliced, total = await built(admission, build)
        # Each endpoint answers its own view of the stored device (see dataset.py).
        view = [{k: v for k, v in item.items() if k in fields} for item in sliced]
        page = project(request, view, fields)
        body = {
            "items": page,
            "total": total,
            "count": len(page),
            "next": page_number + 1 if start + limit < total else None,
        }
        mutations = admission.state.config.central_page_mutations
        if mutations:
            # Devices come and go while this client pages: the next page number is stale.
            admission.workspace.apply_central_page_mutations(mutations)
        return await reply(admission, body, items=len(page))


async def list_device_inventory(request: web.Request) -> web.Response:
    """GET device-inventory: every device, onboarded or not."""
    return await _list(request, onboarded_only=False)


async def list_devices(request: web.Request) -> web.Response:
    """GET devices: onboarded devices only."""
    return await _list(request, onboarded_only=True)


def add_routes(app: web.Application) -> None:
    """Mount the New Central endpoints, every API version."""
    for path in INVENTORY_PATHS:
        app.router.add_get(path, list_device_inventory)
    for path in DEVICES_PATHS:
        app.router.add_get(path, list_devices)
