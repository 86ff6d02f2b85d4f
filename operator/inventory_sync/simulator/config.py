"""Simulator settings: dataset sizes, latency model, rate limits and faults to serve."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inventory_sync.simulator.faults import FaultRule
from inventory_sync.simulator.pagesizes import PageSizeConfig

#: What the data looks like: `adversarial` (the default) adds what the docs do not promise but
#: a robust client must survive (an undocumented assignedState, device links to subscriptions
#: the list lacks); `seed` serves documented values only, as the seed account had.
Profile = Literal["adversarial", "seed"]

#: The endpoint families that share a latency model and a rate-limit window.
Family = Literal[
    "glp_devices", "glp_subscriptions", "glp_subscription_get", "central", "classic_central"
]


class DatasetSize(BaseModel):
    """How many items one workspace holds; the defaults are the production counts of seed 000."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subscriptions: int = Field(27, ge=0, description="GreenLake subscriptions in the list.")
    glp_devices: int = Field(11727, ge=0, description="GreenLake devices in the list.")
    linked_devices: int = Field(
        9099, ge=0, description="GreenLake devices that carry exactly one subscription link."
    )
    unknown_subscription_links: int = Field(
        12,
        ge=0,
        description="Of the linked devices, how many name a subscription id the list lacks.",
    )
    central_devices: int = Field(
        8978, ge=0, description="New Central device-inventory items (onboarded or not)."
    )
    central_overlap: int = Field(
        6400,
        ge=0,
        description="Central devices whose serialNumber equals a GreenLake device's.",
    )
    central_not_onboarded: int = Field(
        0,
        ge=0,
        description=(
            "Central inventory items not yet onboarded: listed by /device-inventory but not by"
            " /devices. 0 keeps both lists at the seed's 8,978."
        ),
    )
    classic_devices: int = Field(
        5000, ge=0, description="Classic Central device-inventory items of the classic account."
    )
    classic_overlap_share: float = Field(
        0.9,
        ge=0,
        le=1,
        description=(
            "Share of classic devices whose serial equals a New Central device's (and so, mostly,"
            " a GreenLake device's); capped by the Central devices there are."
        ),
    )
    undocumented_values: bool = Field(
        True,
        description=(
            "Serve enum values the vendor does not document (assignedState PENDING_TRANSFER),"
            " standing for values introduced after a client shipped. False: documented only."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.linked_devices > self.glp_devices:
            raise ValueError("linked_devices cannot exceed glp_devices")
        if self.unknown_subscription_links > self.linked_devices:
            raise ValueError("unknown_subscription_links cannot exceed linked_devices")
        known_links = self.linked_devices - self.unknown_subscription_links
        if known_links and not self.subscriptions:
            raise ValueError("devices linked to known subscriptions need subscriptions > 0")
        if self.central_overlap > min(self.central_devices, self.glp_devices):
            raise ValueError("central_overlap cannot exceed central_devices or glp_devices")
        if self.central_not_onboarded > self.central_devices:
            raise ValueError("central_not_onboarded cannot exceed central_devices")
        return self

    def scaled(self, factor: float) -> DatasetSize:
        """The same proportions at `factor` times the size (at least one subscription is kept)."""

        def n(value: int) -> int:
            return round(value * factor)

        devices = n(self.glp_devices)
        linked = min(n(self.linked_devices), devices)
        central = n(self.central_devices)
        return DatasetSize(
            subscriptions=max(1, n(self.subscriptions)) if self.subscriptions else 0,
            glp_devices=devices,
            linked_devices=linked,
            unknown_subscription_links=min(n(self.unknown_subscription_links), linked),
            central_devices=central,
            central_overlap=min(n(self.central_overlap), central, devices),
            central_not_onboarded=min(n(self.central_not_onboarded), central),
            classic_devices=n(self.classic_devices),
            classic_overlap_share=self.classic_overlap_share,
            undocumented_values=self.undocumented_values,
        )


class ClassicAccountConfig(BaseModel):
    """A classic Central account (customer) next to the workspace: its API client and the
    refresh token it starts with. Demo fixtures, printed by `inventory-sync simulate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: str = Field(
        "demo-classic-customer", min_length=1, description="The customer (account) id."
    )
    customer_name: str = Field("Demo Customer", description="Shown in every inventory item.")
    client_id: str = Field("demo-classic-client", min_length=1, description="API client id.")
    client_secret: str = Field(
        "demo-classic-secret-not-real", min_length=1, description="API client secret."
    )
    refresh_token: str = Field(
        "demo-classic-refresh-0",
        min_length=1,
        description="The refresh token valid at start (and after a reset); each refresh rotates it.",
    )


class WorkspaceConfig(BaseModel):
    """One GreenLake workspace: its client credentials and its data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace_id: str = Field(
        "3f1c2a4e-demo-workspace", min_length=1, description="The workspace (tenant) id."
    )
    # Demo fixtures, printed by `inventory-sync simulate`; they protect nothing.
    client_id: str = Field("demo-client", min_length=1, description="OAuth2 client id.")
    client_secret: str = Field(
        "demo-secret-not-real", min_length=1, description="OAuth2 client secret."
    )
    dataset: DatasetSize = Field(
        default_factory=DatasetSize, description="How many items this workspace holds."
    )
    classic: ClassicAccountConfig = Field(
        default_factory=ClassicAccountConfig, description="The classic Central account."
    )


class LatencyModel(BaseModel):
    """Time one request takes: a fixed cost plus a cost per item returned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_seconds: float = Field(0.0, ge=0, description="Fixed cost of every request.")
    per_item_seconds: float = Field(0.0, ge=0, description="Added cost per item in the answer.")

    def seconds(self, items: int) -> float:
        """The delay before answering a request that returns `items` items."""
        return self.base_seconds + self.per_item_seconds * items

    def scaled(self, factor: float) -> LatencyModel:
        """This model with both costs multiplied by `factor`."""
        return LatencyModel(
            base_seconds=self.base_seconds * factor,
            per_item_seconds=self.per_item_seconds * factor,
        )


class LatencyConfig(BaseModel):
    """Latency per endpoint family.

    The defaults make the two long walks of the default dataset take similar time, as in seed 000
    (71 s vs 68 s there, about 3 s here): GreenLake devices, a first page of 2000 then five pages
    fetched concurrently, is two rounds of 0.25 + 2000 x 0.0006 = 1.45 s; Central, 90 sequential
    pages of 100, is 90 x (0.01 + 100 x 0.0002) = 2.7 s plus 90 round trips.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    glp_devices: LatencyModel = Field(
        default_factory=lambda: LatencyModel(base_seconds=0.25, per_item_seconds=0.0006),
        description="GET /devices/v1/devices.",
    )
    glp_subscriptions: LatencyModel = Field(
        default_factory=lambda: LatencyModel(base_seconds=0.2, per_item_seconds=0.002),
        description="GET /subscriptions/v1/subscriptions and get-by-id.",
    )
    central: LatencyModel = Field(
        default_factory=lambda: LatencyModel(base_seconds=0.01, per_item_seconds=0.0002),
        description="New Central device lists.",
    )
    # 5,000 devices are 100 pages of 50; at 7 calls/s that walk takes about 15 s anyway.
    classic_central: LatencyModel = Field(
        default_factory=lambda: LatencyModel(base_seconds=0.05, per_item_seconds=0.001),
        description="Classic Central device inventory.",
    )

    @classmethod
    def none(cls) -> LatencyConfig:
        """Answer at once: for tests where latency is not the point."""
        zero = LatencyModel()
        return cls(glp_devices=zero, glp_subscriptions=zero, central=zero, classic_central=zero)

    def for_family(self, family: Family) -> LatencyModel:
        """The model serving `family` (get-by-id shares the subscriptions model)."""
        if family == "glp_devices":
            return self.glp_devices
        if family == "central":
            return self.central
        if family == "classic_central":
            return self.classic_central
        return self.glp_subscriptions

    def scaled(self, factor: float) -> LatencyConfig:
        """Every model multiplied by `factor` (0 turns latency off)."""
        return LatencyConfig(
            glp_devices=self.glp_devices.scaled(factor),
            glp_subscriptions=self.glp_subscriptions.scaled(factor),
            central=self.central.scaled(factor),
            classic_central=self.classic_central.scaled(factor),
        )


class RateLimitConfig(BaseModel):
    """Sliding-window request limits per workspace and family; None means unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: float = Field(
        60.0, gt=0, description="Window length; the documented limits are per minute."
    )
    glp_devices: int | None = Field(160, ge=1, description="List devices (documented 160/min).")
    glp_subscriptions: int | None = Field(
        60, ge=1, description="List subscriptions (documented 60/min)."
    )
    glp_subscription_get: int | None = Field(
        20, ge=1, description="Get one subscription by id (documented 20/min)."
    )
    central: int | None = Field(
        600, ge=1, description="New Central device lists together (undocumented: configurable)."
    )
    classic_per_second: int | None = Field(
        7, ge=1, description="Classic Central calls per second per account (documented default)."
    )
    classic_per_day: int | None = Field(
        5000, ge=1, description="Classic Central calls per day per account (documented default)."
    )

    def for_family(self, family: Family) -> int | None:
        """The limit of `family` per window (classic Central has its own two windows)."""
        limit: int | None = getattr(self, family)
        return limit


class SimulatorConfig(BaseModel):
    """Everything the simulator serves; the defaults reproduce seed 000's workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(20260113, description="Seeds the dataset, page mutations and faults.")
    workspaces: list[WorkspaceConfig] = Field(
        default_factory=lambda: [WorkspaceConfig()],
        min_length=1,
        description="The workspaces served; a token is bound to the one whose client asked.",
    )
    latency: LatencyConfig = Field(
        default_factory=LatencyConfig, description="Latency per endpoint family."
    )
    rate_limits: RateLimitConfig = Field(
        default_factory=RateLimitConfig, description="Sliding-window limits per workspace."
    )
    max_concurrent_requests_per_client: int = Field(
        8, ge=1, description="In-flight API requests one client may have; beyond it: 429."
    )
    token_lifetime_seconds: float = Field(
        900.0,
        gt=0,
        description="Access-token lifetime; HPE SSO tokens are seen to last 899-900 s (15 min).",
    )
    classic_token_lifetime_seconds: float = Field(
        7200.0, gt=0, description="Classic Central access-token lifetime (documented: 2 h)."
    )
    page_mutations: int = Field(
        0,
        ge=0,
        description=(
            "GreenLake device inserts/deletes applied after each devices page is served,"
            " chosen by the seeded RNG: what makes naive offset paging miss or repeat devices."
        ),
    )
    central_page_mutations: int = Field(
        0,
        ge=0,
        description=(
            "New Central device inserts/deletes applied after each Central page is served: page"
            " numbers shift like offsets, so a walk can miss or repeat devices."
        ),
    )
    page_sizes: PageSizeConfig = Field(
        default_factory=PageSizeConfig, description="Default and maximum `limit` per list."
    )
    faults: list[FaultRule] = Field(
        default_factory=list, description="Fault rules active from the start."
    )

    @model_validator(mode="after")
    def _unique_workspaces(self) -> Self:
        ids = [w.workspace_id for w in self.workspaces]
        clients = [w.client_id for w in self.workspaces]
        if len(set(ids)) != len(ids) or len(set(clients)) != len(clients):
            raise ValueError("workspace ids and client ids must be unique")
        customers = [w.classic.customer_id for w in self.workspaces]
        classic_clients = [w.classic.client_id for w in self.workspaces]
        if len(set(customers)) != len(customers) or len(set(classic_clients)) != len(
            classic_clients
        ):
            raise ValueError("classic customer ids and classic client ids must be unique")
        return self

    @classmethod
    def small(cls, *, scale: float = 0.01, **overrides: object) -> SimulatorConfig:
        """The default workspace at `scale` with no latency: the usual test configuration."""
        workspace = WorkspaceConfig(dataset=DatasetSize().scaled(scale))
        fields: dict[str, object] = {"workspaces": [workspace], "latency": LatencyConfig.none()}
        fields.update(overrides)
        return cls.model_validate(fields)

    @classmethod
    def for_profile(cls, profile: Profile, **overrides: object) -> SimulatorConfig:
        """The default workspace with `profile`'s data (see Profile); `overrides` as fields."""
        dataset = DatasetSize()
        if profile == "seed":
            # The seed report: every device link resolved, only documented enum values.
            dataset = dataset.model_copy(
                update={"unknown_subscription_links": 0, "undocumented_values": False}
            )
        fields: dict[str, object] = {"workspaces": [WorkspaceConfig(dataset=dataset)]}
        fields.update(overrides)
        return cls.model_validate(fields)

    def scaled(self, *, dataset: float = 1.0, latency: float = 1.0) -> SimulatorConfig:
        """This config with every dataset and every latency multiplied."""
        return self.model_copy(
            update={
                "workspaces": [
                    w.model_copy(update={"dataset": w.dataset.scaled(dataset)})
                    for w in self.workspaces
                ],
                "latency": self.latency.scaled(latency),
            }
        )
