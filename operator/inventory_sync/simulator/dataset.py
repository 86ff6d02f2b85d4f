"""Seeded generation of one workspace's upstream items, with exactly the upstream field names."""

from __future__ import annotations

import functools
import itertools
import random
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from inventory_sync.simulator import catalog
from inventory_sync.simulator.config import WorkspaceConfig

#: One upstream item as it goes over the wire. Treated as immutable once built: a change
#: replaces the dict, so a page already sliced never sees half an update.
JsonObject = dict[str, Any]

#: Generated history spans these dates; the end is the seed report's date.
HISTORY_START = datetime(2022, 6, 1, tzinfo=UTC)
HISTORY_END = datetime(2026, 1, 13, tzinfo=UTC)

SUBSCRIPTION_URI = "/subscriptions/v1/subscriptions/{}"

#: The exact field names of each item kind (UPSTREAM_APIS.md); filter/sort/select accept these.
GLP_DEVICE_FIELDS = frozenset(
    {
        "id", "type", "serialNumber", "macAddress", "partNumber", "model", "deviceType",
        "assignedState", "archived", "createdAt", "updatedAt", "region", "application",
        "location", "tags", "warranty", "tenantWorkspaceId", "subscription", "deviceName",
        "secondaryName", "dedicatedPlatformWorkspace",
    }
)  # fmt: skip
SUBSCRIPTION_FIELDS = frozenset(
    {
        "id", "type", "key", "subscriptionType", "subscriptionStatus", "quantity",
        "availableQuantity", "isEval", "sku", "skuDescription", "tier", "tierDescription",
        "productType", "contract", "quote", "po", "startTime", "endTime", "createdAt",
        "updatedAt", "tags",
    }
)  # fmt: skip
#: New Central's device-inventory item, as the vendor's published API example shows it
#: (HPE's Postman collection for network-monitoring): `id` is the serial number again,
#: `isProvisioned` a "YES"/"NO" string. pycentral's device model reads most of these too.
CENTRAL_INVENTORY_FIELDS = frozenset(
    {
        "id", "type", "serialNumber", "macAddress", "deviceName", "deviceType", "siteId",
        "siteName", "model", "partNumber", "deployment", "role", "persona", "deviceFunction",
        "softwareVersion", "ipv4", "status", "deviceGroupId", "deviceGroupName", "scopeId",
        "isProvisioned", "stackId", "tier",
    }
)  # fmt: skip
#: New Central's monitored-device item (GET /network-monitoring/v1/devices), same example.
CENTRAL_MONITORING_FIELDS = frozenset(
    {
        "id", "type", "serialNumber", "macAddress", "deviceName", "deviceType", "siteId",
        "siteName", "model", "partNumber", "deployment", "role", "persona", "deviceFunction",
        "softwareVersion", "ipv4", "ipv6", "status", "uptimeInMillis", "lastSeenAt",
        "buildingId", "floorId", "configStatus", "configLastModifiedAt", "clusterName",
    }
)  # fmt: skip
#: What the simulator stores per Central device: both views' fields.
CENTRAL_DEVICE_FIELDS = CENTRAL_INVENTORY_FIELDS | CENTRAL_MONITORING_FIELDS
_SERIAL_PREFIXES = ("CN", "SG", "TW", "VN")
_ALNUM = string.ascii_uppercase + string.digits


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as GreenLake writes it."""
    # isoformat runs in C; strftime was a visible share of generating a page.
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def parse_timestamp(text: str) -> datetime:
    """The inverse of format_timestamp; also accepts offsets and missing milliseconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Dataset:
    """The three item lists of one workspace, in generation order."""

    subscriptions: list[JsonObject]
    glp_devices: list[JsonObject]
    central_devices: list[JsonObject]


