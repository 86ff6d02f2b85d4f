"""The one settings object, read from INVENTORY_SYNC_* environment variables at startup."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        default=10, ge=2, le=100, description="Connections; each running source holds one."
    )
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


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
