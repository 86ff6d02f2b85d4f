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
    #: The column that scopes rows (with `id` the primary key); sync_scopes stores its value.
    scope_column: str = "workspace_id"
    #: Top-level keys of an item kept in `data` but ignored when deciding whether a row
    #: changed (e.g. a Kubernetes resourceVersion, which moves without a content change).
    volatile_keys: tuple[str, ...] = ()
    #: The item field staged as the row's `id` (classic Central items have none: `serial`).
    id_field: str = "id"
    #: Whether the table says why a row was soft-deleted (`deleted_reason`): a merge clears it
    #: when a row comes back, a complete walk that misses the row sets DELETED_UPSTREAM.
    has_deleted_reason: bool = False


#: deleted_reason of a row that a complete, consistent listing no longer contained.
DELETED_UPSTREAM = "deleted"


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
        # The vendor's example says softwareVersion; pycentral's device model reads
        # firmwareVersion. Either fills the column; `data` keeps what was sent.
        "software_version": "coalesce(d->>'softwareVersion', d->>'firmwareVersion')",
        "site_id": _text("siteId"),
        "site_name": _text("siteName"),
        "last_seen_at": _time("lastSeenAt"),
    },
    # The serial number is the device's identity (the vendor's items repeat it as `id`) and
    # the join key to GreenLake: rows are keyed by it (migration 0008 re-keyed older rows).
    id_field="serialNumber",
)


# Classic Central inventory: no id upstream, so the serial is the row id. Scope: the account
# (customer) id, in `account_id`.
CENTRAL_CLASSIC_DEVICES = TableSpec(
    table="central_classic_devices",
    source_kind="arubaCentralClassic",
    scope_column="account_id",
    id_field="serial",
    columns={
        "serial_number": _text("serial"),
        "mac_address": _text("macaddr"),
        "model": _text("model"),
        "part_number": _text("aruba_part_no"),
        "device_type": _text("device_type"),
        "customer_id": _text("customer_id"),
        "customer_name": _text("customer_name"),
        "imei": f"nullif({_text('imei')}, '')",
        "tier_type": _text("tier_type"),
        "services": "CASE WHEN jsonb_typeof(d->'services') = 'array' THEN d->'services' END",
    },
)


def _json(*path: str) -> str:
    return "d" + "".join(f"->'{p}'" for p in path)


# Kubernetes objects from a fabric. The staged item is the object without volatile metadata,
# plus `id` (metadata.uid), `fabric` (which Fabric listed it) and `resourceVersion`; see
# syncing/fabric.py. Scope: "<fabric uid>/<group>/<Kind>", so deletion is judged per kind.
FABRIC_OBJECTS = TableSpec(
    table="fabric_objects",
    source_kind="fabric",
    scope_column="scope",
    columns={
        "fabric_uid": "d->'fabric'->>'uid'",
        "fabric_namespace": "d->'fabric'->>'namespace'",
        "fabric_name": "d->'fabric'->>'name'",
        # apiVersion is "group/version"; a core object's has no group.
        "api_group": "CASE WHEN strpos(d->>'apiVersion', '/') > 0 "
        "THEN split_part(d->>'apiVersion', '/', 1) ELSE '' END",
        "api_version": _text("apiVersion"),
        "kind": _text("kind"),
        "namespace": "d->'metadata'->>'namespace'",
        "name": "d->'metadata'->>'name'",
        "resource_version": _text("resourceVersion"),
        "labels": f"coalesce({_json('metadata', 'labels')}, '{{}}'::jsonb)",
        "spec": _json("spec"),
        "status": _json("status"),
    },
    volatile_keys=("resourceVersion",),
    has_deleted_reason=True,
)
