"""KubeClient over httpx.MockTransport: paging, 410, error mapping, retries and request shapes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inventory_sync.errors import (
    KubeConflict,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubernetesError,
    KubeUnauthorized,
    KubeUnavailable,
)
from inventory_sync.kube import (
    MAX_EVENT_MESSAGE,
    APIResource,
    KubeClient,
    KubeConnection,
    ListPage,
)

SERVER = "https://fabric.example.test:6443"
TOKEN = "tok-never-in-messages"
SWITCHES = "/apis/wiring.githedgehog.com/v1beta1/namespaces/fab/switches"


def make_client(api: Any, **connection: Any) -> KubeClient:
    options = {"server": SERVER, "token": TOKEN, **connection}
    return KubeClient(
        KubeConnection(**options), transport=api.transport(), retry_delay=0, timeout=5
    )


@pytest.fixture
async def client(api: Any) -> AsyncIterator[KubeClient]:
    async with make_client(api) as created:
        yield created


def paged_list(objects: list[dict[str, Any]]) -> Any:
    """A handler serving `objects` with limit/continue, continue being the next offset."""

    def handle(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        start = int(request.url.params.get("continue", "0"))
        chunk = objects[start : start + limit]
        rest = len(objects) - start - len(chunk)
        metadata: dict[str, Any] = {"resourceVersion": "4711"}
        if rest:
            metadata |= {"continue": str(start + limit), "remainingItemCount": rest}
        return httpx.Response(
            200, json={"kind": "SwitchList", "metadata": metadata, "items": chunk}
        )

    return handle


async def collect(pages: AsyncIterator[ListPage], *, into: list[ListPage]) -> None:
    async for page in pages:
        into.append(page)


def switches(count: int) -> list[dict[str, Any]]:
    return [{"metadata": {"name": f"sw-{n}", "uid": f"uid-{n}"}} for n in range(count)]


async def test_list_pages_follows_continue_until_the_last_page(
    api: Any, client: KubeClient
) -> None:
    api.handler = paged_list(switches(7))
    pages = [p async for p in client.list_pages(SWITCHES, limit=3, label_selector="rack=a")]

    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [p.remaining_item_count for p in pages] == [4, 1, None]
    assert [p.continue_token for p in pages] == ["3", "6", None]
    assert pages[0].resource_version == "4711"
    assert [r.url.params.get("continue") for r in api.requests] == [None, "3", "6"]
    assert {r.url.params["limit"] for r in api.requests} == {"3"}
    assert {r.url.params["labelSelector"] for r in api.requests} == {"rack=a"}
    assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_an_empty_list_with_null_items_is_one_empty_page(
    api: Any, client: KubeClient
) -> None:
    api.queue(httpx.Response(200, json={"metadata": {"resourceVersion": "9"}, "items": None}))
    pages = [p async for p in client.list_pages(SWITCHES, limit=10)]
    assert [p.items for p in pages] == [[]]


async def test_an_expired_continue_token_raises_gone_after_the_pages_so_far(
    api: Any, client: KubeClient
) -> None:
    handle = paged_list(switches(7))

    def expire_on_continue(request: httpx.Request) -> httpx.Response:
        if "continue" in request.url.params:
            message = "The provided continue parameter is too old to display a consistent list"
            return httpx.Response(410, json=api.status(410, "Expired", message))
        return handle(request)

    api.handler = expire_on_continue
    seen: list[ListPage] = []
    with pytest.raises(KubeGone, match="incomplete") as caught:
        await collect(client.list_pages(SWITCHES, limit=3), into=seen)
    assert len(seen) == 1
    assert not caught.value.permanent
    assert len(api.requests) == 2  # a 410 is not retried: the snapshot is gone


async def test_list_of_an_unserved_resource_is_not_found(api: Any, client: KubeClient) -> None:
    with pytest.raises(KubeNotFound, match=f"GET {SWITCHES}: not found"):
        await collect(client.list_pages(SWITCHES, limit=3), into=[])


async def test_get_returns_none_for_a_missing_object(api: Any, client: KubeClient) -> None:
    assert await client.get(f"{SWITCHES}/absent") is None


FORBIDDEN_PATCH = (
    'syncschedules.inventorysync.dev "nightly" is forbidden: User '
    '"system:serviceaccount:inventory-sync-system:inventory-sync-operator" cannot patch '
    'resource "syncschedules/status" in API group "inventorysync.dev" in the namespace "x"'
)


@pytest.mark.parametrize(
    ("method", "path", "server_message", "expected"),
    [
        pytest.param(
            "PATCH",
            "/apis/inventorysync.dev/v1alpha1/namespaces/x/syncschedules/nightly/status",
            FORBIDDEN_PATCH,
            "forbidden: cannot patch syncschedules/status in namespace x "
            "(API group inventorysync.dev)",
            id="verb and resource read from the server's Status",
        ),
        pytest.param(
            "GET",
            SWITCHES,
            "",
            "forbidden: cannot list switches in namespace fab (API group wiring.githedgehog.com)",
            id="GET of a collection is a list when the server says nothing",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/x/secrets/creds",
            "",
            "forbidden: cannot get secrets in namespace x",
            id="GET of a core object is a get",
        ),
        pytest.param(
            "GET",
            "/apis/wiring.githedgehog.com/v1beta1/switches",
            'cannot list resource "switches" in API group "wiring.githedgehog.com" at the '
            "cluster scope",
            "forbidden: cannot list switches at cluster scope (API group wiring.githedgehog.com)",
            id="cluster scope",
        ),
    ],
)
async def test_403_names_verb_resource_and_namespace(
    api: Any, client: KubeClient, method: str, path: str, server_message: str, expected: str
) -> None:
    api.handler = lambda _r: httpx.Response(403, json=api.status(403, "Forbidden", server_message))
    call = client.get(path) if method == "GET" else client.patch_merge(path, {"status": {}})
    with pytest.raises(KubeForbidden) as caught:
        await call
    assert str(caught.value) == expected
    assert caught.value.permanent
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("code", "error", "permanent"),
    [
        pytest.param(401, KubeUnauthorized, True, id="401 is Unauthorized and permanent"),
        pytest.param(409, KubeConflict, False, id="409 is Conflict"),
        pytest.param(422, KubeInvalid, True, id="422 is Invalid and permanent"),
        pytest.param(400, KubeInvalid, True, id="400 is Invalid and permanent"),
        pytest.param(404, KubeNotFound, False, id="404 on a patch is NotFound"),
        pytest.param(500, KubeUnavailable, False, id="500 on a patch is Unavailable, no retry"),
    ],
)
async def test_write_errors_map_to_the_hierarchy(
    api: Any, client: KubeClient, code: int, error: type[KubernetesError], permanent: bool
) -> None:
    api.handler = lambda _r: httpx.Response(code, json=api.status(code, "Whatever"))
    with pytest.raises(error) as caught:
        await client.patch_merge(f"{SWITCHES}/sw-1", {"spec": {}})
    assert caught.value.permanent is permanent
    assert TOKEN not in str(caught.value)
    assert len(api.requests) == 1  # writes are never retried


async def test_get_is_retried_quickly_on_5xx_then_succeeds(api: Any, client: KubeClient) -> None:
    api.queue(
        httpx.Response(503, json=api.status(503, "ServiceUnavailable")),
        httpx.ConnectError("refused"),
    )
    api.handler = lambda _r: httpx.Response(200, json={"metadata": {"name": "sw-1"}})
    assert await client.get(f"{SWITCHES}/sw-1") == {"metadata": {"name": "sw-1"}}
    assert len(api.requests) == 3


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        pytest.param(
            httpx.ReadTimeout("slow"),
            "fabric.example.test:6443 did not answer in time \\(after 3 attempts\\)",
            id="timeouts",
        ),
        pytest.param(
            httpx.ConnectError("refused"),
            "cannot connect to fabric.example.test:6443: refused \\(after 3 attempts\\)",
            id="connection errors",
        ),
    ],
)
async def test_get_gives_up_after_its_retries_as_unavailable(
    api: Any, client: KubeClient, failure: Exception, message: str
) -> None:
    api.queue(failure, failure, failure)
    with pytest.raises(KubeUnavailable, match=message):
        await client.get(f"{SWITCHES}/sw-1")
    assert len(api.requests) == 3


async def test_a_long_retry_after_is_not_waited_for(api: Any, client: KubeClient) -> None:
    api.handler = lambda _r: httpx.Response(
        429, headers={"Retry-After": "60"}, json=api.status(429, "TooManyRequests")
    )
    with pytest.raises(KubeUnavailable, match="HTTP 429"):
        await client.get(SWITCHES)
    assert len(api.requests) == 1


async def test_patch_status_sends_a_merge_patch_to_the_status_subresource(
    api: Any, client: KubeClient
) -> None:
    api.handler = lambda r: httpx.Response(200, json={"status": api.body(r)["status"]})
    stored = await client.patch_status(
        group="inventorysync.dev",
        version="v1alpha1",
        plural="syncschedules",
        namespace="x",
        name="nightly",
        patch={"status": {"syncStatus": "in-sync"}},
    )
    request = api.requests[0]
    assert request.method == "PATCH"
    assert (
        request.url.path
        == "/apis/inventorysync.dev/v1alpha1/namespaces/x/syncschedules/nightly/status"
    )
    assert request.headers["content-type"] == "application/merge-patch+json"
    assert stored == {"status": {"syncStatus": "in-sync"}}


async def test_create_event_posts_a_core_event_with_a_capped_message(
    api: Any, client: KubeClient
) -> None:
    api.handler = lambda _r: httpx.Response(201, json={})
    involved = {
        "apiVersion": "inventorysync.dev/v1alpha1",
        "kind": "Fabric",
        "name": "fabric-a",
        "namespace": "x",
        "uid": "uid-1",
    }
    await client.create_event(
        involved=involved,
        type="Warning",
        reason="SyncFailed",
        message="m" * 5000,
        action="Sync",
        reporting_instance="operator-pod-1",
    )
    request = api.requests[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/namespaces/x/events")
    event = api.body(request)
    assert event["involvedObject"] == involved
    assert event["metadata"] == {"generateName": "fabric-a.", "namespace": "x"}
    assert len(event["message"]) == MAX_EVENT_MESSAGE
    assert (event["type"], event["reason"], event["action"]) == ("Warning", "SyncFailed", "Sync")
    assert event["reportingComponent"] == "inventory-sync-operator"
    assert event["reportingInstance"] == "operator-pod-1"
    assert event["eventTime"].endswith("Z")


async def test_read_secret_decodes_every_key(api: Any, client: KubeClient) -> None:
    data = {"kubeconfig": base64.b64encode(b"apiVersion: v1\n").decode(), "empty": ""}
    api.handler = lambda r: (
        httpx.Response(200, json={"kind": "Secret", "data": data})
        if r.url.path == "/api/v1/namespaces/x/secrets/creds"
        else httpx.Response(404, json=api.status(404, "NotFound"))
    )
    assert await client.read_secret("x", "creds") == {"kubeconfig": "apiVersion: v1\n", "empty": ""}
    assert await client.read_secret("x", "absent") is None


async def test_discover_maps_kind_to_plural_and_scope(api: Any, client: KubeClient) -> None:
    resources = [
        {"name": "switches", "kind": "Switch", "namespaced": True, "verbs": ["get", "list"]},
        {"name": "switches/status", "kind": "Switch", "namespaced": True, "verbs": ["patch"]},
        {"name": "switchprofiles", "kind": "SwitchProfile", "namespaced": False, "verbs": []},
    ]
    api.handler = lambda r: (
        httpx.Response(200, json={"kind": "APIResourceList", "resources": resources})
        if r.url.path == "/apis/wiring.githedgehog.com/v1beta1"
        else httpx.Response(404, json=api.status(404, "NotFound"))
    )
    served = await client.discover("wiring.githedgehog.com", "v1beta1")
    assert served == {
        "Switch": APIResource("switches", "Switch", namespaced=True, verbs=("get", "list")),
        "SwitchProfile": APIResource("switchprofiles", "SwitchProfile", namespaced=False),
    }
    assert await client.discover("agent.githedgehog.com", "v1beta1") == {}


async def test_a_rotated_token_file_is_used_on_the_next_request(api: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first")
    api.handler = lambda _r: httpx.Response(200, json={})
    async with make_client(api, token=None, token_file=str(token_file)) as client:
        await client.get("/api/v1/namespaces/x")
        token_file.write_text("second")
        await client.get("/api/v1/namespaces/x")
    assert [r.headers["authorization"] for r in api.requests] == ["Bearer first", "Bearer second"]


async def test_a_server_url_with_a_path_prefix_keeps_it(api: Any) -> None:
    # Rancher-style proxies serve a cluster under a path.
    api.handler = lambda _r: httpx.Response(200, json={})
    async with make_client(api, server="https://rancher.example.test/k8s/clusters/c-1") as client:
        await client.get("/api/v1/namespaces/x")
    assert api.requests[0].url.path == "/k8s/clusters/c-1/api/v1/namespaces/x"


async def test_a_non_json_answer_is_unavailable(api: Any, client: KubeClient) -> None:
    api.handler = lambda _r: httpx.Response(200, text="<html>proxy</html>")
    with pytest.raises(KubeUnavailable, match="not JSON"):
        await client.get("/api/v1/namespaces/x")
