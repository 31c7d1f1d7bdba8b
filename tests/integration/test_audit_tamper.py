"""Tampering with the audit trail in the database itself, caught by ``hygie audit verify``.

Each test writes a small trail through the log, signs checkpoints with ``hygie audit
checkpoint``, then changes the tables directly — on SQLite through a raw connection with the
append-only triggers dropped, on PostgreSQL as the superuser with the triggers disabled — and
expects ``verify`` to exit 1 naming what was done. Through the normal path (triggers on, or a
non-owner role), UPDATE, DELETE and TRUNCATE are refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from hygie.audit_cli import audit_app
from hygie.domain.audit import AuditEntry
from hygie.stores.audit_sql import AUDIT_TABLES, open_audit_log

runner = CliRunner()
NOW = 1_750_000_000_000_000


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HYGIE_DATA_DIR", "HYGIE_DATABASE_URL", "HYGIE_AUDIT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def entry(partition: str, n: int) -> AuditEntry:
    content = orjson.dumps({"resourceType": "AuditEvent", "n": n}, option=orjson.OPT_SORT_KEYS)
    return AuditEntry(
        partition, NOW + n, partition, "810001234565", "10", "1750712184", "R", "0", "TREAT", content
    )


class Db:
    """Raw access to one backend's database, with a way around the append-only guards."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url

    @contextmanager
    def raw(self, *, bypass: bool) -> Iterator[Callable[[str], Any]]:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
            if bypass:
                for name, _ in triggers:
                    conn.execute(f"DROP TRIGGER {name}")
            try:
                yield lambda q: conn.execute(q).fetchall()
            finally:
                if bypass:
                    for _, sql in triggers:
                        conn.execute(sql)
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as pg:
            if bypass:
                for table in ("audit_events", "audit_checkpoints"):
                    pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            try:

                def run(q: str) -> Any:
                    cur = pg.execute(q)
                    return cur.fetchall() if cur.description else None

                yield run
            finally:
                if bypass:
                    for table in ("audit_events", "audit_checkpoints"):
                        pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "sqlite":
        from hygie.migrate import migrate

        url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
        migrate(url)
        return Db("sqlite", url)
    url = request.getfixturevalue("pg_database")
    d = Db("postgres", url)
    with d.raw(bypass=True) as q:
        q(f"TRUNCATE {', '.join(AUDIT_TABLES)}")
    return d


def cli(db: Db, tmp_path: Path, command: str) -> tuple[int, str]:
    result = runner.invoke(audit_app, [command, "--database-url", db.url, "--data-dir", str(tmp_path)])
    return result.exit_code, result.output


