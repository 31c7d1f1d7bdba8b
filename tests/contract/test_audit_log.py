"""The AuditLog port's contract, on every backend (memory, SQLite, PostgreSQL).

Appends chain per partition without gaps even with many concurrent appenders (and, on the SQL
backends, two log instances standing for two processes); ``append`` commits and rolls back with
the store transaction it joins; ``append_now`` has committed when it returns; a patient's
history pages newest first; checkpoints sign only what grew; disputes update optimistically.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hygie.domain.access import Caller
from hygie.domain.audit import AuditEntry, AuditLog, AuditRecord, AuditSigner, verify_chain
from hygie.domain.disputes import DisputeConflict, open_dispute, start_review
from hygie.ports import ResourceStore
from hygie.stores.audit_sql import AUDIT_TABLES

pytestmark = pytest.mark.anyio

NOW = 1_750_000_000_000_000
SIGNER = AuditSigner(Ed25519PrivateKey.generate())
KEYS = {SIGNER.key_id: SIGNER.private_key.public_key()}


def entry(
    partition: str, n: int, *, structure: str = "1750712184", recorded: int | None = None
) -> AuditEntry:
    content = orjson.dumps({"resourceType": "AuditEvent", "n": n}, option=orjson.OPT_SORT_KEYS)
    patient = None if partition == "_system" else partition
    return AuditEntry(
        partition, recorded or NOW + n, patient, "urn:oid:1.2.250.1.71.4.2.1|810001234565", "10",
        structure, "R", "0", "TREAT", content,
    )  # fmt: skip


@dataclass
class Backend:
    name: str
    log: AuditLog
    store: ResourceStore
    url: str | None  # where a second process can reach the same trail

    async def second_log(self) -> AuditLog:
        """Another log on the same database (another process, as far as locking goes)."""
        assert self.url is not None
        from hygie.stores.audit_sql import open_audit_log

        return await open_audit_log(self.url)


def _clean_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        # as the superuser, bypassing the append-only triggers (tests only)
        conn.execute("SET session_replication_role = replica")
        conn.execute(f"TRUNCATE {', '.join(AUDIT_TABLES)}")


@pytest.fixture
def audit_pg(pg_database: str) -> str:
    """The per-worker PostgreSQL database with an empty audit trail."""
    _clean_postgres(pg_database)
    return pg_database


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        from hygie.stores.audit_memory import MemoryAuditLog
        from hygie.stores.memory import MemoryResourceStore

        b = Backend("memory", MemoryAuditLog(), MemoryResourceStore(), None)
    elif request.param == "sqlite":
        from hygie.migrate import migrate
        from hygie.stores.audit_sql import SqliteAuditLog
        from hygie.stores.sqlite import SqliteResourceStore

        url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
        migrate(url)
        b = Backend("sqlite", SqliteAuditLog.from_url(url), SqliteResourceStore.from_url(url), url)
    else:
        url = request.getfixturevalue("audit_pg")
        from hygie.stores.audit_sql import PostgresAuditLog
        from hygie.stores.postgres import PostgresResourceStore

        log = await PostgresAuditLog.connect(url, max_size=4)
        b = Backend("postgres", log, await PostgresResourceStore.connect(url, min_size=1, max_size=2), url)
    yield b
    await b.log.close()
    await b.store.close()


async def verify(log: AuditLog) -> list[str]:
    records = [r async for r in log.iter_all()]
    report = verify_chain(records, await log.checkpoints(), KEYS, heads=await log.heads())
    return [str(a) for a in report.anomalies]


# -- appends -------------------------------------------------------------------------------------


async def test_append_now_chains_each_partition_from_one(backend: Backend) -> None:
    log = backend.log
    first = await log.append_now([entry("p1", 0), entry("p2", 1), entry("p1", 2)])
    assert [(r.partition, r.seq) for r in first] == [("p1", 1), ("p2", 1), ("p1", 2)]
    more = await log.append_now([entry("p1", 3), entry("_system", 4)])
    assert [(r.partition, r.seq) for r in more] == [("p1", 3), ("_system", 1)]
    assert more[0].prev_hash == first[2].hash
    stored = await log.get("p1", 2)
    assert stored == first[2]
    assert await log.get("p1", 9) is None
    heads = await log.heads()
    assert (heads["p1"].seq, heads["p1"].hash) == (3, more[0].hash)
    assert await verify(log) == []
    assert await log.append_now([]) == []


async def test_fifty_concurrent_appenders_make_one_gap_free_chain(backend: Backend) -> None:
    log = backend.log
    results = await asyncio.gather(*(log.append_now([entry("p1", i)]) for i in range(50)))
    seqs = sorted(r[0].seq for r in results)
    assert seqs == list(range(1, 51))
    chain = [r async for r in log.iter_all()]
    assert [r.seq for r in chain] == list(range(1, 51))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert await verify(log) == []


async def test_two_processes_appending_to_one_partition_never_fork(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("the memory log lives in one process")
    other = await backend.second_log()
    try:
        logs = [backend.log, other]
        await asyncio.gather(*(logs[i % 2].append_now([entry("p1", i), entry("p2", i)]) for i in range(40)))
    finally:
        await other.close()
    heads = await backend.log.heads()
    assert (heads["p1"].seq, heads["p2"].seq) == (40, 40)
    assert await verify(backend.log) == []


async def test_append_commits_with_the_store_transaction(backend: Backend) -> None:
    log = backend.log
    async with backend.store.transaction() as tx:
        records = await log.append(tx, [entry("p1", 0), entry("p1", 1)])
    assert [r.seq for r in records] == [1, 2]
    assert await log.get("p1", 2) == records[1]
    await log.append_now([entry("p1", 2)])
    assert await verify(log) == []


async def test_append_rolls_back_with_the_store_transaction(backend: Backend) -> None:
    if backend.name == "memory":
        pytest.skip("the memory store cannot tie the audit to its commit (documented)")
    log = backend.log
    await log.append_now([entry("p1", 0)])
    with pytest.raises(RuntimeError, match="write failed"):
        async with backend.store.transaction() as tx:
            await log.append(tx, [entry("p1", 1)])
            raise RuntimeError("write failed")
    assert await log.get("p1", 2) is None
    assert (await log.heads())["p1"].seq == 1
    again = await log.append_now([entry("p1", 2)])
    assert again[0].seq == 2
    # a partition whose very first append rolled back starts afresh
    with pytest.raises(RuntimeError, match="write failed"):
        async with backend.store.transaction() as tx:
            await log.append(tx, [entry("p7", 0)])
            raise RuntimeError("write failed")
    assert "p7" not in await log.heads()
    assert [r.seq for r in await log.append_now([entry("p7", 1)])] == [1]
    async with backend.store.transaction() as tx:
        assert [r.seq for r in await log.append(tx, [entry("p7", 2)])] == [2]
    assert await verify(log) == []


async def test_writes_and_reads_of_one_patient_interleave_without_gaps(backend: Backend) -> None:
    log = backend.log

    async def write(i: int) -> None:
        async with backend.store.transaction() as tx:
            await log.append(tx, [entry("p1", 1000 + i)])
            await asyncio.sleep(0)  # hold the transaction open across a suspension

    await asyncio.gather(
        *(write(i) for i in range(10)), *(log.append_now([entry("p1", i)]) for i in range(30))
    )
    assert (await log.heads())["p1"].seq == 40
    assert await verify(log) == []


async def test_append_outside_a_store_transaction_is_refused(backend: Backend) -> None:
    if backend.name == "memory":
        pytest.skip("the memory log takes any transaction object")
    with pytest.raises(TypeError, match="transaction"):
        await backend.log.append(object(), [entry("p1", 0)])


async def test_append_now_has_committed_when_it_returns(backend: Backend) -> None:
    """A process that dies right after append_now returned leaves its records behind."""
    if backend.url is None:
        pytest.skip("nothing is durable in memory")
    script = textwrap.dedent(
        f"""
        import asyncio, os, orjson
        from hygie.domain.audit import AuditEntry
        from hygie.stores.audit_sql import open_audit_log

        async def main():
            log = await open_audit_log({backend.url!r})
            content = orjson.dumps({{"resourceType": "AuditEvent"}})
            e = AuditEntry("p9", 1, "p9", "who", None, None, "R", "0", None, content)
            records = await log.append_now([e, e, e])
            print(records[-1].seq, flush=True)
            os._exit(0)  # no close, no clean shutdown

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    assert done.stdout.strip() == "3"
    other = await backend.second_log()
    try:
        assert [r.seq for r in (await other.list_for_patient("p9")).records] == [3, 2, 1]
    finally:
        await other.close()


