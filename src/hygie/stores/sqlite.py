"""The embedded resource store: SQLite in WAL mode (the default of ``hygie demo``).

Two connections per process: a writer, used by one transaction at a time (an asyncio lock plus
``BEGIN IMMEDIATE`` across processes), and a reader in autocommit mode that always sees the last
committed state. SQLite calls are short and run on the event loop thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from hygie.fhir.outcome import Conflict
from hygie.fhir.search import SearchQuery
from hygie.ports import HistoryPage, ResourceKey, SearchPage, StoredResource, StoreTransaction, WriteOp
from hygie.stores import sql
from hygie.stores.sql import RESOURCE_COLUMNS, Params

__all__ = ["SqliteResourceStore"]

_DIALECT = "sqlite"


def _row(r: Sequence[Any]) -> StoredResource:
    return sql.stored_from_row(r)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=512)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


class _SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def read_for_update(self, resource_type: str, id: str) -> StoredResource | None:
        row = self.conn.execute(
            f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = ? AND res_id = ?", (resource_type, id)
        ).fetchone()
        return _row(row) if row else None

    async def write(self, op: WriteOp) -> None:
        write_version(self.conn, op)

    async def search_keys(self, query: SearchQuery, limit: int) -> list[ResourceKey]:
        return search_keys(self.conn, query, limit)

    async def expunge(self, resource_type: str, id: str) -> list[StoredResource]:
        return expunge(self.conn, resource_type, id)

    async def naming(self, resource_type: str, texts: Sequence[str]) -> set[str]:
        return naming(self.conn, resource_type, texts)


def write_version(conn: sqlite3.Connection, op: WriteOp) -> None:
    """Write one new version inside the caller's transaction."""
    cur = conn.execute(
        "SELECT rid, version FROM resources WHERE res_type = ? AND res_id = ?", (op.resource_type, op.id)
    )
    existing = cur.fetchone()
    if existing is not None:
        rid, version = existing
        if version != op.version - 1:
            raise Conflict(f"{op.resource_type}/{op.id} changed concurrently (version {version} is current)")
        conn.execute(
            "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, patient = ?, content = ? WHERE rid = ?",
            (op.version, op.last_updated, op.deleted, op.patient, op.content, rid),
        )
        for table in sql.INDEX_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE rid = ?", (rid,))
    else:
        if op.version != 1:
            raise Conflict(f"{op.resource_type}/{op.id} does not exist at version {op.version - 1}")
        cur = conn.execute(
            "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, patient, content) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (op.resource_type, op.id, op.version, op.last_updated, op.deleted, op.patient, op.content),
        )
        rid = cur.lastrowid
        assert rid is not None
    conn.execute(
        f"INSERT INTO history ({sql.HISTORY_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        sql.history_values(rid, op),
    )
    if op.index is not None and not op.deleted:
        for table, rows in sql.index_rows(rid, op.resource_type, op.index).items():
            cols = ("rid", "res_type", *sql.INDEX_TABLES[table])
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                rows,
            )


def expunge(conn: sqlite3.Connection, resource_type: str, id: str) -> list[StoredResource]:
    """Erase a resource, its versions and its index rows inside the caller's transaction."""
    versions = conn.execute(
        f"SELECT {sql.EXPUNGE_HISTORY_COLUMNS} FROM history WHERE res_type = ? AND res_id = ? ORDER BY version",
        (resource_type, id),
    ).fetchall()
    row = conn.execute(
        "SELECT rid FROM resources WHERE res_type = ? AND res_id = ?", (resource_type, id)
    ).fetchone()
    if row is not None:
        for table in sql.INDEX_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE rid = ?", (row[0],))
        conn.execute("DELETE FROM resources WHERE rid = ?", (row[0],))
    conn.execute("DELETE FROM history WHERE res_type = ? AND res_id = ?", (resource_type, id))
    return sql.expunged_versions(versions)


