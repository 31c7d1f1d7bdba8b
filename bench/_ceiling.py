"""The raw database ceiling: the same rows written, and the same SQL read, with no FHIR logic.

Everything FHIR (reference resolution, ``stamp``, ``extract_index``, the search compiler, the
``$everything`` reference walk) runs once, offline, in the ``prepare_*`` functions; the timed
loops only send prepared statements and arguments to the database. PostgreSQL is driven
through the server's own asyncpg pool (``PostgresResourceStore.connect``: same session settings,
statement cache and reset on release) with the server's pool size, SQLite through ``sqlite3`` with the server's
pragmas, one process per server worker for reads and a single writer for writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from _load import Measure, measure_from_latencies

from hygie.fhir.indexing import extract_index
from hygie.fhir.resources import new_id, stamp
from hygie.fhir.search import parse_search
from hygie.stores import sql
from hygie.stores.postgres import _INSERTS, PostgresResourceStore
from hygie.stores.sqlite import _connect

RESOURCE_COLUMNS = sql.RESOURCE_COLUMNS

PG_INSERT_RESOURCES = (
    "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, patient, content) "
    "SELECT t, i, 1, u, FALSE, p, c FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], "
    "$5::bytea[]) AS x(t, i, u, p, c) ON CONFLICT (res_type, res_id) DO NOTHING RETURNING rid, res_type, res_id"
)
PG_INSERT_HISTORY = (
    "INSERT INTO history (rid, res_type, res_id, version, last_updated, deleted, method, patient, content) "
    "SELECT r, t, i, 1, u, FALSE, m, p, c FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], "
    "$5::text[], $6::text[], $7::bytea[]) AS x(r, t, i, u, m, p, c)"
)


# -- prepared writes ------------------------------------------------------------------------------


@dataclass
class PreparedWrite:
    """One transaction's new resources, as column arrays, and their index rows by table:
    (position of the resource in the arrays, rows without the rid)."""

    types: list[str]
    ids: list[str]
    ts: list[int]
    patients: list[str | None]
    contents: list[bytes]
    index: dict[str, tuple[list[int], list[tuple[Any, ...]]]]

    @property
    def size(self) -> int:
        return len(self.ids)


def _rewrite(node: Any, local: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (local.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, local))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, local) for v in node]
    return node


def _prepared(resources: Sequence[dict[str, Any]], ts: int) -> PreparedWrite:
    w = PreparedWrite([], [], [], [], [], {})
    for pos, resource in enumerate(resources):
        rtype, rid = resource["resourceType"], resource["id"]
        index = extract_index(resource)
        w.types.append(rtype)
        w.ids.append(rid)
        w.ts.append(ts)
        w.patients.append(index.compartments[0] if index.compartments else None)
        w.contents.append(stamp(resource, rid, 1, ts))
        for table, rows in sql.index_rows(0, rtype, index).items():
            positions, kept = w.index.setdefault(table, ([], []))
            for row in rows:
                positions.append(pos)
                kept.append(row[1:])
    return w


def prepare_bundle(body: bytes) -> PreparedWrite:
    """A transaction Bundle as the server would write it: fresh ids, ``urn:uuid`` references
    rewritten to ``Type/id``, stamped content and index rows."""
    data = orjson.loads(body)
    entries = [e for e in data.get("entry", []) if "resource" in e]
    ids = [new_id() for _ in entries]
    local = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{i}"
        for e, i in zip(entries, ids, strict=True)
        if "fullUrl" in e
    }
    resources = [{**_rewrite(e["resource"], local), "id": i} for e, i in zip(entries, ids, strict=True)]
    return _prepared(resources, time.time_ns() // 1000)


def prepare_creates(template: dict[str, Any], count: int) -> list[PreparedWrite]:
    ts = time.time_ns() // 1000
    return [_prepared([{**template, "id": new_id()}], ts) for _ in range(count)]


# -- PostgreSQL loops -------------------------------------------------------------------------------


async def _pg_write(conn: asyncpg.Connection, w: PreparedWrite) -> None:
    async with conn.transaction():
        rows = await conn.fetch(PG_INSERT_RESOURCES, w.types, w.ids, w.ts, w.patients, w.contents)
        rid_of = {(r[1], r[2]): r[0] for r in rows}
        rids = [rid_of[k] for k in zip(w.types, w.ids, strict=True)]
        await conn.execute(
            PG_INSERT_HISTORY, rids, w.types, w.ids, w.ts, ["POST"] * w.size, w.patients, w.contents
        )
        for table, (positions, index_rows) in w.index.items():
            columns = [list(c) for c in zip(*index_rows, strict=True)]
            await conn.execute(_INSERTS[table], [rids[p] for p in positions], *columns)


async def _pg_loop(
    url: str,
    pool_size: int,
    concurrency: int,
    seconds: float,
    max_ops: int,
    op: Callable[[asyncpg.Pool, int], Awaitable[int]],
) -> Measure:
    # the server's own pool: same session settings (plan_cache_mode…), statement cache and reset
    store = await PostgresResourceStore.connect(url, min_size=pool_size, max_size=pool_size)
    pool = store.pool
    latencies: list[float] = []
    units = [0]
    errors = [0]
    counter = [0]
    try:
        start = time.perf_counter()
        deadline = start + seconds

        async def task() -> None:
            while time.perf_counter() < deadline and counter[0] < max_ops:
                i = counter[0]
                counter[0] += 1
                t0 = time.perf_counter()
                try:
                    n = await op(pool, i)  # not `units[0] += await …`: that reads units[0] first
                except (asyncpg.PostgresError, OSError):
                    errors[0] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                units[0] += n

        await asyncio.gather(*(task() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    finally:
        await pool.close()
    return measure_from_latencies(latencies, elapsed, errors[0], units[0], concurrency)


def pg_writes(
    url: str, writes: list[PreparedWrite], *, pool_size: int, concurrency: int, seconds: float
) -> Measure:
    async def op(pool: asyncpg.Pool, i: int) -> int:
        w = writes[i]
        async with pool.acquire() as conn:
            await _pg_write(conn, w)
        return w.size

    return _run(_pg_loop(url, pool_size, concurrency, seconds, len(writes), op))


def _run(coro: Awaitable[Measure]) -> Measure:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415

        return uvloop.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


def pg_reads(
    url: str, keys: list[tuple[str, str]], *, pool_size: int, concurrency: int, seconds: float, max_ops: int
) -> Measure:
    text = f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = $1 AND res_id = $2"

    async def op(pool: asyncpg.Pool, i: int) -> int:
        t, rid = keys[(i * 7919) % len(keys)]
        await pool.fetchrow(text, t, rid)
        return 1

    return _run(_pg_loop(url, pool_size, concurrency, seconds, max_ops, op))


@dataclass
class PreparedSearch:
    text: str
    args: list[Any]
    count: int  # the page size: more rows than this also runs the snapshot query


def prepare_searches(
    dialect: str, params: list[list[tuple[str, str]]], resource_type: str
) -> list[PreparedSearch]:
    """The SQL the search compiler produces for each query (as the server compiles it)."""
    now = time.time_ns() // 1000
    out = []
    for p in params:
        query = parse_search(resource_type, p)
        text, args, _ = sql.compile_search(dialect, query, None, query.count + 1, now)
        out.append(PreparedSearch(text, args, query.count))
    return out


def prepare_lastn(dialect: str, params: list[list[tuple[str, str]]]) -> list[PreparedSearch]:
    """The one statement of ``Observation/$lastn`` for each query (``max`` among the params),
    as ``fhir/operations/lastn.py`` has the store compile it."""
    from hygie.fhir.operations.lastn import GROUP_PARAM, ORDER_PARAM, lastn_query  # noqa: PLC0415

    now = time.time_ns() // 1000
    out = []
    for p in params:
        query, per_code = lastn_query(p, max_count=1000)
        text, args = sql.compile_lastn(dialect, query, GROUP_PARAM, ORDER_PARAM, per_code, now)
        out.append(PreparedSearch(text, args, 1_000_000))  # no paging: never the snapshot query
    return out


def pg_searches(
    url: str,
    searches: list[PreparedSearch],
    *,
    pool_size: int,
    concurrency: int,
    seconds: float,
    max_ops: int,
) -> Measure:
    async def op(pool: asyncpg.Pool, i: int) -> int:
        s = searches[(i * 7919) % len(searches)]
        rows = await pool.fetch(s.text, *s.args)
        if len(rows) > s.count:
            await pool.fetchval("SELECT COALESCE(MAX(rid), 0) FROM resources")
        return 1

    return _run(_pg_loop(url, pool_size, concurrency, seconds, max_ops, op))


@dataclass
class PreparedEverything:
    """The statements of one ``Patient/$everything`` page: read the Patient, the compartment
    page, then the referenced resources outside the compartment (found offline)."""

    patient_id: str
    compartment_text: str
    compartment_args: list[Any]
    outside: list[tuple[str, str]]


def _compartment(dialect: str, patient_id: str, page: int) -> tuple[str, list[Any]]:
    p = sql.Params(dialect)
    text = sql.compile_compartment(p, patient_id, None, None, 0, page + 1)
    return text, p.args


async def _pg_prepare_everything(url: str, patient_id: str, page: int) -> PreparedEverything:
    text, args = _compartment("postgresql", patient_id, page)
    conn = await asyncpg.connect(url)
    try:
        rows = (await conn.fetch(text, *args))[:page]
    finally:
        await conn.close()
    return _everything_from_rows("postgresql", patient_id, page, [(r[1], r[2], bytes(r[6])) for r in rows])


def _references(node: Any, out: set[tuple[str, str]]) -> None:
    """Literal ``Type/id`` references in a resource (what ``$everything`` reads outside the
    compartment; the server finds them through ``idx_reference`` since 6cbc17d, offline here)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
            t, _, i = ref.partition("/")
            out.add((t, i))
        for v in node.values():
            if isinstance(v, dict | list):
                _references(v, out)
    elif isinstance(node, list):
        for v in node:
            _references(v, out)


