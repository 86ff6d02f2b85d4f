"""Upstream API clients (GreenLake, New Central): tokens, rate limits, retries and paging."""

from inventory_sync.upstream.central import CentralClient, CentralLimits
from inventory_sync.upstream.credentials import ClientCredentials
from inventory_sync.upstream.greenlake import GreenLakeClient, GreenLakeLimits, Resource, id_filter
from inventory_sync.upstream.httpclient import (
    CENTRAL_INVENTORY_PATH,
    GREENLAKE_API_URL,
    TOKEN_URL,
    USER_AGENT,
    build_http_client,
)
from inventory_sync.upstream.paging import (
    Page,
    decode_cursor_page,
    decode_json,
    decode_offset_page,
)
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry
from inventory_sync.upstream.retrying import (
    RETRYABLE_STATUSES,
    AttemptRecord,
    RequestStats,
    RetryPolicy,
    TokenRejected,
    safe_url,
    send_and_read,
    send_with_retries,
    server_delay,
)
from inventory_sync.upstream.tokens import TokenProvider

__all__ = [
    "CENTRAL_INVENTORY_PATH",
    "GREENLAKE_API_URL",
    "RETRYABLE_STATUSES",
    "TOKEN_URL",
    "USER_AGENT",
    "AttemptRecord",
    "CentralClient",
    "CentralLimits",
    "ClientCredentials",
    "GreenLakeClient",
    "GreenLakeLimits",
    "Page",
    "RateLimiter",
    "RateLimiterRegistry",
    "RequestStats",
    "Resource",
    "RetryPolicy",
    "TokenProvider",
    "TokenRejected",
    "build_http_client",
    "decode_cursor_page",
    "decode_json",
    "decode_offset_page",
    "id_filter",
    "safe_url",
    "send_and_read",
    "send_with_retries",
    "server_delay",
]
