"""Rate-limit windows shared through PostgreSQL between processes drawing on one budget (store layer).

Each process saves, per budget key, in how many seconds the slots its own requests took free
again; another process loads the others' and holds those slots before its first request, so a
CLI run right after the operator's (or a replica taking over) meets no 429. Times are turned
into timestamps by the database's clock on the way in and back into seconds on the way out:
no two hosts' clocks need agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg


async def save(
    connection: asyncpg.Connection, *, writer: str, windows: Mapping[str, Sequence[float]]
) -> None:
    """Store `writer`'s held slots (seconds from now, per budget key), replacing what it saved
    before; rows whose every slot has freed are deleted, whoever wrote them."""
    async with connection.transaction():
        await connection.execute("DELETE FROM upstream_rate_windows WHERE held_until <= now()")
        await connection.executemany(
            """INSERT INTO upstream_rate_windows (budget_key, writer, frees_at, held_until)
               SELECT $1, $2, array_agg(now() + make_interval(secs => s) ORDER BY s),
                      now() + make_interval(secs => max(s))
               FROM unnest($3::float8[]) AS s
               HAVING count(*) > 0
               ON CONFLICT (budget_key, writer) DO UPDATE
               SET frees_at = excluded.frees_at, held_until = excluded.held_until,
                   saved_at = now()""",
            [(key, writer, list(frees_in)) for key, frees_in in windows.items() if frees_in],
        )


async def load_others(connection: asyncpg.Connection, *, writer: str) -> dict[str, list[float]]:
    """Every other writer's slots still held, in seconds from now, per budget key."""
    rows = await connection.fetch(
        """SELECT w.budget_key,
                  array_agg(extract(epoch FROM f - now())::float8) AS frees_in
           FROM upstream_rate_windows AS w, unnest(w.frees_at) AS f
           WHERE w.writer <> $1 AND w.held_until > now() AND f > now()
           GROUP BY w.budget_key""",
        writer,
    )
    return {row["budget_key"]: list(row["frees_in"]) for row in rows}
