"""The one settings object, read from INVENTORY_SYNC_* environment variables at startup."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
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
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Prometheus /metrics port; 0 disables."
    )
    health_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Liveness /healthz port (kopf's probe); 0 disables.",
    )
    peering: str | None = Field(
        default=None,
        description="kopf peering object name for several replicas; unset → standalone.",
    )
    peering_priority: int = Field(
        default_factory=lambda: __import__("random").randint(1, 1_000_000),
        ge=0,
        description=(
            "kopf peering priority; random per process by default, because replicas of equal"
            " priority all pause (kopf's documented behaviour) and then nothing syncs."
        ),
    )
    instance: str = Field(
        default_factory=lambda: __import__("socket").gethostname(),
        description="This replica's name in Events (POD_NAME in the chart).",
    )

    @property
    def endpoint_policy(self) -> EndpointPolicy:
        """Where upstream credentials may go (see endpoints.py)."""
        return EndpointPolicy.allowing(self.allowed_in_cluster_hosts.split(","))

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
            problems.append(f"INVENTORY_SYNC_{field.upper()}: {item['msg']}")
        raise SpecError("; ".join(problems)) from None
