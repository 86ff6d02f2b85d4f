"""Scenarios run with pycentral 1.x (classic Central), configured as its docs say.

Usage: python pycentral_v1.py SCENARIO < params.json; prints one JSON object on stdout.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import loopback_only  # noqa: F401  (installs the network guard before any client exists)
from pycentral.base import ArubaCentralBase
from pycentral.device_inventory import Inventory
from pycentral.refresh_api_token import RefreshApiToken


def digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()


def connect(params: dict[str, Any], access_token: str) -> ArubaCentralBase:
    central_info = {
        "base_url": params["base_url"],
        "client_id": params["client_id"],
        "client_secret": params["client_secret"],
        "customer_id": params["customer_id"],
        "token": {"access_token": access_token, "refresh_token": params["refresh_token"]},
    }
    return ArubaCentralBase(central_info=central_info, token_store={"path": params["token_dir"]})


def walk_inventory(conn: ArubaCentralBase) -> tuple[list[str], list[int]]:
    serials: list[str] = []
    codes: list[int] = []
    offset, total = 0, None
    while total is None or offset < total:
        answer = Inventory().get_inventory(conn, sku_type="all", limit=50, offset=offset)
        codes.append(answer["code"])
        if answer["code"] != 200:
            raise SystemExit(f"inventory page at {offset}: {answer['code']} {answer['msg']}")
        serials += [d["serial"] for d in answer["msg"]["devices"]]
        total, offset = answer["msg"]["total"], offset + 50
    return serials, codes


def rotation(params: dict[str, Any]) -> dict[str, Any]:
    """An expired access token: the first call meets a 401 invalid_token, the SDK refreshes
    (rotating the refresh token), stores the new pair and retries."""
    conn = connect(params, access_token="expired-access-token")
    first = Inventory().get_inventory(conn, limit=50, offset=0)
    stored = json.loads(next(Path(params["token_dir"]).glob("tok_*.json")).read_text())
    # pycentral's own RefreshApiToken helper passes `retry_api_call` to a command() that does
    # not accept it (1.4.3 and 2.0a25's classic module alike): it raises before any request.
    try:
        RefreshApiToken().refresh_token(
            conn, params["client_id"], params["client_secret"], stored["refresh_token"]
        )
        helper_error = None
    except TypeError as error:
        helper_error = str(error)
    return {
        "first_code": first["code"],
        "devices_on_first_page": len(first["msg"]["devices"]),
        "refresh_token": conn.central_info["token"]["refresh_token"],
        "stored_refresh_token": stored["refresh_token"],
        "refresh_api_token_error": helper_error,
    }


def inventory(params: dict[str, Any]) -> dict[str, Any]:
    """The whole inventory, 50 at a time, timed (a rate-limited walk waits out its 429s)."""
    conn = connect(params, access_token=params["access_token"])
    started = time.monotonic()
    serials, codes = walk_inventory(conn)
    return {
        "devices": len(serials),
        "serials": digest(serials),
        "pages": len(codes),
        "seconds": round(time.monotonic() - started, 2),
    }


def monitoring(params: dict[str, Any]) -> dict[str, Any]:
    """/monitoring/v2/aps and /monitoring/v1/switches through the SDK's generic command()."""
    conn = connect(params, access_token=params["access_token"])
    counts: dict[str, Any] = {}
    for path, key in (("/monitoring/v2/aps", "aps"), ("/monitoring/v1/switches", "switches")):
        items: list[dict[str, Any]] = []
        offset, total = 0, None
        while total is None or offset < total:
            query = {"offset": offset, "limit": 100, "calculate_total": "true"}
            answer = conn.command(apiMethod="GET", apiPath=path, apiParams=query)
            if answer["code"] != 200:
                raise SystemExit(f"{path} at {offset}: {answer['code']} {answer['msg']}")
            items += answer["msg"][key]
            total, offset = answer["msg"]["total"], offset + 100
        counts[key] = len(items)
        counts[f"{key}_serials"] = digest([i["serial"] for i in items])
    return counts


SCENARIOS = {"rotation": rotation, "inventory": inventory, "monitoring": monitoring}

if __name__ == "__main__":
    result = SCENARIOS[sys.argv[1]](json.load(sys.stdin))
    print(json.dumps(result))
