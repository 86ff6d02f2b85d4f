"""The simulator's control API under /_simulator/ for tests and the demo (loopback, no auth)."""

from __future__ import annotations

from typing import Any, Literal, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from inventory_sync.simulator.classic_account import ClassicAccount
from inventory_sync.simulator.faults import FaultRule
from inventory_sync.simulator.responses import ApiError, json_response
from inventory_sync.simulator.state import STATE_KEY
from inventory_sync.simulator.workspace import WorkspaceState

PREFIX = "/_simulator"

_RULES = TypeAdapter(list[FaultRule])


class Mutation(BaseModel):
    """Body of POST /_simulator/mutate."""

    model_config = ConfigDict(extra="forbid")

    workspace: str | None = Field(None, description="Workspace id; default: the first.")
    action: Literal["add", "delete", "touch"]
    target: Literal["glp_devices", "central_devices", "classic_devices"]
    ids: list[str] | None = Field(
        None, description="Items to delete or touch (serials for classic_devices)."
    )
    count: int | None = Field(None, ge=0, description="How many to add, or to pick at random.")
    skew_seconds: float = Field(
        0.0,
        description=(
            "glp_devices add/touch: stamp updatedAt this far off the server's clock (negative:"
            " a lagging node), to test high-water marks."
        ),
    )

    @model_validator(mode="after")
    def _ids_or_count(self) -> Self:
        if self.action == "add" and self.count is None:
            raise ValueError("add needs count")
        if self.action != "add" and (self.ids is None) == (self.count is None):
            raise ValueError("delete and touch need exactly one of ids or count")
        return self

    def apply(self, workspace: WorkspaceState) -> list[str]:
        """Carry the mutation out; returns the affected ids."""
        glp = self.target == "glp_devices"
        if self.action == "add":
            count = self.count or 0
            if glp:
                return workspace.add_glp_devices(count, skew_seconds=self.skew_seconds)
            return workspace.add_central_devices(count)
        ids = self.ids
        if ids is None:
            pick = workspace.pick_glp_device_ids if glp else workspace.pick_central_device_ids
            ids = pick(self.count or 0)
        if self.action == "delete":
            return (
                workspace.delete_glp_devices(ids) if glp else workspace.delete_central_devices(ids)
            )
        if glp:
            return workspace.touch_glp_devices(ids, skew_seconds=self.skew_seconds)
        return workspace.touch_central_devices(ids)

    def apply_classic(self, account: ClassicAccount) -> list[str]:
        """Carry the mutation out on a classic account; returns the affected serials."""
        if self.action == "add":
            return account.add_devices(self.count or 0)
        serials = self.ids if self.ids is not None else account.pick_serials(self.count or 0)
        if self.action == "delete":
            return account.delete_devices(serials)
        return account.touch_devices(serials)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "Body is not JSON") from None


def _invalid(error: ValidationError) -> ApiError:
    issues = [
        {"source": "body", "subject": ".".join(map(str, e["loc"])), "description": e["msg"]}
        for e in error.errors()
    ]
    return ApiError(400, "Invalid body", issues=issues)


async def stats(request: web.Request) -> web.Response:
    """GET /_simulator/stats: requests per route and status, peak concurrency, tokens, counts."""
    return json_response(request.app[STATE_KEY].snapshot())


async def get_faults(request: web.Request) -> web.Response:
    """GET /_simulator/faults: the active rules with matched/fired counters."""
    return json_response(request.app[STATE_KEY].faults.report())


async def put_faults(request: web.Request) -> web.Response:
    """POST /_simulator/faults: replace the rules with a JSON list of FaultRule."""
    try:
        rules = _RULES.validate_python(await _json_body(request))
    except ValidationError as error:
        raise _invalid(error) from None
    state = request.app[STATE_KEY]
    state.faults.replace(rules)
    return json_response(state.faults.report())


async def mutate(request: web.Request) -> web.Response:
    """POST /_simulator/mutate: add, delete or touch devices; answers {"ids": [...]}."""
    try:
        mutation = Mutation.model_validate(await _json_body(request))
    except ValidationError as error:
        raise _invalid(error) from None
    state = request.app[STATE_KEY]
    try:
        workspace = state.workspace(mutation.workspace)
    except KeyError:
        raise ApiError(404, f"No workspace {mutation.workspace}") from None
    if mutation.target == "classic_devices":
        account = state.classic.account(workspace.config.classic.customer_id)
        return json_response({"ids": mutation.apply_classic(account)})
    return json_response({"ids": mutation.apply(workspace)})


async def reset(request: web.Request) -> web.Response:
    """POST /_simulator/reset: regenerate data; clear tokens, quotas, stats, faults."""
    request.app[STATE_KEY].reset()
    return json_response({"reset": True})


async def expire_tokens(request: web.Request) -> web.Response:
    """POST /_simulator/expire-tokens: every issued token expires now (mid-sync 401s on demand)."""
    state = request.app[STATE_KEY]
    return json_response({"expired": state.tokens.expire_all() + state.classic.expire_all()})


def add_routes(app: web.Application) -> None:
    """Mount the admin API."""
    app.router.add_get(f"{PREFIX}/stats", stats)
    app.router.add_get(f"{PREFIX}/faults", get_faults)
    app.router.add_post(f"{PREFIX}/faults", put_faults)
    app.router.add_post(f"{PREFIX}/mutate", mutate)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_post(f"{PREFIX}/expire-tokens", expire_tokens)