# -- reading a patient's history -----------------------------------------------------------------


async def test_patient_history_pages_newest_first(backend: Backend) -> None:
    log = backend.log
    await log.append_now([entry("p1", i) for i in range(7)] + [entry("p2", i) for i in range(3)])
    page = await log.list_for_patient("p1", count=3)
    assert [r.seq for r in page.records] == [7, 6, 5]
    assert page.next_cursor is not None
    page2 = await log.list_for_patient("Patient/p1", count=3, cursor=page.next_cursor)
    assert [r.seq for r in page2.records] == [4, 3, 2]
    page3 = await log.list_for_patient("p1", count=3, cursor=page2.next_cursor)
    assert [r.seq for r in page3.records] == [1]
    assert page3.next_cursor is None
    recent = await log.list_for_patient("p1", since_us=NOW + 4, count=10)
    assert [r.seq for r in recent.records] == [7, 6, 5]
    assert (await log.list_for_patient("p3")).records == []
    assert {r.partition for r in (await log.list_for_patient("p2")).records} == {"p2"}
    with pytest.raises(ValueError, match="cursor"):
        await log.list_for_patient("p1", cursor="drop table")


async def test_patient_history_leaves_out_the_named_agents(backend: Backend) -> None:
    """ "Accesses by others": the patient's own reads stay in the trail but out of this page."""
    log = backend.log
    own = [replace(entry("p1", i), agent="Patient/p1") for i in range(5)]
    await log.append_now(
        [entry("p1", 0), *own, entry("p1", 9), replace(entry("p1", 10), agent="RelatedPerson/m")]
    )
    page = await log.list_for_patient("p1", count=2, exclude_agents=["Patient/p1", "RelatedPerson/m"])
    assert [r.seq for r in page.records] == [7, 1]
    assert (
        page.next_cursor is None
        or not (
            await log.list_for_patient("p1", count=2, cursor=page.next_cursor, exclude_agents=["Patient/p1"])
        ).records
    )
    assert len((await log.list_for_patient("p1", count=50)).records) == 8


