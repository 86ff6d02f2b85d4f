"""Simulated New Central device lists with keyset cursor paging (`limit` + opaque `next`)."""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from inventory_sync.simulator.admission import admit, reply
from inventory_sync.simulator.responses import bad_query, int_param

INVENTORY_PATH = "/network-monitoring/v1alpha1/device-inventory"
DEVICES_PATH = "/network-monitoring/v1alpha1/devices"

#: Clients use 100; some deployments allow up to 1000.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_VERSION = 1


def encode_cursor(last_id: str) -> str:
    """An opaque cursor naming the last id a page returned."""
    raw = json.dumps({"v": _CURSOR_VERSION, "after": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor names; ValueError when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ValueError("not a cursor") from error
    if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
        raise ValueError("not a cursor")
    after = data.get("after")
    if not isinstance(after, str) or not after:
        raise ValueError("not a cursor")
    return after


async def _list(request: web.Request, *, onboarded_only: bool) -> web.Response:
    """One cursor page of the inventory (all devices) or of the onboarded devices."""
    async with admit(request, "central") as admission:
        limit = int_param(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        after = None
        cursor = request.query.get("next")
        if cursor:
            try:
                after = decode_cursor(cursor)
            except ValueError:
                raise bad_query("next", "next is not a cursor this API issued") from None
        items, more, total = admission.workspace.central_page(
            after=after, limit=limit, onboarded_only=onboarded_only
        )
        body = {
            "items": items,
            "total": total,
            "count": len(items),
            # Keyset cursor: resumes after an id, so inserts and deletes never shift a walk.
            "next": encode_cursor(items[-1]["id"]) if more and items else None,
        }
        return await reply(admission, body, items=len(items))


async def list_device_inventory(request: web.Request) -> web.Response:
    """GET device-inventory: every device, onboarded or not."""
    return await _list(request, onboarded_only=False)


async def list_devices(request: web.Request) -> web.Response:
    """GET devices: onboarded devices only."""
    return await _list(request, onboarded_only=True)


def add_routes(app: web.Application) -> None:
    """Mount the New Central endpoints."""
    app.router.add_get(INVENTORY_PATH, list_device_inventory)
    app.router.add_get(DEVICES_PATH, list_devices)
