"""Hygie end-to-end benchmark: a real ``hygie serve`` on PostgreSQL and on SQLite, loaded by wrk.

Usage (see bench/README.md)::

    .venv/bin/python bench/run.py --quick                 # a few seconds per scenario
    .venv/bin/python bench/run.py --pg-url postgresql://hygie@127.0.0.1:55432/postgres --reuse

Each scenario is measured against the server and, in the same run, against the raw database
ceiling (``_ceiling.py``: the same rows and SQL, no FHIR logic). Results go to
``bench/out/results-*.json`` and to the generated section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _ceiling as ceiling
import _infra as infra
import _profile as profile
import _report as report
import asyncpg
from _load import Bundle, Measure, load_bundles, post_bundles, run_wrk

REPO = infra.REPO
DEFAULT_SYNTHEA = REPO.parent / "shared" / "data" / "synthea-r4" / "bundles"

PATIENT_TEMPLATE: dict[str, Any] = {
    "resourceType": "Patient",
    "active": True,
    "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1850775123456"}],
    "name": [{"use": "official", "family": "Martin", "given": ["Camille", "Louise"]}],
    "telecom": [{"system": "phone", "value": "+33 6 12 34 56 78", "use": "mobile"}],
    "gender": "female",
    "birthDate": "1985-07-14",
    "address": [{"line": ["12 rue de la Paix"], "city": "Paris", "postalCode": "75002", "country": "FR"}],
}

# the targets on 2 cores, PostgreSQL, durable commits: (scenario, metric, bound, is a minimum)
TARGETS: dict[str, list[tuple[str, float, bool]]] = {
    "ingest": [("rate", 2000, True)],
    "create": [("rate", 800, True)],
    "read": [("rate", 3000, True), ("p99_ms", 30, False)],
    "search": [("p99_ms", 60, False)],
    "everything": [("p95_ms", 400, False)],
}


@dataclass
class Config:
    seconds: float
    warmup: float
    ceiling_seconds: float
    bundles_limit: int | None
    copies: int
    uploaders: int
    read_clients: int
    create_clients: int
    search_clients: int
    everything_clients: int
    out: Path
    profile: bool
    profile_seconds: float
    profile_workers: int
    suffix: str
    profile_always: tuple[str, ...] = ()  # scenarios profiled even when they meet their targets


@dataclass
class Run:
    config: Config
    results: list[dict[str, Any]] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)


def missed(scenario: str, m: Measure) -> list[str]:
    if m.ops == 0:  # nothing answered within the run: every target is missed
        return [metric for metric, _, _ in TARGETS.get(scenario, [])]
    out = []
    values = {"rate": m.rate, "p95_ms": m.p95_ms, "p99_ms": m.p99_ms}
    for metric, bound, minimum in TARGETS.get(scenario, []):
        v = values[metric]
        if (minimum and v < bound) or (not minimum and v > bound):
            out.append(metric)
    return out


# -- databases ------------------------------------------------------------------------------------


class Backend:
    """A database kind: where its databases live, how to query them, its ceiling loops."""

    name = ""
    key = ""

    def fresh(self, role: str, *, keep: bool = False) -> tuple[str, bool]:
        raise NotImplementedError

    def fetch(self, url: str, text: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def settle(self, url: str) -> None:
        """After a load: what the database's own maintenance would do before long."""

    def wait_idle(self, url: str) -> None:
        """Return once no statement of another session runs in the database."""

    def pool_size(self, workers: int) -> int:
        return 10 * workers  # HYGIE_PG_POOL_SIZE per worker

    def cpu_root(self) -> int | None:
        """The pid whose process tree is the database server (None: it runs in the server)."""
        return None

    def audit_bytes(self, url: str) -> int | None:
        """On-disk size of the audit trail's events table, when the database can tell."""
        return None

    # ceilings
    def ceiling_writes(
        self, url: str, writes: list[ceiling.PreparedWrite], conc: int, w: int, s: float
    ) -> Measure:
        raise NotImplementedError

    def ceiling_reads(self, url: str, kind: str, payload: Any, conc: int, w: int, s: float) -> Measure:
        raise NotImplementedError

    def prepare_everything(self, url: str, patient_id: str) -> ceiling.PreparedEverything:
        raise NotImplementedError


