"""GreenLakeClient: concurrent offset paging, retries per page, 401 refresh, fetch_by_ids."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import itertools
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from inventory_sync.errors import (
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamRequestError,
    UpstreamUnavailable,
)
from inventory_sync.upstream import (
    GreenLakeClient,
    GreenLakeLimits,
    Page,
    RateLimiterRegistry,
    offloading,
)
from inventory_sync.upstream.greenlake import spread_page_size
from inventory_sync.upstream.offloading import PageWorkers

DEVICES = "/devices/v1/devices"
SUBSCRIPTIONS = "/subscriptions/v1/subscriptions"


async def walk(client: GreenLakeClient, resource: Any = "devices", **kwargs: Any) -> list[Page]:
    return [page async for page in client.pages(resource, **kwargs)]


def ids_of(pages: list[Page]) -> list[str]:
    return [item["id"] for page in pages for item in page.items]


async def test_first_page_then_the_rest_concurrently_each_offset_once(
    server: Any, make_greenlake: Any
) -> None:
    server.devices = server.items(95)
    server.latency = lambda _request: 0.02
    client = make_greenlake(page_size=10, max_concurrent_pages=3)

    pages = await walk(client)

    offsets = [server.offset_of(r) for r in server.api_requests(DEVICES)]
    assert offsets[0] == 0  # the first page alone tells the total
    assert Counter(offsets) == Counter(range(0, 100, 10))  # every offset exactly once
    assert 1 < server.max_in_flight <= 3
    assert sorted(p.number for p in pages) == list(range(10))
    assert sorted(ids_of(pages)) == [d["id"] for d in server.devices]
    assert {p.total for p in pages} == {95}
    assert all(r.url.params["limit"] == "10" for r in server.api_requests(DEVICES))


async def test_pages_are_yielded_as_they_arrive(server: Any, make_greenlake: Any) -> None:
    server.devices = server.items(40)
    # Page 1 is slow; pages 2 and 3 overtake it.
    server.latency = lambda r: 0.1 if server.offset_of(r) == 10 else 0.0
    client = make_greenlake(page_size=10, max_concurrent_pages=3)
    numbers = [page.number for page in await walk(client)]
    assert numbers[0] == 0
    assert numbers[-1] == 1
    assert sorted(numbers) == [0, 1, 2, 3]


async def test_default_page_sizes_are_2000_devices_and_50_subscriptions(
    server: Any, make_greenlake: Any
) -> None:
    server.subscriptions = server.items(120, prefix="sub")
    server.devices = server.items(3)
    client = make_greenlake()
    assert len(ids_of(await walk(client, "subscriptions"))) == 120
    await walk(client, "devices")
    assert {r.url.params["limit"] for r in server.api_requests(SUBSCRIPTIONS)} == {"50"}
    assert (client.page_size("devices"), client.page_size("subscriptions")) == (2000, 50)
    # A walk opens with a small page: nothing else can be asked before it tells the total.
    assert [r.url.params["limit"] for r in server.api_requests(DEVICES)] == ["100"]


async def test_the_rest_of_a_walk_is_spread_so_that_every_fetcher_has_a_page(
    server: Any, make_greenlake: Any
) -> None:
    """4,900 devices: 100 first, then 4,800 in 8 pages of 600, all at once (a round of 1,200
    items less than 2 pages of 2,000 and a third of 800 would take)."""
    server.devices = server.items(4900)
    server.latency = lambda _request: 0.02
    client = make_greenlake(max_concurrent_pages=8)

    pages = await walk(client)

    asked = [(server.offset_of(r), r.url.params["limit"]) for r in server.api_requests(DEVICES)]
    assert asked[0] == (0, "100")
    assert sorted(asked[1:]) == [(100 + 600 * k, "600") for k in range(8)]
    assert server.max_in_flight == 8
    assert sorted(ids_of(pages)) == sorted(d["id"] for d in server.devices)


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        pytest.param(0, 2000, id="nothing left: the page size"),
        pytest.param(300, 500, id="a little left: one page of at least MIN_SPREAD_ITEMS"),
        pytest.param(4800, 600, id="less than the fetchers can take: one page each"),
        pytest.param(16000, 2000, id="every fetcher busy anyway: the page size"),
        pytest.param(1_000_000, 2000, id="a million: the page size"),
    ],
)
def test_spread_page_size(rest: int, expected: int) -> None:
    assert spread_page_size(rest, page_size=2000, fetchers=8) == expected


async def test_every_request_carries_the_bearer_token(server: Any, make_greenlake: Any) -> None:
    server.devices = server.items(25)
    await walk(make_greenlake(page_size=10))
    assert {r.headers["authorization"] for r in server.api_requests(DEVICES)} == {"Bearer token-1"}


async def test_filter_and_sort_are_passed_through(server: Any, make_greenlake: Any) -> None:
    server.devices = server.items(5)
    await walk(make_greenlake(), filter="id in ('dev-00001')", sort="id")
    (request,) = server.api_requests(DEVICES)
    assert request.url.params["filter"] == "id in ('dev-00001')"
    assert request.url.params["sort"] == "id"


async def test_empty_collection_is_one_empty_page(server: Any, make_greenlake: Any) -> None:
    pages = await walk(make_greenlake())
    assert pages == [Page(items=[], total=0, number=0)]


async def test_401_mid_walk_refreshes_the_token_once_then_succeeds(
    server: Any, make_greenlake: Any
) -> None:
    server.devices = server.items(50)

    def expire_after_first_page(request: httpx.Request) -> None:
        if server.offset_of(request) == 0:
            server.expire_tokens()

    server.after_page = expire_after_first_page
    client = make_greenlake(page_size=10, max_concurrent_pages=4)
    pages = await walk(client)
    assert len(ids_of(pages)) == 50
    assert server.tokens_issued == 2  # the fetchers shared one refresh
    assert client.stats.by_status[401] >= 1


async def test_second_401_raises_auth_error_without_the_token(
    server: Any, make_greenlake: Any
) -> None:
    server.devices = server.items(5)
    server.inject(server.path_is(DEVICES), httpx.Response(401), httpx.Response(401))
    with pytest.raises(UpstreamAuthError) as caught:
        await walk(make_greenlake())
    assert server.tokens_issued == 2
    message = str(caught.value)
    assert "refused again after a refresh" in message
    assert "token-" not in message
    assert server.secret not in message


async def test_429_with_reset_header_is_honoured_and_pauses_the_shared_limiter(
    server: Any, make_greenlake: Any, sleeps: Any, clock: Any
) -> None:
    server.devices = server.items(5)
    server.inject(server.path_is(DEVICES), httpx.Response(429, headers={"ratelimit-reset": "7"}))
    limiters = RateLimiterRegistry(clock=clock, sleep=clock.sleep)
    client = make_greenlake(limiters=limiters)
    await walk(client)
    assert sleeps.delays == [7.0]
    # Every other fetcher on this workspace's devices budget now waits out the same reset.
    clock.now -= 1
    assert await client.limiter("devices").acquire() == pytest.approx(1)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.Response(500), id="500"),
        pytest.param(httpx.ReadTimeout("timed out"), id="timeout"),
        pytest.param(httpx.ReadError("[Errno 104] Connection reset by peer"), id="reset"),
        pytest.param(httpx.Response(200, content=b'{"items": [{"id": "dev-0'), id="truncated"),
        pytest.param(httpx.Response(200, json={"total": 30}), id="no items"),
        pytest.param(
            httpx.Response(200, json={"items": [], "count": 3, "total": 30}), id="wrong count"
        ),
        pytest.param(
            httpx.Response(200, json={"items": [{"id": "x"}], "count": 1, "total": 30}),
            id="partial page",
        ),
    ],
)
async def test_a_transient_page_failure_is_retried_and_the_walk_completes(
    server: Any, make_greenlake: Any, failure: Any
) -> None:
    server.devices = server.items(30)
    server.inject(lambda r: r.url.path == DEVICES and server.offset_of(r) == 10, failure)
    client = make_greenlake(page_size=10)
    pages = await walk(client)
    assert sorted(ids_of(pages)) == [d["id"] for d in server.devices]
    assert client.stats.retries == 1


async def test_malformed_page_every_time_raises_protocol_error(
    server: Any, make_greenlake: Any, policy: Any
) -> None:
    server.devices = server.items(30)
    broken = [httpx.Response(200, content=b"<html>") for _ in range(policy.max_attempts)]
    server.inject(lambda r: r.url.path == DEVICES and server.offset_of(r) == 20, *broken)
    with pytest.raises(UpstreamProtocolError, match="not valid JSON"):
        await walk(make_greenlake(page_size=10))


async def test_a_failing_page_cancels_the_other_fetchers_and_raises(
    server: Any, make_greenlake: Any
) -> None:
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    server.devices = server.items(100)
    server.latency = lambda r: 0.0 if server.offset_of(r) in (0, 30) else 0.2
    server.inject(lambda r: server.offset_of(r) == 30, httpx.Response(400))
    client = make_greenlake(page_size=10, max_concurrent_pages=4)

    with pytest.raises(UpstreamRequestError, match="HTTP 400"):
        await walk(client)

    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert server.in_flight == 0  # the slow requests were cancelled, not left running
    assert len(server.api_requests(DEVICES)) == 5  # nothing new started after the failure
    gc.collect()
    await asyncio.sleep(0)
    assert loop_errors == []


async def test_pages_fail_with_unavailable_when_a_page_never_recovers(
    server: Any, make_greenlake: Any, policy: Any
) -> None:
    server.devices = server.items(30)
    server.inject(
        lambda r: server.offset_of(r) == 10,
        *[httpx.Response(503) for _ in range(policy.max_attempts)],
    )
    with pytest.raises(UpstreamUnavailable, match="gave up after 4 attempts"):
        await walk(make_greenlake(page_size=10))


async def test_a_slow_consumer_holds_back_the_fetchers(server: Any, make_greenlake: Any) -> None:
    server.devices = server.items(200)
    client = make_greenlake(page_size=10, max_concurrent_pages=2)
    async with contextlib.aclosing(client.pages("devices")) as pages:
        await anext(pages)
        for _ in range(20):
            await asyncio.sleep(0)
        # Two fetchers, a queue of two: at most five pages fetched ahead of the consumer.
        assert len(server.api_requests(DEVICES)) <= 1 + 2 + 2
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_total_growing_mid_walk_extends_the_walk(server: Any, make_greenlake: Any) -> None:
    server.devices = server.items(30)
    extra = server.items(45)[30:]

    def insert_after_first_page(request: httpx.Request) -> None:
        if server.offset_of(request) == 0:
            server.devices.extend(extra)

    server.after_page = insert_after_first_page
    pages = await walk(make_greenlake(page_size=10, max_concurrent_pages=2))
    offsets = sorted(server.offset_of(r) for r in server.api_requests(DEVICES))
    assert offsets == [0, 10, 20, 30, 40]
    assert len(ids_of(pages)) == 45
    assert {p.total for p in pages} == {30, 45}  # the caller can tell the data moved


async def test_fetch_by_ids_chunks_and_builds_the_in_filter(
    server: Any, make_greenlake: Any
) -> None:
    server.devices = server.items(130)
    wanted = [d["id"] for d in server.devices[:120]] + ["gone-1", "gone-2", "dev-00000"]
    client = make_greenlake()

    found = await client.fetch_by_ids("devices", wanted, chunk_size=50)

    assert sorted(item["id"] for item in found) == sorted(d["id"] for d in server.devices[:120])
    filters = [r.url.params["filter"] for r in server.api_requests(DEVICES)]
    assert len(filters) == 3  # 122 distinct ids in chunks of 50
    assert filters[0] == "id in (" + ",".join(f"'{i}'" for i in wanted[:50]) + ")"
    assert all(f.count("'") == 2 * n for f, n in zip(filters, [50, 50, 22], strict=True))


async def test_fetch_by_ids_with_no_ids_asks_nothing(server: Any, make_greenlake: Any) -> None:
    assert await make_greenlake().fetch_by_ids("subscriptions", []) == []
    assert server.requests == []


async def test_two_clients_on_one_workspace_share_the_budget(
    server: Any, make_greenlake: Any, clock: Any
) -> None:
    server.devices = server.items(40)
    server.clock = clock
    limiters = RateLimiterRegistry(clock=clock, sleep=clock.sleep)
    limits = GreenLakeLimits(devices=3, period_seconds=60)
    first = make_greenlake(limiters=limiters, limits=limits, page_size=10)
    second = make_greenlake(limiters=limiters, limits=limits, page_size=10)
    other = make_greenlake(limiters=limiters, limits=limits, workspace_id="ws-2")

    await asyncio.gather(walk(first), walk(second))

    times = sorted(server.request_times[1:])  # [0] is the token request
    assert len(times) == 8  # four pages each
    assert max(sum(1 for s in times if t - 60 < s <= t) for t in times) == 3
    assert times[-1] - times[0] >= 120  # eight requests at three a minute
    assert other.limiter("devices") is not first.limiter("devices")
    assert first.stats.rate_limit_wait_seconds + second.stats.rate_limit_wait_seconds > 0


def prepare_in_worker(page: Page, *, hold: float = 0.0) -> Page:
    """A picklable prepare: says which process ran it, and when (CLOCK_MONOTONIC is one clock
    for every process of the machine)."""
    started = time.monotonic()
    time.sleep(hold)
    return dataclasses.replace(
        page, items=[], prepared=(os.getpid(), started, time.monotonic(), len(page.items))
    )


def prepare_dying_once(page: Page, *, marker: str) -> Page:
    """Ends its worker process the first time it runs (while `marker` does not exist)."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return prepare_in_worker(page)


