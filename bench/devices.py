"""Benchmark input: GreenLake device pages at any scale, shaped like the simulator's items.

The simulator's `generate_workspace` holds every item in memory and takes about a second per
10k devices; a million would cost minutes and gigabytes before the benchmark starts. Here 2,000
templates come from the simulator's own ItemFactory (same fields, same value distributions,
78 % of devices linked to one subscription as in the seed, a few links to unknown
subscriptions), and item n is template n % 2000 with its own id, serial and MAC: cheap enough
to generate page by page while a merge runs, and the same n always gives the same item.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from inventory_sync.simulator import catalog
from inventory_sync.simulator.dataset import HISTORY_END, HISTORY_START, ItemFactory

WORKSPACE = "bench-workspace"
TEMPLATES = 2000
SUBSCRIPTIONS = 27
LINKED_SHARE = 9099 / 11727  # the seed's share of linked devices
UNKNOWN_SHARE = 12 / 9099  # of linked devices, those naming a subscription the list lacks


@dataclass(frozen=True)
class Page:
    """What streaming.stream_into_scope needs of a page."""

    items: list[dict[str, Any]]
    total: int | None


class DeviceSource:
    """Seeded GreenLake subscriptions and devices for one workspace."""

    def __init__(self, seed: int = 13, workspace_id: str = WORKSPACE) -> None:
        factory = ItemFactory(random.Random(seed), workspace_id)
        rng = factory.rng
        plans = [catalog.PLANS[i % len(catalog.PLANS)] for i in range(SUBSCRIPTIONS)]
        self.subscriptions = [factory.subscription(p, "STARTED", linked=0) for p in plans]
        known = [s["id"] for s in self.subscriptions]
        unknown = [factory.uuid() for _ in range(3)]
        self._templates: list[dict[str, Any]] = []
        for _ in range(TEMPLATES):
            link: str | None = None
            if rng.random() < LINKED_SHARE:
                link = rng.choice(unknown if rng.random() < UNKNOWN_SHARE else known)
            table = catalog.ASSIGNED_STATES_LINKED if link else catalog.ASSIGNED_STATES_UNLINKED
            created = factory.moment(HISTORY_START, HISTORY_END - timedelta(days=1))
            self._templates.append(
                factory.glp_device(
                    factory.hardware(),
                    subscription_id=link,
                    assigned_state=factory.weighted(table),
                    created=created,
                    updated=factory.moment(created, HISTORY_END),
                )
            )
        self._salt = seed

    def device(self, n: int) -> dict[str, Any]:
        """Device n: a template's fields under its own identity.

        Ids and serials are scattered as real ones are, so index inserts land on random
        pages (sequential ids would make every index append at its right edge).
        """
        item = dict(self._templates[n % TEMPLATES])
        digest = hashlib.blake2b(f"{self._salt}/{n}".encode(), digest_size=16).digest()
        item["id"] = str(uuid.UUID(bytes=digest, version=4))
        item["serialNumber"] = f"CN{digest.hex()[:8].upper()}"
        item["macAddress"] = ":".join(f"{b:02X}" for b in (0x20, 0x4C, *digest[8:12]))
        return item

    def pages(self, count: int, *, page_size: int = 2000, start: int = 0) -> Iterator[Page]:
        """Devices start..start+count in pages, each claiming the walk's total as GreenLake does."""
        for first in range(start, start + count, page_size):
            last = min(first + page_size, start + count)
            yield Page([self.device(n) for n in range(first, last)], total=count)
