"""The list query parameters every list handler shares: filter, sort and select, in that order."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from inventory_sync.simulator import filtering
from inventory_sync.simulator.dataset import JsonObject
from inventory_sync.simulator.responses import bad_query


def apply_query(
    request: web.Request, items: list[JsonObject], fields: Collection[str]
) -> list[JsonObject]:
    """`items` filtered, sorted and projected as the query says; a 400 naming the parameter when
    one does not parse or names a field the list does not have (never silently ignored).

    `select` may be repeated (`select=a&select=b`, as clients that pass a list send it) or
    comma-separated; every field named is kept.
    """
    try:
        text = request.query.get("filter")
        if text is not None:
            expr = filtering.parse_filter(text, fields=fields)
            items = [item for item in items if filtering.matches(expr, item)]
        text = request.query.get("sort")
        if text is not None:
            items = filtering.sort_items(items, filtering.parse_sort(text, fields=fields))
        selects = request.query.getall("select", [])
        if selects:
            names: list[str] = []
            for text in selects:
                names += filtering.parse_select(text, fields=fields)
            names = list(dict.fromkeys(names))
            items = [filtering.project(item, names) for item in items]
    except filtering.FilterError as error:
        raise bad_query(error.parameter, str(error)) from None
    return items
