"""The simulator over real HTTP, seen by a plain httpx client written against the upstream docs."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inventory_sync.simulator import (
    DatasetSize,
    LatencyConfig,
    LatencyModel,
    RateLimitConfig,
    SimulatorConfig,
    ThreadedSimulator,
    WorkspaceConfig,
    serve,
    start_in_thread,
)
from inventory_sync.simulator.dataset import (
    CENTRAL_INVENTORY_FIELDS,
    CENTRAL_MONITORING_FIELDS,
    GLP_DEVICE_FIELDS,
    SUBSCRIPTION_FIELDS,
)

pytestmark = pytest.mark.integration

DEVICES = "/devices/v1/devices"
SUBSCRIPTIONS = "/subscriptions/v1/subscriptions"
INVENTORY = "/network-monitoring/v1/device-inventory"
CENTRAL_DEVICES = "/network-monitoring/v1/devices"
INVENTORY_V1ALPHA1 = "/network-monitoring/v1alpha1/device-inventory"
VENDOR_ERROR_KEYS = {"httpStatusCode", "errorCode", "message", "debugId", "errorDetails"}

#: Big enough for two device pages of 2000, two subscription pages of 50, 18 Central pages.
SHARED = DatasetSize(
    subscriptions=60,
    glp_devices=2345,
    linked_devices=1800,
    unknown_subscription_links=3,
    central_devices=1796,
    central_overlap=1280,
    central_not_onboarded=10,
)


def config(**overrides: Any) -> SimulatorConfig:
    """A small, instant simulator; `overrides` are SimulatorConfig fields."""
    return SimulatorConfig.small(scale=0.02, **overrides)


def token(client: httpx.Client, sim: ThreadedSimulator) -> dict[str, str]:
    client_id, secret = sim.state.credentials()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = client.post(sim.token_url, data=form)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def shared() -> Iterator[ThreadedSimulator]:
    workspace = WorkspaceConfig(dataset=SHARED)
    with start_in_thread(
        SimulatorConfig(workspaces=[workspace], latency=LatencyConfig.none())
    ) as sim:
        yield sim


@pytest.fixture
def sim(shared: ThreadedSimulator) -> ThreadedSimulator:
    httpx.post(f"{shared.url}/_simulator/reset").raise_for_status()
    return shared


@pytest.fixture
def client(sim: ThreadedSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as http:
        http.headers.update(token(http, sim))
        yield http


# -- tokens --------------------------------------------------------------------------------


def test_token_endpoint_accepts_form_or_basic_credentials_and_refuses_wrong_ones(
    sim: ThreadedSimulator,
) -> None:
    client_id, secret = sim.state.credentials()
    grant = {"grant_type": "client_credentials"}
    with httpx.Client() as http:
        by_form = http.post(
            sim.token_url, data={**grant, "client_id": client_id, "client_secret": secret}
        )
        by_basic = http.post(sim.token_url, data=grant, auth=(client_id, secret))
        wrong = http.post(
            sim.token_url, data={**grant, "client_id": client_id, "client_secret": "x"}
        )
        bad_grant = http.post(
            sim.token_url, data={"grant_type": "password"}, auth=(client_id, secret)
        )
    assert by_form.status_code == by_basic.status_code == 200
    assert by_form.json()["token_type"] == "Bearer"
    assert by_form.json()["expires_in"] == 900  # HPE SSO tokens live about 15 minutes
    assert by_form.json()["access_token"] != by_basic.json()["access_token"]
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"


def test_the_workspace_scoped_token_endpoint_issues_tokens_for_its_workspace_only(
    sim: ThreadedSimulator,
) -> None:
    client_id, secret = sim.state.credentials()
    workspace = sim.state.workspace().workspace_id
    form = {"grant_type": "client_credentials"}
    with httpx.Client(base_url=sim.url) as http:
        scoped = http.post(
            f"/authorization/v2/oauth2/{workspace}/token", data=form, auth=(client_id, secret)
        )
        elsewhere = http.post(
            "/authorization/v2/oauth2/another-workspace/token", data=form, auth=(client_id, secret)
        )
        access = scoped.json()["access_token"]
        page = http.get(DEVICES, params={"limit": 1}, headers={"Authorization": f"Bearer {access}"})
    assert (scoped.status_code, scoped.json()["expires_in"]) == (200, 900)
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (401, "invalid_client")
    assert page.status_code == 200


def test_api_refuses_missing_or_unknown_tokens_with_the_vendor_body(sim: ThreadedSimulator) -> None:
    missing = httpx.get(f"{sim.url}{DEVICES}")
    unknown = httpx.get(f"{sim.url}{DEVICES}", headers={"Authorization": "Bearer nope"})
    for response in (missing, unknown):
        assert response.status_code == 401
        assert set(response.json()) == VENDOR_ERROR_KEYS
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_gets_401_and_a_new_token_works() -> None:
    with (
        start_in_thread(config(token_lifetime_seconds=1)) as sim,
        httpx.Client(base_url=sim.url) as http,
    ):
        headers = token(http, sim)
        assert http.get(DEVICES, headers=headers).status_code == 200
        time.sleep(1.05)
        expired = http.get(DEVICES, headers=headers)
        assert expired.status_code == 401
        assert expired.json()["errorCode"] == "HPE_GL_ERROR_UNAUTHORIZED"
        assert "expired" in expired.json()["message"]
        assert http.get(DEVICES, headers=token(http, sim)).status_code == 200


# -- GreenLake offset paging ---------------------------------------------------------------


def test_greenlake_envelopes_and_items_have_the_upstream_shape(client: httpx.Client) -> None:
    devices = client.get(DEVICES, params={"limit": 5}).json()
    subscriptions = client.get(SUBSCRIPTIONS, params={"limit": 5}).json()
    for page in (devices, subscriptions):
        assert set(page) == {"items", "count", "offset", "total"}
        assert page["count"] == len(page["items"]) == 5
        assert page["offset"] == 0
    assert devices["total"] == 2345
    assert subscriptions["total"] == 60
    assert all(set(item) == GLP_DEVICE_FIELDS for item in devices["items"])
    assert all(set(item) == SUBSCRIPTION_FIELDS for item in subscriptions["items"])
    one = subscriptions["items"][0]
    assert client.get(f"{SUBSCRIPTIONS}/{one['id']}").json() == one
    missing = client.get(f"{SUBSCRIPTIONS}/no-such-id")
    assert missing.status_code == 404
    assert set(missing.json()) == VENDOR_ERROR_KEYS


def test_offset_walk_with_limit_2000_covers_every_device_once(
    client: httpx.Client, sim: ThreadedSimulator
) -> None:
    seen: list[str] = []
    offset, total, pages = 0, None, 0
    while total is None or offset < total:
        page = client.get(DEVICES, params={"limit": 2000, "offset": offset}).json()
        seen += [item["id"] for item in page["items"]]
        total, offset, pages = page["total"], offset + 2000, pages + 1
    assert pages == 2
    assert len(seen) == len(set(seen)) == 2345
    assert set(seen) == {d["id"] for d in sim.state.workspace().glp_devices()}
    assert client.get(DEVICES).json()["count"] == 2000  # the default limit is the maximum


def test_subscriptions_page_by_50_by_default(client: httpx.Client) -> None:
    first = client.get(SUBSCRIPTIONS).json()
    second = client.get(SUBSCRIPTIONS, params={"offset": 50}).json()
    assert (first["count"], second["count"], first["total"]) == (50, 10, 60)


@pytest.mark.parametrize(
    ("path", "params", "subject"),
    [
        pytest.param(DEVICES, {"limit": 2001}, "limit", id="devices limit 2001"),
        pytest.param(SUBSCRIPTIONS, {"limit": 2001}, "limit", id="subscriptions limit 2001"),
        pytest.param(DEVICES, {"limit": -1}, "limit", id="negative limit"),
        pytest.param(DEVICES, {"offset": "ten"}, "offset", id="non-integer offset"),
        pytest.param(DEVICES, {"offset": -5}, "offset", id="negative offset"),
        pytest.param(DEVICES, {"filter": "updatedAt gt"}, "filter", id="garbage filter"),
        pytest.param(DEVICES, {"sort": "colour desc"}, "sort", id="unknown sort field"),
        pytest.param(CENTRAL_DEVICES, {"limit": 1001}, "limit", id="central limit 1001"),
        pytest.param(INVENTORY, {"next": "not-a-page"}, "next", id="next not a page number"),
        pytest.param(INVENTORY, {"next": 0}, "next", id="page 0"),
        pytest.param(SUBSCRIPTIONS, {"limit": 51}, "limit", id="subscriptions limit 51"),
        pytest.param(INVENTORY, {"filter": "colour eq 'red'"}, "filter", id="central filter field"),
        pytest.param(INVENTORY, {"sort": "colour"}, "sort", id="central sort field"),
        pytest.param(CENTRAL_DEVICES, {"select": "id,colour"}, "select", id="central select"),
        pytest.param(INVENTORY, {"site-assigned": "MAYBE"}, "site-assigned", id="site-assigned"),
    ],
)
def test_bad_query_parameters_get_400_with_the_vendor_body(
    client: httpx.Client, path: str, params: dict[str, Any], subject: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == VENDOR_ERROR_KEYS
    assert body["httpStatusCode"] == 400
    assert body["errorCode"] == "HPE_GL_ERROR_BAD_REQUEST"
    assert body["errorDetails"][0]["issues"][0]["subject"] == subject


def test_filter_sort_and_select_work_over_http(
    client: httpx.Client, sim: ThreadedSimulator
) -> None:
    workspace = sim.state.workspace()
    some = [d["id"] for d in workspace.glp_devices()[:3]]
    touched = workspace.touch_glp_devices(some[:2])
    since = max(d["updatedAt"] for d in workspace.glp_devices() if d["id"] not in touched)
    changed = client.get(DEVICES, params={"filter": f"updatedAt gt '{since}'"}).json()
    assert sorted(i["id"] for i in changed["items"]) == sorted(touched)
    assert changed["total"] == 2
    quoted = ",".join(f"'{i}'" for i in some)
    by_ids = client.get(DEVICES, params={"filter": f"id in ({quoted})", "select": "id,updatedAt"})
    assert sorted(i["id"] for i in by_ids.json()["items"]) == sorted(some)
    assert all(set(item) == {"id", "updatedAt"} for item in by_ids.json()["items"])
    newest = client.get(DEVICES, params={"sort": "updatedAt desc", "limit": 2}).json()["items"]
    assert [i["id"] for i in newest] == [touched[1], touched[0]]
    aps = client.get(DEVICES, params={"filter": "not (archived eq true) and deviceType eq 'AP'"})
    assert aps.json()["items"]
    assert all(i["deviceType"] == "AP" and not i["archived"] for i in aps.json()["items"])


def test_device_detail_fields_and_documented_states_can_be_filtered_and_selected(
    client: httpx.Client, sim: ThreadedSimulator
) -> None:
    devices = sim.state.workspace().glp_devices()
    named = next(d for d in devices if d["deviceName"])
    by_name = client.get(DEVICES, params={"filter": f"deviceName eq '{named['deviceName']}'"})
    assert named["id"] in [i["id"] for i in by_name.json()["items"]]
    selected = client.get(
        DEVICES, params=[("select", "id,deviceName"), ("select", "secondaryName"), ("limit", 5)]
    ).json()
    assert all(set(i) == {"id", "deviceName", "secondaryName"} for i in selected["items"])
    dedicated = client.get(
        DEVICES, params={"filter": "assignedState eq 'ASSIGNED_TO_DEDICATED_PLATFORM'"}
    ).json()
    assert dedicated["total"] > 0
    assert all(i["dedicatedPlatformWorkspace"]["id"] for i in dedicated["items"])
    assert all(not i["subscription"] for i in dedicated["items"])


@pytest.mark.parametrize(
    ("profile", "undocumented", "unknown_links"),
    [("adversarial", True, True), ("seed", False, False)],
)
def test_the_seed_profile_serves_documented_values_and_resolvable_links_only(
    profile: Any, undocumented: bool, unknown_links: bool
) -> None:
    config = SimulatorConfig.for_profile(profile, latency=LatencyConfig.none())
    with start_in_thread(config.scaled(dataset=0.1)) as sim, httpx.Client(base_url=sim.url) as http:
        headers = token(http, sim)
        states = {
            i["assignedState"]
            for i in http.get(DEVICES, headers=headers, params={"select": "assignedState"}).json()[
                "items"
            ]
        }
        known = {s["id"] for s in sim.state.workspace().subscriptions()}
        links = {
            link["id"] for d in sim.state.workspace().glp_devices() for link in d["subscription"]
        }
    documented = {
        "ASSIGNED_TO_ACTIVATE_CONFIG",
        "ASSIGNED_TO_DEDICATED_PLATFORM",
        "ASSIGNED_TO_SERVICE",
        "UNASSIGNED",
    }
    assert ("PENDING_TRANSFER" in states) is undocumented
    assert (states <= documented) is not undocumented
    assert bool(links - known) is unknown_links


def test_naive_offset_paging_misses_or_repeats_devices_under_page_mutations() -> None:
    with start_in_thread(config(page_mutations=15)) as sim, httpx.Client(base_url=sim.url) as http:
        headers = token(http, sim)
        before = {d["id"] for d in sim.state.workspace().glp_devices()}
        seen: list[str] = []
        offset, total = 0, 1
        while offset < total:  # the naive client: trust offsets, step by limit
            page = http.get(DEVICES, headers=headers, params={"limit": 25, "offset": offset}).json()
            seen += [item["id"] for item in page["items"]]
            offset, total = offset + 25, page["total"]
        after = {d["id"] for d in sim.state.workspace().glp_devices()}
    duplicates = len(seen) - len(set(seen))
    missed = (before & after) - set(seen)  # present throughout, never returned
    assert duplicates > 0
    assert missed


# -- New Central page-number paging --------------------------------------------------------


def walk_pages(client: httpx.Client, path: str, limit: int = 100) -> list[dict[str, Any]]:
    """The way pycentral and other public clients walk: next=1, 2, ... until next is null."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit, "next": 1}
    while True:
        page = client.get(path, params=params).json()
        assert set(page) == {"items", "total", "count", "next"}
        assert page["count"] == len(page["items"])
        items += page["items"]
        if page["next"] is None:
            return items
        assert page["next"] == params["next"] + 1
        params["next"] = page["next"]


