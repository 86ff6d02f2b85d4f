"""Classic Central accounts: their device inventory, rotating refresh tokens and two quotas."""

from __future__ import annotations

import functools
import hmac
import random
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from inventory_sync.simulator.classic_quota import ClassicQuota, ClassicQuotas
from inventory_sync.simulator.config import SimulatorConfig, WorkspaceConfig
from inventory_sync.simulator.dataset import ItemFactory, JsonObject
from inventory_sync.simulator.generation import WorkspaceData, workspace_data
from inventory_sync.simulator.ratelimit import Clock

#: Classic Central's device_type per New Central deviceType.
_DEVICE_TYPES = {"ACCESS_POINT": "iap", "SWITCH": "switch", "GATEWAY": "gateway"}
#: `sku_type` values the inventory API documents and the device_type each selects here. The
#: values are documented (pycentral's get_inventory); what each selects is inferred: this
#: account has no virtual gateways (vgw), campus APs (cap), branch controllers (boc) or others.
SKU_TYPES: dict[str, frozenset[str]] = {
    "all": frozenset(_DEVICE_TYPES.values()),
    "iap": frozenset({"iap"}),
    "all_ap": frozenset({"iap"}),
    "switch": frozenset({"switch"}),
    "gateway": frozenset({"gateway"}),
    "controller": frozenset({"gateway"}),
    "all_controller": frozenset({"gateway"}),
    "vgw": frozenset(),
    "cap": frozenset(),
    "boc": frozenset(),
    "others": frozenset(),
}
CLASSIC_DEVICE_FIELDS = frozenset(
    {
        "serial", "macaddr", "model", "aruba_part_no", "device_type", "imei", "customer_id",
        "customer_name", "tier_type", "services",
    }
)  # fmt: skip


def _fresh_serial(factory: ItemFactory, data: WorkspaceData) -> str:
    """A serial no other device of the account (nor of GreenLake or New Central) has."""
    while data.serial_taken(serial := factory.serial()):
        pass
    return serial


def _classic_device(
    factory: ItemFactory,
    config: WorkspaceConfig,
    *,
    central_type: str,
    serial: str,
    mac: str,
    model: str,
    part_number: str,
) -> JsonObject:
    """A classic inventory item (GET /platform/device_inventory/v1/devices)."""
    rng = factory.rng
    device_type = _DEVICE_TYPES[central_type]
    tier = rng.choice(("advanced", "foundation"))
    service = {"iap": "ap", "switch": "switch", "gateway": "gw"}[device_type]
    return {
        "serial": serial,
        "macaddr": mac.lower(),  # classic writes MACs lower-case, like New Central
        "model": model,
        "aruba_part_no": part_number,
        "device_type": device_type,
        # Only cellular-capable gateways carry an IMEI; the API sends "" otherwise.
        "imei": str(rng.randrange(10**14, 10**15))
        if device_type == "gateway" and rng.random() < 0.2
        else "",
        "customer_id": config.classic.customer_id,
        "customer_name": config.classic.customer_name,
        "tier_type": tier,
        "services": [f"{tier}_{service}"] if rng.random() < 0.95 else [],
    }


@functools.lru_cache(maxsize=8)
def generate_classic_devices(config: WorkspaceConfig, *, seed: int) -> tuple[JsonObject, ...]:
    """The classic account's inventory; a share of serials (and MACs, models) are New Central's.

    Its own RNG stream, so adding classic data never changes the other lists.
    """
    size = config.dataset
    data = workspace_data(config, seed=seed)
    rng = random.Random(f"{seed}/{config.workspace_id}/classic")
    factory = ItemFactory(rng, "classic")
    shared = min(round(size.classic_devices * size.classic_overlap_share), data.m)
    # Indices, not items: New Central may hold millions of generated devices.
    twins = [data.central_device(k) for k in rng.sample(range(data.m), shared)]
    devices = []
    for k in range(size.classic_devices):
        if k < shared:
            twin = twins[k]
            central_type, serial, mac = twin["deviceType"], twin["serialNumber"], twin["macAddress"]
            model, part_number = twin["model"], twin["partNumber"]
        else:
            hardware = factory.hardware(central_only=True)
            assert hardware.central_type is not None  # central_only guarantees it
            central_type, mac = hardware.central_type, factory.mac()
            serial = _fresh_serial(factory, data)
            model, part_number = hardware.model, hardware.part_number
        devices.append(
            _classic_device(
                factory,
                config,
                central_type=central_type,
                serial=serial,
                mac=mac,
                model=model,
                part_number=part_number,
            )
        )
    rng.shuffle(devices)  # listed in claim order, not grouped by overlap
    return tuple(devices)


