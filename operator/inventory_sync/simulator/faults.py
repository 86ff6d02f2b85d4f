"""Fault injection (aiohttp middleware): rules pick requests, kinds spoil their answers.

A new kind is one registered coroutine:

    @fault_kind("slow_body")
    async def _slow_body(fault: Fault) -> web.StreamResponse:
        ...  # fault.rule, fault.request, await fault.answer() for the real response
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ConfigDict, Field, field_validator

from inventory_sync.simulator.responses import error_body, json_response

#: Request families a rule can target; "token" is both OAuth2 endpoints (HPE SSO, classic).
RouteFamily = Literal[
    "token",
    "glp_devices",
    "glp_subscriptions",
    "glp_subscription_get",
    "central",
    "classic_central",
]


class Dropped(web.Response):
    """What a handler returns after aborting the connection: never sent, but counted as "reset"."""


class FaultRule(BaseModel):
    """Which requests to spoil and how. Rules are tried in order; the first that fires wins.

    A rule counts the requests it matches: the first `after` pass untouched, then it fires on
    `count` of them (None: on all), each with `probability` drawn from the seeded RNG.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="A registered fault kind, e.g. status, reset, partial_page.")
    route: str = Field("*", description="Glob on the request path, e.g. '/devices/v1/*'.")
    family: RouteFamily | None = Field(None, description="Only requests of this family.")
    workspace: str | None = Field(None, description="Only requests with this workspace's token.")
    after: int = Field(0, ge=0, description="Matching requests let through before firing.")
    count: int | None = Field(1, ge=1, description="How many times to fire; None: unbounded.")
    probability: float = Field(1.0, ge=0, le=1, description="Chance to fire per eligible request.")
    status: int = Field(503, ge=400, le=599, description="`status`: the HTTP status answered.")
    body: dict[str, Any] | None = Field(None, description="`status`: body instead of the vendor's.")
    retry_after_seconds: int = Field(1, ge=0, description="`rate_limit`: the Retry-After value.")
    delay_seconds: float = Field(5.0, ge=0, description="`delay`: sleep before answering.")
    keep_fraction: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="`truncated_json`: share of the body kept; `partial_page`: share of items.",
    )

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind: str) -> str:
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}"
            )
        return kind


class Dialect(Protocol):
    """How an upstream family words an error: GreenLake and New Central share the vendor
    body and ratelimit-* headers; classic Central and the token endpoints have their own."""

    def error(self, status: int, message: str) -> web.Response: ...

    def rate_limited(self, retry_after: int) -> web.Response: ...


class GreenLakeDialect:
    """The vendor error body; a 429 with exhausted ratelimit-* headers and Retry-After."""

    def error(self, status: int, message: str) -> web.Response:
        return json_response(error_body(status, message), status=status)

    def rate_limited(self, retry_after: int) -> web.Response:
        headers = {
            "Retry-After": str(retry_after),
            "ratelimit-limit": "1",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(retry_after),
        }
        body = error_body(429, "Too many requests", retry_after=retry_after)
        return json_response(body, status=429, headers=headers)


@dataclass
class Fault:
    """One firing of a rule on one request; `dialect` words the errors for its family."""

    rule: FaultRule
    request: web.Request
    handler: Handler
    dialect: Dialect = field(default_factory=GreenLakeDialect)

    async def answer(self) -> web.StreamResponse:
        """The response the simulator would have sent without the fault."""
        return await self.handler(self.request)


FaultKind = Callable[[Fault], Awaitable[web.StreamResponse]]
FAULT_KINDS: dict[str, FaultKind] = {}


def fault_kind(name: str) -> Callable[[FaultKind], FaultKind]:
    """Register a fault kind under `name` (the value of FaultRule.kind)."""

    def register(function: FaultKind) -> FaultKind:
        FAULT_KINDS[name] = function
        return function

    return register