def test_page_number_walk_covers_everything_and_ends_with_null_next(
    client: httpx.Client, sim: ThreadedSimulator
) -> None:
    items = walk_pages(client, INVENTORY)
    assert len(items) == len({i["id"] for i in items}) == 1796
    assert all(set(item) == CENTRAL_INVENTORY_FIELDS for item in items)
    onboarded = walk_pages(client, CENTRAL_DEVICES, limit=1000)
    assert len(onboarded) == 1786  # device-inventory also lists devices not yet onboarded
    # Each endpoint answers its own view (the vendor's examples): monitoring facts on /devices,
    # provisioning facts on the inventory.
    assert all(set(item) == CENTRAL_MONITORING_FIELDS for item in onboarded)
    assert "lastSeenAt" not in items[0]
    assert "scopeId" not in onboarded[0]
    first = client.get(INVENTORY).json()
    assert (first["count"], first["next"]) == (100, 2)  # no next and no limit: page 1 of 100


def test_v1alpha1_serves_the_same_pages_as_v1(client: httpx.Client) -> None:
    params = {"limit": 7, "next": 3}
    assert client.get(INVENTORY_V1ALPHA1, params=params).json() == (
        client.get(INVENTORY, params=params).json()
    )


def test_page_numbers_can_be_fetched_in_any_order(client: httpx.Client) -> None:
    third, first, second = (
        client.get(INVENTORY, params={"limit": 700, "next": n}).json() for n in (3, 1, 2)
    )
    assert (first["next"], second["next"], third["next"]) == (2, 3, None)
    ids = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert len(ids) == len(set(ids)) == 1796


