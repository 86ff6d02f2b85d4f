"""Retries with backoff for every upstream request: the one place deciding what is transient."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, TypeVar

import httpx

from inventory_sync import connect_errors
from inventory_sync.errors import (
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamRequestError,
    UpstreamUnavailable,
    public_message,
)
from inventory_sync.upstream.offloading import Offload
from inventory_sync.upstream.paging import Answer, Body

log = logging.getLogger(__name__)

_T = TypeVar("_T")

Sleep = Callable[[float], Awaitable[None]]

#: Statuses worth another try: rate limited, or the server (or a proxy before it) failed.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Headers naming how long to wait, in order of preference. Retry-After is standard (seconds
# or an HTTP-date); GreenLake documents `ratelimit-reset` (seconds); X-RateLimit-Reset is
# seconds in most APIs and an epoch timestamp in some, told apart by size below.
_DELAY_HEADERS = ("retry-after", "ratelimit-reset", "x-ratelimit-reset")
# No sane "seconds to wait" is this large: it is an epoch timestamp (2001-09-09 onwards).
_EPOCH_THRESHOLD = 1_000_000_000


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; delays use full jitter (AWS architecture blog)."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    #: Source of jitter in [0, 1); injectable so tests can pin delays.
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based) when the server gave no hint."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 64))
        return ceiling * self.random()


def server_delay(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (Retry-After or a rate-limit reset), if it said."""
    current = time.time() if now is None else now
    for name in _DELAY_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        delay = _parse_delay(value.strip(), current)
        if delay is not None:
            return max(0.0, delay)
    return None


