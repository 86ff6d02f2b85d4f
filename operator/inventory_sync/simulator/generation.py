"""One workspace's generated items, addressable by index: GreenLake device i and Central device k
are built from (seed, index) alone, so a page costs its own items and 10M devices take no
memory until asked for. Who is linked, a Central twin or in a rare state is decided by seeded
bijections of the index space, so every count of the profile holds exactly."""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

from inventory_sync.simulator import catalog
from inventory_sync.simulator.config import WorkspaceConfig
from inventory_sync.simulator.dataset import (
    _SERIAL_PREFIXES,
    HISTORY_END,
    HISTORY_START,
    ItemFactory,
    JsonObject,
)
from inventory_sync.simulator.seeded import Draws, IdCodec, Permutation, SerialCodec

_CAPABLE = tuple(h for h in catalog.HARDWARE if h.central_type)
_SPAN_MS = int((HISTORY_END - timedelta(days=1) - HISTORY_START).total_seconds() * 1000)
_HISTORY_MS = int((HISTORY_END - HISTORY_START).total_seconds() * 1000)
#: How far back from the end of the history `updated_since` can answer without a scan.
_RECENT_MS = 7 * 86_400_000
#: Base items kept once built, per list (about 2.5 KB each): the seed-sized inventory is then
#: served from memory after its first walk, while a list of millions stays lazy beyond it.
MEMO_ITEMS = 32_768