class Postgres(Backend):
    name = "PostgreSQL"
    key = "pg"

    def __init__(self, admin_url: str, suffix: str, settings: dict[str, str]) -> None:
        self.admin = admin_url
        self.suffix = suffix
        self.settings = settings  # per-database settings of a what-if run (--pg-setting)

    def fresh(self, role: str, *, keep: bool = False) -> tuple[str, bool]:
        name = f"bench_pg_{role}{self.suffix}"
        url, kept = infra.fresh_pg_database(self.admin, name, keep=keep)
        statements = [f'ALTER DATABASE "{name}" RESET ALL']
        statements += [f'ALTER DATABASE "{name}" SET {k} = {v!r}' for k, v in self.settings.items()]
        infra.admin(self.admin, *statements)
        return url, kept

    def wait_idle(self, url: str, max_seconds: float = 120) -> None:
        text = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + max_seconds
        while (busy := self.fetch(url, text)) and time.monotonic() < deadline:
            time.sleep(1)
        if busy:  # our own benchmark's statements, still running after max_seconds
            infra.log(f"  cancelling {len(busy)} statements still running after {max_seconds:.0f} s")
            self.fetch(url, "SELECT pg_cancel_backend(pid) FROM (" + text + ") a")

    def settle(self, url: str) -> None:
        self.fetch(url, "ANALYZE")  # autovacuum would analyze the new rows within a minute or so

    def cpu_root(self) -> int | None:
        return infra.POSTMASTERS.get(self.admin)  # known for the throwaway cluster only

    def audit_bytes(self, url: str) -> int | None:
        return int(self.fetch(url, "SELECT pg_total_relation_size('audit_events')")[0][0])

    def fetch(self, url: str, text: str) -> list[tuple[Any, ...]]:
        async def go() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(url)
            try:
                return [tuple(r) for r in await conn.fetch(text)]
            finally:
                await conn.close()

        return asyncio.run(go())

    def ceiling_writes(
        self, url: str, writes: list[ceiling.PreparedWrite], conc: int, w: int, s: float
    ) -> Measure:
        return ceiling.pg_writes(
            url, writes, pool_size=min(conc, self.pool_size(w)), concurrency=conc, seconds=s
        )

    def ceiling_reads(self, url: str, kind: str, payload: Any, conc: int, w: int, s: float) -> Measure:
        pool = min(conc, self.pool_size(w))
        cap = 10_000_000
        if kind == "read":
            return ceiling.pg_reads(url, payload, pool_size=pool, concurrency=conc, seconds=s, max_ops=cap)
        if kind == "search":
            return ceiling.pg_searches(url, payload, pool_size=pool, concurrency=conc, seconds=s, max_ops=cap)
        return ceiling.pg_everything(url, payload, pool_size=pool, concurrency=conc, seconds=s, max_ops=cap)

    def prepare_everything(self, url: str, patient_id: str) -> ceiling.PreparedEverything:
        return ceiling.pg_prepare_everything(url, patient_id, 1000)


