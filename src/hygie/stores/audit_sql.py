"""The audit trail in SQL: :class:`SqliteAuditLog` and :class:`PostgresAuditLog`.

Tables (created by migration ``0002_audit_trail``, or :func:`audit_schema_statements`)::

    audit_events(partition, seq, recorded, patient, agent, role, structure, action, outcome,
                 purpose, content, prev_hash, hash)           PRIMARY KEY (partition, seq)
    audit_heads(partition, seq, hash)                          the last record of each chain
    audit_checkpoints(partition, seq, hash, signed, key_id, signature)
    audit_disputes(id, partition, seq, patient, structure, …, status, outcome, version)

``content`` holds the canonical JSON bytes that were hashed. Events and checkpoints are
append-only: triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL), and PostgreSQL also
revokes those privileges from PUBLIC; in production the application connects under a role that
owns neither table, so it cannot drop the triggers either (docs in the migration).

Appending to a partition reads its head, chains the new records (``domain.audit.seal_many``)
and moves the head, all in one transaction. PostgreSQL locks the head rows
(``SELECT … FOR UPDATE``, in partition order so that batches never deadlock); SQLite holds the
database write lock (``BEGIN IMMEDIATE``). Either way concurrent appenders, in any number of
processes, produce gap-free chains.

``append_now`` is a group commit: calls made while a batch is being written queue up and go
together in the next transaction (one multi-row INSERT per batch on PostgreSQL, one fsync per
batch on SQLite), so the cost of durability is shared by every concurrent request.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from hygie.domain.audit import (
    GENESIS,
    AuditEntry,
    AuditPage,
    AuditRecord,
    AuditSigner,
    ChainHead,
    Checkpoint,
    seal_many,
)
from hygie.domain.disputes import Dispute, DisputeConflict, DisputeStatus

__all__ = [
    "AUDIT_TABLES",
    "PostgresAuditLog",
    "SqliteAuditLog",
    "audit_schema_statements",
    "open_audit_log",
]

AUDIT_TABLES = ("audit_events", "audit_heads", "audit_checkpoints", "audit_disputes")
APPEND_ONLY = ("audit_events", "audit_checkpoints")

_EVENT_COLUMNS = (
    "partition, seq, recorded, patient, agent, role, structure, action, outcome, purpose, content, "
    "prev_hash, hash"
)
_CHECKPOINT_COLUMNS = "partition, seq, hash, signed, key_id, signature"
_DISPUTE_COLUMNS = (
    "id, partition, seq, patient, structure, opened, comment, status, reviewer, outcome, resolution, "
    "updated, version"
)
_BATCH = 1000  # entries per group-commit transaction


def audit_schema_statements(dialect: str) -> list[str]:
    """DDL for the audit tables and their append-only guards, for ``sqlite`` or ``postgresql``."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    blob = "BYTEA" if pg else "BLOB"
    statements = [
        f"""CREATE TABLE audit_events (
            partition {text} NOT NULL,
            seq BIGINT NOT NULL,
            recorded BIGINT NOT NULL,
            patient {text},
            agent {text} NOT NULL,
            role {text},
            structure {text},
            action {text} NOT NULL,
            outcome {text} NOT NULL,
            purpose {text},
            content {blob} NOT NULL,
            prev_hash {blob} NOT NULL,
            hash {blob} NOT NULL,
            PRIMARY KEY (partition, seq)
        )""",
        "CREATE INDEX audit_events_structure ON audit_events (structure, recorded)",
        f"""CREATE TABLE audit_heads (
            partition {text} PRIMARY KEY,
            seq BIGINT NOT NULL,
            hash {blob} NOT NULL
        )""",
        f"""CREATE TABLE audit_checkpoints (
            partition {text} NOT NULL,
            seq BIGINT NOT NULL,
            hash {blob} NOT NULL,
            signed BIGINT NOT NULL,
            key_id {text} NOT NULL,
            signature {blob} NOT NULL,
            PRIMARY KEY (partition, seq)
        )""",
        f"""CREATE TABLE audit_disputes (
            id {text} PRIMARY KEY,
            partition {text} NOT NULL,
            seq BIGINT NOT NULL,
            patient {text} NOT NULL,
            structure {text} NOT NULL,
            opened BIGINT NOT NULL,
            comment {text} NOT NULL,
            status {text} NOT NULL,
            reviewer {text},
            outcome {text},
            resolution {text},
            updated BIGINT NOT NULL,
            version INTEGER NOT NULL,
            UNIQUE (partition, seq)
        )""",
        "CREATE INDEX audit_disputes_structure ON audit_disputes (structure, status)",
        "CREATE INDEX audit_disputes_patient ON audit_disputes (patient)",
    ]
    if pg:
        # no '%' and no ':name' in these bodies: Alembic passes them through SQLAlchemy text()
        statements.append(
            """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                    MESSAGE = 'the audit trail is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME
                        || ' refused';
            END
            $$"""
        )
        statements.extend(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            for table in APPEND_ONLY
        )
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(APPEND_ONLY)} FROM PUBLIC")
    else:
        statements.extend(
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: {op} on {table} refused'); END"
            for table in APPEND_ONLY
            for op in ("UPDATE", "DELETE")
        )
    return statements