class FaultPlan:
    """The active rules and how often each has matched and fired; thread-safe."""

    def __init__(self, rules: list[FaultRule], *, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self.replace(rules)

    def replace(self, rules: list[FaultRule]) -> None:
        """Make `rules` the active set, with fresh counters and a reseeded RNG."""
        with self._lock:
            self._rules = list(rules)
            self._seen = [0] * len(rules)
            self._fired = [0] * len(rules)
            self._rng = random.Random(f"{self._seed}/faults")

    def choose(self, *, path: str, family: str | None, workspace: str | None) -> FaultRule | None:
        """The rule that fires on this request, if any (and count it)."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if not fnmatch.fnmatchcase(path, rule.route):
                    continue
                if rule.family is not None and rule.family != family:
                    continue
                if rule.workspace is not None and rule.workspace != workspace:
                    continue
                self._seen[i] += 1
                if self._seen[i] <= rule.after:
                    continue
                if rule.count is not None and self._fired[i] >= rule.count:
                    continue
                if rule.probability < 1 and self._rng.random() >= rule.probability:
                    continue
                self._fired[i] += 1
                return rule
        return None

    def report(self) -> list[dict[str, Any]]:
        """Each rule with its `matched` and `fired` counters."""
        with self._lock:
            return [
                {**rule.model_dump(), "matched": seen, "fired": fired}
                for rule, seen, fired in zip(self._rules, self._seen, self._fired, strict=True)
            ]


Classifier = Callable[[web.Request], tuple[str | None, str | None]]
#: The dialect of a request's family (None: GreenLake's).
DialectFor = Callable[[web.Request, str | None], Dialect | None]


def fault_middleware(
    plan: FaultPlan, classify: Classifier, dialect_for: DialectFor | None = None
) -> Middleware:
    """Middleware consulting `plan`; `classify` gives a request's (family, workspace) and
    `dialect_for` how that family words an injected error."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_simulator/"):
            return await handler(request)  # the admin API is never spoiled
        family, workspace = classify(request)
        rule = plan.choose(path=request.path, family=family, workspace=workspace)
        if rule is None:
            return await handler(request)
        dialect = dialect_for(request, family) if dialect_for is not None else None
        fault = Fault(rule, request, handler, dialect or GreenLakeDialect())
        return await FAULT_KINDS[rule.kind](fault)

    return middleware


def _rebuilt(original: web.StreamResponse, body: bytes) -> web.StreamResponse:
    """`original` with another body, keeping its status and headers (ratelimit-* included)."""
    headers = {
        k: v
        for k, v in original.headers.items()
        if k.lower() not in ("content-length", "content-type")
    }
    response = web.Response(body=body, status=original.status, headers=headers)
    response.content_type = original.content_type
    return response


@fault_kind("status")
async def _status(fault: Fault) -> web.StreamResponse:
    """An error status (a 5xx burst) with the family's error body or the rule's own."""
    if fault.rule.body is not None:
        return json_response(fault.rule.body, status=fault.rule.status)
    return fault.dialect.error(fault.rule.status, "Injected fault")


@fault_kind("rate_limit")
async def _rate_limit(fault: Fault) -> web.StreamResponse:
    """A 429 with Retry-After, worded as the family words it (headers and body)."""
    return fault.dialect.rate_limited(fault.rule.retry_after_seconds)


@fault_kind("delay")
async def _delay(fault: Fault) -> web.StreamResponse:
    """The real answer, late: long enough delays trip client timeouts."""
    await asyncio.sleep(fault.rule.delay_seconds)
    return await fault.answer()


@fault_kind("reset")
async def _reset(fault: Fault) -> web.StreamResponse:
    """Drop the connection without any response."""
    if fault.request.transport is not None:
        fault.request.transport.abort()
    # aiohttp cannot write this to the aborted transport; it is discarded silently.
    return Dropped(status=204)


@fault_kind("truncated_json")
async def _truncated_json(fault: Fault) -> web.StreamResponse:
    """The real status and headers with the body cut mid-JSON (Content-Length matches the cut)."""
    response = await fault.answer()
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    cut = max(1, min(len(response.body) - 1, int(len(response.body) * fault.rule.keep_fraction)))
    return _rebuilt(response, response.body[:cut])


@fault_kind("malformed_json")
async def _malformed_json(fault: Fault) -> web.StreamResponse:
    """The real status with a complete body that is not JSON (a trailing comma and a bare word)."""
    response = await fault.answer()
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    body = response.body.rstrip()
    spoiled = body[:-1] + b",oops}" if body.endswith(b"}") else body + b"}{"
    return _rebuilt(response, spoiled)


@fault_kind("partial_page")
async def _partial_page(fault: Fault) -> web.StreamResponse:
    """Fewer items than `count` (and `total`) claim: an inconsistent but well-formed page."""
    response = await fault.answer()
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    try:
        page = json.loads(response.body)
    except ValueError:
        return response
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        return response
    items = page["items"]
    page["items"] = items[: int(len(items) * fault.rule.keep_fraction)]
    return _rebuilt(response, json.dumps(page, separators=(",", ":")).encode())
