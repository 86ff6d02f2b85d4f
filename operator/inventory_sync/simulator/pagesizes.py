"""Page-size limits per list endpoint: the `limit` a request gets by default and the most it may ask for."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The paged lists whose `limit` bounds can be set (classic Central's /monitoring lists
#: share one pair).
PagedList = Literal[
    "glp_devices", "glp_subscriptions", "central", "classic_central", "classic_monitoring"
]


class PageLimit(BaseModel):
    """The page size a list answers without `limit`, and the largest `limit` it accepts (a
    larger one is a 400)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: int = Field(ge=1, description="Items per page when the request names no limit.")
    maximum: int = Field(ge=1, description="The largest limit accepted.")

    @model_validator(mode="after")
    def _default_within_maximum(self) -> Self:
        if self.default > self.maximum:
            raise ValueError("the default page size cannot exceed the maximum")
        return self


def _limit(default: int, maximum: int) -> PageLimit:
    return PageLimit(default=default, maximum=maximum)


class PageSizeConfig(BaseModel):
    """Page-size bounds per list; docs/simulator.md says which are documented and which inferred."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    glp_devices: PageLimit = Field(
        default_factory=lambda: _limit(2000, 2000),
        description="GET /devices/v1/devices: documented default and maximum 2000.",
    )
    glp_subscriptions: PageLimit = Field(
        default_factory=lambda: _limit(50, 50),
        description="GET /subscriptions/v1/subscriptions: 50 (pycentral documents 1-50).",
    )
    central: PageLimit = Field(
        default_factory=lambda: _limit(100, 1000),
        description="New Central device lists: clients default to 100, pycentral asks 1000.",
    )
    classic_central: PageLimit = Field(
        default_factory=lambda: _limit(50, 50),
        description="Classic /platform/device_inventory/v1/devices: at most 50 per request.",
    )
    classic_monitoring: PageLimit = Field(
        default_factory=lambda: _limit(100, 1000),
        description="Classic /monitoring/v2/aps and /monitoring/v1/switches: up to 1000.",
    )

    def for_list(self, name: PagedList) -> PageLimit:
        """The bounds of one list."""
        limit: PageLimit = getattr(self, name)
        return limit
