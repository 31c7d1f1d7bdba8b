"""Processes the benchmark drives: a PostgreSQL cluster (given or throwaway), databases, and
``hygie serve``. Everything started here is stopped by the context managers that started it."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
CLK_TCK = os.sysconf("SC_CLK_TCK")

# the backend client the benchmark registers in every database whose server requires a token
BENCH_CLIENT_ID = "hygie-bench"
BENCH_SCOPE = "system/*.cruds"

# postmaster pid of the throwaway clusters, by admin URL (to account for the database's CPU)
POSTMASTERS: dict[str, int] = {}


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
        url = f"postgresql://hygie@127.0.0.1:{port}/postgres"
        with contextlib.suppress(OSError, ValueError, IndexError):
            POSTMASTERS[url] = int((data / "postmaster.pid").read_text().split()[0])
        yield url
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


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds user + system) of a live process, from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may contain spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(root: int) -> dict[int, float]:
    """CPU seconds used so far by ``root`` and every live descendant, by pid."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    out: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in out:
            out[pid] = stats[pid][1]
            todo.extend(p for p, (ppid, _) in stats.items() if ppid == pid)
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU seconds used by process trees (the server, the database) and by the whole machine
    between ``start`` and ``stop``; processes that start meanwhile count from zero."""

    roots: dict[str, int]
    before: dict[str, dict[int, float]] = field(default_factory=dict)
    machine_before: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)

    def start(self) -> CpuMeter:
        self.before = {name: process_tree(pid) for name, pid in self.roots.items()}
        self.machine_before = machine_busy_seconds()
        return self

    def stop(self) -> dict[str, float]:
        for name, pid in self.roots.items():
            now = process_tree(pid)
            self.seconds[name] = sum(v - self.before[name].get(p, 0.0) for p, v in now.items())
        self.seconds["machine"] = machine_busy_seconds() - self.machine_before
        return self.seconds


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
    token: str | None = None  # bearer token when the server requires one

    @property
    def fhir(self) -> str:
        return self.url + "/fhir"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

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
        if _requires_token(server):
            server.token = service_token(database_url, data_dir, env)
            _check_token(server)
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


def _requires_token(server: Server) -> bool:
    """Whether the FHIR API answers 401 without a bearer token (servers before the trust layer
    do not: they are measured as they are)."""
    try:
        with urllib.request.urlopen(server.fhir + "/Patient?_count=1", timeout=30):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401


def _hygie_cli(args: list[str], database_url: str, data_dir: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(VENV_BIN / "hygie"), *args, "--database-url", database_url, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**env, "HYGIE_DATABASE_URL": database_url, "HYGIE_DATA_DIR": str(data_dir)},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"hygie {' '.join(args[:2])} failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def service_token(database_url: str, data_dir: Path, env: dict[str, str]) -> str:
    """Register the benchmark's backend client (once per database) and issue a token for the
    server whose environment is ``env``: its ``iss``/``aud`` are that server's HYGIE_BASE_URL."""
    try:
        _hygie_cli(
            [
                "client",
                "add",
                "--name",
                "bench",
                "--scope",
                BENCH_SCOPE,
                "--client-id",
                BENCH_CLIENT_ID,
                "--secret",
            ],
            database_url,
            data_dir,
            env,
        )
    except RuntimeError as exc:
        if "already" not in str(exc):
            raise
    out = _hygie_cli(
        ["client", "token", "--client-id", BENCH_CLIENT_ID, "--minutes", "1440"], database_url, data_dir, env
    )
    token: str = json.loads(out)["access_token"]
    return token


def _check_token(server: Server) -> None:
    request = urllib.request.Request(server.fhir + "/Patient?_count=1", headers=server.headers)
    with urllib.request.urlopen(request, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"the benchmark token is refused: {resp.status}")


def audit_verify(database_url: str, data_dir: Path) -> tuple[str, float]:
    """``hygie audit verify`` on the database: its summary line and how long it took (s)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [
            str(VENV_BIN / "hygie"),
            "audit",
            "verify",
            "--database-url",
            database_url,
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if (
        proc.stdout + proc.stderr
    ).strip() else f"exit {proc.returncode}", seconds


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
