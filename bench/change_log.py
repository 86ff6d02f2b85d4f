"""Benchmark: what the change log adds to one page statement, measured inside PostgreSQL.

bench/merge.py times whole walks with and without the log; on a shared, loaded machine their
ratio moves by ±30 % between runs. This isolates the statement: a workspace of N devices is
stored once, then one page of 2,000 devices is merged under `EXPLAIN (ANALYZE)` inside a
transaction that is rolled back, with and without the log, alternating, many times. The
figures are PostgreSQL's own planning and execution times for that statement (no client, no
network), medians over the repetitions:

- fresh: 2,000 new devices (2,000 inserts logged);
- changed: 2,000 stored devices, 200 of them changed (200 updates logged, with their diffs);
- unchanged: 2,000 stored devices unchanged (nothing written, nothing logged).

    .venv/bin/python bench/change_log.py [--devices 100000] [--repeat 25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from devices import WORKSPACE, DeviceSource
from merge import T0, Database, _changed, merge_devices, merge_subscriptions

from inventory_sync.store import statements, walks
from inventory_sync.store.embedded import start_embedded, stop_embedded
from inventory_sync.store.staging import stage_page
from inventory_sync.store.tables import GLP_DEVICES

PAGE = 2000


def arguments(items: list[dict[str, Any]], *, logged: bool) -> list[Any]:
    staged = stage_page(GLP_DEVICES, items)
    packed = staged.arguments(with_links=True)
    return [WORKSPACE, T0 + timedelta(days=1), *packed, *([None, "devices"] if logged else [])]


async def timed(connection: asyncpg.Connection, sql: str, args: list[Any]) -> tuple[float, float]:
    """(planning, execution) milliseconds of one statement, rolled back."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        plan = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    finally:
        await transaction.rollback()
    found = json.loads(plan)[0]
    return float(found["Planning Time"]), float(found["Execution Time"])


async def measure(pool: asyncpg.Pool, source: DeviceSource, stored: int, repeat: int) -> str:
    cases = {
        "fresh": [source.device(n) for n in range(stored, stored + PAGE)],
        "changed": [_changed(source, n) for n in range(PAGE)],
        "unchanged": [source.device(n) for n in range(PAGE)],
    }
    lines = [
        f"one page of {PAGE:,} devices into a workspace of {stored:,}; median of {repeat},"
        " milliseconds inside PostgreSQL (planning + execution)",
        "",
        "| page | with the log | without | with / without | rows logged |",
        "|---|---|---|---|---|",
    ]
    async with pool.acquire() as connection:
        seen = await walks.create_seen_table(connection)
        sql = {
            logged: statements.page_statement(GLP_DEVICES, seen, log_changes=logged)
            for logged in (True, False)
        }
        for name, items in cases.items():
            times: dict[bool, list[float]] = {True: [], False: []}
            for attempt in range(repeat):
                for logged in (attempt % 2 == 0, attempt % 2 != 0):
                    plan, run = await timed(
                        connection, sql[logged], arguments(items, logged=logged)
                    )
                    times[logged].append(plan + run)
            logged_rows = await _rows_logged(connection, sql[True], arguments(items, logged=True))
            on, off = statistics.median(times[True]), statistics.median(times[False])
            lines.append(f"| {name} | {on:.1f} | {off:.1f} | **{on / off:.2f}** | {logged_rows} |")
        await walks.drop_seen_table(connection, seen)
    return "\n".join(lines)


async def _rows_logged(connection: asyncpg.Connection, sql: str, args: list[Any]) -> int:
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.fetchrow(sql, *args)
        return int(await connection.fetchval("SELECT count(*) FROM inventory_changes"))
    finally:
        await transaction.rollback()


async def main(devices: int, repeat: int) -> None:
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "pg"
        db = Database(start_embedded(data))
        try:
            pool = await db.fresh_pool()
            try:
                source = DeviceSource()
                await merge_subscriptions(pool, source, WORKSPACE)
                await merge_devices(pool, source, devices, now=T0)
                await pool.execute("TRUNCATE inventory_changes")
                await pool.execute("ANALYZE")
                report = await measure(pool, source, devices, repeat)
            finally:
                await pool.close()
        finally:
            stop_embedded(data)  # also when a run fails: no server outlives the benchmark
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average (1/5/15 min) before: {load_before}, after: {load_after}\n")
    print(report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=25)
    options = parser.parse_args()
    asyncio.run(main(options.devices, options.repeat))