class Sqlite(Backend):
    name = "SQLite"
    key = "sqlite"

    def __init__(self, folder: Path, suffix: str) -> None:
        self.folder = folder
        self.suffix = suffix
        folder.mkdir(parents=True, exist_ok=True)

    def fresh(self, role: str, *, keep: bool = False) -> tuple[str, bool]:
        path = self.folder / f"{role}{self.suffix}.sqlite3"
        if keep and path.exists():
            return f"sqlite:///{path}", True
        for extra in ("", "-wal", "-shm"):
            Path(str(path) + extra).unlink(missing_ok=True)
        return f"sqlite:///{path}", False

    @staticmethod
    def path(url: str) -> str:
        return url.removeprefix("sqlite:///")

    def fetch(self, url: str, text: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path(url))
        try:
            return [tuple(r) for r in conn.execute(text).fetchall()]
        finally:
            conn.close()

    def audit_bytes(self, url: str) -> int | None:
        try:  # the dbstat virtual table is optional in SQLite builds
            rows = self.fetch(url, "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%audit_events%'")
        except sqlite3.Error:
            return None
        return int(rows[0][0] or 0)

    def ceiling_writes(
        self, url: str, writes: list[ceiling.PreparedWrite], conc: int, w: int, s: float
    ) -> Measure:
        return ceiling.sqlite_writes(self.path(url), writes, seconds=s)

    def ceiling_reads(self, url: str, kind: str, payload: Any, conc: int, w: int, s: float) -> Measure:
        if kind == "search":
            payload = [(p.text, p.args, p.count) for p in payload]
        elif kind == "everything":
            payload = (
                payload.patient_id,
                payload.compartment_text,
                payload.compartment_args,
                payload.outside,
            )
        return ceiling.sqlite_reads(self.path(url), kind, payload, processes=w, seconds=s, max_ops=10_000_000)

    def prepare_everything(self, url: str, patient_id: str) -> ceiling.PreparedEverything:
        return ceiling.sqlite_prepare_everything(self.path(url), patient_id, 1000)


# -- scenarios ------------------------------------------------------------------------------------


@dataclass
class Dataset:
    observation_keys: list[tuple[str, str]]
    patients: list[str]
    big_patient: str
    big_patient_resources: int
    resources: int


def dataset(db: Backend, url: str, sample: int) -> Dataset:
    obs = db.fetch(
        url, f"SELECT res_id FROM resources WHERE res_type = 'Observation' ORDER BY random() LIMIT {sample}"
    )
    patients = db.fetch(url, "SELECT res_id FROM resources WHERE res_type = 'Patient' AND NOT deleted")
    big = db.fetch(
        url,
        "SELECT patient, COUNT(*) AS n FROM resources WHERE patient IS NOT NULL GROUP BY patient ORDER BY n DESC LIMIT 1",
    )
    total = db.fetch(url, "SELECT COUNT(*) FROM resources")
    return Dataset(
        [("Observation", r[0]) for r in obs],
        [r[0] for r in patients],
        big[0][0],
        int(big[0][1]),
        int(total[0][0]),
    )


def search_params(patient: str) -> list[tuple[str, str]]:
    return [("patient", patient), ("category", "vital-signs"), ("_sort", "-date"), ("_count", "20")]


def search_path(patient: str) -> str:
    return f"/fhir/Observation?patient={patient}&category=vital-signs&_sort=-date&_count=20"


