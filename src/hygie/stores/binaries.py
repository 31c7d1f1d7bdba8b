"""Keeps Binary contents out of the database: a ResourceStore decorator over a BlobStore.

On write, ``Binary.data`` (base64) is decoded, put in the blob store and replaced in the stored
JSON by an extension on ``_data`` naming its SHA-256; on every read path the data is put back,
so clients see the resource they wrote. Every store inherits this by being wrapped once in
``bootstrap.py``.

Blobs are shared: two Binaries of the same content name one blob. When a transaction expunges
Binaries (a purge, ``domain/ens/purge.py``, or a ``DELETE …?_expunge=true``), the blobs they named are removed at the end of that
transaction, before it commits, if no stored version of any Binary still names them (asked
inside the transaction, so its own erasures count) and no upload put them within
``blob_grace_s`` seconds (an upload of the same content may not have committed yet). Were the
commit to fail after that, the rows would name missing blobs: only those of Binaries being
erased (a purge's next run erases them; an API erasure may be asked again). Expunged contents are returned as stored (never inflated).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import orjson

from hygie.fhir.outcome import FhirError, Unprocessable
from hygie.fhir.search import SearchQuery
from hygie.ports import (
    BlobStore,
    HistoryPage,
    ResourceKey,
    ResourceStore,
    SearchPage,
    StoredResource,
    StoreTransaction,
    WriteOp,
)

__all__ = ["BLOB_EXTENSION", "BinaryOffloadingStore"]

BLOB_EXTENSION = "https://hygie.esante.example/fhir/StructureDefinition/blob-sha256"


def _marker(resource: dict[str, Any]) -> str | None:
    for ext in (resource.get("_data") or {}).get("extension", []):
        if ext.get("url") == BLOB_EXTENSION:
            return str(ext.get("valueString"))
    return None


class _Tx:
    def __init__(self, inner: StoreTransaction, outer: BinaryOffloadingStore) -> None:
        self.inner = inner
        self.outer = outer
        self.released: set[str] = set()  # blobs named by the Binaries this transaction expunged
        self.started = time.time()

    async def read_for_update(self, resource_type: str, id: str) -> StoredResource | None:
        found = await self.inner.read_for_update(resource_type, id)
        return await self.outer.inflate(found) if found else None

    async def write(self, op: WriteOp) -> None:
        await self.inner.write(await self.outer.offload(op))

    async def search_keys(self, query: SearchQuery, limit: int) -> list[ResourceKey]:
        return await self.inner.search_keys(query, limit)

    async def expunge(self, resource_type: str, id: str) -> list[StoredResource]:
        erased = await self.inner.expunge(resource_type, id)
        if resource_type == "Binary":
            for version in erased:
                if b"blob-sha256" in version.content:
                    digest = _marker(orjson.loads(version.content))
                    if digest:
                        self.released.add(digest)
        return erased

    async def naming(self, resource_type: str, texts: Sequence[str]) -> set[str]:
        return await self.inner.naming(resource_type, texts)

    async def release_blobs(self) -> int:
        """Remove the blobs of the expunged Binaries that nothing names any more."""
        if not self.released:
            return 0
        unused = self.released - await self.inner.naming("Binary", sorted(self.released))
        removed = 0
        for digest in sorted(unused):
            removed += await self.outer.blobs.delete(
                digest, unless_put_since=self.started - self.outer.blob_grace_s
            )
        self.released = set()
        return removed


class BinaryOffloadingStore:
    def __init__(self, inner: ResourceStore, blobs: BlobStore, *, blob_grace_s: float = 600.0) -> None:
        self.inner = inner
        self.blobs = blobs
        self.blob_grace_s = blob_grace_s

    async def offload(self, op: WriteOp) -> WriteOp:
        if op.resource_type != "Binary":
            return op
        resource = orjson.loads(op.content)
        data = resource.get("data")
        if not isinstance(data, str):
            return op
        try:
            raw = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Unprocessable(
                "Binary.data is not valid base64", code="value", expression="Binary.data"
            ) from exc
        if base64.b64encode(raw).decode() != data:
            return op  # not in canonical form (line breaks…): kept inline so it reads back byte for byte
        digest = await self.blobs.put(raw)
        del resource["data"]
        resource["_data"] = {"extension": [{"url": BLOB_EXTENSION, "valueString": digest}]}
        return replace(op, content=orjson.dumps(resource))

    async def inflate(self, stored: StoredResource) -> StoredResource:
        if stored.resource_type != "Binary" or b"blob-sha256" not in stored.content:
            return stored
        resource = orjson.loads(stored.content)
        digest = _marker(resource)
        if digest is None:
            return stored
        raw = await self.blobs.get(digest)
        if raw is None:
            # the database names a blob the blob store lost: say so, never serve a Binary without data
            raise FhirError(
                f"the content of {stored.resource_type}/{stored.id} is missing from the blob store",
                code="exception",
                status=500,
            )
        rebuilt: dict[str, Any] = {}
        for key, value in resource.items():
            if key == "_data":
                rebuilt["data"] = base64.b64encode(raw).decode()
                continue
            rebuilt[key] = value
        return replace(stored, content=orjson.dumps(rebuilt))

    async def _inflate_all(self, items: list[StoredResource]) -> list[StoredResource]:
        return [await self.inflate(s) for s in items]

    async def read(self, resource_type: str, id: str) -> StoredResource | None:
        found = await self.inner.read(resource_type, id)
        return await self.inflate(found) if found else None

    async def vread(self, resource_type: str, id: str, version: int) -> StoredResource | None:
        found = await self.inner.vread(resource_type, id, version)
        return await self.inflate(found) if found else None

    async def read_many(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        return await self._inflate_all(await self.inner.read_many(keys))

    async def search(self, query: SearchQuery, *, now_us: int) -> SearchPage:
        page = await self.inner.search(query, now_us=now_us)
        page.resources = await self._inflate_all(page.resources)
        return page

    async def count(self, query: SearchQuery, *, now_us: int) -> int:
        return await self.inner.count(query, now_us=now_us)

    async def lastn(
        self, query: SearchQuery, *, group: str, by: str, per_group: int, now_us: int
    ) -> list[StoredResource]:
        found = await self.inner.lastn(query, group=group, by=by, per_group=per_group, now_us=now_us)
        return await self._inflate_all(found)

    async def references_from(
        self, rids: Sequence[int], source_type: str, param: str, target_type: str | None
    ) -> list[ResourceKey]:
        return await self.inner.references_from(rids, source_type, param, target_type)

    async def targets_of(self, rids: Sequence[int]) -> list[ResourceKey]:
        return await self.inner.targets_of(rids)

    async def referencing(
        self, keys: Sequence[ResourceKey], source_type: str, param: str, limit: int
    ) -> list[StoredResource]:
        return await self._inflate_all(await self.inner.referencing(keys, source_type, param, limit))

    async def compartment(
        self, patient_id: str, types: Sequence[str] | None, since_us: int | None, after_rid: int, limit: int
    ) -> list[StoredResource]:
        return await self._inflate_all(
            await self.inner.compartment(patient_id, types, since_us, after_rid, limit)
        )

    async def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since_us: int | None,
        count: int,
        cursor: str | None,
    ) -> HistoryPage:
        page = await self.inner.history(resource_type, id, since_us=since_us, count=count, cursor=cursor)
        page.entries = await self._inflate_all(page.entries)
        return page

    async def relations(
        self, patient: str, actors: Sequence[str], *, now_us: int
    ) -> list[tuple[str, str | None, int | None]]:
        return await self.inner.relations(patient, actors, now_us=now_us)

    async def filed_in(self, patient_id: str) -> list[StoredResource]:
        return await self.inner.filed_in(patient_id)  # as stored: a purge reads no content

    async def referrers(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        return await self.inner.referrers(keys)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        async with self.inner.transaction() as tx:
            outer = _Tx(tx, self)
            yield outer
            await outer.release_blobs()

    async def close(self) -> None:
        await self.inner.close()