def test_page_numbers_shift_when_devices_vanish_mid_walk(
    client: httpx.Client, sim: ThreadedSimulator
) -> None:
    workspace = sim.state.workspace()
    first = client.get(INVENTORY, params={"limit": 100, "next": 1}).json()
    workspace.delete_central_devices([i["id"] for i in first["items"][:10]])
    second = client.get(INVENTORY, params={"limit": 100, "next": 2}).json()
    everything = [i["id"] for i in workspace.central_devices()]
    # Page 2 now starts where item 111 of the old list was: ten devices were skipped.
    assert second["items"][0]["id"] == everything[100]
    assert (first["total"], second["total"]) == (1796, 1786)


def test_central_page_mutations_change_the_list_after_each_page() -> None:
    with (
        start_in_thread(config(central_page_mutations=6)) as sim,
        httpx.Client(base_url=sim.url) as http,
    ):
        http.headers.update(token(http, sim))
        workspace = sim.state.workspace()
        before = [d["id"] for d in workspace.central_devices()]
        first = http.get(INVENTORY, params={"limit": 50, "next": 1}).json()
        between = [d["id"] for d in workspace.central_devices()]
        second = http.get(INVENTORY, params={"limit": 50, "next": 2}).json()
    assert [i["id"] for i in first["items"]] == before[:50]
    assert between != before  # others changed the inventory after page 1 was served
    assert [i["id"] for i in second["items"]] == between[50:100]  # so page 2 shifted