def _parse_delay(value: str, now: float) -> float | None:
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return number - now if number >= _EPOCH_THRESHOLD else number
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with unknown origin (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def safe_url(url: httpx.URL | str) -> str:
    """The URL without query, fragment or user info: fit for messages and logs."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


@dataclass(frozen=True)
class AttemptRecord:
    """What one attempt of a request did; handed to `on_attempt` after every attempt."""

    describe: str
    attempt: int
    status_code: int | None
    #: Why the attempt failed (exception type, protocol problem); None on any HTTP answer
    #: that was read successfully.
    error: str | None
    #: Seconds slept before the next attempt; None when there is no next attempt.
    retry_in: float | None = None
    #: True when `retry_in` came from the server's Retry-After / rate-limit headers.
    server_hinted: bool = False


@dataclass
class RequestStats:
    """Counters a client accumulates for metrics; read them, never rely on their identity."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    #: Attempts that got no usable answer, by kind (exception type or "protocol").
    errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    backoff_seconds: float = 0.0
    rate_limit_wait_seconds: float = 0.0

    def record(self, attempt: AttemptRecord) -> None:
        """Account for one attempt; fits `on_attempt` directly."""
        self.requests += 1
        if attempt.status_code is not None:
            self.by_status[attempt.status_code] += 1
        if attempt.error is not None:
            self.errors[attempt.error] += 1
        if attempt.retry_in is not None:
            self.retries += 1
            self.backoff_seconds += attempt.retry_in

    def record_rate_limit_wait(self, seconds: float) -> None:
        """Account for time spent waiting on a client-side rate limiter."""
        self.rate_limit_wait_seconds += seconds


class TokenRejected(UpstreamAuthError):
    """The server answered 401: the caller refreshes its token once, then gives up."""


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    policy: RetryPolicy,
    describe: str,
    on_attempt: Callable[[AttemptRecord], None] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> httpx.Response:
    """Call `send` until it returns a 2xx response, retrying transient failures.

    Raises TokenRejected on 401, UpstreamRequestError on any other status that is neither
    2xx nor retryable (no retry: 400, 403, 404, an unexpected 3xx) and UpstreamUnavailable
    once `policy.max_attempts` attempts failed on 429, 5xx, timeouts or dropped connections.
    `describe` names the request in messages ("GET https://host/path", no query string).
    """
    return await _send_then_read(
        send, read=_as_is, policy=policy, describe=describe, on_attempt=on_attempt, sleep=sleep
    )


async def _as_is(response: httpx.Response) -> httpx.Response:
    return response


def _without_stream_cycle(response: httpx.Response) -> httpx.Response:
    """`response` (its body read and its connection released, as `send` returns it) with the
    reference cycle httpx makes between a response and its stream broken.

    Through that cycle a response, with its body, outlived us until a full garbage collection,
    and full collections grow rarer as a process ages: at a million devices 25-33 unreachable
    1.7 MB page bodies were alive at once and the client's peak RSS rose from 171 to 230 MB.
    Without it a body is freed as soon as its page is read.
    """
    if response.is_closed:
        response.stream = httpx.ByteStream(b"")
    return response


async def send_and_read(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    read: Callable[[Answer], _T],
    policy: RetryPolicy,
    describe: str,
    on_attempt: Callable[[AttemptRecord], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    offload: Offload | None = None,
) -> _T:
    """Like send_with_retries, then `read` the 2xx response (through `offload`, if given: off
    the event loop, and then `read` gets the response's `Body`); if `read` raises
    UpstreamProtocolError (malformed or inconsistent body) the request is retried like a 5xx,
    because on real networks a truncated body is as transient as a dropped connection."""

    async def reading(response: httpx.Response) -> _T:
        if offload is None:
            return read(response)
        # A worker process cannot take the response itself: its body and headers travel.
        return await offload(functools.partial(read, Body.of(response)))

    return await _send_then_read(
        send,
        read=reading,
        policy=policy,
        describe=describe,
        on_attempt=on_attempt,
        sleep=sleep,
    )


async def _send_then_read(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    read: Callable[[httpx.Response], Awaitable[_T]],
    policy: RetryPolicy,
    describe: str,
    on_attempt: Callable[[AttemptRecord], None] | None,
    sleep: Sleep,
) -> _T:
    def report(record: AttemptRecord) -> None:
        if on_attempt is not None:
            on_attempt(record)

    failure = "no attempt made"
    cause: BaseException | None = None
    for attempt in range(1, policy.max_attempts + 1):
        hint: float | None = None
        status: int | None = None
        error: str | None = None
        try:
            response = _without_stream_cycle(await send())
        except httpx.UnsupportedProtocol as exc:  # a bad URL in the configuration
            report(AttemptRecord(describe, attempt, None, type(exc).__name__))
            raise UpstreamRequestError(f"{describe}: {public_message(exc)}") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            failure, cause, error = _exception_summary(exc), exc, type(exc).__name__
        else:
            status = response.status_code
            if response.is_success:
                try:
                    result = await read(response)
                except UpstreamProtocolError as exc:
                    failure = str(exc).removeprefix(f"{describe}: ")
                    cause, error = exc, "protocol"
                else:
                    report(AttemptRecord(describe, attempt, status, None))
                    return result
            elif status == 401:
                report(AttemptRecord(describe, attempt, status, None))
                raise TokenRejected(f"{describe}: HTTP 401{error_detail(response)}")
            elif status in policy.retry_statuses:
                failure, cause = f"HTTP {status}{error_detail(response)}", None
                hint = server_delay(response.headers)
            else:
                report(AttemptRecord(describe, attempt, status, None))
                raise UpstreamRequestError(f"{describe}: HTTP {status}{error_detail(response)}")

        if attempt == policy.max_attempts:
            report(AttemptRecord(describe, attempt, status, error))
            break
        delay = min(hint, policy.max_delay) if hint is not None else policy.backoff(attempt)
        report(AttemptRecord(describe, attempt, status, error, delay, hint is not None))
        log.info("%s failed (%s); attempt %d in %.2fs", describe, failure, attempt + 1, delay)
        await sleep(delay)

    kind = (
        UpstreamProtocolError if isinstance(cause, UpstreamProtocolError) else UpstreamUnavailable
    )
    raise kind(
        f"{describe}: gave up after {policy.max_attempts} attempts; last: {failure}"
    ) from cause


def _exception_summary(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError | httpx.TimeoutException):
        # Say which of certificate, DNS, refused or timeout it was, not just "ConnectError".
        try:
            url = exc.request.url
        except RuntimeError:  # raised without a request (scripted failures in tests)
            url = None
        if url is not None:
            port = url.port or (443 if url.scheme == "https" else 80)
            return connect_errors.describe(exc, target=f"{url.host}:{port}")
    text = public_message(exc, limit=160)
    name = type(exc).__name__
    return name if text == name else f"{name}: {text}"


# Vendor error bodies can be long; a code, message and debug id are what an operator needs.
_DETAIL_LIMIT = 200


def error_detail(response: httpx.Response) -> str:
    """A short, sanitized summary of an error body (GreenLake, OAuth2 or classic Central
    shape), or ''."""
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [
        str(body[key])
        for key in ("errorCode", "error", "message", "error_description", "description", "debugId")
        if isinstance(body.get(key), str | int) and body.get(key) != ""
    ]
    if not parts:
        return ""
    text = public_message(ValueError(" ".join(parts)), limit=_DETAIL_LIMIT)
    return f" ({text})"
