"""Benchmark: the store's merge of GreenLake device pages against raw COPY of the same rows.

All figures come from one process, one embedded PostgreSQL, each variant on a fresh database,
so the ratios are what count (the machine is shared: absolute seconds move with its load,
which is printed):

- fresh: `streaming.stream_into_scope` (the code path every source uses: staged merge of each
  page, links, then the deletion judgement) of N devices into an empty table, pages of 2,000;
- copy: raw binary COPY of the same rows (typed columns computed beforehand, not timed) into
  the same empty table: the floor;
- unchanged: the same N devices again (the resync of an unchanged inventory, merge alone);
- pool: 32 small sources (5 pages of 200 devices, 0.1 s upstream latency before each page)
  at once through a pool of 10 connections and through a pool of 32;
- change log: the same merge (`ScopeMerge`, pages then the deletion judgement) with the
  change log written (as every source does) and without it, on fresh databases, alternating
  which goes first: N inserts, then 10 % of the N changed (updates with their diffs), then
  the unchanged resync, which must log 0 rows.

Item generation is timed separately and left out of the merge figures.

    .venv/bin/python bench/merge.py [--quick] [--repeat 3] [--sizes 100000,1000000]
        [--no-pool] [--no-change-log | --only-change-log] [--summary FILE]
        [--shared-buffers 1GB]

The report is printed and appended to bench/results/merge.md; `--summary` also writes the
headline figures as JSON (bench/floor.py turns them into rows of issue 13's table).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from devices import WORKSPACE, DeviceSource, Page

from inventory_sync.results import SourceOutcome
from inventory_sync.store import inspection
from inventory_sync.store.database import open_pool
from inventory_sync.store.embedded import start_embedded, stop_embedded
from inventory_sync.store.merging import ScopeMerge
from inventory_sync.store.tables import GLP_DEVICES, GLP_SUBSCRIPTIONS
from inventory_sync.syncing.progress import NoProgress
from inventory_sync.syncing.streaming import stream_into_scope

T0 = datetime(2026, 3, 1, tzinfo=UTC)
COPY_CHUNK = 50_000
RESULTS = Path(__file__).parent / "results" / "merge.md"


@dataclass
class Figures:
    fresh: dict[int, list[float]] = field(default_factory=dict)
    copy: dict[int, list[float]] = field(default_factory=dict)
    unchanged: dict[int, list[float]] = field(default_factory=dict)
    unchanged_writes: dict[int, list[int]] = field(default_factory=dict)
    pool: dict[int, list[float]] = field(default_factory=dict)
    #: (size, "fresh" | "changed" | "unchanged", logged?) → seconds per run
    change_log: dict[tuple[int, str, bool], list[float]] = field(default_factory=dict)
    #: rows the unchanged resync added to inventory_changes, per size (must stay 0)
    change_log_resync_rows: dict[int, list[int]] = field(default_factory=dict)


async def replace_database(server_url: str, previous: str, *, options: str = "") -> str:
    """The URL of a new empty database on the server at `server_url`. `previous` (a URL this
    returned before, or "") is dropped first: its autovacuum and checkpoint writes (up to
    millions of rows) would otherwise run during the next measurement, and a full bench would
    keep gigabytes of them on disk. WITH (FORCE): a killed walk process may still hold it.
    `options` follow CREATE DATABASE (see --database-options)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    try:
        if previous:
            old = previous.partition("?")[0].rpartition("/")[2]  # the query names a socket dir
            await admin.execute(f"DROP DATABASE IF EXISTS {old} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name} {options}")
    finally:
        await admin.close()
    return server_url.replace("/postgres?", f"/{name}?")


class Database:
    """Fresh databases on one embedded server."""

    def __init__(self, server_url: str, *, options: str = "") -> None:
        self.server_url = server_url
        self.options = options  # CREATE DATABASE options, e.g. its collation
        self.made = ""  # the database fresh_pool made last, dropped by the next call

    async def fresh_pool(self, *, max_size: int = 10) -> asyncpg.Pool:
        """A pool on an empty database; the one made before (its pool closed by now) is
        dropped first."""
        self.made = await replace_database(self.server_url, self.made, options=self.options)
        return await open_pool(self.made, max_size=max_size)