class Bench:
    def __init__(self, run: Run, bundles: list[Bundle]) -> None:
        self.run = run
        self.cfg = run.config
        self.bundles = bundles

    def record(
        self,
        db: Backend,
        size: str,
        workers: int,
        scenario: str,
        m: Measure,
        c: Measure | None,
        load: float,
        **extra: Any,
    ) -> None:
        row = {
            "db": db.name,
            "size": size,
            "workers": workers,
            "scenario": scenario,
            "load_avg": round(load, 2),
            "server": m.to_json(),
            "ceiling": c.to_json() if c else None,
            "missed": missed(scenario, m) if db.key == "pg" else [],
            "variant": ", ".join(f"{k}={v}" for k, v in getattr(db, "settings", {}).items()),
            **extra,
        }
        self.run.results.append(row)
        cs = f" | DB ceiling {c.rate:,.0f}/s p99 {c.p99_ms:.1f} ms" if c else ""
        infra.log(
            f"  {db.name} {size} w={workers} {scenario}: {m.rate:,.0f}/s p50 {m.p50_ms:.1f} p95 {m.p95_ms:.1f} "
            f"p99 {m.p99_ms:.1f} ms errors {m.errors}{cs}"
        )
        self.save()

    def warm_up(self, server: infra.Server) -> None:
        """Post the smallest bundles (two per worker, concurrently) so that every worker has
        loaded its definitions and compiled its plans before the measured ingest."""
        smallest = sorted(self.bundles, key=lambda b: b.entries)[: 2 * server.workers]
        post_bundles(
            server.url, smallest, concurrency=2 * server.workers, max_seconds=120, token=server.token
        )

    @staticmethod
    def cpu_meter(db: Backend, server: infra.Server) -> infra.CpuMeter:
        roots = {"server": server.process.pid}
        if (pm := db.cpu_root()) is not None:
            roots["db"] = pm
        return infra.CpuMeter(roots)

    @staticmethod
    def add_cpu(m: Measure, cpu: dict[str, float]) -> Measure:
        """CPU seconds of the loop (server, database, whole machine) and per operation (µs)."""
        n = m.ops or 1
        for name, seconds in cpu.items():
            m.detail[f"cpu_{name}_s"] = round(seconds, 3)
            m.detail[f"cpu_{name}_us_per_op"] = round(1e6 * seconds / n, 1)
        return m

    def save(self) -> None:
        out = self.cfg.out / f"results{self.cfg.suffix}.json"
        out.write_text(
            json.dumps(
                {
                    "results": self.run.results,
                    "loads": self.run.loads,
                    "profiles": self.run.profiles,
                    "audits": self.run.audits,
                },
                indent=1,
            )
        )

    def wrk(self, db: Backend, server: infra.Server, name: str, **kw: Any) -> Measure:
        out = self.cfg.out / "wrk"
        if self.cfg.warmup > 0:
            run_wrk(server.url, out, name + "-warmup", seconds=self.cfg.warmup, token=server.token, **kw)
        meter = self.cpu_meter(db, server).start()
        m = run_wrk(server.url, out, name, seconds=self.cfg.seconds, token=server.token, **kw)
        m.detail["authenticated"] = server.token is not None
        return self.add_cpu(m, meter.stop())

    def maybe_profile(
        self,
        db: Backend,
        size: str,
        server: infra.Server,
        scenario: str,
        m: Measure,
        again: Callable[[float], object],
    ) -> None:
        misses = missed(scenario, m) if db.key == "pg" else []
        forced = db.key == "pg" and scenario in self.cfg.profile_always
        if server.workers != self.cfg.profile_workers:
            return
        if not (self.cfg.profile and (misses or forced) and profile.ensure_py_spy()):
            return
        tag = "-whatif" if getattr(db, "settings", None) else ""
        tag += "-auth" if server.token else ""
        base = self.cfg.out / "profiles" / f"{db.key}-{size}-w{server.workers}-{scenario}{tag}"
        why = f"missed {', '.join(misses)}" if misses else "--profile-always"
        infra.log(f"  profiling {scenario} ({why}) -> {base}.svg")
        seconds = self.cfg.profile_seconds
        with profile.recording(server.process.pid, seconds, base, subprocesses=server.workers > 1):
            time.sleep(0.5)
            again(seconds)
        summary = profile.summarise(base.with_suffix(".txt"))
        self.run.profiles.append(
            {
                "db": db.name,
                "size": size,
                "workers": server.workers,
                "scenario": scenario,
                "variant": ", ".join(f"{k}={v}" for k, v in getattr(db, "settings", {}).items()),
                "svg": str(base.with_suffix(".svg").relative_to(REPO)),
                "authenticated": server.token is not None,
                **summary,
            }
        )
        self.save()

    # the read-side scenarios, on any loaded database
    def reads(self, db: Backend, url: str, size: str, workers: int, data: Path) -> None:
        cfg = self.cfg
        ds = dataset(db, url, 50_000)
        infra.log(
            f"  dataset: {ds.resources:,} resources, {len(ds.observation_keys):,} observation ids, "
            f"{len(ds.patients):,} patients, biggest patient {ds.big_patient} ({ds.big_patient_resources} resources)"
        )
        read_paths = [f"/fhir/Observation/{i}" for _, i in ds.observation_keys]
        search_paths = [search_path(p) for p in ds.patients]
        everything_path = f"/fhir/Patient/{ds.big_patient}/$everything"
        common = {"resources": ds.resources}
        cs = cfg.ceiling_seconds
        dialect = "postgresql" if db.key == "pg" else "sqlite"
        scenarios: list[tuple[str, dict[str, Any], Callable[[], Measure], dict[str, Any]]] = [
            (
                "read",
                {"connections": cfg.read_clients, "paths": read_paths},
                lambda: db.ceiling_reads(url, "read", ds.observation_keys, cfg.read_clients, workers, cs),
                {},
            ),
            (
                "search",
                {"connections": cfg.search_clients, "paths": search_paths},
                lambda: db.ceiling_reads(
                    url,
                    "search",
                    ceiling.prepare_searches(dialect, [search_params(p) for p in ds.patients], "Observation"),
                    cfg.search_clients,
                    workers,
                    cs,
                ),
                {"patients": len(ds.patients)},
            ),
            (
                "everything",
                {"connections": cfg.everything_clients, "path": everything_path},
                lambda: db.ceiling_reads(
                    url,
                    "everything",
                    db.prepare_everything(url, ds.big_patient),
                    cfg.everything_clients,
                    workers,
                    cs,
                ),
                {"patient_resources": ds.big_patient_resources},
            ),
        ]
        for scenario, kw, run_ceiling, extra in scenarios:
            # one server per scenario, and an idle database before each loop: a scenario whose
            # requests time out must not leave its backlog to the next one
            db.wait_idle(url)
            with infra.hygie_server(url, data, workers, cfg.out / "logs") as server:
                load = infra.load_average()
                name = f"{db.key}-{size}-w{workers}-{scenario}"
                m = self.wrk(db, server, name, **kw)

                def again(s: float, kw: dict[str, Any] = kw, name: str = name) -> Measure:
                    return run_wrk(
                        server.url, cfg.out / "wrk", name + "-profile", seconds=s, token=server.token, **kw
                    )

                self.maybe_profile(db, size, server, scenario, m, again)
            db.wait_idle(url)
            c = run_ceiling()
            self.record(db, size, workers, scenario, m, c, load, **common, **extra)

    def small(self, db: Backend, workers: int) -> None:
        """Fresh database: ingest the Synthea set once, reads and searches, then creates."""
        cfg = self.cfg
        url, _ = db.fresh("small")
        data = cfg.out / f"data-{db.key}"
        infra.log(f"{db.name}, {workers} worker(s): ingest {len(self.bundles)} bundles into a fresh database")
        with infra.hygie_server(url, data, workers, cfg.out / "logs") as server:
            load = infra.load_average()
            self.warm_up(server)
            load = infra.load_average()
            meter = self.cpu_meter(db, server).start()
            ingest = post_bundles(
                server.url, self.bundles, concurrency=cfg.uploaders, max_seconds=1800, token=server.token
            )
            ingest.detail["authenticated"] = server.token is not None
            self.add_cpu(ingest, meter.stop())
            if ingest.errors:
                infra.log(f"  ingest errors: {ingest.detail.get('first_errors')}")
            ingest_load = load
            if cfg.profile and missed("ingest", ingest) and db.key == "pg":
                extra = db.fresh("profile")[0]
                infra.migrate(extra, data)
                with infra.hygie_server(extra, data, workers, cfg.out / "logs") as prof_server:
                    self.warm_up(prof_server)
                    self.maybe_profile(
                        db,
                        "32k",
                        prof_server,
                        "ingest",
                        ingest,
                        lambda s: post_bundles(
                            prof_server.url,
                            self.bundles,
                            concurrency=cfg.uploaders,
                            max_seconds=s,
                            token=prof_server.token,
                        ),
                    )
        db.settle(url)
        # ceiling of the ingest: the same rows, in a scratch database
        scratch, _ = db.fresh("ceiling")
        infra.migrate(scratch, data)
        writes = [ceiling.prepare_bundle(b.body) for b in self.bundles]
        c = db.ceiling_writes(scratch, writes, cfg.uploaders, workers, 1800)
        self.record(db, "32k", workers, "ingest", ingest, c, ingest_load, bundles=len(self.bundles))
        del writes

        self.reads(db, url, "32k", workers, data)

        # creates last: they would otherwise add Patients without data to the searches
        body = json.dumps(PATIENT_TEMPLATE).encode()
        with infra.hygie_server(url, data, workers, cfg.out / "logs") as server:
            load = infra.load_average()
            kw: dict[str, Any] = {
                "connections": cfg.create_clients,
                "method": "POST",
                "path": "/fhir/Patient",
                "body": body,
            }
            m = self.wrk(db, server, f"{db.key}-32k-w{workers}-create", **kw)
            self.maybe_profile(
                db,
                "32k",
                server,
                "create",
                m,
                lambda s: run_wrk(
                    server.url,
                    cfg.out / "wrk",
                    f"{db.key}-create-profile",
                    seconds=s,
                    token=server.token,
                    **kw,
                ),
            )
        scratch, _ = db.fresh("ceiling")
        infra.migrate(scratch, data)
        writes = ceiling.prepare_creates(PATIENT_TEMPLATE, int(cfg.ceiling_seconds * 4000))
        c = db.ceiling_writes(scratch, writes, cfg.create_clients, workers, cfg.ceiling_seconds)
        self.record(db, "32k", workers, "create", m, c, load)
        self.audit_summary(db, url, "32k", workers, data)

    def audit_summary(self, db: Backend, url: str, size: str, workers: int, data: Path) -> None:
        """The audit trail the run left (rows, bytes) and how long ``hygie audit verify`` takes."""
        try:
            rows = int(db.fetch(url, "SELECT COUNT(*) FROM audit_events")[0][0])
        except (sqlite3.Error, asyncpg.PostgresError):
            return  # a server without the audit trail
        line, seconds = infra.audit_verify(url, data)
        entry = {
            "db": db.name,
            "size": size,
            "workers": workers,
            "rows": rows,
            "bytes": db.audit_bytes(url),
            "verify_seconds": round(seconds, 2),
            "verify": line,
        }
        self.run.audits.append(entry)
        infra.log(f"  audit trail: {rows:,} events; hygie audit verify took {seconds:.1f} s: {line}")
        self.save()

    def large(self, db: Backend, workers_list: list[int], reuse: bool, *, load_only: bool = False) -> None:
        """~1M resources: import the set ``copies`` times (resumable), then the read side."""
        cfg = self.cfg
        url, kept = db.fresh("large", keep=reuse)
        data = cfg.out / f"data-{db.key}"
        target = cfg.copies * len(self.bundles)
        done = 0
        if kept:
            infra.migrate(url, data)  # an empty database kept by an interrupted run gets its schema
            rows = db.fetch(url, "SELECT COUNT(*) FROM resources WHERE res_type = 'Patient'")
            done = int(rows[0][0])
        infra.log(f"{db.name} large database: {done}/{target} bundles loaded{' (reused)' if kept else ''}")
        state_file = cfg.out / f"load-{db.key}{cfg.suffix}.json"
        segments: list[dict[str, Any]] = []
        if kept and state_file.exists():
            segments = json.loads(state_file.read_text())
        elif state_file.exists():
            state_file.unlink()
        if done < target:
            todo = [self.bundles[i % len(self.bundles)] for i in range(done, target)]
            with infra.hygie_server(url, data, max(workers_list), cfg.out / "logs") as server:
                for start in range(0, len(todo), 200):
                    chunk = todo[start : start + 200]
                    load = infra.load_average()
                    m = post_bundles(
                        server.url, chunk, concurrency=cfg.uploaders, max_seconds=3600, token=server.token
                    )
                    segments.append(
                        {
                            "at": datetime.now(UTC).isoformat(timespec="seconds"),
                            "bundles": m.ops,
                            "resources": m.units,
                            "seconds": round(m.seconds, 2),
                            "errors": m.errors,
                            "load_avg": round(load, 2),
                            "workers": server.workers,
                            "uploaders": cfg.uploaders,
                        }
                    )
                    state_file.write_text(json.dumps(segments, indent=1))
                    infra.log(
                        f"  loaded {done + start + len(chunk)}/{target} bundles: {m.rate:,.0f} resources/s "
                        f"(errors {m.errors}, load {load:.1f})"
                    )
                    if m.errors:
                        infra.log(f"  first errors: {m.detail.get('first_errors')}")
        db.settle(url)
        res = sum(s["resources"] for s in segments)
        secs = sum(s["seconds"] for s in segments)
        self.run.loads.append(
            {
                "db": db.name,
                "bundles": target,
                "resources_loaded": res,
                "seconds": round(secs, 1),
                "rate": round(res / secs, 1) if secs else None,
                "segments": len(segments),
                "load_avg_mean": round(sum(s["load_avg"] for s in segments) / len(segments), 2)
                if segments
                else None,
                "errors": sum(s["errors"] for s in segments),
                "uploaders": cfg.uploaders,
            }
        )
        self.save()
        for w in [] if load_only else workers_list:
            infra.log(f"{db.name} large database, {w} worker(s): reads and searches")
            self.reads(db, url, "1M", w, data)


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs: a row (database, data, workers, scenario) of a later run
    replaces the same row of an earlier one."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    loads: dict[str, dict[str, Any]] = {}
    profiles: dict[tuple[Any, ...], dict[str, Any]] = {}
    audits: dict[tuple[Any, ...], dict[str, Any]] = {}
    for n, r in enumerate(runs):
        for row in r.get("results", []):
            key = (row["db"], row["size"], row["workers"], row["scenario"], row.get("variant", ""))
            srv = row["server"]
            m = Measure(
                srv["ops"], srv["seconds"], srv["p50_ms"], srv["p95_ms"], srv["p99_ms"], units=srv["units"]
            )
            rows[key] = {
                **row,
                "run": n,
                "missed": missed(row["scenario"], m) if row["db"] == "PostgreSQL" else [],
            }
        for ld in r.get("loads", []):
            loads[ld["db"]] = ld
        for p in r.get("profiles", []):
            profiles[(p["db"], p["size"], p["workers"], p["scenario"], p.get("variant", ""))] = p
        for a in r.get("audits", []):
            audits[(a["db"], a["size"], a["workers"])] = a
    meta = dict(runs[0].get("meta", {}))
    meta["runs"] = [
        {k: r.get("meta", {}).get(k) for k in ("started", "finished", "load_avg_start", "commit")}
        for r in runs
    ]
    return {
        "meta": meta,
        "results": list(rows.values()),
        "loads": list(loads.values()),
        "profiles": list(profiles.values()),
        "audits": list(audits.values()),
    }


