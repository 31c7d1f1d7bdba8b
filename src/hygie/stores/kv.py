"""KeyValueStore implementations: memory (tests), SQLite and PostgreSQL (table ``kv``).

Expiry is checked on read (an expired record is absent) and expired rows are purged now and
then on write. ``take`` is atomic: ``DELETE … RETURNING`` on both databases.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

__all__ = ["MemoryKeyValueStore", "PostgresKeyValueStore", "SqliteKeyValueStore", "now_us"]


def now_us() -> int:
    return time.time_ns() // 1000


def _alive(expires: int | None, now: int) -> bool:
    return expires is None or expires > now


class MemoryKeyValueStore:
    def __init__(self, clock: Callable[[], int] = now_us) -> None:
        self.data: dict[tuple[str, str], tuple[dict[str, Any], int | None]] = {}
        self.clock = clock

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        item = self.data.get((kind, key))
        if item is None or not _alive(item[1], self.clock()):
            return None
        return dict(item[0])

    async def put(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> None:
        self.data[(kind, key)] = (dict(value), expires_us)

    async def add(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> bool:
        if await self.get(kind, key) is not None:
            return False
        self.data[(kind, key)] = (dict(value), expires_us)
        return True

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        value = await self.get(kind, key)
        self.data.pop((kind, key), None)
        return value

    async def delete(self, kind: str, key: str) -> None:
        self.data.pop((kind, key), None)

    async def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        now = self.clock()
        return sorted((k, dict(v)) for (kd, k), (v, e) in self.data.items() if kd == kind and _alive(e, now))


KV_DDL = (
    "CREATE TABLE IF NOT EXISTS kv (kind TEXT NOT NULL, key TEXT NOT NULL, value {blob} NOT NULL, "
    "expires BIGINT, PRIMARY KEY (kind, key))"
)


class SqliteKeyValueStore:
    """On its own connection to the database file (WAL lets it run beside the resource store)."""

    def __init__(self, path: str, *, connection: sqlite3.Connection | None = None) -> None:
        if connection is not None:
            self.conn = connection
        else:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA busy_timeout=10000")
        self.conn.execute(KV_DDL.format(blob="BLOB"))
        self._lock = asyncio.Lock()
        self._writes = 0

    def _purge(self) -> None:
        self._writes += 1
        if self._writes % 200 == 0:
            self.conn.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?", (now_us(),))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT value, expires FROM kv WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        if row is None or not _alive(row[1], now_us()):
            return None
        value: dict[str, Any] = orjson.loads(row[0])
        return value

    async def put(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> None:
        async with self._lock:
            self.conn.execute(
                "INSERT INTO kv (kind, key, value, expires) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                (kind, key, orjson.dumps(value), expires_us),
            )
            self._purge()

    async def add(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> bool:
        async with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute(
                    "DELETE FROM kv WHERE kind = ? AND key = ? AND expires IS NOT NULL AND expires <= ?",
                    (kind, key, now_us()),
                )
                cur = self.conn.execute(
                    "INSERT INTO kv (kind, key, value, expires) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (kind, key, orjson.dumps(value), expires_us),
                )
                inserted = cur.rowcount == 1
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return inserted

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        async with self._lock:
            row = self.conn.execute(
                "DELETE FROM kv WHERE kind = ? AND key = ? RETURNING value, expires", (kind, key)
            ).fetchone()
        if row is None or not _alive(row[1], now_us()):
            return None
        value: dict[str, Any] = orjson.loads(row[0])
        return value

    async def delete(self, kind: str, key: str) -> None:
        async with self._lock:
            self.conn.execute("DELETE FROM kv WHERE kind = ? AND key = ?", (kind, key))

    async def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self.conn.execute(
            "SELECT key, value FROM kv WHERE kind = ? AND (expires IS NULL OR expires > ?) ORDER BY key",
            (kind, now_us()),
        ).fetchall()
        return [(k, orjson.loads(v)) for k, v in rows]


class PostgresKeyValueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def ensure_schema(self) -> None:
        """Create the table if the migrations have not (idempotent)."""
        await self.pool.execute(KV_DDL.format(blob="BYTEA"))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT value FROM kv WHERE kind = $1 AND key = $2 AND (expires IS NULL OR expires > $3)",
            kind,
            key,
            now_us(),
        )
        if row is None:
            return None
        value: dict[str, Any] = orjson.loads(row[0])
        return value

    async def put(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> None:
        await self.pool.execute(
            "INSERT INTO kv (kind, key, value, expires) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
            kind,
            key,
            orjson.dumps(value),
            expires_us,
        )

    async def add(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM kv WHERE kind = $1 AND key = $2 AND expires IS NOT NULL AND expires <= $3",
                kind,
                key,
                now_us(),
            )
            status = await conn.execute(
                "INSERT INTO kv (kind, key, value, expires) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                kind,
                key,
                orjson.dumps(value),
                expires_us,
            )
        return bool(status.endswith(" 1"))

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "DELETE FROM kv WHERE kind = $1 AND key = $2 RETURNING value, expires", kind, key
        )
        if row is None or not _alive(row[1], now_us()):
            return None
        value: dict[str, Any] = orjson.loads(row[0])
        return value

    async def delete(self, kind: str, key: str) -> None:
        await self.pool.execute("DELETE FROM kv WHERE kind = $1 AND key = $2", kind, key)

    async def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT key, value FROM kv WHERE kind = $1 AND (expires IS NULL OR expires > $2) ORDER BY key",
            kind,
            now_us(),
        )
        return [(r[0], orjson.loads(r[1])) for r in rows]