class Randomness(Protocol):
    """What ItemFactory draws from: a random.Random, or seeded.Draws for one generated item."""

    def random(self) -> float: ...

    def randrange(self, start: int, stop: int | None = None) -> int: ...

    def randint(self, low: int, high: int) -> int: ...

    def getrandbits(self, count: int) -> int: ...

    def choice(self, values: Sequence[Any]) -> Any: ...

    def choices(
        self,
        population: Sequence[Any],
        weights: Sequence[float] | None = None,
        *,
        cum_weights: Sequence[float] | None = None,
        k: int = 1,
    ) -> list[Any]: ...


class ItemFactory:
    """Builds single items from one RNG; the same RNG state yields the same items."""

    def __init__(self, rng: Randomness, workspace_id: str, *, own_names: bool = True) -> None:
        self.rng = rng
        #: Whether a device's names come from a stream of their own (seeded by its id), so
        #: adding them never changed the items drawn after it from a shared RNG.
        self._own_names = own_names
        self.workspace_id = workspace_id
        self._serials: set[str] = set()

    def uuid(self) -> str:
        """A random version-4 UUID drawn from the seeded RNG."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def moment(self, start: datetime, end: datetime) -> datetime:
        """A millisecond-precise instant in [start, end]."""
        span_ms = max(0, int((end - start).total_seconds() * 1000))
        return start + timedelta(milliseconds=self.rng.randint(0, span_ms))

    def serial(self) -> str:
        """A fresh 10-character serial number, unique within this factory."""
        while True:
            prefix: str = self.rng.choice(_SERIAL_PREFIXES)
            candidate = prefix + "".join(self.rng.choices(_ALNUM, k=8))
            if candidate not in self._serials:
                self._serials.add(candidate)
                return candidate

    def mac(self) -> str:
        """A MAC address in GreenLake's upper-case colon form (Central lower-cases it)."""
        octets = [0x20, 0x4C, 0x03] + [self.rng.randrange(256) for _ in range(3)]
        return ":".join(f"{o:02X}" for o in octets)

    def weighted(self, choices: tuple[tuple[str, int], ...]) -> str:
        """One value of a (value, weight) table."""
        values, cumulative = _weighted_table(choices)
        value: str = self.rng.choices(values, cum_weights=cumulative)[0]
        return value

    def hardware(self, *, central_only: bool = False) -> catalog.Hardware:
        """A device model by catalog weight."""
        pool = [h for h in catalog.HARDWARE if h.central_type or not central_only]
        chosen: catalog.Hardware = self.rng.choices(pool, weights=[h.weight for h in pool])[0]
        return chosen

    def glp_device(
        self,
        hardware: catalog.Hardware,
        *,
        subscription_id: str | None,
        assigned_state: str,
        created: datetime,
        updated: datetime,
        identity: tuple[str, str, str] | None = None,
    ) -> JsonObject:
        """A GreenLake device (GET /devices/v1/devices item); `identity` is (id, serial, MAC)
        when the caller already knows them (generated items: derived from their index)."""
        rng = self.rng
        application: JsonObject | None = None
        region: str | None = None
        if assigned_state != "UNASSIGNED":
            index = {"COMPUTE": 1, "STORAGE": 2, "SENSOR": 2}.get(hardware.glp_type, 0)
            app_id = catalog.APPLICATIONS[index][0]
            application = {
                "id": app_id,
                "resourceUri": f"/service-catalog/v1/applications/{app_id}",
            }
            region = rng.choice(catalog.REGIONS)
        location: JsonObject | None = None
        if rng.random() < 0.7:
            # Locations are shared between devices: a small pool per site.
            loc_id = _location_id(self.workspace_id, rng.randrange(40))
            location = {"id": loc_id, "resourceUri": f"/locations/v1/locations/{loc_id}"}
        tags: dict[str, str] = {}
        if rng.random() < 0.4:
            tags["site"] = rng.choice(catalog.SITES)
        if rng.random() < 0.2:
            tags["env"] = rng.choice(("prod", "lab", "staging"))
        links = []
        if subscription_id is not None:
            links = [
                {"id": subscription_id, "resourceUri": SUBSCRIPTION_URI.format(subscription_id)}
            ]
        device_id, serial, mac = identity or (self.uuid(), self.serial(), self.mac())
        # HPE's DeviceDetail fields added later draw from their own stream (seeded by the id),
        # so they never change the items generated after this one.
        names: Randomness = random.Random(device_id) if self._own_names else rng
        site = names.choice(catalog.SITES).lower()
        return {
            "id": device_id,
            "type": "devices/device",
            "serialNumber": serial,
            "macAddress": mac,
            "partNumber": hardware.part_number,
            "model": hardware.model,
            "deviceType": hardware.glp_type,
            "assignedState": assigned_state,
            "archived": rng.random() < 0.02,
            "createdAt": format_timestamp(created),
            "updatedAt": format_timestamp(updated),
            "region": region,
            "application": application,
            "location": location,
            "tags": tags,
            "warranty": {},
            # Set only for devices an MSP manages on behalf of a tenant workspace.
            "tenantWorkspaceId": self.uuid() if rng.random() < 0.03 else None,
            "subscription": links,
            # The hostname a device reports (iLO for servers); unset until it has checked in.
            "deviceName": f"{hardware.glp_type.lower()}-{site}-{names.randrange(1000):03d}"
            if names.random() < 0.6
            else None,
            # Servers also report their OS hostname.
            "secondaryName": f"os-{site}-{names.randrange(1000):03d}"
            if hardware.glp_type == "COMPUTE"
            else None,
            "dedicatedPlatformWorkspace": None,
        }

    def subscription(self, plan: catalog.Plan, status: str, *, linked: int) -> JsonObject:
        """A GreenLake subscription; quantities are strings, as in the schema."""
        rng = self.rng
        created = self.moment(HISTORY_START, HISTORY_END - timedelta(days=30))
        start = created + timedelta(days=rng.randint(0, 10))
        end = start + timedelta(days=365 * rng.choice((1, 3, 5)))
        updated = self.moment(created, HISTORY_END)
        quantity = linked + rng.choice((0, 5, 10, 25, 50, 100, 250))
        return {
            "id": self.uuid(),
            "type": "subscriptions/subscription",
            "key": "E" + "".join(rng.choices(_ALNUM, k=13)),
            "subscriptionType": plan.subscription_type,
            "subscriptionStatus": status,
            "quantity": str(quantity),
            "availableQuantity": str(quantity - linked),
            "isEval": rng.random() < 0.1,
            "sku": plan.sku,
            "skuDescription": plan.sku_description,
            "tier": plan.tier,
            "tierDescription": plan.tier_description,
            "productType": plan.product_type,
            "contract": f"{rng.randrange(10**9, 10**10)}" if rng.random() < 0.8 else None,
            "quote": f"Q{rng.randrange(10**7, 10**8)}",
            "po": f"PO-{rng.randrange(10**5, 10**6)}" if rng.random() < 0.9 else None,
            "startTime": format_timestamp(start),
            "endTime": format_timestamp(end),
            "createdAt": format_timestamp(created),
            "updatedAt": format_timestamp(updated),
            "tags": {"costCenter": f"CC-{rng.randrange(100, 999)}"} if rng.random() < 0.3 else {},
        }

    def central_device(
        self,
        central_type: str,
        *,
        serial: str,
        mac: str,
        model: str,
        part_number: str,
        onboarded: bool,
    ) -> JsonObject:
        """A New Central device: the union of its device-inventory and /devices fields."""
        rng = self.rng
        site_index = rng.randrange(len(catalog.SITES))
        prefix = {"ACCESS_POINT": "AP", "SWITCH": "SW", "GATEWAY": "GW"}[central_type]
        role, persona = rng.choice(catalog.ROLES[central_type])
        group = rng.choice(catalog.DEVICE_GROUPS[central_type])
        modified = self.moment(HISTORY_END - timedelta(days=90), HISTORY_END)
        item: JsonObject = {
            # The vendor's example repeats the serial number as the id: no separate device id.
            "id": serial,
            "type": "network-monitoring/device-monitoring",
            "serialNumber": serial,
            "macAddress": mac.lower(),
            "deviceName": f"{prefix}-{catalog.SITES[site_index]}-{rng.randrange(1000):03d}",
            "deviceType": central_type,
            "siteId": str(hash_int(self.workspace_id, site_index) % 10**8),
            "siteName": catalog.SITES[site_index],
            "model": model,
            "partNumber": part_number,
            "deployment": "Standalone" if rng.random() < 0.8 else "Stack",
            "role": role,
            "persona": persona,
            "deviceFunction": catalog.DEVICE_FUNCTIONS.get(persona, persona),
            "softwareVersion": rng.choice(catalog.SOFTWARE[central_type]),
            "ipv4": f"10.{site_index}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "ipv6": f"fd00:{site_index:x}::{rng.randrange(1, 0xFFFF):x}"
            if rng.random() < 0.3
            else None,
            "status": "ONLINE" if rng.random() < 0.86 else "OFFLINE",
            "uptimeInMillis": rng.randrange(60_000, 90 * 86_400_000),
            "lastSeenAt": format_timestamp(
                self.moment(HISTORY_END - timedelta(days=7), HISTORY_END)
            ),
            "buildingId": str(uuid.UUID(int=hash_int(self.workspace_id, 100 + site_index))),
            "floorId": None,
            "configStatus": self.weighted(catalog.CONFIG_STATUSES),
            "configLastModifiedAt": format_timestamp(modified),
            "clusterName": None,
            "deviceGroupId": str(hash_int(group, 7) % 10**8),
            "deviceGroupName": group,
            "scopeId": str(rng.randrange(10**11, 10**12)),
            "isProvisioned": "YES",
            "stackId": None,
            "tier": rng.choice(catalog.TIERS[central_type]),
        }
        if item["deployment"] == "Stack" and central_type == "SWITCH":
            item["stackId"] = f"{rng.randrange(16**8):08x}-{rng.randrange(16**7):07x}"
        elif item["deployment"] == "Stack":
            item["deployment"] = "Standalone"
        if not onboarded:
            # Claimed in the inventory but never connected: nothing observed or configured yet.
            for name in ("deviceName", "status", "softwareVersion", "ipv4", "ipv6", "lastSeenAt"):
                item[name] = None
            for name in ("siteId", "siteName", "deviceGroupId", "deviceGroupName", "role"):
                item[name] = None
            for name in ("persona", "deviceFunction", "uptimeInMillis", "buildingId"):
                item[name] = None
            item["configStatus"] = None
            item["configLastModifiedAt"] = None
            item["isProvisioned"] = "NO"
        return item


@functools.lru_cache(maxsize=64)  # the catalog's tables: values and weights summed once
def _weighted_table(choices: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [value for value, _ in choices], list(itertools.accumulate(w for _, w in choices))


@functools.lru_cache(maxsize=4096)  # 40 per workspace
def _location_id(workspace_id: str, site: int) -> str:
    return str(uuid.UUID(int=hash_int(workspace_id, site), version=4))


@functools.lru_cache(maxsize=4096)  # few distinct arguments (sites, groups), seeding is costly
def hash_int(text: str, salt: int) -> int:
    """A stable 128-bit integer from text and a salt (ids shared across items, e.g. sites)."""
    return random.Random(f"{text}/{salt}").getrandbits(128)


def generate_workspace(config: WorkspaceConfig, *, seed: int) -> Dataset:
    """Every item of one workspace, built now: for small datasets and tests. The simulator
    itself reads generation.WorkspaceData, which builds an item only when it is asked for."""
    from inventory_sync.simulator.generation import workspace_data  # generation imports us

    data = workspace_data(config, seed=seed)
    return Dataset(
        subscriptions=list(data.subscriptions),
        glp_devices=[data.glp_device(i) for i in range(data.n)],
        central_devices=[data.central_at(p) for p in range(data.m)],
    )
