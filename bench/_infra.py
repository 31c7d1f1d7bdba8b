"""Processes the benchmark drives: a PostgreSQL cluster (given or throwaway), databases, and
``hygie serve``. Everything started here is stopped by the context managers that started it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until the 1-minute load average is below ``max_load``."""
    deadline = time.monotonic() + max_wait
    load = load_average()
    while load > max_load and time.monotonic() < deadline:
        time.sleep(5)
        load = load_average()
    return load


# -- PostgreSQL ---------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _run_as_pg(args: list[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        _ensure_pg_user()
        args = ["runuser", "-u", "hygiepg", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def postgres_cluster(url: str | None) -> Iterator[str]:
    """Yield an admin URL: ``url`` itself, or a throwaway cluster (initdb, random port, stopped
    and removed on exit) configured like ``scripts/test`` with durable commits."""
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="hygie-bench-pg."))
    port = free_port()
    if os.geteuid() == 0:
        folder.chmod(0o755)
        _ensure_pg_user()
        shutil.chown(folder, "hygiepg")
    data = folder / "data"
    try:
        _run_as_pg(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "hygie",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c max_connections=200 "
            "-c shared_buffers=512MB -c fsync=on -c synchronous_commit=on"
        )
        _run_as_pg(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o", opts, "start"]
        )
        log(f"throwaway PostgreSQL cluster on 127.0.0.1:{port} ({folder})")
        yield f"postgresql://hygie@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as_pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def _ensure_pg_user() -> None:
    if subprocess.run(["id", "hygiepg"], capture_output=True, check=False).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "hygiepg"], check=True
        )


async def _admin(admin_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        for stmt in statements:
            await conn.execute(stmt)
    finally:
        await conn.close()


async def _database_exists(admin_url: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def fresh_pg_database(admin_url: str, name: str, *, keep: bool = False) -> tuple[str, bool]:
    """The URL of database ``name``, created empty (or kept as it is when ``keep`` and it exists).
    Returns (url, kept)."""
    if keep and asyncio.run(_database_exists(admin_url, name)):
        return with_database(admin_url, name), True
    asyncio.run(
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    )
    return with_database(admin_url, name), False


def admin(admin_url: str, *statements: str) -> None:
    asyncio.run(_admin(admin_url, *statements))


def drop_pg_database(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_facts(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        out = {"version": str(await conn.fetchval("SHOW server_version"))}
        for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections", "wal_level"):
            out[name] = str(await conn.fetchval(f"SHOW {name}"))
        return out
    finally:
        await conn.close()


def pg_facts(url: str) -> dict[str, str]:
    return asyncio.run(_pg_facts(url))


def migrate(url: str, data_dir: Path) -> None:
    subprocess.run(
        [str(VENV_BIN / "hygie"), "migrate", "--database-url", url, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
    )


# -- the machine ----------------------------------------------------------------------------------


def machine_facts() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": code_commit(),
        "wrk": (wrk.stdout or wrk.stderr or "?").splitlines()[0].split(" [")[0],
    }


def pin_sources(ref: str, out: Path) -> Path:
    """Extract ``src/`` of commit ``ref`` under ``out`` and return that ``src`` folder."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = out / f"src-{sha}"
    if not (folder / "src" / "hygie").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    (folder / "COMMIT").write_text(sha + "\n")
    return folder / "src"


def code_commit() -> str:
    """The commit of the hygie code this process imports (a pinned copy, or the work tree)."""
    import hygie  # noqa: PLC0415

    pinned = Path(hygie.__file__).resolve().parents[2] / "COMMIT"
    if pinned.exists():
        return pinned.read_text().strip() + " (pinned copy of src/)"
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return commit + (" (work tree: src/ has uncommitted changes)" if dirty else "")


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    log("wrk is missing: apt-get install -y wrk")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*prefix, "apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run([*prefix, "apt-get", "update"], check=False, capture_output=True)
        subprocess.run([*prefix, "apt-get", "install", "-y", "wrk"], check=True, capture_output=True)


# -- hygie serve ----------------------------------------------------------------------------------


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: int
    pids: list[int] = field(default_factory=list)

    @property
    def fhir(self) -> str:
        return self.url + "/fhir"

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the uvicorn workers, or the server itself with one."""
        if self.workers <= 1:
            return [self.process.pid]
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        kids = [int(p) for p in out]
        # uvicorn's multiprocess supervisor has a resource tracker child too: keep the pythons
        # that import the app (their command line is the spawn main)
        return [p for p in kids if "multiprocessing.resource_tracker" not in _cmdline(p)] or kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextlib.contextmanager
def hygie_server(database_url: str, data_dir: Path, workers: int, log_dir: Path) -> Iterator[Server]:
    """Run ``hygie serve`` on a free loopback port until the block ends."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{port}.log"
    env = {**os.environ, "HYGIE_BASE_URL": f"http://127.0.0.1:{port}"}
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "hygie"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--database-url",
                database_url,
                "--data-dir",
                str(data_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path, workers)
    try:
        _wait_ready(server, timeout=120)
        if workers > 1:
            time.sleep(1.0)  # let every worker finish its start-up
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"hygie serve exited: see {server.log_path}:\n{server.log_path.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(server.fhir + "/metadata", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"hygie serve did not answer /fhir/metadata within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