def test_central_filter_sort_select_and_site_assigned(
    client: httpx.Client, sim: ThreadedSimulator
) -> None:
    workspace = sim.state.workspace()
    one = workspace.central_devices()[5]
    by_serial = client.get(INVENTORY, params={"filter": f"serialNumber eq '{one['serialNumber']}'"})
    assert [i["id"] for i in by_serial.json()["items"]] == [one["id"]]
    assert by_serial.json()["total"] == 1
    switches = client.get(
        INVENTORY, params={"filter": "deviceType eq 'SWITCH'", "limit": 1000}
    ).json()
    assert switches["items"]
    assert all(i["deviceType"] == "SWITCH" for i in switches["items"])
    ordered = client.get(INVENTORY, params={"sort": "serialNumber desc", "limit": 5}).json()
    serials = [i["serialNumber"] for i in ordered["items"]]
    assert serials == sorted(serials, reverse=True)
    # Repeated select parameters (what a client passing a list sends) are all honoured.
    selected = client.get(
        INVENTORY, params=[("select", "id"), ("select", "serialNumber,status"), ("limit", 3)]
    ).json()
    assert all(set(i) == {"id", "serialNumber", "status"} for i in selected["items"])
    unassigned = client.get(INVENTORY, params={"site-assigned": "UNASSIGNED", "limit": 1000})
    assert unassigned.json()["total"] == 10  # the devices not yet onboarded have no site


