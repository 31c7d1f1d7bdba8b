"""The production resource store: PostgreSQL through asyncpg.

Same schema and search compiler as SQLite (``stores/sql.py``). Writes lock the current row
(``SELECT … FOR UPDATE``) so that two concurrent updates of one resource serialise: the second
sees the new version and fails its ``If-Match`` (412), or the insert race of two creates with the
same id fails on the unique key (409). Index rows are inserted with one ``unnest`` statement per
table, so a resource costs a handful of round trips whatever its size.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from hygie.fhir.outcome import Conflict
from hygie.fhir.search import SearchQuery
from hygie.ports import HistoryPage, ResourceKey, SearchPage, StoredResource, StoreTransaction, WriteOp
from hygie.stores import sql
from hygie.stores.sql import RESOURCE_COLUMNS, Params

__all__ = ["PostgresResourceStore"]

_DIALECT = "postgresql"

_ARRAY_TYPES: dict[str, tuple[str, ...]] = {
    "idx_token": ("bigint", "text", "text", "text", "text", "text"),
    "idx_string": ("bigint", "text", "text", "text", "text"),
    "idx_date": ("bigint", "text", "text", "bigint", "bigint"),
    "idx_reference": ("bigint", "text", "text", "text", "text", "text"),
    "idx_quantity": ("bigint", "text", "text", "float8", "text", "text", "text", "float8", "text"),
    "idx_number": ("bigint", "text", "text", "float8"),
    "idx_uri": ("bigint", "text", "text", "text"),
    "idx_relation": ("bigint", "text", "text", "text", "text", "text", "bigint"),
    "idx_geo": ("bigint", "text", "text", "float8", "float8", "float8", "float8", "float8"),
    "idx_composite": (
        "bigint",
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "float8",
        "bigint",
        "bigint",
        "text",
    ),
}


def _insert_sql(table: str) -> str:
    cols = ("rid", "res_type", *sql.INDEX_TABLES[table])
    types = _ARRAY_TYPES[table]
    args = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    return f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM unnest({args})"


_INSERTS = {table: _insert_sql(table) for table in sql.INDEX_TABLES}


_DELETE_INDEX_ROWS = (
    "WITH "
    + ", ".join(
        f"d{i} AS (DELETE FROM {table} WHERE rid = $1)" for i, table in enumerate(list(sql.INDEX_TABLES)[1:])
    )
    + f" DELETE FROM {next(iter(sql.INDEX_TABLES))} WHERE rid = $1"
)


def _row(r: Sequence[Any]) -> StoredResource:
    return sql.stored_from_row(r)


class _PgTransaction:
    """One PostgreSQL transaction. New resources (version 1) are buffered and written in bulk —
    one statement per table for the whole batch — before any read in the transaction and
    before commit; updates and deletes are written at once."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.pending: dict[tuple[str, str], WriteOp] = {}

    async def read_for_update(self, resource_type: str, id: str) -> StoredResource | None:
        await self.flush()
        row = await self.conn.fetchrow(
            f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE",
            resource_type,
            id,
        )
        return _row(row) if row else None

    async def write(self, op: WriteOp) -> None:
        if op.version == 1 and not op.deleted:
            key = (op.resource_type, op.id)
            if key in self.pending:
                raise Conflict(f"{op.resource_type}/{op.id} is written twice in one transaction")
            self.pending[key] = op
            return
        await self.flush()
        await self._write_one(op)

    async def flush(self) -> None:
        """Insert the buffered new resources, their history rows and index rows in bulk."""
        if not self.pending:
            return
        ops = list(self.pending.values())
        self.pending = {}
        conn = self.conn
        rows = await conn.fetch(
            "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, patient, content) "
            "SELECT t, i, 1, u, FALSE, p, c FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], "
            "$5::bytea[]) AS x(t, i, u, p, c) ON CONFLICT (res_type, res_id) DO NOTHING RETURNING rid, res_type, res_id",
            [o.resource_type for o in ops],
            [o.id for o in ops],
            [o.last_updated for o in ops],
            [o.patient for o in ops],
            [o.content for o in ops],
        )
        if len(rows) != len(ops):
            created = {(r[1], r[2]) for r in rows}
            clash = next(o for o in ops if (o.resource_type, o.id) not in created)
            raise Conflict(f"{clash.resource_type}/{clash.id} already exists (created concurrently)")
        rid_of = {(r[1], r[2]): r[0] for r in rows}
        rids = [rid_of[(o.resource_type, o.id)] for o in ops]
        await conn.execute(
            "INSERT INTO history (rid, res_type, res_id, version, last_updated, deleted, method, patient, content) "
            "SELECT r, t, i, 1, u, FALSE, m, p, c FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], "
            "$5::text[], $6::text[], $7::bytea[]) AS x(r, t, i, u, m, p, c)",
            rids,
            [o.resource_type for o in ops],
            [o.id for o in ops],
            [o.last_updated for o in ops],
            [o.method for o in ops],
            [o.patient for o in ops],
            [o.content for o in ops],
        )
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for rid, op in zip(rids, ops, strict=True):
            if op.index is None:
                continue
            for table, index_rows in sql.index_rows(rid, op.resource_type, op.index).items():
                tables.setdefault(table, []).extend(index_rows)
        for table, index_rows in tables.items():
            columns = [list(col) for col in zip(*index_rows, strict=True)]
            await conn.execute(_INSERTS[table], *columns)

    async def _write_one(self, op: WriteOp) -> None:
        conn = self.conn
        existing = await conn.fetchrow(
            "SELECT rid, version FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE",
            op.resource_type,
            op.id,
        )
        if existing is not None:
            rid, version = existing
            if version != op.version - 1:
                raise Conflict(
                    f"{op.resource_type}/{op.id} changed concurrently (version {version} is current)"
                )
            await conn.execute(
                "UPDATE resources SET version = $1, last_updated = $2, deleted = $3, patient = $4, content = $5 "
                "WHERE rid = $6",
                op.version,
                op.last_updated,
                op.deleted,
                op.patient,
                op.content,
                rid,
            )
            await conn.execute(
                "WITH a AS (DELETE FROM idx_token WHERE rid = $1), b AS (DELETE FROM idx_string WHERE rid = $1), "
                "c AS (DELETE FROM idx_date WHERE rid = $1), d AS (DELETE FROM idx_reference WHERE rid = $1), "
                "e AS (DELETE FROM idx_quantity WHERE rid = $1), f AS (DELETE FROM idx_number WHERE rid = $1), "
                "g AS (DELETE FROM idx_uri WHERE rid = $1), h AS (DELETE FROM idx_relation WHERE rid = $1), "
                "i AS (DELETE FROM idx_geo WHERE rid = $1) "
                "DELETE FROM idx_composite WHERE rid = $1",
                rid,
            )
        else:
            if op.version != 1:
                raise Conflict(f"{op.resource_type}/{op.id} does not exist at version {op.version - 1}")
            rid = await conn.fetchval(
                "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, patient, content) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (res_type, res_id) DO NOTHING RETURNING rid",
                op.resource_type,
                op.id,
                op.version,
                op.last_updated,
                op.deleted,
                op.patient,
                op.content,
            )
            if rid is None:
                raise Conflict(f"{op.resource_type}/{op.id} was created concurrently")
        await conn.execute(
            f"INSERT INTO history ({sql.HISTORY_INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            *sql.history_values(rid, op),
        )
        if op.index is not None and not op.deleted:
            for table, rows in sql.index_rows(rid, op.resource_type, op.index).items():
                columns = [list(col) for col in zip(*rows, strict=True)]
                await conn.execute(_INSERTS[table], *columns)

    async def expunge(self, resource_type: str, id: str) -> list[StoredResource]:
        """Erase a resource, its versions and its index rows (the current row locked first)."""
        await self.flush()
        conn = self.conn
        rid = await conn.fetchval(
            "SELECT rid FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE", resource_type, id
        )
        versions = await conn.fetch(
            f"SELECT {sql.EXPUNGE_HISTORY_COLUMNS} FROM history WHERE res_type = $1 AND res_id = $2 "
            "ORDER BY version",
            resource_type,
            id,
        )
        if rid is not None:
            await conn.execute(_DELETE_INDEX_ROWS, rid)
            await conn.execute("DELETE FROM resources WHERE rid = $1", rid)
        await conn.execute("DELETE FROM history WHERE res_type = $1 AND res_id = $2", resource_type, id)
        return sql.expunged_versions(versions)

    async def naming(self, resource_type: str, texts: Sequence[str]) -> set[str]:
        """The ``texts`` found in some stored version (history holds every version)."""
        await self.flush()
        found = set()
        for text in set(texts):
            if await self.conn.fetchval(
                "SELECT 1 FROM history WHERE res_type = $1 AND position($2::bytea in content) > 0 LIMIT 1",
                resource_type,
                text.encode(),
            ):
                found.add(text)
        return found

    async def search_keys(self, query: SearchQuery, limit: int) -> list[ResourceKey]:
        await self.flush()
        p = Params(_DIALECT)
        where = sql._where(p, query, "r", time.time_ns() // 1000)
        rows = await self.conn.fetch(
            f"SELECT r.res_type, r.res_id FROM resources r WHERE {where} LIMIT {int(limit)}", *p.args
        )
        return [(r[0], r[1]) for r in rows]


async def _keep_session(_: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to reset (transactions are closed by their context managers)."""


class PostgresResourceStore:
    """ResourceStore on a PostgreSQL database (asyncpg connection pool)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 10) -> PostgresResourceStore:
        dsn = url.replace("postgresql+psycopg://", "postgresql://").replace(
            "postgresql+asyncpg://", "postgresql://"
        )
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            statement_cache_size=512,
            # search SQL is prepared once and run with very different values (one patient's
            # references vs. every vital sign): a generic plan chosen after five runs can be
            # thousands of times slower, so plan each execution for its values
            server_settings={"plan_cache_mode": "force_custom_plan"},
            # no RESET ALL round trip on every release: Hygie sets no session state
            reset=_keep_session,
        )
        assert pool is not None
        return cls(pool)

    async def create_schema(self) -> None:
        async with self.pool.acquire() as conn:
            for stmt in [
                *sql.schema_statements(_DIALECT),
                *sql.relation_schema_statements(_DIALECT),
                *sql.geo_schema_statements(_DIALECT),
                *sql.purge_schema_statements(),
            ]:
                await conn.execute(stmt)

    async def read(self, resource_type: str, id: str) -> StoredResource | None:
        row = await self.pool.fetchrow(
            f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = $1 AND res_id = $2", resource_type, id
        )
        return _row(row) if row else None

    async def vread(self, resource_type: str, id: str, version: int) -> StoredResource | None:
        row = await self.pool.fetchrow(
            f"SELECT {RESOURCE_COLUMNS}, method FROM history WHERE res_type = $1 AND res_id = $2 AND version = $3",
            resource_type,
            id,
            version,
        )
        if row is None:
            return None
        return StoredResource(
            row[1], row[2], row[3], row[4], bool(row[5]), bytes(row[6]), row[0], row[8], patient=row[7]
        )

    async def read_many(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        if not keys:
            return []
        types = [k[0] for k in keys]
        ids = [k[1] for k in keys]
        rows = await self.pool.fetch(
            f"SELECT {', '.join('r.' + c for c in RESOURCE_COLUMNS.split(', '))} FROM resources r "
            "JOIN unnest($1::text[], $2::text[]) AS k(t, i) ON r.res_type = k.t AND r.res_id = k.i "
            "WHERE r.deleted = FALSE",
            types,
            ids,
        )
        return [_row(r) for r in rows]

    async def _snapshot(self) -> int:
        return int(await self.pool.fetchval("SELECT COALESCE(MAX(rid), 0) FROM resources"))

    async def search(self, query: SearchQuery, *, now_us: int) -> SearchPage:
        cursor = sql.decode_cursor(query.cursor) if query.cursor else None
        text, args, nkeys = sql.compile_search(_DIALECT, query, cursor, query.count + 1, now_us)
        rows = await self.pool.fetch(text, *args)
        snapshot = 0
        if len(rows) > query.count and cursor is None:
            snapshot = await self._snapshot()
        return sql.page_from_rows(rows, query, cursor, nkeys, lambda: snapshot, _row)

    async def count(self, query: SearchQuery, *, now_us: int) -> int:
        cursor = sql.decode_cursor(query.cursor) if query.cursor else None
        text, args = sql.compile_count(_DIALECT, query, cursor.snapshot if cursor else None, now_us)
        return int(await self.pool.fetchval(text, *args))

    async def lastn(
        self, query: SearchQuery, *, group: str, by: str, per_group: int, now_us: int
    ) -> list[StoredResource]:
        text, args = sql.compile_lastn(_DIALECT, query, group, by, per_group, now_us)
        return [_row(r) for r in await self.pool.fetch(text, *args)]

    async def references_from(
        self, rids: Sequence[int], source_type: str, param: str, target_type: str | None
    ) -> list[ResourceKey]:
        if not rids:
            return []
        text = (
            "SELECT DISTINCT target_type, target_id FROM idx_reference WHERE rid = ANY($1::bigint[]) "
            "AND res_type = $2 AND param = $3 AND target_id IS NOT NULL AND target_type IS NOT NULL"
        )
        args: list[Any] = [list(rids), source_type, param]
        if target_type:
            text += " AND target_type = $4"
            args.append(target_type)
        return [(r[0], r[1]) for r in await self.pool.fetch(text, *args)]

    async def targets_of(self, rids: Sequence[int]) -> list[ResourceKey]:
        if not rids:
            return []
        rows = await self.pool.fetch(
            "SELECT DISTINCT target_type, target_id FROM idx_reference WHERE rid = ANY($1::bigint[]) "
            "AND target_type IS NOT NULL AND target_id IS NOT NULL",
            list(rids),
        )
        return [(r[0], r[1]) for r in rows]

    async def referencing(
        self, keys: Sequence[ResourceKey], source_type: str, param: str, limit: int
    ) -> list[StoredResource]:
        if not keys:
            return []
        rows = await self.pool.fetch(
            "SELECT DISTINCT r.rid, r.res_type, r.res_id, r.version, r.last_updated, r.deleted, r.content, r.patient "
            "FROM idx_reference x JOIN unnest($1::text[], $2::text[]) AS k(t, i) "
            "ON x.target_type = k.t AND x.target_id = k.i JOIN resources r ON r.rid = x.rid "
            f"WHERE x.res_type = $3 AND x.param = $4 AND r.deleted = FALSE ORDER BY r.rid LIMIT {int(limit)}",
            [k[0] for k in keys],
            [k[1] for k in keys],
            source_type,
            param,
        )
        return [_row(r) for r in rows]

    async def compartment(
        self, patient_id: str, types: Sequence[str] | None, since_us: int | None, after_rid: int, limit: int
    ) -> list[StoredResource]:
        p = Params(_DIALECT)
        text = sql.compile_compartment(p, patient_id, types, since_us, after_rid, limit)
        return [_row(r) for r in await self.pool.fetch(text, *p.args)]

    async def filed_in(self, patient_id: str) -> list[StoredResource]:
        p = Params(_DIALECT)
        return [_row(r) for r in await self.pool.fetch(sql.compile_filed_in(p, patient_id), *p.args)]

    async def referrers(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        out: dict[int, StoredResource] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 200):
            p = Params(_DIALECT)
            text = sql.compile_referrers(p, unique[start : start + 200])
            out.update((r[0], _row(r)) for r in await self.pool.fetch(text, *p.args))
        return [out[rid] for rid in sorted(out)]

    async def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since_us: int | None,
        count: int,
        cursor: str | None,
    ) -> HistoryPage:
        p = Params(_DIALECT)
        text = sql.compile_history(p, resource_type, id, since_us, count + 1, cursor)
        rows = await self.pool.fetch(text, *p.args)
        return sql.history_page(rows, count, cursor)

    async def relations(
        self, patient: str, actors: Sequence[str], *, now_us: int
    ) -> list[tuple[str, str | None, int | None]]:
        p = Params(_DIALECT)
        text = sql.compile_relations(p, patient, actors, now_us)
        return [(r[0], r[1], r[2]) for r in await self.pool.fetch(text, *p.args)]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self.pool.acquire() as conn, conn.transaction():
            tx = _PgTransaction(conn)
            yield tx
            await tx.flush()

    async def close(self) -> None:
        await self.pool.close()
