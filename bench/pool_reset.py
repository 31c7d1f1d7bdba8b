"""Side experiment: reads by id through an asyncpg pool with its default reset on release (an extra
``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` round trip per release) and
with a no-op reset. Usage: ``.venv/bin/python bench/pool_reset.py postgresql://…/bench_pg_large``.
Each variant runs twice for ``--seconds`` (8) at 64 concurrent tasks on a pool of 10."""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg

TEXT = (
    "SELECT rid, res_type, res_id, version, last_updated, deleted, content FROM resources "
    "WHERE res_type = $1 AND res_id = $2"
)


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def _run(url: str, keys: list[tuple[str, str]], reset: str, seconds: float, conc: int) -> None:
    kw = {"reset": _no_reset} if reset == "no-op" else {}
    pool = await asyncpg.create_pool(url, min_size=10, max_size=10, statement_cache_size=512, **kw)
    assert pool is not None
    counter = [0]
    lat: list[float] = []
    end = time.perf_counter() + seconds

    async def task() -> None:
        while time.perf_counter() < end:
            key = keys[(counter[0] * 7919) % len(keys)]
            counter[0] += 1
            t = time.perf_counter()
            await pool.fetchrow(TEXT, *key)
            lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(conc)))
    elapsed = time.perf_counter() - start
    await pool.close()
    lat.sort()
    print(
        f"reset={reset}: {len(lat) / elapsed:,.0f} reads/s, p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=8)
    args = ap.parse_args()
    conn = await asyncpg.connect(args.url)
    rows = await conn.fetch("SELECT res_id FROM resources WHERE res_type = 'Observation' LIMIT 50000")
    await conn.close()
    keys = [("Observation", r[0]) for r in rows]
    for reset in ("default", "no-op", "default", "no-op"):
        await _run(args.url, keys, reset, args.seconds, 64)


if __name__ == "__main__":
    asyncio.run(main())
