"""Envelope decoding: which upstream bodies become pages and which are refused as untrustworthy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from inventory_sync.errors import UpstreamProtocolError
from inventory_sync.upstream import (
    USER_AGENT,
    Page,
    build_http_client,
    decode_central_page,
    decode_offset_page,
    id_filter,
    safe_url,
)

DESCRIBE = "GET https://glp.example.test/devices/v1/devices"


def response(body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(200, content=body)
    return httpx.Response(200, json=body)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i)} for i in range(n)]


def test_a_whole_offset_page_is_a_page_numbered_by_its_offset() -> None:
    body = {"items": rows(10), "count": 10, "offset": 20, "total": 45}
    page = decode_offset_page(response(body), describe=DESCRIBE, offset=20, limit=10)
    assert page == Page(items=rows(10), total=45, number=2)


def test_the_last_offset_page_may_be_short() -> None:
    body = {"items": rows(5), "count": 5, "offset": 40, "total": 45}
    page = decode_offset_page(response(body), describe=DESCRIBE, offset=40, limit=10)
    assert len(page.items) == 5


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b'{"items": [', "not valid JSON", id="truncated JSON"),
        pytest.param(b"", "not valid JSON", id="empty body"),
        pytest.param([], "not an object", id="a list, not an envelope"),
        pytest.param({"total": 10}, "no 'items'", id="items missing"),
        pytest.param({"items": rows(10)}, "no 'total'", id="total missing"),
        pytest.param({"items": rows(10), "total": "10"}, "valid 'total'", id="total a string"),
        pytest.param({"items": rows(10), "total": True}, "valid 'total'", id="total a bool"),
        pytest.param({"items": [1, 2], "total": 2}, "other than objects", id="items not objects"),
        pytest.param({"items": rows(9), "count": 10, "total": 30}, "count=10", id="count mismatch"),
        pytest.param({"items": rows(9), "total": 30}, "expected 10", id="partial page"),
        pytest.param({"items": rows(10), "offset": 0, "total": 30}, "got 0", id="wrong offset"),
    ],
)
def test_untrustworthy_offset_pages_are_refused(body: Any, reason: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=reason) as caught:
        decode_offset_page(response(body), describe=DESCRIBE, offset=10, limit=10)
    assert str(caught.value).startswith(DESCRIBE)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        pytest.param(4, 4, id="a JSON integer is a page number"),
        pytest.param("4", 4, id="a string of digits is a page number"),
        pytest.param("eyJhZnRlciI6IjQyIn0", "eyJhZnRlciI6IjQyIn0", id="anything else: a cursor"),
    ],
)
def test_central_page_and_what_its_next_says(marker: Any, expected: int | str) -> None:
    body = {"items": rows(2), "total": 5, "count": 2, "next": marker}
    page, following = decode_central_page(response(body), describe=DESCRIBE, number=3)
    assert page == Page(items=rows(2), total=5, number=3)
    assert following == expected


@pytest.mark.parametrize("last", [{}, {"next": None}, {"next": ""}])
def test_absent_null_or_empty_next_ends_the_central_walk(last: dict[str, Any]) -> None:
    _, following = decode_central_page(response({"items": [], **last}), describe=DESCRIBE, number=0)
    assert following is None


@pytest.mark.parametrize(
    ("marker", "reason"),
    [
        pytest.param(0, "below 1", id="page 0"),
        pytest.param(True, "'next' is bool", id="a boolean"),
        pytest.param({"page": 2}, "'next' is dict", id="an object"),
    ],
)
def test_a_next_that_is_neither_page_nor_cursor_is_refused(marker: Any, reason: str) -> None:
    body = {"items": [], "total": 0, "next": marker}
    with pytest.raises(UpstreamProtocolError, match=reason):
        decode_central_page(response(body), describe=DESCRIBE, number=0)


def test_id_filter_quotes_ids_and_doubles_embedded_quotes() -> None:
    assert id_filter(["a", "b"]) == "id in ('a','b')"
    assert id_filter(["o'brien"]) == "id in ('o''brien')"


def test_safe_url_drops_query_fragment_and_user_info() -> None:
    url = "https://user:pw@sso.example.test:8443/as/token.oauth2?client_secret=x#frag"
    assert safe_url(url) == "https://sso.example.test:8443/as/token.oauth2"


async def test_http_client_has_timeouts_everywhere_and_names_itself() -> None:
    async with build_http_client(timeout=12) as client:
        timeout = client.timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (10, 12, 12, 12)
        assert client.headers["user-agent"] == USER_AGENT
        assert "inventory-sync-operator" in USER_AGENT
        assert not client.follow_redirects


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        # Beyond 64 bits: orjson would read a float and lose digits; every digit is kept.
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (b"-18446744073709551616", -18446744073709551616),
        (b"18446744073709551615", 18446744073709551615),  # the largest orjson keeps exact
        (b"NaN", "nan"),  # not JSON, but the standard library reads it: so do we
        (b'"\\ud800"', "\ud800"),  # a lone surrogate (orjson refuses it)
        (b'"caf\xc3\xa9"', "café"),
    ],
)
def test_item_values_decode_exactly_as_the_standard_library_reads_them(
    raw: bytes, value: Any
) -> None:
    body = b'{"items": [{"id": "1", "v": ' + raw + b'}], "count": 1, "offset": 0, "total": 1}'
    page = decode_offset_page(response(body), describe=DESCRIBE, offset=0, limit=10)
    decoded = page.items[0]["v"]
    if value == "nan":
        assert decoded != decoded
    else:
        assert decoded == value
        assert type(decoded) is type(value)


def test_a_body_that_is_not_json_is_refused_by_size_alone() -> None:
    with pytest.raises(UpstreamProtocolError, match=r"not valid JSON \(14 bytes\)"):
        decode_offset_page(response(b'{"items": [1,,'), describe=DESCRIBE, offset=0, limit=10)