async def timed_pages(pages: Iterator[Page], spent: list[float]) -> AsyncGenerator[Page, None]:
    """Pages as an async walk; the time spent generating them is added to spent[0]."""
    while True:
        started = time.perf_counter()
        page = next(pages, None)
        spent[0] += time.perf_counter() - started
        if page is None:
            return
        yield page


async def merge_devices(
    pool: asyncpg.Pool, source: DeviceSource, count: int, *, now: datetime, scope: str = WORKSPACE
) -> tuple[float, SourceOutcome]:
    """Seconds the merge of `count` devices took (generation excluded), and its outcome."""
    outcome = SourceOutcome(name="devices", kind="greenlake/devices")
    spent = [0.0]
    started = time.perf_counter()
    await stream_into_scope(
        timed_pages(source.pages(count), spent),
        pool=pool, spec=GLP_DEVICES, scope=scope, outcome=outcome, progress=NoProgress(), now=now,
    )  # fmt: skip
    return time.perf_counter() - started - spent[0], outcome


async def merge_subscriptions(pool: asyncpg.Pool, source: DeviceSource, scope: str) -> None:
    outcome = SourceOutcome(name="subscriptions", kind="greenlake/subscriptions")

    async def one_page() -> AsyncGenerator[Page, None]:
        yield Page(list(source.subscriptions), total=len(source.subscriptions))

    await stream_into_scope(
        one_page(), pool=pool, spec=GLP_SUBSCRIPTIONS, scope=scope, outcome=outcome,
        progress=NoProgress(), now=T0,
    )  # fmt: skip


