"""Pages and their envelopes: upstream response bodies become trusted `Page`s or are refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from inventory_sync.errors import UpstreamProtocolError


@dataclass(frozen=True)
class Page:
    """One page of upstream items; `number` is its 0-based index in request order."""

    items: list[dict[str, Any]]
    total: int | None
    number: int


def decode_json(response: httpx.Response, *, describe: str) -> Any:
    """The response's JSON body; malformed or truncated JSON becomes UpstreamProtocolError.

    The message gives the body's size, never its text: a body can echo anything.
    """
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamProtocolError(
            f"{describe}: body is not valid JSON ({len(response.content)} bytes)"
        ) from exc


def _envelope(body: Any, *, describe: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(body, dict):
        raise UpstreamProtocolError(f"{describe}: envelope is {type(body).__name__}, not an object")
    items = body.get("items")
    if not isinstance(items, list):
        raise UpstreamProtocolError(f"{describe}: envelope has no 'items' list")
    if not all(isinstance(item, dict) for item in items):
        raise UpstreamProtocolError(f"{describe}: 'items' holds something other than objects")
    count = body.get("count")
    if count is not None and count != len(items):
        raise UpstreamProtocolError(
            f"{describe}: envelope says count={count!r} but holds {len(items)} items"
        )
    return body, items


def _count(body: dict[str, Any], key: str, *, describe: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python; a JSON true is no count.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UpstreamProtocolError(f"{describe}: envelope has no valid '{key}' ({value!r})")
    return value


def decode_offset_page(response: httpx.Response, *, describe: str, offset: int, limit: int) -> Page:
    """A GreenLake `{items, count, offset, total}` page requested at `offset` with `limit`.

    Besides shape, the page must be whole: it holds min(limit, total - offset) items by its
    own `total`. A short page in the middle of a walk is a partial answer (a proxy cut it,
    the server timed out a shard) that would silently drop devices, so it is refused and
    retried rather than trusted.
    """
    body, items = _envelope(decode_json(response, describe=describe), describe=describe)
    total = _count(body, "total", describe=describe)
    if total is None:
        raise UpstreamProtocolError(f"{describe}: envelope has no 'total'")
    echoed = body.get("offset")
    if echoed is not None and echoed != offset:
        raise UpstreamProtocolError(f"{describe}: asked for offset {offset}, got {echoed!r}")
    expected = max(0, min(limit, total - offset))
    if len(items) != expected:
        raise UpstreamProtocolError(
            f"{describe}: page at offset {offset} holds {len(items)} items, "
            f"expected {expected} (limit {limit}, total {total})"
        )
    return Page(items=items, total=total, number=offset // limit)


def decode_cursor_page(
    response: httpx.Response, *, describe: str, number: int
) -> tuple[Page, str | None]:
    """A New Central `{items, total, count, next}` page and its next cursor (None at the end)."""
    body, items = _envelope(decode_json(response, describe=describe), describe=describe)
    total = _count(body, "total", describe=describe)
    cursor = body.get("next")
    if cursor is not None and not isinstance(cursor, str | int):
        raise UpstreamProtocolError(f"{describe}: 'next' cursor is {type(cursor).__name__}")
    next_cursor = None if cursor is None or cursor == "" else str(cursor)
    return Page(items=items, total=total, number=number), next_cursor


def chunked(values: list[str], size: int) -> list[list[str]]:
    """`values` in consecutive chunks of at most `size`."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [values[start : start + size] for start in range(0, len(values), size)]
