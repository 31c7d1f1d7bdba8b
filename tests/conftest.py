"""Shared fixtures: a FHIR service on each store backend, and an HTTP client on the real app.

``backend`` parametrises tests over ``sqlite`` and ``postgres``. PostgreSQL comes from the
throwaway cluster that ``scripts/test`` starts (``HYGIE_TEST_POSTGRES_URL``); each xdist worker
gets its own database, emptied before every test. Outside CI, PostgreSQL tests are skipped when
no cluster is configured; in CI (``CI=true``) that is an error.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime
from hygie.config import Settings, load_settings
from hygie.fhir.interactions import FhirService, Limits
from hygie.ports import ResourceStore
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.sql import STORE_TABLES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():  # a fresh clone sits beside shared/
    SHARED = Path(os.environ.get("HYGIE_SHARED_DATA", "/work/shared/data"))

# the directory search's gazetteer reads the full commune list when the shared data is there
# (HYGIE_COMMUNES_CSV, docs/operations.md); otherwise the package's extract
_COMMUNES = SHARED / "fr" / "communes" / "communes-geo-2024.csv"
if _COMMUNES.is_file():
    os.environ.setdefault("HYGIE_COMMUNES_CSV", str(_COMMUNES))

PG_URL = os.environ.get("HYGIE_TEST_POSTGRES_URL")
BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared test data not found at {SHARED} (set HYGIE_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A migrated database for this xdist worker; yields its URL."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("HYGIE_TEST_POSTGRES_URL is not set: run the suite through scripts/test")
        pytest.skip("no PostgreSQL test cluster (run scripts/test)")
    import psycopg

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"hygie_test_{worker}_{os.getpid()}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    from hygie.migrate import migrate

    migrate(url)
    yield url
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def open_backend(backend: str, request: pytest.FixtureRequest) -> ResourceStore:
    if backend == "memory":
        from hygie.stores.memory import MemoryResourceStore

        return MemoryResourceStore()
    if backend == "sqlite":
        from hygie.stores.sqlite import SqliteResourceStore

        store = SqliteResourceStore(":memory:")
        store.create_schema()
        return store
    url = request.getfixturevalue("pg_database")
    from hygie.stores.postgres import PostgresResourceStore

    pg = await PostgresResourceStore.connect(url, min_size=1, max_size=4)
    from hygie.stores.audit_sql import AUDIT_TABLES

    async with pg.pool.acquire() as conn, conn.transaction():
        # as the superuser, bypassing the audit trail's append-only triggers (tests only)
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(f"TRUNCATE {', '.join([*STORE_TABLES, *AUDIT_TABLES])} RESTART IDENTITY")
    return pg


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ResourceStore]:
    raw = await open_backend(request.param, request)
    wrapped = BinaryOffloadingStore(raw, MemoryBlobStore())
    yield wrapped
    await wrapped.close()


BASE = "http://testserver/fhir"


@pytest.fixture
def limits() -> Limits:
    return Limits(
        default_count=20, max_count=200, max_includes=50, max_bundle_entries=2000, everything_page=500
    )


@pytest.fixture
def service(store: ResourceStore, limits: Limits) -> FhirService:
    """The FHIR service on this test's store, its audit trail in the same database on PostgreSQL
    (so that writes and their audit records commit together), in memory otherwise."""
    from hygie.domain.audit import AuditLog

    audit: AuditLog | None = None
    pool = getattr(getattr(store, "inner", None), "pool", None)
    if pool is not None:
        from hygie.stores.audit_sql import PostgresAuditLog

        audit = PostgresAuditLog(pool)
    return FhirService(store, base_url=BASE, limits=limits, audit=audit)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, database_url="sqlite://", max_body_bytes=1_000_000)


@pytest.fixture
def runtime(service: FhirService, settings: Settings) -> Runtime:
    """The runtime behind the test app: this test's store, an in-memory key-value store."""
    return Runtime(settings, service.store, MemoryBlobStore(), service)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real ASGI app (FHIR endpoint included) over this test's store,
    signed in as a SMART backend service with every ``system/`` scope."""
    from hygie.web.app import create_app

    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=await bearer(runtime)
        ) as c,
    ):
        yield c
