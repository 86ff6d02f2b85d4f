"""The one settings object, read from INVENTORY_SYNC_* environment variables at startup."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Literal

from pydantic import Field, IPvAnyAddress, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.errors import SpecError


class Settings(BaseSettings):
    """Process-wide settings; each field is INVENTORY_SYNC_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="INVENTORY_SYNC_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL DSN; unset → a private embedded PostgreSQL (CLI only).",
    )
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of every upstream HTTP request."
    )
    max_retries: int = Field(
        default=6, ge=1, le=20, description="Attempts per upstream request on transient errors."
    )
    database_pool_size: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Connections; a source borrows one (two at most) only while its pages merge.",
    )
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: Literal["text", "json"] | None = Field(
        default=None,
        description="Log lines as text or JSON (`--log-format` wins); unset → text on a "
        "terminal, JSON otherwise.",
    )
    allowed_in_cluster_hosts: str = Field(
        default="",
        description=(
            "Comma-separated in-cluster service names (e.g. central-proxy.net.svc) that upstream "
            "endpoints may name; any other *.svc, *.cluster.local or kubernetes.default host is "
            "refused, since in-cluster services often trust whoever reaches them."
        ),
    )

    # -- the operator (`inventory-sync run`) --
    watch_namespaces: str = Field(
        default="",
        description="Comma-separated namespaces to watch; empty → all namespaces (cluster-wide).",
    )
    max_concurrent_runs: int = Field(
        default=4, ge=1, le=64, description="Runs executing at once across all resources."
    )
    fabric_retirement_seconds: float = Field(
        default=300,
        ge=1,
        le=86400,
        description=(
            "How often stored fabric rows are reconciled against the live Fabrics (also at start"
            " and when a Fabric is deleted): rows of deleted Fabrics and dropped kinds are retired."
        ),
    )
    change_log_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description=(
            "Days the change log (inventory_changes) keeps a row; the operator prunes older rows"
            " at start and every hour (docs/database.md)."
        ),
    )
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Prometheus /metrics port; 0 disables."
    )
    health_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Liveness /healthz port (kopf's probe); 0 disables.",
    )
    # Loopback by default: outside a pod nothing else needs these endpoints. The chart sets
    # 0.0.0.0 (the pod's own interfaces), which the kubelet's probes and Prometheus need.
    health_address: IPvAnyAddress = Field(
        default=IPv4Address("127.0.0.1"), description="Address /healthz listens on."
    )
    metrics_address: IPvAnyAddress = Field(
        default=IPv4Address("127.0.0.1"), description="Address /metrics listens on."
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "How long a run's lease outlives its last renewal: a replica that dies mid-run"
            " is taken over this long (plus a look) after it stopped renewing."
        ),
    )
    lease_renew_seconds: float = Field(
        default=10.0,
        gt=0,
        le=1200,
        description="How often a running replica renews its lease (below lease_seconds).",
    )
    status_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="The longest pause between attempts to write a finished run's status.",
    )
    relist_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the resources are listed afresh (a watch can miss events).",
    )
    upstream_concurrency_per_client: int = Field(
        default=8,
        ge=1,
        le=64,
        description=(
            "Requests in flight at once per upstream API client (token URL and client id),"
            " across all runs and sources; upstreams refuse more with 429."
        ),
    )
    instance: str = Field(
        default_factory=lambda: __import__("socket").gethostname(),
        description="This replica's name in Events (POD_NAME in the chart).",
    )

    @model_validator(mode="after")
    def _renewal_within_lease(self) -> Settings:
        if self.lease_renew_seconds >= self.lease_seconds:
            raise ValueError(
                "INVENTORY_SYNC_LEASE_RENEW_SECONDS must be below INVENTORY_SYNC_LEASE_SECONDS"
            )
        return self

    @property
    def endpoint_policy(self) -> EndpointPolicy:
        """Where upstream credentials may go (see endpoints.py)."""
        return EndpointPolicy.allowing(self.allowed_in_cluster_hosts.split(","))

    @property
    def health_url(self) -> str | None:
        """kopf's liveness endpoint, or None when disabled (IPv6 literals in brackets)."""
        if not self.health_port:
            return None
        host = str(self.health_address)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.health_port}/healthz"

    @property
    def namespaces(self) -> list[str]:
        return [n.strip() for n in self.watch_namespaces.split(",") if n.strip()]


def load_settings() -> Settings:
    """Read the environment; an invalid value raises SpecError naming the variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(p) for p in item["loc"])
            named = f"INVENTORY_SYNC_{field.upper()}: " if field else ""  # a cross-field rule
            problems.append(f"{named}{item['msg']}")
        raise SpecError("; ".join(problems)) from None
