"""Lazy generation: index codecs round-trip, and a LazyList pages exactly like the plain list
it stands for, whatever was inserted, deleted or replaced."""

from __future__ import annotations

import random
import uuid

import pytest

from inventory_sync.simulator.config import DatasetSize, WorkspaceConfig
from inventory_sync.simulator.generation import WorkspaceData
from inventory_sync.simulator.lazylist import LazyList
from inventory_sync.simulator.seeded import IdCodec, Permutation, SerialCodec


def test_ids_and_serials_encode_their_index_and_nothing_else() -> None:
    ids, serials = IdCodec(b"k/ids"), SerialCodec(b"k/serials", ("CN", "SG"))
    encoded = [ids.encode(i) for i in range(3000)]
    assert len(set(encoded)) == 3000
    assert all(uuid.UUID(text).version == 4 for text in encoded)
    assert [ids.decode(text) for text in encoded] == list(range(3000))
    assert ids.decode(str(uuid.uuid4())) is None
    assert IdCodec(b"other/ids").encode(7) != encoded[7]
    numbers = [serials.encode(i) for i in range(3000)]
    assert len(set(numbers)) == 3000
    assert [serials.decode(text) for text in numbers] == list(range(3000))
    assert serials.decode("XX00000000") is None


def test_a_permutation_is_a_bijection_with_its_inverse() -> None:
    permutation = Permutation(1000, b"p")
    image = [permutation(i) for i in range(1000)]
    assert sorted(image) == list(range(1000))
    assert [permutation.inverse(j) for j in image] == list(range(1000))


def test_a_lazy_list_pages_like_the_list_it_stands_for() -> None:
    n = 60
    base = [{"id": f"b{i}", "v": 0} for i in range(n)]

    def locate(item_id: str) -> int | None:
        return int(item_id[1:]) if item_id.startswith("b") else None

    lazy = LazyList(n, make=base.__getitem__, locate=locate, ident=lambda item: item["id"])
    rng = random.Random(5)
    for step in range(400):
        choice = rng.random()
        if choice < 0.3 and len(lazy):
            victim = lazy.slice(p := rng.randrange(len(lazy)), p + 1)[0]
            assert lazy.delete(victim["id"]) == victim
        elif choice < 0.6:
            lazy.insert({"id": f"x{step}", "v": 0}, slot=rng.randrange(n + 1), tie=step)
        elif len(lazy):
            item = lazy.slice(p := rng.randrange(len(lazy)), p + 1)[0]
            assert lazy.replace({**item, "v": step})
    everything = lazy.slice(0, len(lazy))
    assert everything == list(lazy)
    assert len({item["id"] for item in everything}) == len(everything) == len(lazy)
    for start in range(0, len(lazy), 7):
        assert lazy.slice(start, start + 9) == everything[start : start + 9]
    assert all(lazy.get(item["id"]) == item for item in everything)
    assert sorted(everything, key=lambda item: lazy.order_of(item["id"])) == everything


def test_a_million_generated_devices_cost_nothing_until_a_page_asks() -> None:
    size = DatasetSize().scaled(1_000_000 / 11727)
    data = WorkspaceData(WorkspaceConfig(dataset=size), seed=3)
    last = data.glp_device(data.n - 1)
    assert data.glp_index(last["id"]) == data.n - 1
    assert data.glp_device(data.n - 1) == last  # the same from (seed, index) alone


def test_base_items_are_kept_up_to_the_memo_limit_and_rebuilt_identically_beyond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inventory_sync.simulator import generation

    monkeypatch.setattr(generation, "MEMO_ITEMS", 10)
    size = DatasetSize(
        subscriptions=5, glp_devices=40, linked_devices=20, central_devices=30, central_overlap=10
    )
    data = WorkspaceData(WorkspaceConfig(dataset=size), seed=3)
    fresh = WorkspaceData(WorkspaceConfig(dataset=size), seed=3)
    # Below the limit the same object comes back (served from memory), beyond it a new one.
    assert data.glp_device(3) is data.glp_device(3)
    assert data.central_at(9) is data.central_at(9)
    assert data.glp_device(25) is not data.glp_device(25)
    assert data.central_at(10) is not data.central_at(10)
    # Either way the item is the one the seed makes.
    for i in (3, 25):
        assert data.glp_device(i) == fresh.glp_device(i)
    for k in (9, 10):
        assert data.central_at(k) == fresh.central_at(k)