def _everything_from_rows(
    dialect: str, patient_id: str, page: int, rows: list[tuple[str, str, bytes]]
) -> PreparedEverything:
    members = {(t, i) for t, i, _ in rows}
    referenced: set[tuple[str, str]] = set()
    for _, _, content in rows:
        _references(orjson.loads(content), referenced)
    text, args = _compartment(dialect, patient_id, page)
    return PreparedEverything(patient_id, text, args, sorted(referenced - members))


def pg_prepare_everything(url: str, patient_id: str, page: int) -> PreparedEverything:
    return asyncio.run(_pg_prepare_everything(url, patient_id, page))


def pg_everything(
    url: str, e: PreparedEverything, *, pool_size: int, concurrency: int, seconds: float, max_ops: int
) -> Measure:
    read = f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = $1 AND res_id = $2"
    many = (
        f"SELECT {', '.join('r.' + c for c in RESOURCE_COLUMNS.split(', '))} FROM resources r "
        "JOIN unnest($1::text[], $2::text[]) AS k(t, i) ON r.res_type = k.t AND r.res_id = k.i "
        "WHERE r.deleted = FALSE"
    )
    types = [k[0] for k in e.outside]
    ids = [k[1] for k in e.outside]

    async def op(pool: asyncpg.Pool, i: int) -> int:
        await pool.fetchrow(read, "Patient", e.patient_id)
        await pool.fetch(e.compartment_text, *e.compartment_args)
        if ids:
            await pool.fetch(many, types, ids)
        return 1

    return _run(_pg_loop(url, pool_size, concurrency, seconds, max_ops, op))


