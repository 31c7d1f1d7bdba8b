"""The small interfaces between the FHIR/domain core and the outside world.

Each port is a :class:`typing.Protocol` with an in-memory twin (``stores/memory.py``) and
production implementations (``stores/sqlite.py``, ``stores/postgres.py``, ``stores/files.py``).
``bootstrap.py`` picks them from configuration. The core imports only this module.

Resource content travels as the exact JSON bytes stored (``meta.versionId`` and
``meta.lastUpdated`` already set), so a read never re-serialises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from hygie.fhir.index_model import IndexEntries
from hygie.fhir.search import SearchQuery

__all__ = [
    "BlobStore",
    "HistoryPage",
    "KeyValueStore",
    "ResourceKey",
    "ResourceStore",
    "SearchPage",
    "StoreTransaction",
    "StoredResource",
    "WriteOp",
]

ResourceKey = tuple[str, str]  # (resource type, id)


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of a resource as stored."""

    resource_type: str
    id: str
    version: int
    last_updated: int  # microseconds since the epoch, UTC
    deleted: bool
    content: bytes  # JSON; for a deletion, the last live content
    rid: int = 0  # the store's internal row id (stable across versions)
    method: str = ""  # POST / PUT / PATCH / DELETE (history only)
    patient: str | None = None  # the patient compartment (partition key), when the store knows it


@dataclass(frozen=True, slots=True)
class WriteOp:
    """A new version to write: ``expected_version`` 0 means "must not exist (or be deleted)"."""

    resource_type: str
    id: str
    version: int
    last_updated: int
    content: bytes
    index: IndexEntries | None  # None for a deletion
    method: str
    deleted: bool = False
    patient: str | None = None


@dataclass(slots=True)
class SearchPage:
    """One page of search results, in order, with cursors to move from it."""

    resources: list[StoredResource]
    total: int | None = None
    next_cursor: str | None = None
    prev_cursor: str | None = None


@dataclass(slots=True)
class HistoryPage:
    entries: list[StoredResource]
    next_cursor: str | None = None
    total: int | None = None


class StoreTransaction(Protocol):
    """One unit of work: every write in it commits together or not at all."""

    async def read_for_update(self, resource_type: str, id: str) -> StoredResource | None:
        """The current version (deleted or not), locked until the transaction ends."""
        ...

    async def write(self, op: WriteOp) -> None:
        """Store a new version. Raises ``hygie.fhir.outcome.Conflict`` if that version exists —
        at once, or (PostgreSQL buffers new resources to write them in bulk) at the latest when
        the transaction commits, which then fails as a whole."""
        ...

    async def search_keys(self, query: SearchQuery, limit: int) -> list[ResourceKey]:
        """Keys of live resources matching ``query`` (used by conditional operations), seeing this
        transaction's own writes."""
        ...

    async def expunge(self, resource_type: str, id: str) -> list[StoredResource]:
        """Erase a resource physically: its current row, every version in the history and every
        index, reference and access-relation row — nothing says it ever existed (a read is then
        a 404, not a 410). Returns the erased versions, oldest first, content as stored (empty
        when there was nothing). Only for the end of a retention period
        (``domain/ens/purge.py``): a FHIR ``DELETE`` keeps the history, as the API promises."""
        ...

    async def naming(self, resource_type: str, texts: Sequence[str]) -> set[str]:
        """Which of ``texts`` appear in the stored content of some version (current or past) of
        a resource of this type, seeing this transaction's own erasures: whether a
        content-addressed blob is still used by a Binary (``stores/binaries.py``)."""
        ...


class ResourceStore(Protocol):
    """Versioned FHIR resources with their search index."""

    async def read(self, resource_type: str, id: str) -> StoredResource | None:
        """The current version, deleted or not; None if it never existed."""
        ...

    async def vread(self, resource_type: str, id: str, version: int) -> StoredResource | None: ...

    async def read_many(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        """The live current versions of these resources (missing and deleted ones left out)."""
        ...

    async def search(self, query: SearchQuery, *, now_us: int) -> SearchPage: ...

    async def count(self, query: SearchQuery, *, now_us: int) -> int: ...

    async def references_from(
        self, rids: Sequence[int], source_type: str, param: str, target_type: str | None
    ) -> list[ResourceKey]:
        """Targets referenced by these resources through ``param`` (for ``_include``)."""
        ...

    async def targets_of(self, rids: Sequence[int]) -> list[ResourceKey]:
        """Every local resource these resources reference through a search parameter."""
        ...

    async def referencing(
        self, keys: Sequence[ResourceKey], source_type: str, param: str, limit: int
    ) -> list[StoredResource]:
        """Live resources of ``source_type`` pointing at any of ``keys`` via ``param``."""
        ...

    async def compartment(
        self,
        patient_id: str,
        types: Sequence[str] | None,
        since_us: int | None,
        after_rid: int,
        limit: int,
    ) -> list[StoredResource]:
        """Live resources in the patient's compartment (the Patient itself included), by rid."""
        ...

    async def lastn(
        self, query: SearchQuery, *, group: str, by: str, per_group: int, now_us: int
    ) -> list[StoredResource]:
        """``$lastn``: the matches of ``query`` (its restriction applied before any ranking)
        grouped by the smallest ``system|code`` of their ``group`` token parameter, the
        ``per_group`` latest of each by their ``by`` date (latest instant; none last), newer rid
        first on ties; groups in code order. Matches without a coded group are left out."""
        ...

    async def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since_us: int | None,
        count: int,
        cursor: str | None,
    ) -> HistoryPage: ...

    async def relations(
        self, patient: str, actors: Sequence[str], *, now_us: int
    ) -> list[tuple[str, str | None, int | None]]:
        """Live access relations (kind, categories, expiry) between ``actors`` and ``patient``,
        including those that concern every actor (``*``, e.g. a refusal of emergency access)."""
        ...

    async def filed_in(self, patient_id: str) -> list[StoredResource]:
        """Every resource filed in the patient's record at any version — live or deleted, its
        current row with the content as stored (a Binary's data left in the blob store) — found
        by the ``patient`` of its history rows, the Patient itself included: what a purge erases
        (``domain/ens/purge.py``)."""
        ...

    async def referrers(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        """Live resources of any type pointing at any of ``keys`` through any search parameter,
        content as stored."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]: ...

    async def close(self) -> None: ...


class BlobStore(Protocol):
    """Content-addressed binary store (Binary contents, attachments)."""

    async def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256 hex digest (its address)."""
        ...

    async def get(self, digest: str) -> bytes | None: ...

    async def delete(self, digest: str, *, unless_put_since: float) -> bool:
        """Remove a blob, unless it was put (or put again: the same content) at or after
        ``unless_put_since`` (POSIX seconds) — a concurrent upload of the same content, not yet
        committed, may be about to use it. True when a blob was removed."""
        ...

    def iter_digests(self) -> AsyncIterator[str]: ...


class KeyValueStore(Protocol):
    """Small durable records with expiry: OAuth clients, codes, tokens, accounts, rate limits.

    ``kind`` namespaces keys. Values are JSON objects. Expired records read as absent and are
    purged lazily. ``take`` reads and deletes atomically: a single-use record (an authorisation
    code, a reset link) can be taken once, whatever the concurrency.
    """

    async def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def put(
        self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None
    ) -> None: ...

    async def add(self, kind: str, key: str, value: dict[str, Any], *, expires_us: int | None = None) -> bool:
        """Insert only if absent (or expired); False when the key already exists."""
        ...

    async def take(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def delete(self, kind: str, key: str) -> None: ...

    async def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]: ...