@dataclass(frozen=True)
class _Pool:
    """Hardware to draw from by weight, the weights summed once (not per device)."""

    hardware: tuple[catalog.Hardware, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def of(cls, hardware: tuple[catalog.Hardware, ...]) -> _Pool:
        return cls(hardware, tuple(itertools.accumulate(h.weight for h in hardware)))

    def draw(self, rng: random.Random) -> catalog.Hardware:
        # The same draw as `choices(weights=...)`: it sums the weights into these first.
        return rng.choices(self.hardware, cum_weights=self.cumulative)[0]


_ANY = _Pool.of(catalog.HARDWARE)
_CENTRAL_CAPABLE = _Pool.of(_CAPABLE)


@dataclass(frozen=True)
class _Allocation:
    """Known links by rank: ranks [start, end) link subscription `index`, serving `pool`."""

    start: int
    end: int
    index: int
    pool: _Pool


class WorkspaceData:
    """The generated, unchanging base of one workspace (WorkspaceState layers changes on top)."""

    def __init__(self, config: WorkspaceConfig, *, seed: int) -> None:
        size = config.dataset
        self.config = config
        self.workspace_id = config.workspace_id
        key = f"{seed}/{config.workspace_id}".encode()
        self._key = key
        self._rng_base = Draws(key, 99).bits(60) << 40
        self._salt = Draws(key, 98).bits(64)
        self._recent: list[tuple[int, int]] | None = None
        self._recent_lock = threading.Lock()
        self.n = size.glp_devices
        self.m = size.central_devices
        self.ids = IdCodec(key + b"/ids")
        self.serials = SerialCodec(key + b"/serials", _SERIAL_PREFIXES)
        self._links = Permutation(self.n, key + b"/links")
        self._linked = size.linked_devices
        self._unknown = size.unknown_subscription_links
        self.subscriptions, self._allocations, self._subscription_ids, self._unknown_ids = (
            self._subscriptions(config, seed)
        )
        self._allocation_starts = [a.start for a in self._allocations]
        # Links to plans serving no Central hardware take the top known ranks: their devices
        # can never be Central twins.
        self._plain = sum(
            a.end - a.start for a in self._allocations if a.pool.hardware[0].central_type is None
        )
        eligible = self.n - self._plain
        self.overlap = min(size.central_overlap, eligible, self.m)
        self._twins = Permutation(eligible, key + b"/twins")
        self._not_onboarded = Permutation(self.m, key + b"/onboarding")
        self._central_order = Permutation(self.m, key + b"/central-order")
        self._undocumented = size.undocumented_values
        unlinked = self.n - self._linked
        self._dedicated = max(1, unlinked // 200) if self.n >= 20 and unlinked else 0
        self._dedicated_workspace = str(uuid.UUID(int=Draws(key, 5).bits(128), version=4))
        # Shared by every caller: an item is never changed in place (changes are new dicts).
        self._glp_memo: dict[int, JsonObject] = {}
        self._central_memo: dict[int, JsonObject] = {}

    # -- subscriptions (few: built at once) --------------------------------------------------

    def _subscriptions(
        self, config: WorkspaceConfig, seed: int
    ) -> tuple[list[JsonObject], list[_Allocation], list[str], list[str]]:
        size = config.dataset
        factory = ItemFactory(
            random.Random(f"{seed}/{config.workspace_id}/subs"), self.workspace_id
        )
        rng = factory.rng
        plans = [catalog.PLANS[i % len(catalog.PLANS)] for i in range(min(size.subscriptions, 7))]
        plans += [rng.choice(catalog.PLANS) for _ in range(size.subscriptions - len(plans))]
        statuses = ["STARTED" if i < len(catalog.PLANS) else "" for i in range(len(plans))]
        statuses = [s or factory.weighted(catalog.SUBSCRIPTION_STATUSES) for s in statuses]
        started = [i for i, s in enumerate(statuses) if s == "STARTED"] or list(range(len(plans)))
        known = size.linked_devices - size.unknown_subscription_links
        # Central-capable plans first, then the rest; each gets links by hardware weight.
        started.sort(key=lambda j: not any(_serves_central(t) for t in plans[j].serves))
        weights = [
            sum(h.weight for h in catalog.HARDWARE if h.glp_type in plans[j].serves)
            for j in started
        ]
        counts = _largest_remainder(known, weights) if plans else []
        allocations, rank = [], size.unknown_subscription_links
        link_counts = [0] * len(plans)
        for j, count in zip(started, counts, strict=True):
            pool = _Pool.of(tuple(h for h in catalog.HARDWARE if h.glp_type in plans[j].serves))
            allocations.append(_Allocation(rank, rank + count, j, pool))
            link_counts[j] = count
            rank += count
        subscriptions = []
        ids = [factory.uuid() for _ in plans]
        for j, plan in enumerate(plans):
            item = factory.subscription(plan, statuses[j], linked=link_counts[j])
            item["id"] = ids[j]
            subscriptions.append(item)
        subscriptions.sort(key=lambda s: (s["createdAt"], s["id"]))
        unknown = [factory.uuid() for _ in range(min(3, size.unknown_subscription_links))]
        return subscriptions, allocations, ids, unknown

    # -- GreenLake devices -------------------------------------------------------------------

    def updated_ms(self, i: int) -> int:
        """Device i's updatedAt in ms since HISTORY_START: between its createdAt and the end of
        the history. An arithmetic hash, so a whole list's can be scanned cheaply."""
        created = self.created_ms(i)
        fraction = ((i * 0x9E3779B97F4A7C15 + self._salt) >> 11 & 0xFFFFFFFF) / (1 << 32)
        return created + int(fraction * (_HISTORY_MS - created))

    def updated_since(self, since_ms: int) -> list[int] | None:
        """The devices stamped after `since_ms`, oldest change first; None when `since_ms` is
        older than the recent tail kept for this (a client would scan anyway)."""
        if since_ms < _HISTORY_MS - _RECENT_MS:
            return None
        with self._recent_lock:
            if self._recent is None:
                # One cheap pass over the indices, once (warm_up starts it in the background).
                cut = _HISTORY_MS - _RECENT_MS
                recent = [(u, i) for i in range(self.n) if (u := self.updated_ms(i)) > cut]
                self._recent = sorted(recent)
        start = bisect.bisect_right(self._recent, (since_ms, self.n))
        return [i for _, i in self._recent[start:]]

    def warm_up(self) -> None:
        """Build what incremental clients will ask for in a background thread, so the first
        `updatedAt gt` request does not pay for a pass over millions of indices."""
        if self.n > 10_000:
            threading.Thread(
                target=self.updated_since, args=(_HISTORY_MS,), name="warm-up", daemon=True
            ).start()

    def created_ms(self, i: int) -> int:
        """Device i's createdAt in ms since HISTORY_START: strictly increasing with i, so the
        paging order (createdAt, id) is the index order."""
        jitter = ((i * 0xC2B2AE3D27D4EB4F + self._salt) >> 13 & 0xFFFFF) / (1 << 21)  # [0, 0.5)
        return int((i + jitter) * _SPAN_MS / max(1, self.n))

    def is_twin(self, i: int) -> bool:
        eligible = self._eligible_rank(self._links(i))
        return eligible is not None and self._twins(eligible) < self.overlap

    def _eligible_rank(self, rank: int) -> int | None:
        cut = self._linked - self._plain
        if rank < cut:
            return rank
        if rank >= self._linked:
            return rank - self._plain
        return None

    def twin_of(self, k: int) -> int:
        """The GreenLake device whose serial Central device k (k < overlap) shares."""
        eligible = self._twins.inverse(k)
        cut = self._linked - self._plain
        rank = eligible if eligible < cut else eligible + self._plain
        return self._links.inverse(rank)

    def mac(self, index: int) -> str:
        a, b, c = Draws(self._key + b"/mac", index).bytes(3)
        return f"20:4C:03:{a:02X}:{b:02X}:{c:02X}"

    def _rng(self, salt: int, index: int) -> random.Random:
        # random.Random draws in C: several times faster per item than Draws' big integers.
        return random.Random(self._rng_base + (index << 3) + salt)

    def glp_hardware(self, i: int) -> catalog.Hardware:
        rank = self._links(i)
        return self._hardware(i, rank, self._allocation(rank))

    def _hardware(self, i: int, rank: int, allocation: _Allocation | None) -> catalog.Hardware:
        rng = self._rng(1, i)
        if allocation is not None:
            return allocation.pool.draw(rng)
        return (_CENTRAL_CAPABLE if self.is_twin(i) else _ANY).draw(rng)

    def _allocation(self, rank: int) -> _Allocation | None:
        # Allocations are contiguous and in rank order: the last one starting at or before
        # `rank` is the only candidate (a scan over 3,050 subscriptions was 65 % of a device).
        index = bisect.bisect_right(self._allocation_starts, rank) - 1
        if index < 0:
            return None
        allocation = self._allocations[index]
        return allocation if rank < allocation.end else None

    def glp_device(self, i: int) -> JsonObject:
        """GreenLake device i (0 <= i < n), always the same for a seed (do not change it)."""
        item = self._glp_memo.get(i)
        if item is None:
            item = self._build_glp_device(i)
            if i < MEMO_ITEMS:
                self._glp_memo[i] = item
        return item

    def _build_glp_device(self, i: int) -> JsonObject:
        rank = self._links(i)
        allocation = self._allocation(rank)
        hardware = self._hardware(i, rank, allocation)
        linked = rank < self._linked
        subscription = None
        if allocation is not None:
            subscription = self._subscription_ids[allocation.index]
        elif rank < self._unknown:
            subscription = self._unknown_ids[
                Draws(self._key + b"/unknown", i).below(len(self._unknown_ids))
            ]
        factory = ItemFactory(self._rng(2, i), self.workspace_id, own_names=False)
        state = factory.weighted(
            catalog.ASSIGNED_STATES_LINKED if linked else catalog.ASSIGNED_STATES_UNLINKED
        )
        if self.n >= 20 and rank == self._unknown and linked:
            state = "ASSIGNED_TO_ACTIVATE_CONFIG"  # at least once
        elif self.n >= 20 and rank == self._unknown + 1 and linked:
            state = "PENDING_TRANSFER"
        if not self._undocumented:
            state = catalog.DOCUMENTED_STAND_IN.get(state, state)
        created = HISTORY_START + timedelta(milliseconds=self.created_ms(i))
        updated = HISTORY_START + timedelta(milliseconds=self.updated_ms(i))
        item = factory.glp_device(
            hardware,
            subscription_id=subscription,
            assigned_state=state,
            created=created,
            updated=updated,
            identity=(self.ids.encode(i), self.serials.encode(i), self.mac(i)),
        )
        if not linked and rank - self._linked < self._dedicated:
            item["assignedState"] = "ASSIGNED_TO_DEDICATED_PLATFORM"
            item["application"] = None
            item["region"] = None
            item["dedicatedPlatformWorkspace"] = {"id": self._dedicated_workspace}
        return item

    def glp_index(self, device_id: str) -> int | None:
        index = self.ids.decode(device_id)
        return index if index is not None and index < self.n else None

    # -- New Central devices -----------------------------------------------------------------

    def central_device(self, k: int) -> JsonObject:
        """Central device k (0 <= k < m); k < overlap shares a GreenLake device's serial."""
        draws = self._rng(3, k)
        factory = ItemFactory(draws, self.workspace_id, own_names=False)
        if k < self.overlap:
            twin = self.twin_of(k)
            hardware = self.glp_hardware(twin)
            serial, mac = self.serials.encode(twin), self.mac(twin)
        else:
            hardware = _CENTRAL_CAPABLE.draw(draws)
            serial, mac = self.serials.encode(self.n + k), self.mac(self.n + k)
        assert hardware.central_type is not None  # twins and Central-only draw capable hardware
        onboarded = self._not_onboarded(k) >= self.config.dataset.central_not_onboarded
        return factory.central_device(
            hardware.central_type,
            serial=serial,
            mac=mac,
            model=hardware.model,
            part_number=hardware.part_number,
            onboarded=onboarded,
        )

    def central_at(self, position: int) -> JsonObject:
        """The Central device at `position` of the paging order (twins scattered through it;
        do not change it)."""
        item = self._central_memo.get(position)
        if item is None:
            item = self.central_device(self._central_order(position))
            if position < MEMO_ITEMS:
                self._central_memo[position] = item
        return item

    def central_position(self, serial: str) -> int | None:
        """Where the device with `serial` sits in the Central paging order, if it is one."""
        index = self.serials.decode(serial)
        if index is None:
            return None
        if index >= self.n:
            k = index - self.n
            if not self.overlap <= k < self.m:
                return None
        else:
            if not self.is_twin(index):
                return None
            eligible = self._eligible_rank(self._links(index))
            assert eligible is not None
            k = self._twins(eligible)
        return self._central_order.inverse(k)

    def serial_taken(self, serial: str) -> bool:
        """Whether a generated device (GreenLake or Central) has this serial."""
        index = self.serials.decode(serial)
        return index is not None and index < self.n + self.m


def _serves_central(glp_type: str) -> bool:
    return any(h.central_type for h in catalog.HARDWARE if h.glp_type == glp_type)


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights`, exactly."""
    whole = sum(weights)
    if not weights or whole == 0:
        return [0] * len(weights)
    shares = [total * w / whole for w in weights]
    counts = [int(s) for s in shares]
    order = sorted(range(len(weights)), key=lambda j: shares[j] - counts[j], reverse=True)
    for j in order[: total - sum(counts)]:
        counts[j] += 1
    return counts


@functools.lru_cache(maxsize=8)
def workspace_data(config: WorkspaceConfig, *, seed: int) -> WorkspaceData:
    """The generated base of a workspace (cheap: nothing per item is built until asked)."""
    data = WorkspaceData(config, seed=seed)
    data.warm_up()
    return data