async def test_patient_history_leaves_out_the_named_roles(backend: Backend) -> None:
    """The platform's own processes stay in the trail but out of the person's default view; a
    record without a role (an app, an older operator record) is never left out by role."""
    log = backend.log
    platform = [replace(entry("p1", i), agent="notifications", role="platform") for i in range(3)]
    await log.append_now([entry("p1", 0), *platform, replace(entry("p1", 7), role=None), entry("p1", 9)])
    page = await log.list_for_patient("p1", count=10, exclude_roles=["platform"])
    assert [r.seq for r in page.records] == [6, 5, 1]
    both = await log.list_for_patient("p1", count=10, exclude_roles=["platform"], exclude_agents=["x", "y"])
    assert [r.seq for r in both.records] == [6, 5, 1]
    assert len((await log.list_for_patient("p1", count=10)).records) == 6


# -- checkpoints ---------------------------------------------------------------------------------


async def test_checkpoint_signs_only_partitions_that_grew(backend: Backend) -> None:
    log = backend.log
    await log.append_now([entry("p1", 0), entry("p1", 1), entry("p2", 2)])
    first = await log.checkpoint(SIGNER, NOW)
    assert sorted((c.partition, c.seq) for c in first) == [("p1", 2), ("p2", 1)]
    assert await log.checkpoint(SIGNER, NOW + 1) == []
    await log.append_now([entry("p2", 3)])
    second = await log.checkpoint(SIGNER, NOW + 2)
    assert [(c.partition, c.seq) for c in second] == [("p2", 2)]
    assert len(await log.checkpoints()) == 3
    assert await verify(log) == []


# -- disputes ------------------------------------------------------------------------------------


async def test_disputes_are_stored_once_per_entry_and_updated_optimistically(backend: Backend) -> None:
    log = backend.log
    records: list[AuditRecord] = await log.append_now(
        [entry("p1", 0), entry("p1", 1, structure="S2"), entry("p2", 2)]
    )
    patient = Caller("patient", "p1")
    d1 = open_dispute("d1", records[0], patient, "inconnu", NOW)
    await log.save_dispute(d1)
    assert await log.get_dispute("d1") == d1
    with pytest.raises(DisputeConflict, match="already disputed"):
        await log.save_dispute(replace(d1, id="d1-bis"))
    d2 = open_dispute("d2", records[1], patient, "?", NOW + 1)
    await log.save_dispute(d2)
    await log.save_dispute(open_dispute("d3", records[2], Caller("patient", "p2"), "?", NOW + 2))

    reviewed = start_review(d1, "dpo@chu", "1750712184", NOW + 3)
    await log.save_dispute(reviewed)
    assert await log.get_dispute("d1") == reviewed
    with pytest.raises(DisputeConflict, match="changed"):
        await log.save_dispute(start_review(d1, "other dpo", "1750712184", NOW + 4))  # from a stale read

    assert [d.id for d in await log.list_disputes(structure="1750712184")] == ["d1", "d3"]
    assert [d.id for d in await log.list_disputes(patient="p1")] == ["d1", "d2"]
    assert [d.id for d in await log.list_disputes(status="open")] == ["d2", "d3"]
    assert [d.id for d in await log.list_disputes(structure="S2", status="open")] == ["d2"]
    assert await log.get_dispute("nope") is None
