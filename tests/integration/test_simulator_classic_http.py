"""Classic Central in the simulator over real HTTP, as a plain client following the vendor docs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from inventory_sync.simulator import (
    RateLimitConfig,
    SimulatorConfig,
    ThreadedSimulator,
    start_in_thread,
)

pytestmark = pytest.mark.integration

TOKEN = "/oauth2/token"
DEVICES = "/platform/device_inventory/v1/devices"
CLIENT = {"client_id": "demo-classic-client", "client_secret": "demo-classic-secret-not-real"}
QUOTA_HEADERS = {
    "x-ratelimit-limit-day",
    "x-ratelimit-remaining-day",
    "x-ratelimit-limit-second",
    "x-ratelimit-remaining-second",
}


@pytest.fixture
def sim() -> Iterator[ThreadedSimulator]:
    with start_in_thread(SimulatorConfig.small(scale=0.02)) as simulator:  # 100 classic devices
        yield simulator


def refresh(sim: ThreadedSimulator, token: str, *, as_form: bool = False) -> httpx.Response:
    params = {"grant_type": "refresh_token", "refresh_token": token, **CLIENT}
    if as_form:
        return httpx.post(sim.url + TOKEN, data=params)
    return httpx.post(sim.url + TOKEN, params=params)  # as classic clients usually send it


def bearer(sim: ThreadedSimulator) -> dict[str, str]:
    answer = refresh(sim, sim.state.classic.account().refresh_token).json()
    return {"Authorization": f"Bearer {answer['access_token']}"}


def devices(sim: ThreadedSimulator, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(sim.url + DEVICES, params=params, headers=headers)


@pytest.mark.parametrize("as_form", [False, True], ids=["query string", "form body"])
def test_a_refresh_rotates_the_token_and_the_old_one_stops_working(
    sim: ThreadedSimulator, as_form: bool
) -> None:
    first = refresh(sim, "demo-classic-refresh-0", as_form=as_form)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == (7200, "bearer")
    assert body["refresh_token"] != "demo-classic-refresh-0"

    reused = refresh(sim, "demo-classic-refresh-0", as_form=as_form)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    second = refresh(sim, body["refresh_token"], as_form=as_form)
    assert second.status_code == 200
    assert refresh(sim, body["refresh_token"]).status_code == 400


def test_other_grants_and_wrong_clients_are_refused(sim: ThreadedSimulator) -> None:
    wrong_grant = httpx.post(sim.url + TOKEN, params={"grant_type": "client_credentials", **CLIENT})
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "unsupported_grant_type")
    wrong_client = httpx.post(
        sim.url + TOKEN,
        params={**CLIENT, "client_secret": "nope", "grant_type": "refresh_token"}
        | {"refresh_token": "demo-classic-refresh-0"},
    )
    assert (wrong_client.status_code, wrong_client.json()["error"]) == (401, "invalid_client")


def test_pages_of_fifty_with_devices_and_total_and_the_quota_headers(
    sim: ThreadedSimulator,
) -> None:
    headers = bearer(sim)
    first = devices(sim, headers, limit=50, offset=0)
    second = devices(sim, headers, limit=50, offset=50)

    assert first.status_code == 200
    assert set(first.json()) == {"devices", "total"}
    assert first.json()["total"] == 100
    serials = [d["serial"] for d in first.json()["devices"] + second.json()["devices"]]
    assert len(set(serials)) == 100
    assert set(first.headers) >= QUOTA_HEADERS
    assert first.headers["x-ratelimit-limit-second"] == "7"
    assert first.headers["x-ratelimit-limit-day"] == "5000"
    assert second.headers["x-ratelimit-remaining-day"] == "4998"


def test_a_limit_above_fifty_is_a_400_that_still_carries_the_headers(
    sim: ThreadedSimulator,
) -> None:
    answer = devices(sim, bearer(sim), limit=51)
    assert answer.status_code == 400
    assert "limit" in answer.json()["description"]
    assert set(answer.headers) >= QUOTA_HEADERS


def test_sku_type_selects_device_types(sim: ThreadedSimulator) -> None:
    headers = bearer(sim)
    aps = devices(sim, headers, sku_type="iap").json()
    everything = devices(sim, headers, sku_type="all").json()

    assert {d["device_type"] for d in aps["devices"]} == {"iap"}
    assert aps["total"] < everything["total"] == 100
    assert devices(sim, headers, sku_type="toaster").status_code == 400


def test_an_expired_access_token_is_a_401_saying_invalid_token(sim: ThreadedSimulator) -> None:
    headers = bearer(sim)
    httpx.post(f"{sim.url}/_simulator/expire-tokens").raise_for_status()

    answer = devices(sim, headers)

    assert answer.status_code == 401
    assert "invalid_token" in answer.text


def test_the_per_second_budget_answers_429_with_the_headers() -> None:
    config = SimulatorConfig.small(
        scale=0.02, rate_limits=RateLimitConfig(classic_per_second=2, classic_per_day=100)
    )
    with start_in_thread(config) as sim:
        headers = bearer(sim)
        answers = [devices(sim, headers, limit=1) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[-1]
    assert refused.headers["x-ratelimit-remaining-second"] == "0"
    assert refused.headers["x-ratelimit-remaining-day"] == "98"
    assert refused.headers["retry-after"] == "1"


def test_the_per_day_budget_answers_429_once_spent() -> None:
    config = SimulatorConfig.small(
        scale=0.02, rate_limits=RateLimitConfig(classic_per_second=None, classic_per_day=2)
    )
    with start_in_thread(config) as sim:
        headers = bearer(sim)
        answers = [devices(sim, headers, limit=1) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["x-ratelimit-remaining-day"] == "0"
    assert answers[2].headers["x-ratelimit-remaining-day"] == "0"


def test_the_admin_api_mutates_classic_devices_and_reset_restores_the_refresh_token(
    sim: ThreadedSimulator,
) -> None:
    serial = sim.state.classic.account().devices()[0]["serial"]
    deleted = httpx.post(
        f"{sim.url}/_simulator/mutate",
        json={"action": "delete", "target": "classic_devices", "ids": [serial]},
    )
    assert deleted.json() == {"ids": [serial]}
    assert sim.state.classic.account().count() == 99
    refresh(sim, "demo-classic-refresh-0")

    httpx.post(f"{sim.url}/_simulator/reset").raise_for_status()

    assert sim.state.classic.account().count() == 100
    assert refresh(sim, "demo-classic-refresh-0").status_code == 200
    stats = httpx.get(f"{sim.url}/_simulator/stats").json()
    assert stats["classic_accounts"]["demo-classic-customer"]["refresh_rotations"] == 1


@pytest.mark.parametrize("sku_type", ["vgw", "cap", "boc", "others", "controller", "all_ap"])
def test_every_documented_sku_type_is_accepted(sim: ThreadedSimulator, sku_type: str) -> None:
    answer = devices(sim, bearer(sim), sku_type=sku_type)
    assert answer.status_code == 200
    assert answer.json()["total"] <= 100


@pytest.mark.parametrize(
    ("path", "key", "device_type"),
    [("/monitoring/v2/aps", "aps", "iap"), ("/monitoring/v1/switches", "switches", "switch")],
)
def test_monitoring_lists_page_by_offset_and_report_the_total_when_asked(
    sim: ThreadedSimulator, path: str, key: str, device_type: str
) -> None:
    headers = bearer(sim)
    inventory = {
        d["serial"]
        for d in sim.state.classic.account().devices()
        if d["device_type"] == device_type
    }
    first = httpx.get(sim.url + path, headers=headers, params={"limit": 10}).json()
    everything = httpx.get(
        sim.url + path, headers=headers, params={"limit": 1000, "calculate_total": "true"}
    )

    assert set(first) == {key, "count"}  # no total unless calculate_total=true
    assert first["count"] == len(first[key]) == 10
    body = everything.json()
    assert body["total"] == body["count"] == len(body[key])
    serials = {item["serial"] for item in body[key]}
    assert serials <= inventory  # the devices that report in, never others
    assert 0 < len(serials) < len(inventory) + 1
    assert set(everything.headers) >= QUOTA_HEADERS
    too_many = httpx.get(sim.url + path, headers=headers, params={"limit": 1001})
    assert too_many.status_code == 400
    assert too_many.json()["service_name"] == "Monitoring"


def test_headers_are_present_even_when_a_limit_is_unset() -> None:
    config = SimulatorConfig.small(
        scale=0.02, rate_limits=RateLimitConfig(classic_per_second=None, classic_per_day=None)
    )
    with start_in_thread(config) as sim:
        answer = devices(sim, bearer(sim), limit=1)
    assert answer.status_code == 200
    assert set(answer.headers) >= QUOTA_HEADERS
    assert int(answer.headers["x-ratelimit-remaining-second"]) > 1000


def test_an_injected_429_on_a_classic_route_speaks_classic(sim: ThreadedSimulator) -> None:
    headers = bearer(sim)
    rules = [{"kind": "rate_limit", "family": "classic_central", "retry_after_seconds": 2}]
    httpx.post(f"{sim.url}/_simulator/faults", json=rules).raise_for_status()

    refused = devices(sim, headers, limit=1)

    assert refused.status_code == 429
    assert refused.json() == {"message": "API rate limit exceeded"}
    assert set(refused.headers) >= QUOTA_HEADERS  # what classic clients read on a 429
    assert refused.headers["x-ratelimit-remaining-second"] == "0"
    assert refused.headers["x-ratelimit-limit-day"] == "5000"
    assert refused.headers["retry-after"] == "2"
    assert "ratelimit-limit" not in refused.headers  # no GreenLake headers on classic routes


def test_an_injected_5xx_on_a_classic_route_has_a_classic_body(sim: ThreadedSimulator) -> None:
    headers = bearer(sim)
    rules = [{"kind": "status", "family": "classic_central", "status": 503}]
    httpx.post(f"{sim.url}/_simulator/faults", json=rules).raise_for_status()
    answer = devices(sim, headers)
    assert answer.status_code == 503
    assert set(answer.json()) == {"message"}
    assert set(answer.headers) >= QUOTA_HEADERS
