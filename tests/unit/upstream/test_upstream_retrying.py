"""send_with_retries: which failures are retried, how long it waits, what it raises."""

from __future__ import annotations

import email.utils
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from inventory_sync.errors import (
    UpstreamProtocolError,
    UpstreamRequestError,
    UpstreamUnavailable,
)
from inventory_sync.upstream import (
    AttemptRecord,
    RequestStats,
    RetryPolicy,
    TokenRejected,
    decode_json,
    safe_url,
    send_and_read,
    send_with_retries,
    server_delay,
)

URL = "https://glp.example.test/devices/v1/devices?filter=secret-ish"
DESCRIBE = f"GET {safe_url(URL)}"
REQUEST = httpx.Request("GET", URL)

Step = int | tuple[int, dict[str, str]] | Exception | bytes


def scripted(*steps: Step) -> tuple[Callable[[], Awaitable[httpx.Response]], list[int]]:
    """A `send` that plays `steps` in order (status, (status, headers), exception, 200 body)."""
    calls: list[int] = []
    remaining = list(steps)

    async def send() -> httpx.Response:
        calls.append(1)
        step = remaining.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, bytes):
            return httpx.Response(200, content=step, request=REQUEST)
        status, headers = step if isinstance(step, tuple) else (step, {})
        return httpx.Response(status, headers=headers, json={"ok": status}, request=REQUEST)

    return send, calls


@pytest.fixture
def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30, random=lambda: 0.5)


async def test_500_burst_then_success_retries_with_jittered_backoff(
    policy: RetryPolicy, sleeps: Any
) -> None:
    send, calls = scripted(500, 502, 503, 200)
    response = await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert response.status_code == 200
    assert len(calls) == 4
    # Full jitter at random()=0.5: half of 0.5, 1.0, 2.0.
    assert sleeps.delays == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="Retry-After seconds"),
        pytest.param({"ratelimit-reset": "12"}, 12.0, id="GreenLake ratelimit-reset"),
        pytest.param({"X-RateLimit-Reset": "3.5"}, 3.5, id="X-RateLimit-Reset seconds"),
        pytest.param({"Retry-After": "3600"}, 30.0, id="capped by max_delay"),
    ],
)
async def test_429_waits_as_long_as_the_server_says(
    policy: RetryPolicy, sleeps: Any, headers: dict[str, str], expected: float
) -> None:
    records: list[AttemptRecord] = []
    send, _ = scripted((429, headers), 200)
    await send_with_retries(
        send, policy=policy, describe=DESCRIBE, sleep=sleeps, on_attempt=records.append
    )
    assert sleeps.delays == [expected]
    assert records[0].server_hinted
    assert records[0].status_code == 429


def test_retry_after_as_http_date_and_epoch_reset_are_relative_to_now() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert server_delay(httpx.Headers({"Retry-After": date}), now=now) == pytest.approx(20)
    assert server_delay(httpx.Headers({"X-RateLimit-Reset": str(now + 9)}), now=now) == 9
    assert server_delay(httpx.Headers({"Retry-After": "soon"}), now=now) is None
    assert server_delay(httpx.Headers({}), now=now) is None


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ReadTimeout("timed out"), id="timeout"),
        pytest.param(httpx.ConnectError("[Errno 111] Connection refused"), id="refused"),
        pytest.param(httpx.ReadError("[Errno 104] Connection reset by peer"), id="reset"),
        pytest.param(httpx.RemoteProtocolError("peer closed connection"), id="protocol"),
    ],
)
async def test_transport_failure_then_success(
    policy: RetryPolicy, sleeps: Any, failure: Exception
) -> None:
    send, calls = scripted(failure, 200)
    response = await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert response.status_code == 200
    assert len(calls) == 2


async def test_exhausted_retries_raise_upstream_unavailable_naming_the_last_failure(
    policy: RetryPolicy, sleeps: Any
) -> None:
    send, calls = scripted(503, 503, 503, 503)
    with pytest.raises(UpstreamUnavailable) as caught:
        await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert len(calls) == policy.max_attempts
    assert len(sleeps.delays) == policy.max_attempts - 1
    message = str(caught.value)
    assert "gave up after 4 attempts" in message
    assert "HTTP 503" in message
    assert "?" not in message  # no query string


async def test_exhausted_on_timeouts_chains_the_last_exception(
    policy: RetryPolicy, sleeps: Any
) -> None:
    send, _ = scripted(*[httpx.ConnectTimeout("connect timed out")] * 4)
    with pytest.raises(UpstreamUnavailable) as caught:
        await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert isinstance(caught.value.__cause__, httpx.ConnectTimeout)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_other_4xx_raise_request_error_without_retry(
    policy: RetryPolicy, sleeps: Any, status: int
) -> None:
    send, calls = scripted(status)
    with pytest.raises(UpstreamRequestError, match=f"HTTP {status}"):
        await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert len(calls) == 1
    assert sleeps.delays == []


async def test_401_is_left_to_the_caller_as_token_rejected(
    policy: RetryPolicy, sleeps: Any
) -> None:
    send, calls = scripted(401)
    with pytest.raises(TokenRejected):
        await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert len(calls) == 1


async def test_vendor_error_body_is_summarised_in_the_message(
    policy: RetryPolicy, sleeps: Any
) -> None:
    async def send() -> httpx.Response:
        body = {
            "errorCode": "HPE_GL_ERROR_BAD_REQUEST",
            "message": "limit too big",
            "debugId": "d1",
        }
        return httpx.Response(400, json=body, request=REQUEST)

    with pytest.raises(UpstreamRequestError) as caught:
        await send_with_retries(send, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert str(caught.value) == (
        "GET https://glp.example.test/devices/v1/devices: "
        "HTTP 400 (HPE_GL_ERROR_BAD_REQUEST limit too big d1)"
    )


async def test_malformed_body_is_retried_then_read(policy: RetryPolicy, sleeps: Any) -> None:
    send, calls = scripted(b'{"items": [{"id": "a"', b'{"items": []}')

    def read(response: httpx.Response) -> object:
        return decode_json(response, describe=DESCRIBE)

    body = await send_and_read(send, read=read, policy=policy, describe=DESCRIBE, sleep=sleeps)
    assert body == {"items": []}
    assert len(calls) == 2


async def test_malformed_body_every_time_raises_protocol_error(
    policy: RetryPolicy, sleeps: Any
) -> None:
    send, _ = scripted(*[b"<html>proxy error</html>"] * 4)

    def read(response: httpx.Response) -> object:
        return decode_json(response, describe=DESCRIBE)

    with pytest.raises(UpstreamProtocolError, match="not valid JSON"):
        await send_and_read(send, read=read, policy=policy, describe=DESCRIBE, sleep=sleeps)


async def test_stats_count_requests_statuses_retries_and_backoff(
    policy: RetryPolicy, sleeps: Any
) -> None:
    stats = RequestStats()
    send, _ = scripted((429, {"Retry-After": "2"}), httpx.ReadTimeout("t"), 200)
    await send_with_retries(
        send, policy=policy, describe=DESCRIBE, sleep=sleeps, on_attempt=stats.record
    )
    assert stats.requests == 3
    assert stats.by_status == {429: 1, 200: 1}
    assert stats.errors == {"ReadTimeout": 1}
    assert stats.retries == 2
    assert stats.backoff_seconds == pytest.approx(2 + 0.5)


def test_backoff_ceiling_grows_exponentially_up_to_max_delay() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30, random=lambda: 0.999999)
    ceilings = [round(policy.backoff(n), 2) for n in range(1, 9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