def _sqlite(text: str) -> str:
    """The statement with SQLite's numbered placeholders (``?1``) instead of asyncpg's ``$1``."""
    return re.sub(r"\$(\d+)", r"?\1", text)


# -- statements shared by both dialects (asyncpg placeholders) --------------------------------

_GET = f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE partition = $1 AND seq = $2"
_HEADS = "SELECT partition, seq, hash FROM audit_heads ORDER BY partition"
_CHECKPOINTS = f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY partition, seq"
_ITER = (
    f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE (partition, seq) > ($1, $2) "
    "ORDER BY partition, seq LIMIT $3"
)
_STALE_HEADS = (
    "SELECT h.partition, h.seq, h.hash FROM audit_heads h WHERE h.seq > COALESCE("
    "(SELECT MAX(c.seq) FROM audit_checkpoints c WHERE c.partition = h.partition), 0) ORDER BY h.partition"
)
_INSERT_DISPUTE = (
    f"INSERT INTO audit_disputes ({_DISPUTE_COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 14))})"
)
_UPDATE_DISPUTE = (
    "UPDATE audit_disputes SET status = $2, reviewer = $3, outcome = $4, resolution = $5, updated = $6, "
    "version = $7 WHERE id = $1 AND version = $8"
)


def _page_query(
    since_us: int | None,
    before_seq: int | None,
    count: int,
    exclude_agents: Sequence[str] = (),
    exclude_roles: Sequence[str] = (),
) -> tuple[str, list[Any]]:
    args: list[Any] = []

    def p(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = f"partition = {p(None)}"
    if since_us is not None:
        where += f" AND recorded >= {p(since_us)}"
    if before_seq is not None:
        where += f" AND seq < {p(before_seq)}"
    if exclude_agents:
        where += f" AND agent NOT IN ({', '.join(p(a) for a in exclude_agents)})"
    if exclude_roles:
        # a record without a role (a person's own, an app's) is never left out by role
        where += f" AND COALESCE(role, '') NOT IN ({', '.join(p(r) for r in exclude_roles)})"
    return (
        f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE {where} ORDER BY seq DESC LIMIT {int(count) + 1}",
        args,
    )


def _record(r: Sequence[Any]) -> AuditRecord:
    entry = AuditEntry(r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], bytes(r[10]))
    return AuditRecord(entry, int(r[1]), bytes(r[11]), bytes(r[12]))


def _event_row(rec: AuditRecord) -> tuple[Any, ...]:
    e = rec.entry
    return (
        e.partition,
        rec.seq,
        e.recorded_us,
        e.patient,
        e.agent,
        e.role,
        e.structure,
        e.action,
        e.outcome,
        e.purpose,
        e.content,
        rec.prev_hash,
        rec.hash,
    )


def _checkpoint(r: Sequence[Any]) -> Checkpoint:
    return Checkpoint(r[0], int(r[1]), bytes(r[2]), int(r[3]), r[4], bytes(r[5]))


def _checkpoint_row(c: Checkpoint) -> tuple[Any, ...]:
    return (c.partition, c.seq, c.hash, c.signed_us, c.key_id, c.signature)


def _dispute(r: Sequence[Any]) -> Dispute:
    return Dispute(
        id=r[0],
        partition=r[1],
        seq=int(r[2]),
        patient=r[3],
        structure=r[4],
        opened_us=int(r[5]),
        comment=r[6],
        status=r[7],
        reviewer=r[8],
        outcome=r[9],
        resolution=r[10],
        updated_us=int(r[11]),
        version=int(r[12]),
    )