# -- SQLite loops ----------------------------------------------------------------------------------


def _sqlite_write(conn: sqlite3.Connection, w: PreparedWrite) -> None:
    """The statements of ``stores.sqlite.write_version`` for each new resource, in one transaction."""
    by_pos: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
    for table, (positions, index_rows) in w.index.items():
        for pos, row in zip(positions, index_rows, strict=True):
            by_pos.setdefault(pos, []).append((table, row))
    conn.execute("BEGIN IMMEDIATE")
    try:
        for pos in range(w.size):
            t, i, ts, pat, content = w.types[pos], w.ids[pos], w.ts[pos], w.patients[pos], w.contents[pos]
            conn.execute(
                "SELECT rid, version FROM resources WHERE res_type = ? AND res_id = ?", (t, i)
            ).fetchone()
            cur = conn.execute(
                "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, patient, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (t, i, 1, ts, False, pat, content),
            )
            rid = cur.lastrowid
            conn.execute(
                "INSERT INTO history (rid, res_type, res_id, version, last_updated, deleted, method, patient, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, t, i, 1, ts, False, "POST", pat, content),
            )
            tables: dict[str, list[tuple[Any, ...]]] = {}
            for table, row in by_pos.get(pos, []):
                tables.setdefault(table, []).append((rid, *row))
            for table, rows in tables.items():
                cols = ("rid", "res_type", *sql.INDEX_TABLES[table])
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows
                )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def sqlite_writes(path: str, writes: list[PreparedWrite], *, seconds: float) -> Measure:
    """One writer (SQLite has one): the server's writes are serialised the same way."""
    conn = _connect(path)
    latencies: list[float] = []
    units = 0
    start = time.perf_counter()
    deadline = start + seconds
    for w in writes:
        if time.perf_counter() >= deadline:
            break
        t0 = time.perf_counter()
        _sqlite_write(conn, w)
        latencies.append(time.perf_counter() - t0)
        units += w.size
    elapsed = time.perf_counter() - start
    conn.close()
    return measure_from_latencies(latencies, elapsed, 0, units, 1)


