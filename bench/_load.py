"""Load generators: ``wrk`` with ``bench/lua/requests.lua`` for reads, searches and creates, and a
few Python threads posting whole transaction Bundles (a handful of big requests, so the client
costs little next to the server)."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

LUA = Path(__file__).resolve().parent / "lua" / "requests.lua"


@dataclass
class Measure:
    """One measured loop: a rate and the latency distribution of its operations."""

    ops: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int = 0
    units: int = 0  # resources for ingest (otherwise == ops)
    concurrency: int = 0
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return (self.units or self.ops) / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "errors": self.errors,
            "units": self.units,
            "concurrency": self.concurrency,
            **self.detail,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def measure_from_latencies(
    latencies_s: list[float], seconds: float, errors: int, units: int, concurrency: int
) -> Measure:
    lat = sorted(x * 1000 for x in latencies_s)
    return Measure(
        ops=len(latencies_s),
        seconds=seconds,
        p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95),
        p99_ms=percentile(lat, 99),
        errors=errors,
        units=units,
        concurrency=concurrency,
    )


# -- wrk ------------------------------------------------------------------------------------------


def run_wrk(
    base_url: str,
    out_dir: Path,
    name: str,
    *,
    connections: int,
    seconds: float,
    paths: list[str] | None = None,
    path: str = "/fhir/metadata",
    method: str = "GET",
    body: bytes | None = None,
    threads: int = 2,
    token: str | None = None,
    cookie: str | None = None,
) -> Measure:
    """Run wrk for ``seconds`` against ``base_url``: requests pick a random line of ``paths`` (or
    send ``path``); ``body`` is POSTed with ``Prefer: return=minimal``; every request carries
    ``Authorization: Bearer token`` when a token is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_PATH": path,
        "BENCH_OUT": str(out_dir / f"{name}.wrk.json"),
        "BENCH_TOKEN": token or "",
        "BENCH_COOKIE": cookie or "",
    }
    if paths:
        paths_file = out_dir / f"{name}.paths"
        paths_file.write_text("\n".join(paths) + "\n")
        env["BENCH_PATHS"] = str(paths_file)
    if body is not None:
        body_file = out_dir / f"{name}.body.json"
        body_file.write_bytes(body)
        env["BENCH_BODY"] = str(body_file)
    result_file = Path(env["BENCH_OUT"])
    result_file.unlink(missing_ok=True)
    threads = max(1, min(threads, connections))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    (out_dir / f"{name}.wrk.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-1000:]}")
    data = json.loads(result_file.read_text())
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return Measure(
        ops=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        errors=errors,
        concurrency=connections,
        detail={"error_kinds": {k: data[k] for k in ("connect", "read", "write", "status", "timeout")}},
    )


# -- transaction uploads ----------------------------------------------------------------------------


@dataclass
class Bundle:
    name: str
    body: bytes
    entries: int
    patient_entries: int


def load_bundles(folder: Path, limit: int | None = None) -> list[Bundle]:
    files = sorted(folder.glob("*.json.gz"))
    if limit is not None:
        files = files[:limit]
    if not files:
        raise FileNotFoundError(f"no *.json.gz bundles in {folder}")
    out = []
    for f in files:
        body = gzip.decompress(f.read_bytes())
        data = orjson.loads(body)
        entries = data.get("entry", [])
        patients = sum(1 for e in entries if e.get("resource", {}).get("resourceType") == "Patient")
        out.append(Bundle(f.name, body, len(entries), patients))
    return out


def post_bundles(
    base_url: str,
    bundles: list[Bundle],
    *,
    concurrency: int,
    max_seconds: float,
    progress_every: int = 0,
    on_progress: object = None,
    token: str | None = None,
) -> Measure:
    """POST each bundle once to ``/fhir`` from ``concurrency`` threads, stopping early after
    ``max_seconds`` (with ``Authorization: Bearer token`` when a token is given). Errors are
    non-2xx answers and failed connections."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors: list[str] = []
    done_entries = [0]
    deadline = time.monotonic() + max_seconds
    headers = {
        "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json",
        "Prefer": "return=minimal",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=600)
        while time.monotonic() < deadline:
            with lock:
                i = next_index[0]
                if i >= len(bundles):
                    break
                next_index[0] += 1
            b = bundles[i]
            start = time.perf_counter()
            try:
                conn.request("POST", "/fhir", body=b.body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=600)
                status, payload = 0, str(exc).encode()
            elapsed = time.perf_counter() - start
            with lock:
                if 200 <= status < 300:
                    latencies.append(elapsed)
                    done_entries[0] += b.entries
                else:
                    errors.append(f"{b.name}: {status} {payload[:300]!r}")
                if (
                    progress_every
                    and callable(on_progress)
                    and (len(latencies) + len(errors)) % progress_every == 0
                ):
                    on_progress(len(latencies) + len(errors))
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + 700)
    seconds = time.perf_counter() - start
    m = measure_from_latencies(latencies, seconds, len(errors), done_entries[0], concurrency)
    m.detail["bundles"] = len(latencies)
    if errors:
        m.detail["first_errors"] = errors[:3]
    return m
