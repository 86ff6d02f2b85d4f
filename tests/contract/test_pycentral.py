"""The vendor's own SDK (pycentral) against the simulator over TLS: the standing proof that the
simulator speaks the services' APIs as they are, not as our clients assume them."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory_sync.simulator import FaultRule, RateLimitConfig

from .conftest import Contract, digest, serving

pytestmark = pytest.mark.contract

V2, V1 = "pycentral-v2", "pycentral-v1"


def glp_credentials(contract: Contract) -> dict[str, str]:
    client_id, secret = contract.state.credentials()
    return {"client_id": client_id, "client_secret": secret}


def test_greenlake_token_devices_and_subscriptions_with_pycentral_2(contract: Contract) -> None:
    workspace = contract.state.workspace()
    run = contract.run(V2, "pycentral_v2.py", "glp", {
        **glp_credentials(contract), "base_url": contract.simulator.url,
    })  # fmt: skip
    result = run.result

    assert result["devices"] == 2300
    assert result["device_ids"] == digest([d["id"] for d in workspace.glp_devices()])
    assert result["subscriptions"] == 120
    assert result["subscription_ids"] == digest([s["id"] for s in workspace.subscriptions()])
    # The SDK sends `select` as a repeated parameter: every field it names comes back.
    assert result["selected_keys"] == ["id", "serialNumber"]
    # The token came from HPE SSO's host, which pycentral hard-codes: through the tunnel.
    assert contract.proxy.tunnelled == ["sso.common.cloud.hpe.com"]
    assert contract.state.stats.count("POST /as/token.oauth2", 200) == 1


def test_a_workspace_scoped_token_serves_greenlake_and_central_with_pycentral_2(
    contract: Contract,
) -> None:
    workspace = contract.state.workspace()
    run = contract.run(V2, "pycentral_v2.py", "unified", {
        **glp_credentials(contract),
        "workspace_id": workspace.workspace_id,
        "base_url": contract.simulator.url,
    })  # fmt: skip
    result = run.result

    assert result["devices"] == 2300
    assert result["device_ids"] == digest([d["id"] for d in workspace.glp_devices()])
    assert result["inventory"] == 2100
    assert result["inventory_ids"] == digest([d["id"] for d in workspace.central_devices()])
    route = "POST /authorization/v2/oauth2/{workspace_id}/token"
    assert contract.state.stats.count(route, 200) == 1
    # GreenLake at its default host (tunnelled); Central at the configured base_url.
    assert set(contract.proxy.tunnelled) == {"global.api.greenlake.hpe.com"}
    assert contract.proxy.refused == []


def test_new_central_inventory_and_devices_by_page_number_with_pycentral_2(
    contract: Contract,
) -> None:
    workspace = contract.state.workspace()
    run = contract.run(V2, "pycentral_v2.py", "central", {
        **glp_credentials(contract),
        "base_url": contract.simulator.url,
        "token_url": contract.simulator.token_url,
    })  # fmt: skip
    result = run.result

    assert result["inventory"] == 2100
    assert result["inventory_ids"] == digest([d["id"] for d in workspace.central_devices()])
    onboarded = workspace.central_devices(onboarded_only=True)
    assert result["devices"] == len(onboarded) == 2060
    assert result["device_ids"] == digest([d["id"] for d in onboarded])
    stats = contract.state.stats
    assert stats.count("GET /network-monitoring/v1/device-inventory", 200) == 3  # 1000 a page
    assert stats.count("GET /network-monitoring/v1/devices", 200) == 3
    assert contract.proxy.tunnelled == []  # token_endpoint pointed at the simulator directly


def classic_params(contract: Contract, tmp_path: Path, **extra: str) -> dict[str, str]:
    account = contract.state.classic.account()
    client = account.config.classic
    return {
        "base_url": contract.simulator.url,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "customer_id": account.customer_id,
        "refresh_token": account.refresh_token,
        "token_dir": str(tmp_path),
        **extra,
    }


def classic_access_token(contract: Contract) -> tuple[str, str]:
    """A fresh (access, refresh) pair, as if an earlier session had stored it."""
    account = contract.state.classic.account()
    client = account.config.classic
    return contract.state.classic.refresh(
        client.client_id, client.client_secret, account.refresh_token
    )


def test_classic_refresh_rotates_the_token_and_the_sdk_keeps_the_new_one(
    contract: Contract, tmp_path: Path
) -> None:
    account = contract.state.classic.account()
    before = account.refresh_token
    result = contract.run(V1, "pycentral_v1.py", "rotation", classic_params(contract, tmp_path))

    assert result.result["first_code"] == 200  # after one 401 invalid_token and a refresh
    assert result.result["devices_on_first_page"] == 50
    assert account.rotations == 1
    assert result.result["refresh_token"] == account.refresh_token != before
    assert result.result["stored_refresh_token"] == account.refresh_token  # the SDK's token file
    # pycentral's own bug, not the simulator's: RefreshApiToken.refresh_token passes
    # `retry_api_call` to ArubaCentralBase.command(), which has no such parameter. It fails
    # before sending anything, so the account saw exactly the one refresh above.
    assert "retry_api_call" in (result.result["refresh_api_token_error"] or "")
    assert contract.state.stats.count("POST /oauth2/token", 200) == 1


def test_the_classic_inventory_walk_with_pycentral_1(contract: Contract, tmp_path: Path) -> None:
    access, refresh = classic_access_token(contract)
    params = classic_params(contract, tmp_path, access_token=access, refresh_token=refresh)
    result = contract.run(V1, "pycentral_v1.py", "inventory", params).result

    devices = contract.state.classic.account().devices()
    assert (result["devices"], result["pages"]) == (120, 3)
    assert result["serials"] == digest([d["serial"] for d in devices])


def test_a_rate_limited_classic_walk_waits_and_completes_with_pycentral_1(
    tmp_path: Path,
) -> None:
    # Two calls a second, and one injected 429 first: the SDK reads X-RateLimit-Remaining-second
    # from every 429 (it exits when the header is missing), sleeps 2 s and retries.
    limited = RateLimitConfig(classic_per_second=2)
    injected = FaultRule(kind="rate_limit", family="classic_central", retry_after_seconds=1)
    with serving(rate_limits=limited, faults=[injected]) as contract:
        access, refresh = classic_access_token(contract)
        params = classic_params(contract, tmp_path, access_token=access, refresh_token=refresh)
        result = contract.run(V1, "pycentral_v1.py", "inventory", params).result
        devices = contract.state.classic.account().devices()
        refused = contract.state.stats.count("GET /platform/device_inventory/v1/devices", 429)

    assert result["devices"] == 120
    assert result["serials"] == digest([d["serial"] for d in devices])
    assert refused >= 2  # the injected one and at least one from the per-second window
    assert result["seconds"] >= 4  # the SDK's own 2 s pause after each


def test_classic_monitoring_lists_with_pycentral_1(contract: Contract, tmp_path: Path) -> None:
    access, refresh = classic_access_token(contract)
    params = classic_params(contract, tmp_path, access_token=access, refresh_token=refresh)
    result = contract.run(V1, "pycentral_v1.py", "monitoring", params).result

    from inventory_sync.simulator.classic_monitoring import monitored

    account = contract.state.classic.account()
    for kind in ("aps", "switches"):
        expected = monitored(account, kind)
        assert result[kind] == len(expected) > 0
        assert result[f"{kind}_serials"] == digest([i["serial"] for i in expected])
