"""Pages and their envelopes: upstream response bodies become trusted `Page`s or are refused."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson

from inventory_sync.errors import UpstreamProtocolError


@dataclass(frozen=True)
class Page:
    """One page of upstream items; `number` is its 0-based index in request order."""

    items: list[dict[str, Any]]
    total: int | None
    number: int
    #: The server's clock when it answered (its `Date` header), if it said: the time base for
    #: high-water marks that must not depend on our own clock.
    server_date: datetime | None = None
    #: The newest `updatedAt` among the items (GreenLake pages), read where the page was
    #: decoded: what a high-water mark needs after `prepare` has dropped the items.
    newest_update: datetime | None = None
    #: What the caller's `Prepare` made of the items where the page was decoded (opaque here);
    #: `items` is then empty.
    prepared: object | None = None


#: Applied to each page in the task that fetched it, before the page waits for its consumer:
#: e.g. encoding the items for the store, so that a queued page holds a few strings instead
#: of thousands of dicts (the garbage collector scans every live dict on a full collection).
Prepare = Callable[[Page], Page]


class Answer(Protocol):
    """What reading a page needs of a response: an `httpx.Response`, or its `Body`."""

    @property
    def content(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Body:
    """A response's body and headers, detached from its connection: what a page decoder in
    another process is sent (a response itself cannot be pickled)."""

    content: bytes
    headers: Mapping[str, str]

    @classmethod
    def of(cls, response: httpx.Response) -> Body:
        return cls(response.content, dict(response.headers))


def server_date(answer: Answer) -> datetime | None:
    """The answer's `Date` header as an aware datetime, or None when absent or malformed."""
    value = answer.headers.get("date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


#: orjson reads an integer beyond 64 bits as a float, silently: a body with 20 digits in a row
#: (anywhere, strings included) goes to the standard library, which keeps every digit. Found
#: by mapping every digit to "0" and searching for twenty of them: C-speed bytes methods,
#: ~2 ms per MB where a regular expression took ~25.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_WIDE = b"0" * 20


def _may_hold_wide_integer(body: bytes) -> bool:
    return body.translate(_DIGITS_AS_ZERO).find(_WIDE) != -1


def decode_json(answer: Answer, *, describe: str) -> Any:
    """The answer's JSON body; malformed or truncated JSON becomes UpstreamProtocolError.

    The message gives the body's size, never its text: a body can echo anything. orjson
    decodes a 2000-item page several times faster than the standard library (it was 43 % of
    a large walk's CPU); the standard library reads what orjson would change or refuse.
    """
    body = answer.content
    if not _may_hold_wide_integer(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, a lone surrogate, another charset: the standard library decides
    try:
        return json.loads(body)  # what httpx's Response.json() does (bytes: UTF-8/16/32)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamProtocolError(
            f"{describe}: body is not valid JSON ({len(body)} bytes)"
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


def require_whole(page: Page, *, describe: str, offset: int, limit: int) -> None:
    """Refuse a page that holds fewer items than min(limit, total - offset) by its own total.

    A short page in the middle of a walk is a partial answer (a proxy cut it, the server
    timed out a shard) that would silently drop items, so it is refused and retried rather
    than trusted. Each page is judged by its own `total`: when the data moved between pages,
    every page is still whole, and the walk's deletion check sees the totals differ.
    """
    if page.total is None:
        raise UpstreamProtocolError(f"{describe}: envelope has no 'total'")
    expected = max(0, min(limit, page.total - offset))
    if len(page.items) != expected:
        raise UpstreamProtocolError(
            f"{describe}: page at offset {offset} holds {len(page.items)} items, "
            f"expected {expected} (limit {limit}, total {page.total})"
        )


def decode_offset_page(answer: Answer, *, describe: str, offset: int, limit: int) -> Page:
    """A GreenLake `{items, count, offset, total}` page requested at `offset` with `limit`;
    it must be whole (see `require_whole`)."""
    body, items = _envelope(decode_json(answer, describe=describe), describe=describe)
    total = _count(body, "total", describe=describe)
    echoed = body.get("offset")
    if echoed is not None and echoed != offset:
        raise UpstreamProtocolError(f"{describe}: asked for offset {offset}, got {echoed!r}")
    page = Page(
        items=items,
        total=total,
        number=offset // limit,
        server_date=server_date(answer),
        newest_update=newest_timestamp(items, "updatedAt"),
    )
    require_whole(page, describe=describe, offset=offset, limit=limit)
    return page


#: What a New Central page says comes next: a page number (v1: 1-based integers), an opaque
#: cursor (tolerated: older deployments and proxies have sent strings), or None at the end.
NextMarker = int | str | None


def decode_central_page(answer: Answer, *, describe: str, number: int) -> tuple[Page, NextMarker]:
    """A New Central `{items, total, count, next}` page (`number` is its 0-based index) and
    its `next`: an int when it is a page number (a JSON integer or a string of digits), the
    string itself when it is an opaque cursor, None (or "") at the end."""
    body, items = _envelope(decode_json(answer, describe=describe), describe=describe)
    total = _count(body, "total", describe=describe)
    marker = body.get("next")
    if marker is not None and (isinstance(marker, bool) or not isinstance(marker, str | int)):
        raise UpstreamProtocolError(f"{describe}: 'next' is {type(marker).__name__}")
    page = Page(items=items, total=total, number=number, server_date=server_date(answer))
    if marker is None or marker == "":
        return page, None
    if isinstance(marker, int) or marker.isdigit():
        value = int(marker)
        if value < 1:
            raise UpstreamProtocolError(f"{describe}: 'next' page number {value} is below 1")
        return page, value
    return page, marker


def newest_timestamp(items: list[dict[str, Any]], field: str) -> datetime | None:
    """The latest ISO-8601 instant among the items' `field` values; None when none has one."""
    newest: datetime | None = None
    newest_text = ""
    for item in items:
        stamp = item.get(field)
        # Same-format ISO strings sort like instants: parse only what may be newer.
        if isinstance(stamp, str) and (stamp[:19] >= newest_text[:19] or not stamp.endswith("Z")):
            moment = parse_timestamp(stamp)
            if moment is not None and (newest is None or moment > newest):
                newest, newest_text = moment, stamp
    return newest


def parse_timestamp(text: str) -> datetime | None:
    """An aware datetime from an ISO-8601 stamp, or None when it is not one (or is naive)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def chunked(values: list[str], size: int) -> list[list[str]]:
    """`values` in consecutive chunks of at most `size`."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [values[start : start + size] for start in range(0, len(values), size)]
