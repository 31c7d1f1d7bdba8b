"""How fast the audit trail appends: ``append_now`` on SQLite and PostgreSQL.

Every read will append one AuditEvent before its response, so this is the cost added to each
read. For each backend, N events are appended by 1 then 32 concurrent appenders, to one
partition (one patient read over and over) and to many (the usual case); the script prints
µs per event (wall time / events) and events per second, and checks that the chains verify.

    .venv/bin/python bench/bench_audit.py [--events 2000] [--postgres postgresql://…/db]

The PostgreSQL database must be migrated (``hygie migrate``); its audit tables are emptied
(as a superuser, bypassing the append-only triggers): use a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson

from hygie.domain.access import AccessRequest, Caller, Decision
from hygie.domain.audit import AuditContext, AuditEntry, build_entry, verify_chain
from hygie.migrate import migrate
from hygie.stores.audit_sql import AUDIT_TABLES, open_audit_log


def _entry(i: int, partitions: int) -> AuditEntry:
    patient = f"p{i % partitions}"
    decision = Decision(
        AccessRequest(Caller("practitioner", "810001234565"), "read", "Observation", f"o{i}", patient),
        True,
        "bench",
    )
    return build_entry(
        decision, AuditContext(time.time_ns() // 1000, "bench", client="bench", request_id=str(i))
    )


async def _run(url: str, events: int, appenders: int, partitions: int) -> tuple[float, int]:
    log = await open_audit_log(url)
    entries = [_entry(i, partitions) for i in range(events)]
    per = events // appenders

    async def appender(k: int) -> None:
        for e in entries[k * per : (k + 1) * per]:
            await log.append_now([e])

    try:
        await log.append_now([_entry(0, 1)])  # warm the pool / connections
        start = time.perf_counter()
        await asyncio.gather(*(appender(k) for k in range(appenders)))
        elapsed = time.perf_counter() - start
        records = [r async for r in log.iter_all()]
        report = verify_chain(records, [], {}, heads=await log.heads())
        if not report.ok:
            raise SystemExit(f"chain broken: {report.anomalies[:3]}")
        return elapsed, per * appenders
    finally:
        await log.close()


def _reset(url: str) -> None:
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        migrate(url)
        return
    import psycopg  # noqa: PLC0415 - only for the PostgreSQL reset

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(f"TRUNCATE {', '.join(AUDIT_TABLES)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--postgres", default=None, help="URL of a migrated scratch database")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="hygie-bench-audit-")
    urls = {"sqlite": f"sqlite:///{tmp}/bench.sqlite3"}
    if args.postgres:
        migrate(args.postgres)
        urls["postgres"] = args.postgres
    size = len(orjson.dumps(orjson.loads(_entry(0, 1).content)))
    print(f"{args.events} events of ~{size} bytes per run")
    print(f"{'backend':10} {'appenders':>9} {'partitions':>10} {'µs/event':>9} {'events/s':>9}")
    for name, url in urls.items():
        for appenders in (1, 32):
            for partitions in (1, 1000):
                _reset(url)
                elapsed, n = asyncio.run(_run(url, args.events, appenders, partitions))
                print(f"{name:10} {appenders:9} {partitions:10} {elapsed / n * 1e6:9.0f} {n / elapsed:9.0f}")


if __name__ == "__main__":
    main()