def _timestamp(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def copy_row(item: dict[str, Any], columns: list[str]) -> tuple[Any, ...]:
    """The row a merge would store for `item`, computed in Python (not timed)."""
    data = json.dumps(item, separators=(",", ":"), sort_keys=True)
    archived = item.get("archived")
    values: dict[str, Any] = {
        "workspace_id": WORKSPACE,
        "id": item["id"],
        "serial_number": item.get("serialNumber"),
        "mac_address": item.get("macAddress"),
        "part_number": item.get("partNumber"),
        "model": item.get("model"),
        "device_type": item.get("deviceType"),
        "assigned_state": item.get("assignedState"),
        "archived": archived if isinstance(archived, bool) else None,
        "region": item.get("region"),
        "upstream_updated_at": _timestamp(item.get("updatedAt")),
        "data": data,
        "content_hash": hashlib.blake2b(data.encode(), digest_size=16).digest(),
        "first_seen": T0,
        "changed_at": T0,
        "deleted_at": None,
    }
    return tuple(values[c] for c in columns)


async def raw_copy(pool: asyncpg.Pool, source: DeviceSource, count: int) -> float:
    """Seconds of binary COPY of `count` device rows into glp_devices (row building excluded)."""
    async with pool.acquire() as connection:
        columns = [
            r["column_name"]
            for r in await connection.fetch(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_name = 'glp_devices' ORDER BY ordinal_position"""
            )
        ]
        spent = 0.0
        for first in range(0, count, COPY_CHUNK):
            records = [
                copy_row(source.device(n), columns)
                for n in range(first, min(first + COPY_CHUNK, count))
            ]
            started = time.perf_counter()
            await connection.copy_records_to_table("glp_devices", records=records, columns=columns)
            spent += time.perf_counter() - started
    return spent


async def pool_case(db: Database, *, max_size: int, sources: int = 32) -> float:
    """Seconds for `sources` small walks at once (each waits 0.1 s upstream before a page)."""
    pool = await db.fresh_pool(max_size=max_size)
    try:
        generator = DeviceSource()

        async def walk(k: int) -> None:
            scope = f"ws-{k}"
            base = 1_000_000 * (k + 1)

            async def pages() -> AsyncGenerator[Page, None]:
                for page in generator.pages(1000, page_size=200, start=base):
                    await asyncio.sleep(0.1)  # upstream latency: no connection is needed here
                    yield Page(page.items, total=1000)

            outcome = SourceOutcome(name=scope, kind="greenlake/devices")
            await stream_into_scope(
                pages(), pool=pool, spec=GLP_DEVICES, scope=scope, outcome=outcome,
                progress=NoProgress(), now=T0,
            )  # fmt: skip
            assert outcome.inserted == 1000, outcome

        started = time.perf_counter()
        await asyncio.gather(*(walk(k) for k in range(sources)))
        return time.perf_counter() - started
    finally:
        await pool.close()


async def one_size(db: Database, count: int, figures: Figures) -> None:
    source = DeviceSource()
    pool = await db.fresh_pool()
    try:
        await merge_subscriptions(pool, source, WORKSPACE)
        seconds, outcome = await merge_devices(pool, source, count, now=T0)
        assert outcome.inserted == count, outcome
        figures.fresh.setdefault(count, []).append(seconds)
        marker = await inspection.write_marker(pool)
        seconds, outcome = await merge_devices(pool, source, count, now=T0 + timedelta(hours=1))
        assert outcome.unchanged == count, outcome
        figures.unchanged.setdefault(count, []).append(seconds)
        written = await inspection.rows_written_since(pool, marker)
        figures.unchanged_writes.setdefault(count, []).append(written)
    finally:
        await pool.close()
    pool = await db.fresh_pool()
    try:
        await merge_subscriptions(pool, source, WORKSPACE)
        figures.copy.setdefault(count, []).append(await raw_copy(pool, source, count))
    finally:
        await pool.close()


CHANGE_LOG_PHASES = ("fresh", "changed", "unchanged")


def _changed(source: DeviceSource, n: int) -> dict[str, Any]:
    """Device n, with every tenth one changed (its state and updatedAt), for the update phase."""
    item = source.device(n)
    if n % 10 == 0:
        item["assignedState"] = "UNASSIGNED"
        item["updatedAt"] = "2026-03-01T00:00:00.000Z"
    return item


async def _log_phase(
    pool: asyncpg.Pool, source: DeviceSource, count: int, *, changed: bool, logged: bool,
    now: datetime,
) -> float:  # fmt: skip
    """Seconds for one walk of `count` devices through ScopeMerge (generation excluded)."""
    spent = 0.0
    started = time.perf_counter()
    async with ScopeMerge(
        pool, spec=GLP_DEVICES, workspace_id=WORKSPACE, now=now, log_changes=logged
    ) as merge:
        for first in range(0, count, 2000):
            t = time.perf_counter()
            items = [
                _changed(source, n) if changed else source.device(n)
                for n in range(first, min(first + 2000, count))
            ]
            spent += time.perf_counter() - t
            await merge.merge_page(items)
        await merge.mark_deleted(await merge.missing_ids())
    return time.perf_counter() - started - spent


async def change_log_case(
    db: Database, count: int, figures: Figures, *, logged_first: bool
) -> None:
    """Both variants on fresh databases, in the order given, each through the three phases."""
    source = DeviceSource()
    for logged in (logged_first, not logged_first):
        pool = await db.fresh_pool()
        try:
            await merge_subscriptions(pool, source, WORKSPACE)
            for phase, at in zip(CHANGE_LOG_PHASES, (0, 1, 2), strict=True):
                before = await pool.fetchval("SELECT count(*) FROM inventory_changes")
                seconds = await _log_phase(
                    pool, source, count, changed=phase != "fresh", logged=logged,
                    now=T0 + timedelta(hours=at),
                )  # fmt: skip
                figures.change_log.setdefault((count, phase, logged), []).append(seconds)
                added = int(await pool.fetchval("SELECT count(*) FROM inventory_changes")) - before
                expected = {"fresh": count, "changed": (count + 9) // 10, "unchanged": 0}[phase]
                assert added == (expected if logged else 0), (phase, logged, added)
                if phase == "unchanged" and logged:
                    figures.change_log_resync_rows.setdefault(count, []).append(added)
        finally:
            await pool.close()


def change_log_report(figures: Figures, sizes: list[int]) -> list[str]:
    lines = [
        "",
        "change log: seconds with / without (median), ratio; the resync must log 0 rows",
        "",
        "| devices | fresh (inserts) | 10 % changed (updates) | unchanged resync | rows logged by the resync |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        cells = []
        for phase in CHANGE_LOG_PHASES:
            on, off = figures.change_log[(n, phase, True)], figures.change_log[(n, phase, False)]
            cells.append(
                f"{_median(on):.2f} / {_median(off):.2f} s = **{_median(on) / _median(off):.2f}**"
                f" (with: {', '.join(f'{v:.2f}' for v in on)}; without: "
                f"{', '.join(f'{v:.2f}' for v in off)})"
            )
        lines.append(f"| {n:,} | {' | '.join(cells)} | {max(figures.change_log_resync_rows[n])} |")
    return lines


def _median(values: list[float]) -> float:
    return statistics.median(values)


def report(figures: Figures, sizes: list[int], *, repeat: int, load: tuple[str, str]) -> str:
    lines = [
        f"runs per figure: {repeat}; load average (1/5/15 min) before: {load[0]}, after: {load[1]}",
    ]
    if figures.change_log:
        lines += change_log_report(figures, sizes)
    if not figures.fresh:
        return "\n".join(lines)
    lines += [
        "",
        "| devices | ours fresh | raw COPY | ours / COPY | unchanged resync | unchanged / fresh | rows written by the resync |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        fresh, copy, unchanged = (
            _median(f[n]) for f in (figures.fresh, figures.copy, figures.unchanged)
        )
        lines.append(
            f"| {n:,} | {n / fresh:,.0f} rows/s ({fresh:.1f} s: "
            f"{', '.join(f'{v:.1f}' for v in figures.fresh[n])}) "
            f"| {n / copy:,.0f} rows/s ({copy:.1f} s: {', '.join(f'{v:.1f}' for v in figures.copy[n])}) "
            f"| {copy / fresh:.2f} | {unchanged:.1f} s ({', '.join(f'{v:.1f}' for v in figures.unchanged[n])}) "
            f"| {unchanged / fresh:.2f} | {max(figures.unchanged_writes[n])} |"
        )
    per_row = summary(figures, sizes).get("per_row_us")
    if per_row:
        lines += [
            "",
            f"per-row cost {per_row['small']:,} → {per_row['large']:,}: {per_row_text(per_row)}",
        ]
    if figures.pool:
        ten, wide = _median(figures.pool[10]), _median(figures.pool[32])
        lines += [
            "",
            f"32 small sources at once: pool of 10 {ten:.2f} s ({', '.join(f'{v:.2f}' for v in figures.pool[10])}), "
            f"pool of 32 {wide:.2f} s ({', '.join(f'{v:.2f}' for v in figures.pool[32])}): "
            f"pool 10 / pool 32 = {ten / wide:.2f}",
        ]
    return "\n".join(lines)


def summary(figures: Figures, sizes: list[int]) -> dict[str, Any]:
    """The headline figures: per size, ours and COPY in rows/s and their ratio; the per-row
    cost from the smallest to the largest size."""
    out: dict[str, Any] = {"sizes": {}}
    measured = [n for n in sizes if n in figures.fresh and n in figures.copy]
    for n in measured:
        fresh, copy = _median(figures.fresh[n]), _median(figures.copy[n])
        out["sizes"][str(n)] = {
            "ours_rows_s": n / fresh,
            "copy_rows_s": n / copy,
            "ratio": copy / fresh,
            "unchanged_over_fresh": _median(figures.unchanged[n]) / fresh,
            "rows_written_by_resync": max(figures.unchanged_writes[n]),
        }
    if len(measured) >= 2:
        small, large = measured[0], measured[-1]
        out["per_row_us"] = {
            "small": small,
            "large": large,
            "ours": [_median(figures.fresh[n]) / n * 1e6 for n in (small, large)],
            "copy": [_median(figures.copy[n]) / n * 1e6 for n in (small, large)],
        }
    return out


def per_row_text(per_row: dict[str, Any]) -> str:
    """The `per_row_us` of a summary in words: ours and COPY, smallest → largest size."""
    ours, copy = per_row["ours"], per_row["copy"]
    return (
        f"ours {ours[0]:.1f} → {ours[1]:.1f} µs ({ours[1] / ours[0]:.2f}x); "
        f"COPY {copy[0]:.1f} → {copy[1]:.1f} µs ({copy[1] / copy[0]:.2f}x)"
    )


def record(text: str, command: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with RESULTS.open("a") as out:
        out.write(f"\n## {stamp}, `{command}`\n\n{text}\n")


async def start_server(data: Path, shared_buffers: str | None) -> str:
    """The embedded server's DSN; with `shared_buffers`, restarted with that setting (the
    server's default, 128 MB, holds less than a million devices' indexes)."""
    url = start_embedded(data)
    if shared_buffers:
        admin = await asyncpg.connect(url)
        try:
            await admin.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        finally:
            await admin.close()
        stop_embedded(data)
        url = start_embedded(data)
    return url


async def main(
    sizes: list[int],
    repeat: int,
    *,
    pools: bool,
    change_log: str,
    shared_buffers: str | None,
    database_options: str = "",
) -> tuple[Figures, str]:
    """Every case, `repeat` times; the figures and their report."""
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    figures = Figures()
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "pg"
        db = Database(await start_server(data, shared_buffers), options=database_options)
        try:
            admin = await asyncpg.connect(db.server_url)
            try:
                buffers = await admin.fetchval("SHOW shared_buffers")
            finally:
                await admin.close()
            for attempt in range(repeat):
                for n in sizes:
                    if change_log != "only":
                        await one_size(db, n, figures)
                    if change_log != "skip":
                        await change_log_case(db, n, figures, logged_first=attempt % 2 == 0)
                if pools and change_log != "only":
                    for size in (10, 32):
                        figures.pool.setdefault(size, []).append(await pool_case(db, max_size=size))
        finally:
            stop_embedded(data)  # also when a run fails: no server outlives the benchmark
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    text = report(figures, sizes, repeat=repeat, load=(load_before, load_after))
    created = f"; databases created with {database_options}" if database_options else ""
    return figures, f"PostgreSQL shared_buffers: {buffers}{created}\n\n{text}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20k and 100k devices, once"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--no-pool", action="store_true", help="skip the 32-source pool case")
    logs = parser.add_mutually_exclusive_group()
    logs.add_argument("--no-change-log", action="store_true", help="skip the change-log case")
    logs.add_argument("--only-change-log", action="store_true", help="run only that case")
    parser.add_argument("--summary", type=Path, help="also write the headline figures as JSON")
    parser.add_argument(
        "--shared-buffers", help="run PostgreSQL with this shared_buffers (e.g. 1GB)"
    )
    parser.add_argument(
        "--database-options",
        default="",
        help="appended to each CREATE DATABASE, e.g. \"LOCALE 'en_US.utf8' TEMPLATE template0\" "
        "(the OS must have the locale) or \"LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8' "
        'TEMPLATE template0"',
    )
    arguments = parser.parse_args()
    which = "skip" if arguments.no_change_log else "only" if arguments.only_change_log else "both"
    if arguments.quick:
        chosen, repeat = [20_000, 100_000], 1
    else:
        chosen, repeat = [int(s) for s in arguments.sizes.split(",") if s], arguments.repeat
    measured, text = asyncio.run(
        main(
            chosen,
            repeat,
            pools=not arguments.no_pool,
            change_log=which,
            shared_buffers=arguments.shared_buffers,
            database_options=arguments.database_options,
        )
    )
    print(text)
    record(text, " ".join(["bench/merge.py", *sys.argv[1:]]))
    if arguments.summary is not None:
        arguments.summary.write_text(json.dumps(summary(measured, chosen), indent=2))