def prepare_always_dying(page: Page) -> Page:
    os._exit(1)


@pytest.fixture
def two_page_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[PageWorkers]:
    """Two page workers instead of the one a process has, so two pages could be prepared at
    once if a walk let them."""
    workers = PageWorkers(2)
    monkeypatch.setattr(offloading, "SHARED_WORKERS", workers)
    yield workers
    workers.shutdown()


async def test_each_page_is_prepared_in_a_worker_process_one_page_of_a_walk_at_a_time(
    server: Any, make_greenlake: Any, two_page_workers: PageWorkers
) -> None:
    """Decoding and preparing a page is CPU work: on the event loop, or in a thread holding
    the GIL, it held every other source up. It runs in a worker process, and a walk has one
    page there at a time (so it cannot queue its 8 fetchers' pages ahead of another walk's)."""
    server.devices = server.items(45)
    client = make_greenlake(page_size=10, max_concurrent_pages=3)
    # Both workers started and idle, so two pages could run at once if a walk let them.
    executor, loop = two_page_workers.executor(), asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(executor, time.sleep, 0.5) for _ in range(2)))

    pages = await walk(client, prepare=functools.partial(prepare_in_worker, hold=0.05))

    assert sorted(p.number for p in pages) == list(range(5))
    assert all(p.items == [] for p in pages)  # a queued page is already compact
    work = sorted((p.prepared for p in pages), key=lambda w: w[1])  # type: ignore[index]
    assert sum(count for *_, count in work) == 45
    assert os.getpid() not in {pid for pid, *_ in work}
    for (_, _, ended, _), (_, started, _, _) in itertools.pairwise(work):
        assert ended <= started  # never two pages of this walk at once