# -- rate limits and concurrency -----------------------------------------------------------


def test_rate_limit_answers_429_with_headers_after_the_limit() -> None:
    limits = RateLimitConfig(glp_devices=3)
    with start_in_thread(config(rate_limits=limits)) as sim, httpx.Client(base_url=sim.url) as http:
        headers = token(http, sim)
        answers = [http.get(DEVICES, headers=headers, params={"limit": 1}) for _ in range(4)]
        subscriptions = http.get(SUBSCRIPTIONS, headers=headers)
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.headers["ratelimit-limit"] == "3"
    assert 0 < int(refused.headers["ratelimit-reset"]) <= 60
    assert refused.headers["Retry-After"] == refused.headers["ratelimit-reset"]
    assert refused.json()["errorCode"] == "HPE_GL_ERROR_TOO_MANY_REQUESTS"
    assert subscriptions.status_code == 200  # each family has its own window


async def test_requests_beyond_the_concurrency_cap_get_429_and_the_peak_is_recorded() -> None:
    slow = LatencyConfig(
        glp_devices=LatencyModel(base_seconds=0.3),
        glp_subscriptions=LatencyModel(),
        central=LatencyModel(),
    )
    with start_in_thread(config(max_concurrent_requests_per_client=2, latency=slow)) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as http:
            client_id, secret = sim.state.credentials()
            grant = {"grant_type": "client_credentials"}
            access = (await http.post(sim.token_url, data=grant, auth=(client_id, secret))).json()
            headers = {"Authorization": f"Bearer {access['access_token']}"}
            answers = await asyncio.gather(*(http.get(DEVICES, headers=headers) for _ in range(4)))
            stats = (await http.get("/_simulator/stats")).json()
    assert sorted(r.status_code for r in answers) == [200, 200, 429, 429]
    assert stats["max_concurrency"]["demo-client"] == 3  # refused attempts count too
    assert stats["requests"][f"GET {DEVICES}"] == {"200": 2, "429": 2}