def _sqlite_read_worker(
    path: str, kind: str, payload: Any, seconds: float, max_ops: int, seed: int
) -> tuple[list[float], int, float]:
    conn = _connect(path)
    read = f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = ? AND res_id = ?"
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    i = seed
    while time.perf_counter() < deadline and len(latencies) < max_ops:
        t0 = time.perf_counter()
        if kind == "read":
            key = payload[(i * 7919) % len(payload)]
            conn.execute(read, key).fetchone()
        elif kind == "search":
            text, args, count = payload[(i * 7919) % len(payload)]
            rows = conn.execute(text, args).fetchall()
            if len(rows) > count:
                conn.execute("SELECT MAX(rid) FROM resources").fetchone()
        else:  # everything
            patient_id, text, args, outside = payload
            conn.execute(read, ("Patient", patient_id)).fetchone()
            conn.execute(text, args).fetchall()
            _sqlite_read_many(conn, outside)
        latencies.append(time.perf_counter() - t0)
        i += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return latencies, 0, elapsed


def _sqlite_read_many(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> None:
    by_type: dict[str, list[str]] = {}
    for t, i in keys:
        by_type.setdefault(t, []).append(i)
    for t, ids in by_type.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            conn.execute(
                f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = ? AND deleted = 0 "
                f"AND res_id IN ({', '.join('?' * len(chunk))})",
                (t, *chunk),
            ).fetchall()


def sqlite_reads(
    path: str, kind: str, payload: Any, *, processes: int, seconds: float, max_ops: int
) -> Measure:
    """``processes`` readers (one per server worker: a worker runs its SQLite calls one at a time
    on its event loop), each a tight loop of the same statements."""
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=ctx) as ex:
        futures = [
            ex.submit(_sqlite_read_worker, path, kind, payload, seconds, max_ops // processes, n * 104729)
            for n in range(processes)
        ]
        results = [f.result() for f in futures]
    latencies = [x for r in results for x in r[0]]
    elapsed = max(r[2] for r in results)
    return measure_from_latencies(latencies, elapsed, 0, len(latencies), processes)


def sqlite_prepare_everything(path: str, patient_id: str, page: int) -> PreparedEverything:
    text, args = _compartment("sqlite", patient_id, page)
    conn = _connect(path)
    rows = conn.execute(text, args).fetchall()[:page]
    conn.close()
    return _everything_from_rows("sqlite", patient_id, page, [(r[1], r[2], bytes(r[6])) for r in rows])
