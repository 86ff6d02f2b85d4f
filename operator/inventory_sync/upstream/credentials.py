"""Client credentials for the HPE SSO token endpoint: the secret input of every upstream client."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class ClientCredentials(BaseModel):
    """An OAuth2 client id and secret; repr, str and model dumps show the secret as asterisks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str
    client_secret: SecretStr
