"""Scenarios run with pycentral 2.x (GreenLake and New Central), configured as its docs say.

Usage: python pycentral_v2.py SCENARIO < params.json; prints one JSON object on stdout.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import loopback_only  # noqa: F401  (installs the network guard before any client exists)
from pycentral import NewCentralBase
from pycentral.glp import Devices, Subscriptions
from pycentral.new_monitoring import MonitoringDevices


def digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()


def glp(params: dict[str, Any]) -> dict[str, Any]:
    """Standalone `glp` credentials: the token from HPE SSO, then every device and subscription."""
    token_info = {
        "glp": {
            "client_id": params["client_id"],
            "client_secret": params["client_secret"],
            "base_url": params["base_url"],
        }
    }
    with NewCentralBase(token_info=token_info, log_level="WARNING") as conn:
        devices = Devices().get_all_devices(conn)
        selected = Devices().get_all_devices(conn, select=["id", "serialNumber"])
        subscriptions = Subscriptions().get_all_subscriptions(conn)
    return {
        "token_type": "glp",
        "devices": len(devices),
        "device_ids": digest([d["id"] for d in devices]),
        "selected_keys": sorted({k for d in selected for k in d}),
        "subscriptions": len(subscriptions),
        "subscription_ids": digest([s["id"] for s in subscriptions]),
    }


def unified(params: dict[str, Any]) -> dict[str, Any]:
    """`unified` credentials: one workspace-scoped token for GreenLake (at its default host)
    and New Central."""
    token_info = {
        "unified": {
            "client_id": params["client_id"],
            "client_secret": params["client_secret"],
            "workspace_id": params["workspace_id"],
            "base_url": params["base_url"],
        }
    }
    with NewCentralBase(token_info=token_info, log_level="WARNING") as conn:
        devices = Devices().get_all_devices(conn)
        inventory = MonitoringDevices.get_all_device_inventory(conn)
    return {
        "devices": len(devices),
        "device_ids": digest([d["id"] for d in devices]),
        "inventory": len(inventory),
        "inventory_ids": digest([d["id"] for d in inventory]),
    }


def central(params: dict[str, Any]) -> dict[str, Any]:
    """`new_central` credentials with a token endpoint: the inventory and the onboarded devices."""
    token_info = {
        "new_central": {
            "client_id": params["client_id"],
            "client_secret": params["client_secret"],
            "base_url": params["base_url"],
            "token_endpoint": params["token_url"],
        }
    }
    with NewCentralBase(token_info=token_info, log_level="WARNING") as conn:
        inventory = MonitoringDevices.get_all_device_inventory(conn)
        onboarded = MonitoringDevices.get_all_devices(conn)
    return {
        "inventory": len(inventory),
        "inventory_ids": digest([d["id"] for d in inventory]),
        "devices": len(onboarded),
        "device_ids": digest([d["id"] for d in onboarded]),
    }


SCENARIOS = {"glp": glp, "unified": unified, "central": central}

if __name__ == "__main__":
    result = SCENARIOS[sys.argv[1]](json.load(sys.stdin))
    print(json.dumps(result))
