"""The arubaCentralClassic source type: defaults, bounds, and which Secret keys it needs."""

from __future__ import annotations

from typing import Any

import pytest

from inventory_sync.errors import SpecError
from inventory_sync.models import RefreshSecretRef, SecretRef, Source, parse_sync_schedule_spec


def spec(**classic: Any) -> dict[str, Any]:
    source = {
        "endpoint": "https://apigw-prod2.central.arubanetworks.com/",
        "accountId": "c0ffee",
        "credentialsSecretRef": {"name": "classic"},
        **classic,
    }
    return {"interval": "15m", "sources": [{"name": "classic", "arubaCentralClassic": source}]}


def classic_source(**classic: Any) -> Source:
    return parse_sync_schedule_spec(spec(**classic)).sources[0]


def test_defaults_token_url_from_the_endpoint_and_fifty_per_page() -> None:
    source = classic_source()
    classic = source.aruba_central_classic
    assert classic is not None
    assert source.kind == "arubaCentralClassic"
    assert classic.token_url is None
    assert (
        classic.effective_token_url == "https://apigw-prod2.central.arubanetworks.com/oauth2/token"
    )
    assert classic.page_size == 50


def test_an_explicit_token_url_is_used_as_is() -> None:
    classic = classic_source(tokenUrl="https://sso.example.test/token").aruba_central_classic
    assert classic is not None
    assert classic.effective_token_url == "https://sso.example.test/token"


def test_the_secret_ref_requires_the_refresh_token_key_too() -> None:
    ref = classic_source(
        credentialsSecretRef={"name": "classic", "refreshTokenKey": "rt"}
    ).secret_ref
    assert isinstance(ref, RefreshSecretRef)
    assert ref.required_keys == ["client_id", "client_secret", "rt"]
    assert SecretRef(name="glp").required_keys == ["client_id", "client_secret"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"pageSize": 51}, "pageSize", id="pageSize above 50"),
        pytest.param({"accountId": ""}, "accountId", id="empty accountId"),
        pytest.param({"endpoint": "ftp://x"}, "endpoint", id="endpoint not http(s)"),
        pytest.param({"workspaceId": "w"}, "workspaceId: unknown field", id="no workspaceId"),
    ],
)
def test_bad_values_name_the_field(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        parse_sync_schedule_spec(spec(**change))


def test_combined_with_another_type_is_refused() -> None:
    document = spec()
    document["sources"][0]["arubaCentral"] = {
        "endpoint": "https://x",
        "workspaceId": "w",
        "credentialsSecretRef": {"name": "n"},
    }
    with pytest.raises(SpecError, match="exactly one of greenlake, arubaCentral or"):
        parse_sync_schedule_spec(document)