async def test_a_page_being_built_does_not_hold_up_the_next_requests_admission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Latency counts from admission, so a request must be admitted when it arrives, not once
    the page before it is built (a real upstream does not queue callers behind its own CPU
    work). The first page's build here waits until the second request has been admitted:
    built on the event loop, it would wait in vain."""
    with start_in_thread(config()) as sim:
        workspace = sim.state.workspace(sim.state.config.workspaces[0].workspace_id)
        devices = workspace.glp_list()
        admitted: list[object] = []
        second_admitted = threading.Event()
        hit = sim.state.limiter.hit

        def counting_hit(key: Any, *args: Any, **kwargs: Any) -> Any:
            if key[1] == "glp_devices":
                admitted.append(key)
                if len(admitted) == 2:
                    second_admitted.set()
            return hit(key, *args, **kwargs)

        built_after_it: list[bool] = []
        build = devices.slice

        def slice_once_the_second_is_in(start: int, stop: int) -> Any:
            if not built_after_it:
                built_after_it.append(second_admitted.wait(5))
            return build(start, stop)

        monkeypatch.setattr(sim.state.limiter, "hit", counting_hit)
        monkeypatch.setattr(devices, "slice", slice_once_the_second_is_in)
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as http:
            client_id, secret = sim.state.credentials()
            grant = {"grant_type": "client_credentials"}
            access = (await http.post(sim.token_url, data=grant, auth=(client_id, secret))).json()
            headers = {"Authorization": f"Bearer {access['access_token']}"}
            answers = await asyncio.gather(
                *(http.get(DEVICES, headers=headers, params={"limit": 5}) for _ in range(2))
            )
    assert [r.status_code for r in answers] == [200, 200]
    assert built_after_it == [True]


# -- faults --------------------------------------------------------------------------------


def set_faults(client: httpx.Client, *rules: dict[str, Any]) -> None:
    client.post("/_simulator/faults", json=list(rules)).raise_for_status()


def test_status_burst_then_recovery(client: httpx.Client) -> None:
    set_faults(client, {"kind": "status", "family": "glp_devices", "status": 503, "count": 2})
    codes = [client.get(DEVICES, params={"limit": 1}).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert client.get(SUBSCRIPTIONS).status_code == 200


def test_rate_limit_fault_carries_retry_after(client: httpx.Client) -> None:
    set_faults(
        client, {"kind": "rate_limit", "route": "/subscriptions/*", "retry_after_seconds": 7}
    )
    response = client.get(SUBSCRIPTIONS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["ratelimit-remaining"] == "0"


def test_delay_fault_trips_a_client_timeout(client: httpx.Client) -> None:
    set_faults(client, {"kind": "delay", "family": "central", "delay_seconds": 0.5})
    with pytest.raises(httpx.ReadTimeout):
        client.get(INVENTORY, timeout=0.1)


def test_reset_fault_drops_the_connection(client: httpx.Client, sim: ThreadedSimulator) -> None:
    set_faults(client, {"kind": "reset", "family": "glp_devices"})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(DEVICES)
    assert client.get(DEVICES, params={"limit": 1}).status_code == 200
    assert sim.state.stats.count(f"GET {DEVICES}", "reset") == 1


@pytest.mark.parametrize("kind", ["truncated_json", "malformed_json"])
def test_spoiled_bodies_come_with_status_200_but_are_not_json(
    client: httpx.Client, kind: str
) -> None:
    set_faults(client, {"kind": kind, "family": "glp_devices"})
    response = client.get(DEVICES, params={"limit": 10})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_partial_page_returns_fewer_items_than_count_claims(client: httpx.Client) -> None:
    set_faults(client, {"kind": "partial_page", "family": "central", "keep_fraction": 0.5})
    page = client.get(INVENTORY, params={"limit": 100}).json()
    assert page["count"] == 100
    assert len(page["items"]) == 50


def test_fault_rules_are_validated_and_reported(client: httpx.Client) -> None:
    refused = client.post("/_simulator/faults", json=[{"kind": "gremlins"}])
    assert refused.status_code == 400
    set_faults(client, {"kind": "status", "family": "glp_subscriptions", "after": 1})
    client.get(SUBSCRIPTIONS)
    client.get(SUBSCRIPTIONS)
    report = client.get("/_simulator/faults").json()
    assert (report[0]["matched"], report[0]["fired"]) == (2, 1)


# -- admin API and serving forms -----------------------------------------------------------


def test_admin_mutations_and_reset(client: httpx.Client, sim: ThreadedSimulator) -> None:
    def mutate(**body: Any) -> list[str]:
        response = client.post("/_simulator/mutate", json=body)
        response.raise_for_status()
        ids: list[str] = response.json()["ids"]
        return ids

    added = mutate(action="add", target="glp_devices", count=3)
    deleted = mutate(action="delete", target="glp_devices", ids=[added[0], "nope"])
    touched = mutate(action="touch", target="central_devices", count=2)
    removed = mutate(action="delete", target="central_devices", count=4)
    assert (len(added), deleted, len(touched), len(removed)) == (3, [added[0]], 2, 4)
    assert client.get(DEVICES, params={"limit": 1}).json()["total"] == 2347
    assert (
        client.post(
            "/_simulator/mutate", json={"action": "add", "target": "glp_devices"}
        ).status_code
        == 400
    )
    stats = client.get("/_simulator/stats").json()
    assert stats["workspaces"][sim.state.workspace().workspace_id]["central_devices"] == 1792
    assert stats["tokens_issued"] == 1
    assert stats["requests"][f"GET {DEVICES}"] == {"200": 1}
    workspace = sim.state.workspace()
    client.post("/_simulator/reset").raise_for_status()
    assert workspace.counts()["glp_devices"] == 2345  # reset in place: references stay valid
    assert client.get(DEVICES).status_code == 401  # tokens were forgotten too


def test_expire_tokens_forces_a_401_mid_sync(client: httpx.Client) -> None:
    assert client.get(SUBSCRIPTIONS).status_code == 200
    assert client.post("/_simulator/expire-tokens").json() == {"expired": 1}
    assert client.get(SUBSCRIPTIONS).status_code == 401


async def test_serve_runs_inside_the_callers_event_loop() -> None:
    async with serve(config(), port=0) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        assert sim.url.startswith("http://127.0.0.1:")
        client_id, secret = sim.state.credentials()
        grant = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        }
        access = (await http.post("/as/token.oauth2", data=grant)).json()["access_token"]
        page = await http.get(DEVICES, headers={"Authorization": f"Bearer {access}"})
        assert page.json()["total"] == sim.state.workspace().counts()["glp_devices"]


def test_latency_model_delays_answers_by_base_plus_per_item() -> None:
    latency = LatencyConfig(
        glp_devices=LatencyModel(base_seconds=0.1, per_item_seconds=0.001),
        glp_subscriptions=LatencyModel(),
        central=LatencyModel(),
    )
    with start_in_thread(config(latency=latency)) as sim, httpx.Client(base_url=sim.url) as http:
        headers = token(http, sim)
        started = time.perf_counter()
        http.get(DEVICES, headers=headers, params={"limit": 200})
        elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 1.5


def test_simulate_command_prints_url_and_demo_credentials_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "inventory_sync.simulator", "--port", "0", "--scale", "0.01"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("Upstream simulator listening on http://127.0.0.1:")
        url = banner.split()[-1]
        lines = [process.stdout.readline() for _ in range(6)]
        assert any("client_id=demo-client" in line for line in lines)
        form = {
            "grant_type": "client_credentials",
            "client_id": "demo-client",
            "client_secret": "demo-secret-not-real",
        }
        assert httpx.post(f"{url}/as/token.oauth2", data=form).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_simulate_with_tls_writes_a_ca_file_that_clients_can_trust(tmp_path: Path) -> None:
    ca_file = tmp_path / "simulator-ca.pem"
    command = [
        sys.executable, "-m", "inventory_sync.simulator", "--port", "0", "--scale", "0.01",
        "--tls", "--tls-ca-file", str(ca_file),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("Upstream simulator listening on https://127.0.0.1:")
        url = banner.split()[-1]
        lines = [process.stdout.readline()]
        while "trust it" not in lines[-1]:  # the banner's last lines name the CA file
            lines.append(process.stdout.readline())
        assert f"SSL_CERT_FILE={ca_file}" in lines[-1]
        form = {
            "grant_type": "client_credentials",
            "client_id": "demo-client",
            "client_secret": "demo-secret-not-real",
        }
        trusted = ssl.create_default_context(cafile=str(ca_file))
        assert httpx.post(f"{url}/as/token.oauth2", data=form, verify=trusted).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.post(f"{url}/as/token.oauth2", data=form)  # the system's CAs do not know it
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")  # kept: it was named