def naming(conn: sqlite3.Connection, resource_type: str, texts: Sequence[str]) -> set[str]:
    """The ``texts`` found in some stored version of a ``resource_type`` (history holds every
    version, the current one included)."""
    return {
        text
        for text in set(texts)
        if conn.execute(
            "SELECT 1 FROM history WHERE res_type = ? AND instr(content, ?) > 0 LIMIT 1",
            (resource_type, text.encode()),
        ).fetchone()
    }


def search_keys(conn: sqlite3.Connection, query: SearchQuery, limit: int) -> list[ResourceKey]:
    import time  # noqa: PLC0415

    p = Params(_DIALECT)
    where = sql._where(p, query, "r", int(time.time() * 1_000_000))
    rows = conn.execute(
        f"SELECT r.res_type, r.res_id FROM resources r WHERE {where} LIMIT {int(limit)}", p.args
    )
    return [(t, i) for t, i in rows.fetchall()]


class SqliteResourceStore:
    """ResourceStore on one SQLite database file (or ``:memory:`` for tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _connect(self.path)
        self._reader = self._writer if self.path == ":memory:" else _connect(self.path)
        if self.path != ":memory:":
            # gather missing statistics at start-up as SQLite recommends (bounded by analysis_limit)
            self._writer.execute("PRAGMA analysis_limit=400")
            self._writer.execute("PRAGMA optimize=0x10002")
        self._lock = asyncio.Lock()

    @property
    def writer(self) -> sqlite3.Connection:
        """The writing connection (shared by the key-value store of an in-memory database)."""
        return self._writer

    @classmethod
    def from_url(cls, url: str) -> SqliteResourceStore:
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        return cls(path or ":memory:")

    def create_schema(self) -> None:
        """Create the tables directly (tests and ``:memory:``; files use Alembic migrations)."""
        with self._writer:
            for stmt in [
                *sql.schema_statements(_DIALECT),
                *sql.relation_schema_statements(_DIALECT),
                *sql.geo_schema_statements(_DIALECT),
                *sql.purge_schema_statements(),
            ]:
                self._writer.execute(stmt)

    async def read(self, resource_type: str, id: str) -> StoredResource | None:
        row = self._reader.execute(
            f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = ? AND res_id = ?", (resource_type, id)
        ).fetchone()
        return _row(row) if row else None

    async def vread(self, resource_type: str, id: str, version: int) -> StoredResource | None:
        row = self._reader.execute(
            f"SELECT {RESOURCE_COLUMNS}, method FROM history WHERE res_type = ? AND res_id = ? AND version = ?",
            (resource_type, id, version),
        ).fetchone()
        if row is None:
            return None
        return StoredResource(
            row[1], row[2], row[3], row[4], bool(row[5]), bytes(row[6]), row[0], row[8], patient=row[7]
        )

    async def read_many(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        out: list[StoredResource] = []
        by_type: dict[str, list[str]] = {}
        for t, i in keys:
            by_type.setdefault(t, []).append(i)
        for t, ids in by_type.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = self._reader.execute(
                    f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE res_type = ? AND deleted = 0 "
                    f"AND res_id IN ({', '.join('?' * len(chunk))})",
                    (t, *chunk),
                ).fetchall()
                out.extend(_row(r) for r in rows)
        return out

    def _snapshot(self) -> int:
        row = self._reader.execute("SELECT MAX(rid) FROM resources").fetchone()
        return int(row[0] or 0)

    async def search(self, query: SearchQuery, *, now_us: int) -> SearchPage:
        cursor = sql.decode_cursor(query.cursor) if query.cursor else None
        text, args, nkeys = sql.compile_search(_DIALECT, query, cursor, query.count + 1, now_us)
        rows = self._reader.execute(text, args).fetchall()
        return sql.page_from_rows(rows, query, cursor, nkeys, self._snapshot, _row)

    async def count(self, query: SearchQuery, *, now_us: int) -> int:
        cursor = sql.decode_cursor(query.cursor) if query.cursor else None
        text, args = sql.compile_count(_DIALECT, query, cursor.snapshot if cursor else None, now_us)
        return int(self._reader.execute(text, args).fetchone()[0])

    async def lastn(
        self, query: SearchQuery, *, group: str, by: str, per_group: int, now_us: int
    ) -> list[StoredResource]:
        text, args = sql.compile_lastn(_DIALECT, query, group, by, per_group, now_us)
        return [_row(r) for r in self._reader.execute(text, args).fetchall()]

    async def references_from(
        self, rids: Sequence[int], source_type: str, param: str, target_type: str | None
    ) -> list[ResourceKey]:
        if not rids:
            return []
        p = Params(_DIALECT)
        text = (
            f"SELECT DISTINCT target_type, target_id FROM idx_reference WHERE rid IN ({sql.in_list(p, rids)}) "
            f"AND res_type = {p(source_type)} AND param = {p(param)} AND target_id IS NOT NULL"
        )
        if target_type:
            text += f" AND target_type = {p(target_type)}"
        return [(t, i) for t, i in self._reader.execute(text, p.args).fetchall() if t]

    async def targets_of(self, rids: Sequence[int]) -> list[ResourceKey]:
        if not rids:
            return []
        p = Params(_DIALECT)
        text = (
            f"SELECT DISTINCT target_type, target_id FROM idx_reference WHERE rid IN ({sql.in_list(p, rids)}) "
            "AND target_type IS NOT NULL AND target_id IS NOT NULL"
        )
        return [(t, i) for t, i in self._reader.execute(text, p.args).fetchall()]

    async def referencing(
        self, keys: Sequence[ResourceKey], source_type: str, param: str, limit: int
    ) -> list[StoredResource]:
        if not keys:
            return []
        p = Params(_DIALECT)
        ors = " OR ".join(f"(x.target_type = {p(t)} AND x.target_id = {p(i)})" for t, i in keys)
        text = (
            f"SELECT DISTINCT r.rid, r.res_type, r.res_id, r.version, r.last_updated, r.deleted, r.content, r.patient "
            f"FROM idx_reference x JOIN resources r ON r.rid = x.rid WHERE x.res_type = {p(source_type)} "
            f"AND x.param = {p(param)} AND r.deleted = 0 AND ({ors}) ORDER BY r.rid LIMIT {int(limit)}"
        )
        return [_row(r) for r in self._reader.execute(text, p.args).fetchall()]

    async def compartment(
        self, patient_id: str, types: Sequence[str] | None, since_us: int | None, after_rid: int, limit: int
    ) -> list[StoredResource]:
        p = Params(_DIALECT)
        text = sql.compile_compartment(p, patient_id, types, since_us, after_rid, limit)
        return [_row(r) for r in self._reader.execute(text, p.args).fetchall()]

    async def filed_in(self, patient_id: str) -> list[StoredResource]:
        p = Params(_DIALECT)
        return [_row(r) for r in self._reader.execute(sql.compile_filed_in(p, patient_id), p.args).fetchall()]

    async def referrers(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        out: dict[int, StoredResource] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 200):
            p = Params(_DIALECT)
            text = sql.compile_referrers(p, unique[start : start + 200])
            out.update((r[0], _row(r)) for r in self._reader.execute(text, p.args).fetchall())
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
        rows = self._reader.execute(text, p.args).fetchall()
        return sql.history_page(rows, count, cursor)

    async def relations(
        self, patient: str, actors: Sequence[str], *, now_us: int
    ) -> list[tuple[str, str | None, int | None]]:
        p = Params(_DIALECT)
        text = sql.compile_relations(p, patient, actors, now_us)
        return [(r[0], r[1], r[2]) for r in self._reader.execute(text, p.args).fetchall()]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    async def close(self) -> None:
        # refresh the planner's statistics when they are stale (bounded work: analysis_limit);
        # without them SQLite scans a whole type instead of starting from a patient's references
        if self.path != ":memory:":
            self._writer.execute("PRAGMA analysis_limit=400")
            self._writer.execute("PRAGMA optimize")
        self._writer.close()
        if self._reader is not self._writer:
            self._reader.close()
