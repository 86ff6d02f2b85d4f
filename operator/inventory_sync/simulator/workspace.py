"""The mutable items of one simulated workspace, kept in the order the upstream pages them:
generated on demand (generation.py), with every change layered on top (lazylist.py)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from inventory_sync.simulator.config import WorkspaceConfig
from inventory_sync.simulator.dataset import (
    HISTORY_START,
    ItemFactory,
    JsonObject,
    format_timestamp,
    parse_timestamp,
)
from inventory_sync.simulator.generation import WorkspaceData, workspace_data
from inventory_sync.simulator.lazylist import LazyList


class WorkspaceState:
    """One workspace's subscriptions, GreenLake devices and Central devices.

    GreenLake devices page in (createdAt, id) order: stable, yet an insert or a delete before a
    client's offset shifts every later item by one, as real offsets do. Central devices page in
    a seeded order in which a new device can land on any page. Thread-safe: tests mutate it
    from their own thread while the simulator serves pages. Items are never changed in place
    (a change replaces the dict), so a sliced page stays consistent.
    """

    def __init__(self, config: WorkspaceConfig, *, seed: int) -> None:
        self.config = config
        self.workspace_id = config.workspace_id
        self._seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to the generated data (in place: references to this object stay valid)."""
        data = workspace_data(self.config, seed=self._seed)
        with self._lock:
            self.data: WorkspaceData = data
            self._subscriptions = list(data.subscriptions)
            self._devices = LazyList(
                data.n,
                make=data.glp_device,
                locate=data.glp_index,
                ident=_id,
                recent=lambda since: _updated_since(data, since),
            )
            self._central = LazyList(
                data.m, make=data.central_at, locate=data.central_position, ident=_id
            )
            # Separate streams, so mutating never changes what generation produced.
            self._rng = random.Random(f"{self._seed}/{self.workspace_id}/mutations")
            self._factory = ItemFactory(
                random.Random(f"{self._seed}/{self.workspace_id}/new"), self.workspace_id
            )
            self._last_stamp = datetime.now(UTC)
            self._touches = 0
            self._linked = data.config.dataset.linked_devices

    # -- reading ---------------------------------------------------------------------------

    def glp_list(self) -> LazyList:
        """The GreenLake devices as the list endpoint pages them (slice it under `locked`)."""
        return self._devices

    def central_list(self) -> LazyList:
        """The Central inventory in paging order."""
        return self._central

    @property
    def lock(self) -> threading.RLock:
        """Held while a handler reads a list: a page never sees half a mutation."""
        return self._lock

    def glp_devices(self) -> list[JsonObject]:
        """All GreenLake devices in paging order (every one generated: for small datasets)."""
        with self._lock:
            return list(self._devices)

    def glp_device(self, device_id: str) -> JsonObject | None:
        """One GreenLake device by id."""
        with self._lock:
            return self._devices.get(device_id)

    def subscriptions(self) -> list[JsonObject]:
        """All subscriptions in paging order."""
        with self._lock:
            return list(self._subscriptions)

    def subscription(self, subscription_id: str) -> JsonObject | None:
        """One subscription by id."""
        with self._lock:
            return next((s for s in self._subscriptions if s["id"] == subscription_id), None)

    def central_devices(self, *, onboarded_only: bool = False) -> list[JsonObject]:
        """Central inventory in paging order; `onboarded_only` gives the /devices view."""
        with self._lock:
            items = list(self._central)
        return [d for d in items if d["status"] is not None] if onboarded_only else items

    def counts(self) -> dict[str, int]:
        """How many items of each kind the workspace holds now."""
        with self._lock:
            return {
                "subscriptions": len(self._subscriptions),
                "glp_devices": len(self._devices),
                "linked_devices": self._linked,
                "central_devices": len(self._central),
            }

    # -- changing GreenLake devices --------------------------------------------------------

    def add_glp_devices(
        self, count: int, *, created_at: str | None = None, skew_seconds: float = 0.0
    ) -> list[str]:
        """Claim `count` new unassigned devices; createdAt defaults to now. Returns their ids.

        `skew_seconds` stamps updatedAt that far off the server's clock (negative: a node
        whose clock lags), so a client's high-water mark can miss the change.
        """
        ids = []
        with self._lock:
            for _ in range(count):
                stamp = self._now() + timedelta(seconds=skew_seconds)
                created = parse_timestamp(created_at) if created_at else stamp
                item = self._factory.glp_device(
                    self._factory.hardware(),
                    subscription_id=None,
                    assigned_state="UNASSIGNED",
                    created=created,
                    updated=stamp,
                )
                item["serialNumber"] = self._fresh_serial()
                self._devices.insert(item, slot=self._glp_slot(item), tie=_paging_key(item))
                ids.append(item["id"])
        return ids

    def delete_glp_devices(self, ids: Iterable[str]) -> list[str]:
        """Remove devices from the workspace; returns the ids that existed."""
        gone = []
        with self._lock:
            for device_id in dict.fromkeys(ids):
                item = self._devices.delete(device_id)
                if item is not None:
                    gone.append(device_id)
                    self._linked -= 1 if item["subscription"] else 0
        return gone

    def touch_glp_devices(self, ids: Iterable[str], *, skew_seconds: float = 0.0) -> list[str]:
        """Change a tag on each device and advance its updatedAt (off by `skew_seconds`, see
        add_glp_devices); returns the ids that existed."""
        touched = []
        with self._lock:
            for device_id in dict.fromkeys(ids):
                item = self._devices.get(device_id)
                if item is None:
                    continue
                self._touches += 1
                tags = {**item["tags"], "simulatorTouch": str(self._touches)}
                stamp = format_timestamp(self._now() + timedelta(seconds=skew_seconds))
                self._devices.replace({**item, "tags": tags, "updatedAt": stamp})
                touched.append(device_id)
        return touched

    def pick_glp_device_ids(self, count: int) -> list[str]:
        """`count` existing device ids chosen by the seeded RNG (for count-based mutations)."""
        with self._lock:
            size = len(self._devices)
            picks = self._rng.sample(range(size), min(count, size))
            return [self._devices.slice(p, p + 1)[0]["id"] for p in picks]

    def apply_page_mutations(self, count: int) -> tuple[list[str], list[str]]:
        """`count` seeded inserts or deletes, as if other users worked while a page was served.

        An insert takes a createdAt inside the existing span (a device moved back into the
        workspace keeps its creation time), so it can land before a paging client's offset.
        Returns (added ids, deleted ids).
        """
        added: list[str] = []
        deleted: list[str] = []
        with self._lock:
            for _ in range(count):
                size = len(self._devices)
                if size and self._rng.random() < 0.5:
                    victim = self._devices.slice(p := self._rng.randrange(size), p + 1)[0]
                    deleted += self.delete_glp_devices([victim["id"]])
                    continue
                created = None
                if size:
                    first = self._devices.slice(0, 1)[0]["createdAt"]
                    last = self._devices.slice(size - 1, size)[0]["createdAt"]
                    moment = self._factory.moment(parse_timestamp(first), parse_timestamp(last))
                    created = format_timestamp(moment)
                added += self.add_glp_devices(1, created_at=created)
        return added, deleted

    # -- changing Central devices ----------------------------------------------------------

    def add_central_devices(self, count: int) -> list[str]:
        """Add `count` new onboarded Central devices not known to GreenLake; returns their ids."""
        ids = []
        with self._lock:
            for _ in range(count):
                hardware = self._factory.hardware(central_only=True)
                assert hardware.central_type is not None  # central_only guarantees it
                item = self._factory.central_device(
                    hardware.central_type,
                    serial=self._fresh_serial(),
                    mac=self._factory.mac(),
                    model=hardware.model,
                    part_number=hardware.part_number,
                    onboarded=True,
                )
                item["lastSeenAt"] = format_timestamp(self._now())
                slot = self._rng.randrange(self.data.m + 1)
                self._central.insert(item, slot=slot, tie=item["id"])
                ids.append(item["id"])
        return ids

    def restore_central_devices(self, items: Iterable[JsonObject]) -> list[str]:
        """Put devices back as they were (a device returning to the workspace keeps its id, and
        so its place in the paging order); returns their ids."""
        restored = []
        with self._lock:
            for item in items:
                if not self._central.restore(item) and not self._central.replace(item):
                    slot = self._rng.randrange(self.data.m + 1)
                    self._central.insert(item, slot=slot, tie=item["id"])
                restored.append(item["id"])
        return restored

    def delete_central_devices(self, ids: Iterable[str]) -> list[str]:
        """Remove Central devices; returns the ids that existed."""
        with self._lock:
            return [i for i in dict.fromkeys(ids) if self._central.delete(i) is not None]

    def touch_central_devices(self, ids: Iterable[str]) -> list[str]:
        """Flip status ONLINE/OFFLINE and advance lastSeenAt; returns the ids that existed."""
        touched = []
        with self._lock:
            for device_id in dict.fromkeys(ids):
                item = self._central.get(device_id)
                if item is None:
                    continue
                status = "OFFLINE" if item["status"] == "ONLINE" else "ONLINE"
                stamp = format_timestamp(self._now())
                self._central.replace({**item, "status": status, "lastSeenAt": stamp})
                touched.append(device_id)
        return touched

    def apply_central_page_mutations(self, count: int) -> tuple[list[str], list[str]]:
        """`count` seeded Central inserts or deletes, as if devices were claimed or removed
        while a client paged: page numbers shift like offsets. Returns (added, deleted)."""
        added: list[str] = []
        deleted: list[str] = []
        with self._lock:
            for _ in range(count):
                size = len(self._central)
                if size and self._rng.random() < 0.5:
                    victim = self._central.slice(p := self._rng.randrange(size), p + 1)[0]
                    deleted += self.delete_central_devices([victim["id"]])
                else:
                    added += self.add_central_devices(1)
        return added, deleted

    def pick_central_device_ids(self, count: int) -> list[str]:
        """`count` existing Central ids chosen by the seeded RNG."""
        with self._lock:
            size = len(self._central)
            picks = self._rng.sample(range(size), min(count, size))
            return [self._central.slice(p, p + 1)[0]["id"] for p in picks]

    # -- internals -------------------------------------------------------------------------

    def _glp_slot(self, item: JsonObject) -> int:
        """How many generated devices page before `item` (createdAt, then id)."""
        created = parse_timestamp(item["createdAt"])
        target = int((created - HISTORY_START).total_seconds() * 1000)
        data = self.data
        low, high = 0, data.n
        while low < high:
            middle = (low + high) // 2
            here = data.created_ms(middle)
            if here < target or (here == target and data.ids.encode(middle) < item["id"]):
                low = middle + 1
            else:
                high = middle
        return low

    def _fresh_serial(self) -> str:
        """A serial no generated or added device of this workspace has."""
        while True:
            serial = self._factory.serial()
            if not self.data.serial_taken(serial):
                return serial

    def _now(self) -> datetime:
        # Strictly increasing, so every change is visible to an `updatedAt gt <last sync>`
        # filter even when two changes share a millisecond or the clock is behind the data.
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        return self._last_stamp


def _updated_since(data: WorkspaceData, since: str) -> list[int] | None:
    try:
        moment = parse_timestamp(since)
    except ValueError:
        return None
    return data.updated_since(int((moment - HISTORY_START).total_seconds() * 1000))


def _id(item: JsonObject) -> str:
    value: str = item["id"]
    return value


def _paging_key(item: JsonObject) -> tuple[str, str]:
    return (item["createdAt"], item["id"])