@pytest.fixture
def trail(db: Db, tmp_path: Path) -> Db:
    """Five records for p1, two for p2, all checkpointed; verify says intact."""

    async def write() -> None:
        log = await open_audit_log(db.url)
        try:
            await log.append_now([entry("p1", i) for i in range(5)] + [entry("p2", i) for i in range(2)])
        finally:
            await log.close()

    asyncio.run(write())
    code, out = cli(db, tmp_path, "checkpoint")
    assert code == 0, out
    assert "2 partitions checkpointed" in out
    assert (tmp_path / "audit-signing.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "audit-signing.pub.pem").exists()
    code, out = cli(db, tmp_path, "verify")
    assert (code, out.strip()) == (0, "audit trail intact: 7 records in 2 partitions, 2 checkpoints")
    return db


def anomalies(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def test_edited_event_is_reported(trail: Db, tmp_path: Path) -> None:
    with trail.raw(bypass=True) as q:
        q("UPDATE audit_events SET agent = 'someone else' WHERE partition = 'p1' AND seq = 3")
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert "TAMPERED: 1 anomalies" in out
    assert anomalies(out) == ["edited: p1#3: content does not match its hash"]


def test_deleted_event_is_reported(trail: Db, tmp_path: Path) -> None:
    with trail.raw(bypass=True) as q:
        q("DELETE FROM audit_events WHERE partition = 'p1' AND seq = 2")
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert anomalies(out) == ["deleted: p1#2: records 2 are missing"]


def test_inserted_event_is_reported(trail: Db, tmp_path: Path) -> None:
    # INSERT is what the application may do: no guard to bypass
    with trail.raw(bypass=False) as q:
        q(
            "INSERT INTO audit_events SELECT partition, 6, recorded, patient, agent, role, structure, action, "
            "outcome, purpose, content, hash, prev_hash FROM audit_events WHERE partition = 'p1' AND seq = 5"
        )
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert anomalies(out) == ["inserted: p1#6: beyond the chain head (seq 5)"]


def test_two_swapped_events_are_reported(trail: Db, tmp_path: Path) -> None:
    with trail.raw(bypass=True) as q:
        q("UPDATE audit_events SET seq = -2 WHERE partition = 'p1' AND seq = 2")
        q("UPDATE audit_events SET seq = 2 WHERE partition = 'p1' AND seq = 3")
        q("UPDATE audit_events SET seq = 3 WHERE partition = 'p1' AND seq = -2")
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert anomalies(out) == [
        "reordered: p1#2: written as record 3",
        "reordered: p1#3: written as record 2",
    ]


def test_truncated_tail_is_reported(trail: Db, tmp_path: Path) -> None:
    with trail.raw(bypass=True) as q:
        q("DELETE FROM audit_events WHERE partition = 'p1' AND seq >= 4")
        # a careful attacker also winds the head back: the signed checkpoint still tells
        q(
            "UPDATE audit_heads SET seq = 3, hash = (SELECT hash FROM audit_events WHERE partition = 'p1' AND seq = 3) WHERE partition = 'p1'"
        )
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert anomalies(out) == ["truncated: p1#5: signed checkpoint at 5, last record at 3"]


def test_a_patients_whole_trail_deleted_is_reported(trail: Db, tmp_path: Path) -> None:
    with trail.raw(bypass=True) as q:
        q("DELETE FROM audit_events WHERE partition = 'p2'")
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert anomalies(out) == [
        "truncated: p2#2: the head is at 2 but no record is left",
        "truncated: p2#2: signed checkpoint at 2, last record at 0",
    ]


def test_forged_checkpoint_signature_is_reported(trail: Db, tmp_path: Path) -> None:
    with trail.raw(bypass=True) as q:
        q("UPDATE audit_checkpoints SET signed = signed + 1 WHERE partition = 'p2'")
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert len(anomalies(out)) == 1
    assert anomalies(out)[0].startswith("bad_signature: p2#2: checkpoint signature by key")


def test_configured_key_is_used_and_never_invented(
    trail: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "keys" / "hsm-export.pem"
    monkeypatch.setenv("HYGIE_AUDIT_KEY_FILE", str(key))
    code, out = cli(trail, tmp_path, "checkpoint")
    assert code == 2
    assert "no audit signing key" in out
    assert not key.exists()
    # checkpoints signed by the default key are now signed by a key verify does not know
    code, out = cli(trail, tmp_path, "verify")
    assert code == 1
    assert {line.split(":")[0] for line in anomalies(out)} == {"bad_signature"}
    old_key = str(tmp_path / "audit-signing.pub.pem")
    args = ["verify", "--database-url", trail.url, "--data-dir", str(tmp_path), "--public-key", old_key]
    assert runner.invoke(audit_app, args).exit_code == 0


def test_update_delete_truncate_through_the_normal_path_are_refused(trail: Db) -> None:
    statements = [
        "UPDATE audit_events SET agent = 'x' WHERE partition = 'p1'",
        "DELETE FROM audit_events WHERE partition = 'p1' AND seq = 1",
        "UPDATE audit_checkpoints SET seq = 9",
        "DELETE FROM audit_checkpoints",
    ]
    errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
    if trail.kind == "postgres":
        import psycopg

        statements += ["TRUNCATE audit_events", "TRUNCATE audit_checkpoints"]
        errors = (psycopg.errors.InsufficientPrivilege,)
    for statement in statements:
        with trail.raw(bypass=False) as q, pytest.raises(errors, match="append-only"):
            q(statement)
    with trail.raw(bypass=False) as q:
        assert q("SELECT COUNT(*) FROM audit_events")[0][0] == 7


def test_application_role_cannot_rewrite_history_on_postgres(trail: Db) -> None:
    """Production runs the app under a role that owns no audit table: privileges say no before
    any trigger does, and the role cannot disable the triggers."""
    if trail.kind != "postgres":
        pytest.skip("roles are PostgreSQL's")
    import psycopg

    role = f"hygie_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(trail.url, autocommit=True) as pg:
        pg.execute(f"CREATE ROLE {role} NOLOGIN")
        try:
            pg.execute(f"GRANT SELECT, INSERT ON audit_events, audit_checkpoints TO {role}")
            pg.execute(f"GRANT SELECT, INSERT, UPDATE ON audit_heads TO {role}")
            pg.execute(f"SET ROLE {role}")
            for statement in (
                "UPDATE audit_events SET agent = 'x'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_checkpoints",
                "ALTER TABLE audit_events DISABLE TRIGGER USER",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    pg.execute(statement)
            pg.execute("RESET ROLE")
        finally:
            pg.execute("RESET ROLE")
            pg.execute(f"DROP OWNED BY {role}")
            pg.execute(f"DROP ROLE {role}")
