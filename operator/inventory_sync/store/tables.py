"""Which upstream fields land in which typed columns, per inventory table (store layer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    """An inventory table fed by one source kind.

    `columns` maps a typed column to an SQL expression over `d`, the item's jsonb; the whole
    item is also kept in `data`, so a field we do not type yet is never lost.
    """

    table: str
    source_kind: str
    columns: Mapping[str, str]
    #: Whether items carry GreenLake `subscription: [{id, resourceUri}]` links.
    has_subscription_links: bool = False


def _text(field: str) -> str:
    return f"d->>'{field}'"


def _time(field: str) -> str:
    return f"inventory_try_timestamptz(d->>'{field}')"


def _bool(field: str) -> str:
    return f"CASE WHEN jsonb_typeof(d->'{field}') = 'boolean' THEN (d->'{field}')::boolean END"


GLP_SUBSCRIPTIONS = TableSpec(
    table="glp_subscriptions",
    source_kind="greenlake/subscriptions",
    columns={
        "key": _text("key"),
        "subscription_type": _text("subscriptionType"),
        "subscription_status": _text("subscriptionStatus"),
        "sku": _text("sku"),
        "tier": _text("tier"),
        "product_type": _text("productType"),
        # Strings in the vendor schema; NULL when not a plain integer (data keeps the original).
        "quantity": "inventory_try_bigint(d->>'quantity')",
        "available_quantity": "inventory_try_bigint(d->>'availableQuantity')",
        "is_eval": _bool("isEval"),
        "start_time": _time("startTime"),
        "end_time": _time("endTime"),
        "upstream_updated_at": _time("updatedAt"),
    },
)

GLP_DEVICES = TableSpec(
    table="glp_devices",
    source_kind="greenlake/devices",
    columns={
        "serial_number": _text("serialNumber"),
        "mac_address": _text("macAddress"),
        "part_number": _text("partNumber"),
        "model": _text("model"),
        "device_type": _text("deviceType"),
        "assigned_state": _text("assignedState"),
        "archived": _bool("archived"),
        "region": _text("region"),
        "upstream_updated_at": _time("updatedAt"),
    },
    has_subscription_links=True,
)

CENTRAL_DEVICES = TableSpec(
    table="central_devices",
    source_kind="arubaCentral",
    columns={
        "serial_number": _text("serialNumber"),
        "device_name": _text("deviceName"),
        "device_type": _text("deviceType"),
        "mac_address": _text("macAddress"),
        "model": _text("model"),
        "part_number": _text("partNumber"),
        "status": _text("status"),
        "software_version": _text("softwareVersion"),
        "site_id": _text("siteId"),
        "site_name": _text("siteName"),
        "last_seen_at": _time("lastSeenAt"),
    },
)
