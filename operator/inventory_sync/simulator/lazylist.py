"""A list of generated items that exists only as the changes made to it: base items 0..n-1 are
made on demand, deletions, insertions and replacements are layered on top, and a slice costs
its own length plus a few binary searches (never the items before it)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

from inventory_sync.simulator.dataset import JsonObject

#: Orders inserted items that share a slot (e.g. (createdAt, id) for GreenLake devices).
TieBreak = Any


class LazyList:
    """Base item i sits at slot i; an inserted item sits before the base item of its slot.

    `make(i)` builds base item i, `locate(id)` tells which base index an id belongs to (None
    when it is not a generated one), `ident(item)` reads an item's id. Not thread-safe: the
    owner holds its lock around every call.
    """

    def __init__(
        self,
        n: int,
        *,
        make: Callable[[int], JsonObject],
        locate: Callable[[str], int | None],
        ident: Callable[[JsonObject], str],
        recent: Callable[[str], list[int] | None] | None = None,
    ) -> None:
        self._n = n
        self._recent = recent
        self._make = make
        self._locate = locate
        self._ident = ident
        self._deleted: list[int] = []
        self._deleted_set: set[int] = set()
        self._replaced: dict[int, JsonObject] = {}
        #: Inserted items, sorted by (slot, tie-break); `_extra` maps their ids to that key.
        self._keys: list[tuple[int, TieBreak]] = []
        self._items: list[JsonObject] = []
        self._extra: dict[str, tuple[int, TieBreak]] = {}

    def __len__(self) -> int:
        return self._n - len(self._deleted) + len(self._items)

    # -- reading ---------------------------------------------------------------------------

    def slice(self, start: int, stop: int) -> list[JsonObject]:
        """Items [start, stop) of the current list."""
        start, stop = max(0, start), min(stop, len(self))
        if start >= stop:
            return []
        slot = self._block_of(start)
        skip = start - self._before(slot)
        out: list[JsonObject] = []
        want = stop - start
        while len(out) < want and slot <= self._n:
            low = bisect.bisect_left(self._keys, (slot,))
            high = bisect.bisect_left(self._keys, (slot + 1,))
            alive = slot < self._n and slot not in self._deleted_set
            size = high - low + (1 if alive else 0)
            if skip >= size:
                skip -= size
                slot += 1
                continue
            for j in range(skip, size):
                out.append(self._items[low + j] if j < high - low else self._base(slot))
                if len(out) == want:
                    break
            skip = 0
            slot += 1
        return out

    def __iter__(self) -> Iterator[JsonObject]:
        step = 2000
        for start in range(0, len(self), step):
            yield from self.slice(start, start + step)

    def get(self, item_id: str) -> JsonObject | None:
        key = self._extra.get(item_id)
        if key is not None:
            return self._items[bisect.bisect_left(self._keys, key)]
        index = self._locate(item_id)
        if index is None or index in self._deleted_set:
            return None
        return self._base(index)

    def order_of(self, item_id: str) -> tuple[int, int, TieBreak]:
        """A key that sorts items as the list orders them (for lookups by id)."""
        key = self._extra.get(item_id)
        if key is not None:
            return (key[0], 0, key[1])
        index = self._locate(item_id)
        return (index if index is not None else self._n + 1, 1, None)

    def changed_after(self, since: str) -> list[JsonObject] | None:
        """Every item that may have changed after `since` (an `updatedAt`): the generated items
        stamped later, plus every inserted or replaced one, in list order; None when the list
        cannot tell without a scan."""
        if self._recent is None:
            return None
        indices = self._recent(since)
        if indices is None:
            return None
        found = {self._ident(item): item for item in self._items}
        found.update((self._ident(item), item) for item in self._replaced.values())
        for index in indices:
            if index not in self._deleted_set:
                item = self._base(index)
                found.setdefault(self._ident(item), item)
        return sorted(found.values(), key=lambda item: self.order_of(self._ident(item)))

    def changed(self) -> list[JsonObject]:
        """Items inserted or replaced since generation, in list order."""
        found = list(self._items) + list(self._replaced.values())
        return sorted(found, key=lambda item: self.order_of(self._ident(item)))

    # -- changing --------------------------------------------------------------------------

    def insert(self, item: JsonObject, *, slot: int, tie: TieBreak) -> None:
        key = (min(max(slot, 0), self._n), tie)
        index = bisect.bisect_left(self._keys, key)
        self._keys.insert(index, key)
        self._items.insert(index, item)
        self._extra[self._ident(item)] = key

    def replace(self, item: JsonObject) -> bool:
        """Put `item` in place of the item with its id; False when there is none."""
        item_id = self._ident(item)
        key = self._extra.get(item_id)
        if key is not None:
            self._items[bisect.bisect_left(self._keys, key)] = item
            return True
        index = self._locate(item_id)
        if index is None or index in self._deleted_set:
            return False
        self._replaced[index] = item
        return True

    def delete(self, item_id: str) -> JsonObject | None:
        """Remove the item with this id; returns it, or None when there was none."""
        key = self._extra.pop(item_id, None)
        if key is not None:
            index = bisect.bisect_left(self._keys, key)
            del self._keys[index]
            return self._items.pop(index)
        base = self._locate(item_id)
        if base is None or base in self._deleted_set:
            return None
        item = self._base(base)
        bisect.insort(self._deleted, base)
        self._deleted_set.add(base)
        self._replaced.pop(base, None)
        return item

    def restore(self, item: JsonObject) -> bool:
        """Bring a deleted base item back at its own place (with `item`'s content)."""
        base = self._locate(self._ident(item))
        if base is None or base not in self._deleted_set:
            return False
        self._deleted.remove(base)
        self._deleted_set.discard(base)
        self._replaced[base] = item
        return True

    # -- internals -------------------------------------------------------------------------

    def _base(self, index: int) -> JsonObject:
        replaced = self._replaced.get(index)
        return replaced if replaced is not None else self._make(index)

    def _before(self, slot: int) -> int:
        """How many items come before slot `slot`'s block."""
        deleted = bisect.bisect_left(self._deleted, slot)
        inserted = bisect.bisect_left(self._keys, (slot,))
        return slot - deleted + inserted

    def _block_of(self, position: int) -> int:
        """The slot whose block holds `position`."""
        low, high = 0, self._n
        while low < high:
            middle = (low + high + 1) // 2
            if self._before(middle) <= position:
                low = middle
            else:
                high = middle - 1
        return low