def _dispute_row(d: Dispute) -> tuple[Any, ...]:
    return (
        d.id,
        d.partition,
        d.seq,
        d.patient,
        d.structure,
        d.opened_us,
        d.comment,
        d.status,
        d.reviewer,
        d.outcome,
        d.resolution,
        d.updated_us,
        d.version,
    )


def _disputes_query(
    structure: str | None, patient: str | None, status: DisputeStatus | None
) -> tuple[str, list[Any]]:
    args: list[Any] = []
    where = []
    for column, value in (("structure", structure), ("patient", patient), ("status", status)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    text = f"SELECT {_DISPUTE_COLUMNS} FROM audit_disputes"
    if where:
        text += " WHERE " + " AND ".join(where)
    return text + " ORDER BY opened, id", args


def decode_cursor(cursor: str | None) -> int | None:
    """A page cursor is the sequence number the next page stops before."""
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise ValueError(f"invalid audit page cursor {cursor!r}")
    return int(cursor)


def page_of(records: list[AuditRecord], count: int) -> AuditPage:
    if len(records) > count:
        return AuditPage(records[:count], str(records[count - 1].seq))
    return AuditPage(records)


def _unwrap(tx: object) -> object:
    """The database connection under a store transaction (through wrapping stores' ``inner``)."""
    for _ in range(8):
        inner = getattr(tx, "inner", None)
        if inner is None:
            break
        tx = inner
    return getattr(tx, "conn", tx)


_Waiting = tuple[list[AuditEntry], "asyncio.Future[list[AuditRecord]]"]


class _GroupCommit:
    """Batches concurrent ``append_now`` calls into shared transactions.

    Up to ``writers`` tasks drain the queue, each taking everything queued (up to ``_BATCH``
    entries) into one transaction; each caller gets its own records back once its batch has
    committed. With one writer, batches follow each other; with several (PostgreSQL), batches of
    different partitions commit in parallel and the server merges their WAL flushes, while the
    head row locks keep each partition's batches in turn.
    """

    def __init__(
        self, write: Callable[[list[AuditEntry]], Awaitable[list[AuditRecord]]], *, writers: int = 1
    ) -> None:
        self._write = write
        self._writers = writers
        self._queue: deque[_Waiting] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        if not entries:
            return []
        future: asyncio.Future[list[AuditRecord]] = asyncio.get_running_loop().create_future()
        self._queue.append((list(entries), future))
        if len(self._tasks) < self._writers:
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # shielded: a caller that gives up does not take the batch down with it
        return await asyncio.shield(future)

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0][0]) <= _BATCH):
            item = self._queue.popleft()
            batch.append(item)
            size += len(item[0])
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch = self._take()
            entries = [e for es, _ in batch for e in es]
            try:
                records = await self._write(entries)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            start = 0
            for es, future in batch:
                if not future.done():
                    future.set_result(records[start : start + len(es)])
                start += len(es)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------


