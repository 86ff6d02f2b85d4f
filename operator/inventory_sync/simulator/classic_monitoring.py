"""Classic Central's /monitoring lists (APs, switches): the account's devices that report in.

Field names follow what public clients read (`aps`, `switches`, `count`, `total` with
`calculate_total=true`; items keyed by `serial`): inferred from clients, see docs/simulator.md.
"""

from __future__ import annotations

import functools
import random
from typing import Any, Literal

from inventory_sync.simulator import catalog
from inventory_sync.simulator.classic_account import ClassicAccount
from inventory_sync.simulator.dataset import JsonObject

APS_PATH = "/monitoring/v2/aps"
SWITCHES_PATH = "/monitoring/v1/switches"

MonitoredKind = Literal["aps", "switches"]
_DEVICE_TYPE: dict[MonitoredKind, str] = {"aps": "iap", "switches": "switch"}
_FIRMWARE: dict[MonitoredKind, tuple[str, ...]] = {
    "aps": ("8.10.0.12_89123", "8.11.2.1_90044", "10.4.1.0_88321"),
    "switches": ("16.11.0015", "10.12.1010", "10.13.1040"),
}
#: A share of the inventory never reports in (claimed, not yet deployed).
_REPORTING_SHARE = 0.85


@functools.lru_cache(maxsize=16384)
def _monitored(kind: MonitoredKind, serial: str, macaddr: str, model: str) -> JsonObject | None:
    """The monitoring view of one inventory device, or None when it never reported in.

    Drawn from a stream seeded by the serial, so it is the same on every request and the
    inventory's own generation is untouched.
    """
    rng = random.Random(f"monitoring/{serial}")
    if rng.random() >= _REPORTING_SHARE:
        return None
    site = rng.choice(catalog.SITES)
    item: JsonObject = {
        "serial": serial,
        "name": f"{'ap' if kind == 'aps' else 'sw'}-{site.lower()}-{rng.randrange(1000):03d}",
        "macaddr": macaddr,
        "model": model,
        "status": "Up" if rng.random() < 0.9 else "Down",
        "ip_address": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "firmware_version": rng.choice(_FIRMWARE[kind]),
        "group_name": rng.choice(("default", "Campus", "Branch")),
        "site": site,
        "labels": [],
    }
    if kind == "switches":
        item["switch_type"] = "AOS-CX" if rng.random() < 0.8 else "AOS-S"
    return item


def monitored(account: ClassicAccount, kind: MonitoredKind) -> list[JsonObject]:
    """The account's devices of `kind` that report in, in inventory order."""
    wanted = _DEVICE_TYPE[kind]
    items = (
        _monitored(kind, d["serial"], d["macaddr"], d["model"])
        for d in account.devices()
        if d["device_type"] == wanted
    )
    return [item for item in items if item is not None]


def page(
    account: ClassicAccount, kind: MonitoredKind, *, offset: int, limit: int, total: bool
) -> dict[str, Any]:
    """`{<kind>: [...], count}` at `offset`, plus `total` when the client asked for it."""
    items = monitored(account, kind)
    chunk = items[offset : offset + limit]
    body: dict[str, Any] = {kind: chunk, "count": len(chunk)}
    if total:
        body["total"] = len(items)
    return body