class NoProcesses(PageWorkers):
    """Page workers where no process can start (as inside a daemonic process)."""

    def executor(self) -> Any:
        raise AssertionError("daemonic processes are not allowed to have children")


async def test_where_no_worker_can_start_pages_are_prepared_on_a_thread(
    server: Any, make_greenlake: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setattr(offloading, "SHARED_WORKERS", NoProcesses(1))
    monkeypatch.setattr(offloading, "_warned", [])
    server.devices = server.items(25)
    client = make_greenlake(page_size=10)

    offloading.SHARED_WORKERS.warm_up(["json"])  # what every run does first: no raise either
    pages = await walk(client, prepare=prepare_in_worker)

    assert sum(p.prepared[-1] for p in pages) == 25  # type: ignore[index]
    assert {p.prepared[0] for p in pages} == {os.getpid()}  # type: ignore[index]
    warnings = [r for r in caplog.records if "cannot start here" in r.getMessage()]
    assert len(warnings) == 1  # once, not per page


async def test_a_page_worker_that_dies_is_replaced_and_its_page_asked_for_again(
    server: Any, make_greenlake: Any, tmp_path: Any
) -> None:
    server.devices = server.items(30)
    client = make_greenlake(page_size=10, max_concurrent_pages=2)
    prepare = functools.partial(prepare_dying_once, marker=str(tmp_path / "died"))

    pages = await walk(client, prepare=prepare)

    assert sum(p.prepared[-1] for p in pages) == 30  # type: ignore[index]
    # The page whose worker died was requested again: one request more than the pages.
    assert len(server.api_requests(DEVICES)) == 4
    assert client.stats.retries == 1


async def test_a_page_that_always_kills_its_worker_fails_the_walk_saying_so(
    server: Any, make_greenlake: Any
) -> None:
    server.devices = server.items(5)
    client = make_greenlake(page_size=10)

    with pytest.raises(UpstreamUnavailable, match="the page worker process stopped"):
        await walk(client, prepare=prepare_always_dying)
    # The next walk gets working workers again.
    assert sum(p.prepared[-1] for p in await walk(client, prepare=prepare_in_worker)) == 5  # type: ignore[index]


async def test_a_read_pages_response_is_freed_without_the_garbage_collector(
    server: Any, make_greenlake: Any
) -> None:
    """httpx links a response and its stream both ways: through that cycle each 1.7 MB page
    body outlived its page until a full collection (a million-device walk held 25-33 of
    them, +59 MB of RSS). Read responses must go as soon as they are dropped."""
    server.devices = server.items(45)
    client = make_greenlake(page_size=10)
    gc.collect()
    earlier = {id(o) for o in gc.get_objects() if isinstance(o, httpx.Response)}
    gc.disable()
    try:
        pages = await walk(client)
        alive = [
            o for o in gc.get_objects() if isinstance(o, httpx.Response) and id(o) not in earlier
        ]
    finally:
        gc.enable()
    assert sorted(ids_of(pages)) == [d["id"] for d in server.devices]
    assert alive == []
