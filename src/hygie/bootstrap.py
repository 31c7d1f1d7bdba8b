"""The one place that picks implementations from configuration (STYLE.md §1).

``sqlite:///…`` selects the embedded store, ``postgresql://…`` the production one; blobs go to a
local folder. Both stores are wrapped so that Binary contents live in the blob store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hygie.auth.accounts import AccountService
from hygie.auth.principals import BearerAuthenticator, PrincipalResolver
from hygie.auth.server import AuthorizationServer
from hygie.auth.sign_in import AccountSignIn
from hygie.config import Settings
from hygie.domain.access import AccessPolicy
from hygie.domain.audit import AuditLog
from hygie.domain.break_glass import BreakGlassService
from hygie.domain.eprescription.medicines import catalogue
from hygie.domain.outbox import Outbox
from hygie.domain.policy import CategoryMatrix
from hygie.fhir.interactions import FhirService, Limits
from hygie.fhir.operations.eprescription import PrescriptionServices
from hygie.fhir.operations.identity import IdentityServices, RegisterFile
from hygie.fhir.operations.trust import TrustServices
from hygie.fhir.search import parse_search
from hygie.migrate import migrate
from hygie.ports import BlobStore, KeyValueStore, ResourceStore
from hygie.store.probes import Prober
from hygie.store.service import StoreService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import FileBlobStore

__all__ = ["Runtime", "open_runtime", "open_store"]


def clock_us() -> int:
    return time.time_ns() // 1000


def _memory_kv() -> KeyValueStore:
    from hygie.stores.kv import MemoryKeyValueStore  # noqa: PLC0415

    return MemoryKeyValueStore()


@dataclass
class Runtime:
    settings: Settings
    store: ResourceStore
    blobs: BlobStore
    service: FhirService
    kv: KeyValueStore = field(default_factory=_memory_kv)
    auth: AuthorizationServer | None = None
    accounts: AccountService | None = None
    outbox: Outbox | None = None
    break_glass: BreakGlassService | None = None

    def __post_init__(self) -> None:
        if self.auth is None:
            self.auth = AuthorizationServer(
                self.kv, issuer=self.settings.base_url, fhir_base=self.settings.fhir_base, clock=clock_us
            )
        if self.accounts is None:
            self.accounts = AccountService(self.kv, clock_us)
        if self.outbox is None:
            self.outbox = Outbox(self.kv, clock_us)
        if self.break_glass is None:
            self.break_glass = BreakGlassService(self.kv, self.outbox, clock_us)
        self.resolver = PrincipalResolver(self.directory_read, roles=self._roles)
        if self.service.trust is None:
            self.service.trust = TrustServices(self.break_glass, self.kv, clock_us)
        if self.service.prescriptions is None:
            # the unverified e-prescription facts (number system…): HYGIE_EPRESCRIPTION_*
            self.service.prescriptions = PrescriptionServices(
                catalogue(), self.settings.eprescription, self.kv, clock_us
            )
        if self.service.identity is None:
            register = RegisterFile(self.settings.insi_register_path)
            self.service.identity = IdentityServices(register, self.outbox, clock_us)
        self.app_store = self._app_store()

    def _app_store(self) -> StoreService:
        """The Store santé: its records beside the OAuth clients, its probes on the network."""
        assert self.auth is not None
        prober = Prober(
            allow_private=self.settings.store_probe_allow_private,
            timeout_s=self.settings.store_probe_timeout_s,
        )
        return StoreService(
            self.kv, self.auth.clients, clock_us, prober=prober, written_by=self._written_by_app
        )

    async def _written_by_app(self, client_id: str) -> list[dict[str, Any]]:
        """A sample of what an app wrote lately (its provenance, ``meta.source``), read through the
        access policy as the store's probe — the reads are in the audit trail."""
        from hygie.domain.access import Caller  # noqa: PLC0415
        from hygie.domain.provenance import app_source  # noqa: PLC0415
        from hygie.web.portal.door import Door  # noqa: PLC0415

        door, caller = Door(self.service), Caller.operator("store-probe")
        out: list[dict[str, Any]] = []
        for resource_type in ("Observation", "DocumentReference"):
            params = [("_source", app_source(client_id)), ("_sort", "-_lastUpdated"), ("_count", "10")]
            out.extend(await door.search(caller, resource_type, params, limit=10))
        return out

    @property
    def audit(self) -> AuditLog:
        return self.service.audit

    async def directory_read(self, resource_type: str, id: str) -> dict[str, Any] | None:
        """Directory entries (outside every patient record) for resolving who a token is."""
        import orjson  # noqa: PLC0415

        stored = await self.store.read(resource_type, id)
        if stored is None or stored.deleted:
            return None
        found: dict[str, Any] = orjson.loads(stored.content)
        return found

    async def _roles(self, practitioner_id: str) -> list[dict[str, Any]]:
        import orjson  # noqa: PLC0415

        query = parse_search("PractitionerRole", [("practitioner", f"Practitioner/{practitioner_id}")])
        page = await self.store.search(query, now_us=clock_us())
        return [orjson.loads(r.content) for r in page.resources]

    @property
    def authenticate(self) -> BearerAuthenticator:
        """The FHIR API's bearer-token check, with the break-glass accesses of professionals."""
        assert self.auth is not None and self.break_glass is not None
        return BearerAuthenticator(self.auth.bearer, self.resolver, self.break_glass.open_for)

    @property
    def sign_in(self) -> AccountSignIn:
        assert self.accounts is not None
        return AccountSignIn(self.accounts, clock_us)

    async def close(self) -> None:
        await self.service.audit.close()
        await self.store.close()