@contextmanager
def backends(args: argparse.Namespace, cfg: Config) -> Iterator[list[Backend]]:
    out: list[Backend] = []
    settings = dict(kv.split("=", 1) for kv in args.pg_setting)
    names = [n.strip() for n in args.dbs.split(",") if n.strip()]
    if "pg" in names:
        with infra.postgres_cluster(args.pg_url) as admin:
            out.append(Postgres(admin, cfg.suffix, settings))
            if "sqlite" in names:
                out.append(Sqlite(cfg.out / "sqlite", cfg.suffix))
            yield out
    else:
        out.append(Sqlite(cfg.out / "sqlite", cfg.suffix))
        yield out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg-url", help="admin URL of a PostgreSQL server (default: start a throwaway cluster)")
    ap.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="what-if: ALTER DATABASE … SET NAME = VALUE on the bench databases (rows are labelled with it)",
    )
    ap.add_argument(
        "--pin",
        metavar="REF",
        help="run the server (and the ceilings) on the src/ of this commit, extracted under bench/out, "
        "so that edits of the work tree during the run do not change the code measured",
    )
    ap.add_argument(
        "--dbs", default="pg,sqlite", help="databases to run: pg, sqlite or both (default pg,sqlite)"
    )
    ap.add_argument(
        "--synthea", type=Path, default=DEFAULT_SYNTHEA, help="folder of Synthea transaction bundles"
    )
    ap.add_argument("--workers", default="1,2", help="uvicorn worker counts to measure (default 1,2)")
    ap.add_argument("--quick", action="store_true", help="small data, a few seconds per scenario")
    ap.add_argument("--seconds", type=float, help="measured seconds per scenario (default 12, quick 3)")
    ap.add_argument("--ceiling-seconds", type=float, help="seconds per ceiling loop (default 8, quick 2)")
    ap.add_argument(
        "--copies", type=int, help="imports of the set for the large database (default 32, quick 2)"
    )
    ap.add_argument("--uploaders", type=int, default=4, help="concurrent transaction uploaders (default 4)")
    ap.add_argument("--reuse", action="store_true", help="keep an already (partly) loaded large database")
    ap.add_argument("--skip-small", action="store_true", help="skip the fresh-database scenarios")
    ap.add_argument("--skip-large", action="store_true", help="skip the ~1M-resource database")
    ap.add_argument("--load-only", action="store_true", help="only (re)load the large databases")
    ap.add_argument(
        "--profile", action="store_true", help="py-spy the server on scenarios that miss a target"
    )
    ap.add_argument("--profile-workers", type=int, default=1, help="profile with this worker count only")
    ap.add_argument(
        "--profile-always",
        default="",
        metavar="SCENARIOS",
        help="with --profile, also profile these PostgreSQL scenarios (e.g. read,search) when they meet their targets",
    )
    ap.add_argument(
        "--max-load", type=float, default=0.8, help="wait (at most 5 min) for a lower load average first"
    )
    ap.add_argument(
        "--out", type=Path, default=REPO / "bench" / "out", help="output folder (default bench/out)"
    )
    ap.add_argument(
        "--report", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown report to update"
    )
    ap.add_argument("--no-report", action="store_true", help="do not touch the Markdown report")
    ap.add_argument(
        "--report-from",
        type=Path,
        nargs="+",
        help="only rewrite the report from results JSON files (rows of later files replace earlier ones)",
    )
    args = ap.parse_args(argv)
    if args.pin and not os.environ.get("HYGIE_BENCH_PINNED"):
        src = infra.pin_sources(args.pin, args.out.resolve())
        env = {**os.environ, "HYGIE_BENCH_PINNED": src.parent.name, "PYTHONPATH": str(src)}
        infra.log(f"pinned the server's code to {args.pin}: {src}")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    if args.report_from:
        data = merge([json.loads(f.read_text()) for f in args.report_from])
        report.write(args.report, data, data["meta"], TARGETS)
        return 0

    quick = args.quick
    cfg = Config(
        seconds=args.seconds or (3 if quick else 12),
        warmup=1 if quick else 3,
        ceiling_seconds=args.ceiling_seconds or (2 if quick else 8),
        bundles_limit=10 if quick else None,
        copies=args.copies or (2 if quick else 32),
        uploaders=args.uploaders,
        read_clients=64,
        create_clients=32,
        search_clients=32,
        everything_clients=4,
        out=args.out.resolve(),
        profile=args.profile,
        profile_seconds=5 if quick else 12,
        profile_workers=args.profile_workers,
        suffix="_quick" if quick else "",
        profile_always=tuple(x.strip() for x in args.profile_always.split(",") if x.strip()),
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    infra.ensure_wrk()
    bundles = load_bundles(args.synthea, cfg.bundles_limit)
    infra.log(f"{len(bundles)} bundles, {sum(b.entries for b in bundles):,} resources, from {args.synthea}")
    load = infra.wait_for_quiet(args.max_load, 10 if quick else 300)
    started = datetime.now(UTC)
    meta: dict[str, Any] = {
        **infra.machine_facts(),
        "started": started.isoformat(timespec="seconds"),
        "load_avg_start": round(load, 2),
        "quick": quick,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()},
        "workers": workers,
    }
    infra.log(f"load average at start: {load:.2f}")
    run = Run(cfg)
    bench = Bench(run, bundles)
    with backends(args, cfg) as dbs:
        for db in dbs:
            if isinstance(db, Postgres):
                meta["postgres"] = infra.pg_facts(db.admin)
        meta["sqlite"] = sqlite3.sqlite_version
        for db in dbs:
            if not (args.skip_small or args.load_only):
                for w in workers:
                    bench.small(db, w)
            if not args.skip_large:
                bench.large(db, workers, args.reuse, load_only=args.load_only)
    meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    result = {
        "meta": meta,
        "results": run.results,
        "loads": run.loads,
        "profiles": run.profiles,
        "audits": run.audits,
    }
    stamp = started.strftime("%Y%m%dT%H%M%S")
    path = cfg.out / f"results{cfg.suffix}-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))
    infra.log(f"results: {path}")
    if not args.no_report and not args.load_only:
        report.write(args.report, result, meta, TARGETS)
        infra.log(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
