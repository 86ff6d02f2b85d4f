"""The mutable items of one simulated workspace, kept in the order the upstream pages them."""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from inventory_sync.simulator.config import WorkspaceConfig
from inventory_sync.simulator.dataset import (
    ItemFactory,
    JsonObject,
    format_timestamp,
    generate_workspace,
    parse_timestamp,
)


def _paging_key(item: JsonObject) -> tuple[str, str]:
    # GreenLake pages in (createdAt, id) order in the simulator: stable, yet an insert or a
    # delete before a client's offset shifts every later item by one, as real offsets do.
    return (item["createdAt"], item["id"])


class WorkspaceState:
    """One workspace's subscriptions, GreenLake devices and Central devices.

    Thread-safe: tests mutate it from their own thread while the simulator serves pages. Items
    are never changed in place (a change replaces the dict), so a sliced page stays consistent.
    """

    def __init__(self, config: WorkspaceConfig, *, seed: int) -> None:
        self.config = config
        self.workspace_id = config.workspace_id
        self._seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to the generated data (in place: references to this object stay valid)."""
        data = generate_workspace(self.config, seed=self._seed)
        with self._lock:
            self._subscriptions = sorted(data.subscriptions, key=_paging_key)
            self._devices = {d["id"]: d for d in data.glp_devices}
            self._device_order = sorted(_paging_key(d) for d in data.glp_devices)
            self._central = {d["id"]: d for d in data.central_devices}
            self._central_order = sorted(self._central)
            # Separate streams, so mutating never changes what generation produced.
            self._rng = random.Random(f"{self._seed}/{self.workspace_id}/mutations")
            self._factory = ItemFactory(
                random.Random(f"{self._seed}/{self.workspace_id}/new"), self.workspace_id
            )
            latest = max((d["updatedAt"] for d in data.glp_devices), default=None)
            self._last_stamp = parse_timestamp(latest) if latest else datetime.now(UTC)
            self._touches = 0

    # -- reading ---------------------------------------------------------------------------

    def glp_devices(self) -> list[JsonObject]:
        """All GreenLake devices in paging order."""
        with self._lock:
            return [self._devices[key[1]] for key in self._device_order]

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
        """Central inventory in paging order (by id, so a new device can land on any page);
        `onboarded_only` gives the /devices view."""
        with self._lock:
            items = [self._central[i] for i in self._central_order]
        return [d for d in items if d["status"] is not None] if onboarded_only else items

    def counts(self) -> dict[str, int]:
        """How many items of each kind the workspace holds now."""
        with self._lock:
            linked = sum(1 for d in self._devices.values() if d["subscription"])
            return {
                "subscriptions": len(self._subscriptions),
                "glp_devices": len(self._devices),
                "linked_devices": linked,
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
                self._devices[item["id"]] = item
                bisect.insort(self._device_order, _paging_key(item))
                ids.append(item["id"])
        return ids

    def delete_glp_devices(self, ids: Iterable[str]) -> list[str]:
        """Remove devices from the workspace; returns the ids that existed."""
        with self._lock:
            gone = [i for i in dict.fromkeys(ids) if self._devices.pop(i, None) is not None]
            if gone:
                dropped = set(gone)
                self._device_order = [k for k in self._device_order if k[1] not in dropped]
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
                self._devices[device_id] = {**item, "tags": tags, "updatedAt": stamp}
                touched.append(device_id)
        return touched

    def pick_glp_device_ids(self, count: int) -> list[str]:
        """`count` existing device ids chosen by the seeded RNG (for count-based mutations)."""
        with self._lock:
            order = [key[1] for key in self._device_order]
            return self._rng.sample(order, min(count, len(order)))

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
                if self._device_order and self._rng.random() < 0.5:
                    victim = self._rng.choice(self._device_order)[1]
                    deleted += self.delete_glp_devices([victim])
                    continue
                first = self._device_order[0][0] if self._device_order else None
                last = self._device_order[-1][0] if self._device_order else None
                created = None
                if first and last:
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
                    serial=self._factory.serial(),
                    mac=self._factory.mac(),
                    model=hardware.model,
                    part_number=hardware.part_number,
                    onboarded=True,
                )
                item["lastSeenAt"] = format_timestamp(self._now())
                self._central[item["id"]] = item
                bisect.insort(self._central_order, item["id"])
                ids.append(item["id"])
        return ids

    def restore_central_devices(self, items: Iterable[JsonObject]) -> list[str]:
        """Put devices back as they were (a device returning to the workspace keeps its id, and
        so its place in the paging order); returns their ids."""
        restored = []
        with self._lock:
            for item in items:
                if item["id"] not in self._central:
                    bisect.insort(self._central_order, item["id"])
                self._central[item["id"]] = item
                restored.append(item["id"])
        return restored

    def delete_central_devices(self, ids: Iterable[str]) -> list[str]:
        """Remove Central devices; returns the ids that existed."""
        with self._lock:
            gone = [i for i in dict.fromkeys(ids) if self._central.pop(i, None) is not None]
            if gone:
                dropped = set(gone)
                self._central_order = [i for i in self._central_order if i not in dropped]
        return gone

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
                self._central[device_id] = {**item, "status": status, "lastSeenAt": stamp}
                touched.append(device_id)
        return touched

    def apply_central_page_mutations(self, count: int) -> tuple[list[str], list[str]]:
        """`count` seeded Central inserts or deletes, as if devices were claimed or removed
        while a client paged: page numbers shift like offsets. Returns (added, deleted)."""
        added: list[str] = []
        deleted: list[str] = []
        with self._lock:
            for _ in range(count):
                if self._central_order and self._rng.random() < 0.5:
                    victim = self._rng.choice(self._central_order)
                    deleted += self.delete_central_devices([victim])
                else:
                    added += self.add_central_devices(1)
        return added, deleted

    def pick_central_device_ids(self, count: int) -> list[str]:
        """`count` existing Central ids chosen by the seeded RNG."""
        with self._lock:
            return self._rng.sample(self._central_order, min(count, len(self._central_order)))

    # -- internals -------------------------------------------------------------------------

    def _now(self) -> datetime:
        # Strictly increasing, so every change is visible to an `updatedAt gt <last sync>`
        # filter even when two changes share a millisecond or the clock is behind the data.
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        return self._last_stamp