async def open_kv(url: str, raw: ResourceStore) -> KeyValueStore:
    """The key-value store beside the resources: same database, its own table."""
    if url.startswith("sqlite:"):
        from hygie.stores.kv import SqliteKeyValueStore  # noqa: PLC0415
        from hygie.stores.sqlite import SqliteResourceStore  # noqa: PLC0415

        assert isinstance(raw, SqliteResourceStore)
        if raw.path == ":memory:":
            return SqliteKeyValueStore(":memory:", connection=raw.writer)
        return SqliteKeyValueStore(raw.path)
    from hygie.stores.kv import PostgresKeyValueStore  # noqa: PLC0415
    from hygie.stores.postgres import PostgresResourceStore  # noqa: PLC0415

    assert isinstance(raw, PostgresResourceStore)
    kv = PostgresKeyValueStore(raw.pool)
    await kv.ensure_schema()
    return kv


async def open_store(url: str, *, pool_size: int = 10, run_migrations: bool = True) -> ResourceStore:
    """Open the resource store named by ``url``, migrating its schema first."""
    if url.startswith("sqlite:"):
        from hygie.stores.sqlite import SqliteResourceStore  # noqa: PLC0415

        if url in ("sqlite://", "sqlite:///:memory:"):
            store = SqliteResourceStore(":memory:")
            store.create_schema()
            return store
        if run_migrations:
            migrate(url)
        return SqliteResourceStore.from_url(url)
    if url.startswith(("postgresql", "postgres:")):
        from hygie.stores.postgres import PostgresResourceStore  # noqa: PLC0415

        if run_migrations:
            migrate(url)
        return await PostgresResourceStore.connect(url, max_size=pool_size)
    raise ValueError(f"unsupported database URL {url!r} (sqlite:/// or postgresql://)")


def limits_from(settings: Settings) -> Limits:
    return Limits(
        default_count=settings.default_count,
        max_count=settings.max_count,
        max_includes=settings.max_includes,
        max_bundle_entries=settings.max_bundle_entries,
        everything_page=settings.everything_page,
        majority_age=settings.majority_age,
    )


async def open_audit(url: str) -> AuditLog:
    """The audit trail in the same database as the resources (so that a write and its audit
    record commit together); in memory for an in-memory database."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        from hygie.stores.audit_memory import MemoryAuditLog  # noqa: PLC0415

        return MemoryAuditLog()
    from hygie.stores.audit_sql import open_audit_log  # noqa: PLC0415

    return await open_audit_log(url)


async def open_runtime(settings: Settings, *, policy: AccessPolicy | None = None) -> Runtime:
    raw = await open_store(settings.database_url, pool_size=settings.pg_pool_size)
    blobs = FileBlobStore(settings.blob_dir, settings.blob_key)
    store = BinaryOffloadingStore(raw, blobs)
    if policy is None and settings.category_matrix is not None:
        # the operator's profession × document-class table in place of the shipped default
        policy = AccessPolicy(
            lambda patient, actors, now: store.relations(patient, actors, now_us=now),
            clock_us,
            CategoryMatrix.from_json(settings.category_matrix.read_bytes()),
        )
    service = FhirService(
        store,
        base_url=settings.fhir_base,
        policy=policy,
        audit=await open_audit(settings.database_url),
        limits=limits_from(settings),
        clock=clock_us,
    )
    kv = await open_kv(settings.database_url, raw)
    return Runtime(settings, store, blobs, service, kv)