class ClassicAccount:
    """One classic account's inventory (in listing order) and its current refresh token.

    Thread-safe like WorkspaceState; items are replaced, never changed in place.
    """

    def __init__(self, config: WorkspaceConfig, *, seed: int) -> None:
        self.config = config
        self.customer_id = config.classic.customer_id
        self.workspace_id = config.workspace_id
        self._seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to the generated inventory and the configured refresh token."""
        with self._lock:
            self._devices = list(generate_classic_devices(self.config, seed=self._seed))
            self.refresh_token = self.config.classic.refresh_token
            self.rotations = 0
            self._factory = ItemFactory(
                random.Random(f"{self._seed}/{self.customer_id}/classic-new"), "classic"
            )
            self._taken = {d["serial"] for d in self._devices}
            self._data = workspace_data(self.config, seed=self._seed)
            self._rng = random.Random(f"{self._seed}/{self.customer_id}/classic-mutations")
            self._touches = 0

    def devices(self, *, sku_type: str = "all") -> list[JsonObject]:
        """The inventory in listing order, restricted to the device types `sku_type` selects."""
        wanted = SKU_TYPES[sku_type]
        with self._lock:
            return [d for d in self._devices if d["device_type"] in wanted]

    def _fresh_serial(self) -> str:
        """A serial no device here, in New Central or in GreenLake has."""
        while (serial := self._factory.serial()) in self._taken or self._data.serial_taken(serial):
            pass
        self._taken.add(serial)
        return serial

    def add_devices(self, count: int) -> list[str]:
        """Claim `count` new devices (listed last); returns their serials."""
        added = []
        with self._lock:
            for _ in range(count):
                hardware = self._factory.hardware(central_only=True)
                assert hardware.central_type is not None
                item = _classic_device(
                    self._factory,
                    self.config,
                    central_type=hardware.central_type,
                    serial=self._fresh_serial(),
                    mac=self._factory.mac(),
                    model=hardware.model,
                    part_number=hardware.part_number,
                )
                self._devices.append(item)
                added.append(item["serial"])
        return added

    def delete_devices(self, serials: Iterable[str]) -> list[str]:
        """Remove devices; later ones shift one place up, as offsets do. Returns those found."""
        wanted = set(serials)
        with self._lock:
            gone = [d["serial"] for d in self._devices if d["serial"] in wanted]
            self._devices = [d for d in self._devices if d["serial"] not in wanted]
        return gone

    def touch_devices(self, serials: Iterable[str]) -> list[str]:
        """Change each device's services list; returns the serials that existed."""
        wanted = set(serials)
        touched = []
        with self._lock:
            for index, item in enumerate(self._devices):
                if item["serial"] in wanted:
                    self._touches += 1
                    services = [*item["services"], f"touch_{self._touches}"]
                    self._devices[index] = {**item, "services": services}
                    touched.append(item["serial"])
        return touched

    def pick_serials(self, count: int) -> list[str]:
        """`count` existing serials chosen by the seeded RNG (for count-based mutations)."""
        with self._lock:
            serials = [d["serial"] for d in self._devices]
            return self._rng.sample(serials, min(count, len(serials)))

    def count(self) -> int:
        with self._lock:
            return len(self._devices)


@dataclass(frozen=True)
class ClassicSession:
    """What a classic access token stands for."""

    customer_id: str
    client_id: str
    expires_at: float


class ClassicTokenRefused(Exception):
    """A refresh the token endpoint refuses; `error` is the OAuth2 error code."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class ClassicCentral:
    """Every classic account of a simulator, the access tokens issued and the quotas."""

    def __init__(
        self, config: SimulatorConfig, *, clock: Clock, wall_clock: Clock = time.time
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self.accounts = {
            w.classic.customer_id: ClassicAccount(w, seed=config.seed) for w in config.workspaces
        }
        self._sessions: dict[str, ClassicSession] = {}
        self.quotas = ClassicQuotas(config.rate_limits, clock=clock, wall_clock=wall_clock)
        self.tokens_issued = 0

    def account(self, customer_id: str | None = None) -> ClassicAccount:
        """An account by customer id; without one, the first workspace's."""
        if customer_id is None:
            customer_id = self._config.workspaces[0].classic.customer_id
        return self.accounts[customer_id]

    # -- tokens ----------------------------------------------------------------------------

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> tuple[str, str]:
        """Exchange a refresh token: (new access token, new refresh token). The old refresh
        token stops working at once. ClassicTokenRefused for a bad client or token."""
        with self._lock:
            for account in self.accounts.values():
                client = account.config.classic
                same_id = _same(client.client_id, client_id)
                if not (same_id and _same(client.client_secret, client_secret)):
                    continue
                if not _same(account.refresh_token, refresh_token):
                    raise ClassicTokenRefused(
                        "invalid_grant", "Invalid refresh token: it was used or revoked"
                    )
                account.rotations += 1
                account.refresh_token = secrets.token_urlsafe(24)
                access = secrets.token_urlsafe(24)
                expires = self._clock() + self._config.classic_token_lifetime_seconds
                self._sessions[access] = ClassicSession(account.customer_id, client_id, expires)
                self.tokens_issued += 1
                return access, account.refresh_token
        raise ClassicTokenRefused("invalid_client", "Invalid client credentials", status=401)

    def session(self, access_token: str) -> ClassicSession | None:
        """The session of a known access token, expired or not."""
        with self._lock:
            return self._sessions.get(access_token)

    def is_expired(self, session: ClassicSession) -> bool:
        return self._clock() >= session.expires_at

    def expire_all(self) -> int:
        """Expire every access token now; returns how many."""
        now = self._clock()
        with self._lock:
            for token, s in self._sessions.items():
                self._sessions[token] = ClassicSession(s.customer_id, s.client_id, now)
            return len(self._sessions)

    # -- quotas ----------------------------------------------------------------------------

    def hit(self, customer_id: str, *, record: bool = True) -> ClassicQuota:
        """Count one API call of `customer_id` against both quotas (see ClassicQuotas.hit)."""
        return self.quotas.hit(customer_id, record=record)

    # -- life cycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """Inventories regenerated, refresh tokens back to the configured ones, quotas cleared."""
        with self._lock:
            for account in self.accounts.values():
                account.reset()
            self._sessions.clear()
            self.quotas.clear()
            self.tokens_issued = 0

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Per account: devices, refresh-token rotations (for /_simulator/stats)."""
        return {
            cid: {"classic_devices": a.count(), "refresh_rotations": a.rotations}
            for cid, a in self.accounts.items()
        }


def _same(expected: str, given: str) -> bool:
    # Constant-time, as a token endpoint should compare; the values are demo fixtures.
    return hmac.compare_digest(expected.encode(), given.encode())
