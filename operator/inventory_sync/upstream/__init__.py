"""Upstream API clients (GreenLake, New and classic Central): tokens, rate limits, retries, paging."""

from inventory_sync.upstream.central import (
    CENTRAL_INVENTORY_PATHS,
    ApiVersion,
    CentralClient,
    CentralLimits,
)
from inventory_sync.upstream.classic_central import (
    CLASSIC_INVENTORY_PATH,
    AccountBudget,
    ClassicCentralClient,
    ClassicCentralLimits,
)
from inventory_sync.upstream.credentials import ClientCredentials
from inventory_sync.upstream.greenlake import GreenLakeClient, GreenLakeLimits, Resource, id_filter
from inventory_sync.upstream.httpclient import (
    GREENLAKE_API_URL,
    TOKEN_URL,
    USER_AGENT,
    build_http_client,
)
from inventory_sync.upstream.paging import (
    NextMarker,
    Page,
    Prepare,
    decode_central_page,
    decode_json,
    decode_offset_page,
    require_whole,
)
from inventory_sync.upstream.ratelimit import RateLimiter, RateLimiterRegistry
from inventory_sync.upstream.refresh_tokens import OnRotate, RefreshTokenProvider
from inventory_sync.upstream.requesting import BearerTokens, Budget
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
from inventory_sync.upstream.walking import walk_concurrently

__all__ = [
    "CENTRAL_INVENTORY_PATHS",
    "CLASSIC_INVENTORY_PATH",
    "GREENLAKE_API_URL",
    "RETRYABLE_STATUSES",
    "TOKEN_URL",
    "USER_AGENT",
    "AccountBudget",
    "ApiVersion",
    "AttemptRecord",
    "BearerTokens",
    "Budget",
    "CentralClient",
    "CentralLimits",
    "ClassicCentralClient",
    "ClassicCentralLimits",
    "ClientCredentials",
    "GreenLakeClient",
    "GreenLakeLimits",
    "NextMarker",
    "OnRotate",
    "Page",
    "Prepare",
    "RateLimiter",
    "RateLimiterRegistry",
    "RefreshTokenProvider",
    "RequestStats",
    "Resource",
    "RetryPolicy",
    "TokenProvider",
    "TokenRejected",
    "build_http_client",
    "decode_central_page",
    "decode_json",
    "decode_offset_page",
    "id_filter",
    "require_whole",
    "safe_url",
    "send_and_read",
    "send_with_retries",
    "server_delay",
    "walk_concurrently",
]