def _sqlite_append(conn: sqlite3.Connection, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
    """Chain and insert ``entries`` inside the transaction open on ``conn`` (write-locked)."""
    partitions = sorted({e.partition for e in entries})
    conn.executemany(
        "INSERT INTO audit_heads (partition, seq, hash) VALUES (?1, 0, ?2) ON CONFLICT DO NOTHING",
        [(p, GENESIS) for p in partitions],
    )
    heads: dict[str, ChainHead] = {}
    for start in range(0, len(partitions), 500):
        chunk = partitions[start : start + 500]
        rows = conn.execute(
            f"SELECT partition, seq, hash FROM audit_heads WHERE partition IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        heads.update({p: ChainHead(p, s, bytes(h)) for p, s, h in rows})
    records = seal_many(heads, entries)
    conn.executemany(
        f"INSERT INTO audit_events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 13)})",
        [_event_row(r) for r in records],
    )
    last = {r.partition: r for r in records}
    conn.executemany(
        "UPDATE audit_heads SET seq = ?1, hash = ?2 WHERE partition = ?3",
        [(r.seq, r.hash, p) for p, r in last.items()],
    )
    return records


def _connect(path: str, *, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class SqliteAuditLog:
    """The audit trail in the SQLite database file of the embedded store.

    ``append_now`` writes on a connection of its own with ``synchronous=FULL`` (the WAL is
    fsynced at every commit, so a returned record survives a power cut), in a worker thread so
    that the event loop keeps serving while the disk syncs. The write lock is SQLite's: the
    store's writer and this log take turns, in this process or any other.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path in ("", ":memory:"):
            raise ValueError("SqliteAuditLog needs a database file; use MemoryAuditLog in memory")
        self._writer = _connect(self.path, synchronous="FULL")
        self._reader = _connect(self.path, synchronous="NORMAL")
        self._lock = asyncio.Lock()  # one user of the writer connection at a time
        self._group = _GroupCommit(self._write_batch)

    @classmethod
    def from_url(cls, url: str) -> SqliteAuditLog:
        return cls(url.removeprefix("sqlite:///").removeprefix("sqlite://"))

    def create_schema(self) -> None:
        """Create the tables directly (tests; files are normally migrated with Alembic)."""
        with self._writer:
            for statement in audit_schema_statements("sqlite"):
                self._writer.execute(statement)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _write_batch(self, entries: list[AuditEntry]) -> list[AuditRecord]:
        async with self._lock:
            records: list[AuditRecord] = await asyncio.to_thread(
                self._in_transaction, lambda conn: _sqlite_append(conn, entries)
            )
            return records

    async def append(self, tx: object, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        conn = _unwrap(tx)
        if not isinstance(conn, sqlite3.Connection) or not conn.in_transaction:
            raise TypeError("append() needs an open SQLite store transaction (or its connection)")
        return _sqlite_append(conn, entries) if entries else []

    async def append_now(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        return await self._group.submit(entries)

    async def get(self, partition: str, seq: int) -> AuditRecord | None:
        row = self._reader.execute(_sqlite(_GET), (partition, seq)).fetchone()
        return _record(row) if row else None

    async def list_for_patient(
        self,
        patient_id: str,
        *,
        since_us: int | None = None,
        count: int = 50,
        cursor: str | None = None,
        exclude_agents: Sequence[str] = (),
        exclude_roles: Sequence[str] = (),
    ) -> AuditPage:
        text, args = _page_query(since_us, decode_cursor(cursor), count, exclude_agents, exclude_roles)
        args[0] = patient_id.removeprefix("Patient/")
        rows = self._reader.execute(_sqlite(text), args).fetchall()
        return page_of([_record(r) for r in rows], count)

    async def checkpoint(self, signer: AuditSigner, now_us: int) -> list[Checkpoint]:
        def work(conn: sqlite3.Connection) -> list[Checkpoint]:
            heads = [ChainHead(p, s, bytes(h)) for p, s, h in conn.execute(_STALE_HEADS).fetchall()]
            signed = [signer.sign(h, now_us) for h in heads]
            conn.executemany(
                f"INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [_checkpoint_row(c) for c in signed],
            )
            return signed

        async with self._lock:
            result: list[Checkpoint] = await asyncio.to_thread(self._in_transaction, work)
            return result

    async def iter_all(self) -> AsyncIterator[AuditRecord]:
        after: tuple[str, int] = ("", 0)
        while True:
            rows = self._reader.execute(_sqlite(_ITER), (*after, 1000)).fetchall()
            for row in rows:
                yield _record(row)
            if len(rows) < 1000:
                return
            after = (rows[-1][0], int(rows[-1][1]))

    async def checkpoints(self) -> list[Checkpoint]:
        return [_checkpoint(r) for r in self._reader.execute(_CHECKPOINTS).fetchall()]

    async def heads(self) -> dict[str, ChainHead]:
        rows = self._reader.execute(_HEADS).fetchall()
        return {p: ChainHead(p, int(s), bytes(h)) for p, s, h in rows}

    async def save_dispute(self, dispute: Dispute) -> None:
        def work(conn: sqlite3.Connection) -> None:
            if dispute.version == 1:
                try:
                    conn.execute(_sqlite(_INSERT_DISPUTE), _dispute_row(dispute))
                except sqlite3.IntegrityError as exc:
                    raise DisputeConflict("this entry is already disputed") from exc
                return
            cur = conn.execute(_sqlite(_UPDATE_DISPUTE), _dispute_update_args(dispute))
            if cur.rowcount != 1:
                raise DisputeConflict(f"case {dispute.id} changed since it was read")

        async with self._lock:
            await asyncio.to_thread(self._in_transaction, work)

    async def get_dispute(self, dispute_id: str) -> Dispute | None:
        row = self._reader.execute(
            f"SELECT {_DISPUTE_COLUMNS} FROM audit_disputes WHERE id = ?1", (dispute_id,)
        ).fetchone()
        return _dispute(row) if row else None

    async def list_disputes(
        self, *, structure: str | None = None, patient: str | None = None, status: DisputeStatus | None = None
    ) -> list[Dispute]:
        text, args = _disputes_query(structure, patient, status)
        return [_dispute(r) for r in self._reader.execute(_sqlite(text), args).fetchall()]

    async def close(self) -> None:
        await self._group.close()
        self._writer.close()
        self._reader.close()


def _dispute_update_args(d: Dispute) -> tuple[Any, ...]:
    return (d.id, d.status, d.reviewer, d.outcome, d.resolution, d.updated_us, d.version, d.version - 1)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

_PG_LOCK_HEADS = (
    "SELECT partition, seq, hash FROM audit_heads WHERE partition = ANY($1::text[]) "
    "ORDER BY partition FOR UPDATE"
)
_PG_ENSURE_HEADS = (
    "INSERT INTO audit_heads (partition, seq, hash) SELECT p, 0, $2::bytea FROM unnest($1::text[]) AS p "
    "ORDER BY p ON CONFLICT DO NOTHING"
)
# one statement writes the batch's events and moves the heads
_PG_WRITE = (
    "WITH ev AS (INSERT INTO audit_events (" + _EVENT_COLUMNS + ") SELECT * FROM unnest("
    "$1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
    "$9::text[], $10::text[], $11::bytea[], $12::bytea[], $13::bytea[])) "
    "UPDATE audit_heads h SET seq = x.s, hash = x.h FROM unnest($14::text[], $15::bigint[], $16::bytea[]) "
    "AS x(p, s, h) WHERE h.partition = x.p"
)


async def _pg_append(conn: Any, entries: Sequence[AuditEntry], known: set[str]) -> list[AuditRecord]:
    """Chain and insert ``entries`` inside the transaction open on ``conn``.

    Heads of partitions not in ``known`` are created first (``ON CONFLICT DO NOTHING``, in
    partition order: a concurrent creator makes us wait for its commit, then we see its row);
    then every head is locked in partition order, so appenders never deadlock each other.
    """
    partitions = sorted({e.partition for e in entries})
    unknown = [p for p in partitions if p not in known]
    if unknown:
        await conn.execute(_PG_ENSURE_HEADS, unknown, GENESIS)
    rows = await conn.fetch(_PG_LOCK_HEADS, partitions)
    if len(rows) != len(partitions):  # ``known`` was stale: say, the database was restored
        await conn.execute(_PG_ENSURE_HEADS, partitions, GENESIS)
        rows = await conn.fetch(_PG_LOCK_HEADS, partitions)
    heads = {r[0]: ChainHead(r[0], int(r[1]), bytes(r[2])) for r in rows}
    records = seal_many(heads, entries)
    columns = [list(c) for c in zip(*(_event_row(r) for r in records), strict=True)]
    last = {r.partition: r for r in records}
    await conn.execute(
        _PG_WRITE,
        *columns,
        list(last),
        [r.seq for r in last.values()],
        [r.hash for r in last.values()],
    )
    return records


class PostgresAuditLog:
    """The audit trail in PostgreSQL (asyncpg pool; ``synchronous_commit`` must stay on)."""

    def __init__(self, pool: asyncpg.Pool, *, writers: int = 4) -> None:
        self.pool = pool
        self._known: set[str] = set()  # partitions whose head row is known to be committed
        self._group = _GroupCommit(self._write_batch, writers=writers)

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 1, max_size: int = 4) -> PostgresAuditLog:
        dsn = url.replace("postgresql+psycopg://", "postgresql://").replace(
            "postgresql+asyncpg://", "postgresql://"
        )
        # durability of append_now relies on it, whatever the server or role default says
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, server_settings={"synchronous_commit": "on"}
        )
        assert pool is not None
        return cls(pool)

    async def _write_batch(self, entries: list[AuditEntry]) -> list[AuditRecord]:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                records = await _pg_append(conn, entries, self._known)
            # committed: these heads exist for good (a rolled-back append(tx) proves nothing)
            self._known.update(e.partition for e in entries)
            return records

    async def append(self, tx: object, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Append inside the caller's transaction: call it once per transaction (with every
        entry of the write), as late as possible, since it holds the heads' locks until commit."""
        conn = _unwrap(tx)
        if not hasattr(conn, "fetch") or not conn.is_in_transaction():  # type: ignore[attr-defined]
            raise TypeError("append() needs an open PostgreSQL store transaction (or its connection)")
        if not entries:
            return []
        return await _pg_append(conn, entries, self._known)

    async def append_now(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        return await self._group.submit(entries)

    async def get(self, partition: str, seq: int) -> AuditRecord | None:
        row = await self.pool.fetchrow(_GET, partition, seq)
        return _record(row) if row else None

    async def list_for_patient(
        self,
        patient_id: str,
        *,
        since_us: int | None = None,
        count: int = 50,
        cursor: str | None = None,
        exclude_agents: Sequence[str] = (),
        exclude_roles: Sequence[str] = (),
    ) -> AuditPage:
        text, args = _page_query(since_us, decode_cursor(cursor), count, exclude_agents, exclude_roles)
        args[0] = patient_id.removeprefix("Patient/")
        rows = await self.pool.fetch(text, *args)
        return page_of([_record(r) for r in rows], count)

    async def checkpoint(self, signer: AuditSigner, now_us: int) -> list[Checkpoint]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_STALE_HEADS)
            signed = [signer.sign(ChainHead(r[0], int(r[1]), bytes(r[2])), now_us) for r in rows]
            if signed:
                columns = [list(c) for c in zip(*(_checkpoint_row(c) for c in signed), strict=True)]
                await conn.execute(
                    f"INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS}) SELECT * FROM unnest($1::text[], "
                    "$2::bigint[], $3::bytea[], $4::bigint[], $5::text[], $6::bytea[]) ON CONFLICT DO NOTHING",
                    *columns,
                )
            return signed

    async def iter_all(self) -> AsyncIterator[AuditRecord]:
        after: tuple[str, int] = ("", 0)
        while True:
            rows = await self.pool.fetch(_ITER, *after, 1000)
            for row in rows:
                yield _record(row)
            if len(rows) < 1000:
                return
            after = (rows[-1][0], int(rows[-1][1]))

    async def checkpoints(self) -> list[Checkpoint]:
        return [_checkpoint(r) for r in await self.pool.fetch(_CHECKPOINTS)]

    async def heads(self) -> dict[str, ChainHead]:
        return {r[0]: ChainHead(r[0], int(r[1]), bytes(r[2])) for r in await self.pool.fetch(_HEADS)}

    async def save_dispute(self, dispute: Dispute) -> None:
        if dispute.version == 1:
            try:
                await self.pool.execute(_INSERT_DISPUTE, *_dispute_row(dispute))
            except asyncpg.UniqueViolationError as exc:
                raise DisputeConflict("this entry is already disputed") from exc
            return
        status = await self.pool.execute(_UPDATE_DISPUTE, *_dispute_update_args(dispute))
        if status != "UPDATE 1":
            raise DisputeConflict(f"case {dispute.id} changed since it was read")

    async def get_dispute(self, dispute_id: str) -> Dispute | None:
        row = await self.pool.fetchrow(
            f"SELECT {_DISPUTE_COLUMNS} FROM audit_disputes WHERE id = $1", dispute_id
        )
        return _dispute(row) if row else None

    async def list_disputes(
        self, *, structure: str | None = None, patient: str | None = None, status: DisputeStatus | None = None
    ) -> list[Dispute]:
        text, args = _disputes_query(structure, patient, status)
        return [_dispute(r) for r in await self.pool.fetch(text, *args)]

    async def close(self) -> None:
        await self._group.close()
        await self.pool.close()


async def open_audit_log(url: str) -> SqliteAuditLog | PostgresAuditLog:
    """The audit log of the database named by ``url`` (already migrated)."""
    if url.startswith("sqlite:"):
        return SqliteAuditLog.from_url(url)
    if url.startswith(("postgresql", "postgres:")):
        return await PostgresAuditLog.connect(url)
    raise ValueError(f"unsupported database URL {url!r} (sqlite:/// or postgresql://)")
