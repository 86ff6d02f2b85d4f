"""The list query parameters every list handler shares: filter, sort and select, in that order.

Lists may be lazy (lazylist.LazyList: millions of generated items), so a filter is planned
first: a lookup by id, or "changed after" a moment past every generated item, reads only the
items it can match; anything else scans the list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from aiohttp import web

from inventory_sync.simulator import filtering
from inventory_sync.simulator.dataset import HISTORY_END, JsonObject, format_timestamp
from inventory_sync.simulator.lazylist import LazyList
from inventory_sync.simulator.responses import bad_query

Rows = LazyList | list[JsonObject]
#: Every generated item was stamped at or before this (changes since are stamped later).
_GENERATED_UNTIL = format_timestamp(HISTORY_END)


def apply_query(
    request: web.Request, items: list[JsonObject], fields: Collection[str]
) -> list[JsonObject]:
    """`items` filtered, sorted and projected as the query says (a plain list in, out)."""
    rows = select_rows(request, items, fields)
    return project(request, list(rows) if isinstance(rows, LazyList) else rows, fields)


def select_rows(
    request: web.Request,
    rows: Rows,
    fields: Collection[str],
    *,
    keep: Callable[[JsonObject], bool] | None = None,
) -> Rows:
    """`rows` filtered (and `keep` applied) and sorted as the query says; unchanged (lazy) when
    the query asks for neither. A 400 names the parameter that does not parse or names a field
    the list does not have (never silently ignored)."""
    try:
        text = request.query.get("filter")
        expr = filtering.parse_filter(text, fields=fields) if text is not None else None
        sort = request.query.get("sort")
        keys = filtering.parse_sort(sort, fields=fields) if sort is not None else None
        for value in request.query.getall("select", []):
            filtering.parse_select(value, fields=fields)  # refuse a bad select before answering
    except filtering.FilterError as error:
        raise bad_query(error.parameter, str(error)) from None
    if expr is None and keep is None and keys is None:
        return rows
    candidates: Iterable[JsonObject] = rows if expr is None else _candidates(rows, expr)
    selected = [
        item
        for item in candidates
        if (expr is None or filtering.matches(expr, item)) and (keep is None or keep(item))
    ]
    return filtering.sort_items(selected, keys) if keys is not None else selected


def project(
    request: web.Request, page: Sequence[JsonObject], fields: Collection[str]
) -> list[JsonObject]:
    """`page` with only the fields `select` names (repeated or comma-separated), or as is."""
    selects = request.query.getall("select", [])
    if not selects:
        return list(page)
    names: list[str] = []
    for text in selects:
        names += filtering.parse_select(text, fields=fields)
    names = list(dict.fromkeys(names))
    return [filtering.project(item, names) for item in page]


def _candidates(rows: Rows, expr: filtering.Expr) -> Iterable[JsonObject]:
    """The items `expr` can match, in list order: fewer than all when a conjunct allows."""
    if not isinstance(rows, LazyList):
        return rows
    conjuncts = (
        expr.operands if isinstance(expr, filtering.Junction) and expr.op == "and" else (expr,)
    )
    for part in conjuncts:
        if not isinstance(part, filtering.Comparison) or len(part.path) != 1:
            continue
        if part.path[0] == "id" and part.op in ("eq", "in"):
            wanted = part.value if isinstance(part.value, tuple) else (part.value,)
            ids = [v for v in dict.fromkeys(wanted) if isinstance(v, str)]
            found = [item for v in ids if (item := rows.get(v)) is not None]
            return sorted(found, key=lambda item: rows.order_of(item["id"]))
        if (
            part.path[0] == "updatedAt"
            and part.op in ("gt", "ge")
            and isinstance(part.value, str)
            and filtering.compare_values(part.value, _GENERATED_UNTIL) == 1
        ):
            return rows.changed()  # generated items are all older: only changes can match
        if part.path[0] == "updatedAt" and part.op in ("gt", "ge") and isinstance(part.value, str):
            recent = rows.changed_after(part.value)
            if recent is not None:
                return recent
    return rows
