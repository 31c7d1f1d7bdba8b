"""The store port's expunge (a purge's physical erasure), on every backend (memory, SQLite,
PostgreSQL), behind the Binary-offloading wrapper as in production.

An expunged resource is gone with every version: no read, vread, history entry, search hit,
reference or ``_has`` match, compartment membership or ``filed_in`` row remains; a transaction
that fails erases nothing; a Binary's blob goes with the last version that names it — a blob
another Binary shares stays, and so does one put again within the grace period.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_resource_store import NOW, T, delete, put

from hygie.fhir.search import parse_search
from hygie.ports import ResourceStore
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore

pytestmark = pytest.mark.anyio


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "MARTIN"}]}


def observation(oid: str, pid: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def binary(bid: str, pid: str, data: bytes) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "id": bid,
        "contentType": "application/pdf",
        "securityContext": {"reference": f"Patient/{pid}"},
        "data": base64.b64encode(data).decode(),
    }


def blobs_of(store: ResourceStore) -> MemoryBlobStore:
    assert isinstance(store, BinaryOffloadingStore)
    assert isinstance(store.blobs, MemoryBlobStore)
    return store.blobs


async def ids(store: ResourceStore, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    page = await store.search(parse_search(rtype, params), now_us=NOW + 100 * T)
    return [r.id for r in page.resources]


async def test_expunge_erases_every_version_and_index(store: ResourceStore) -> None:
    await put(store, patient("p"), 1, NOW)
    await put(store, patient("q"), 1, NOW)
    await put(store, observation("o", "p", 70), 1, NOW + T)
    await put(store, observation("o", "p", 71), 2, NOW + 2 * T)
    await delete(store, "Observation", "o", NOW + 3 * T)  # a deleted resource: still in history
    await put(store, observation("kept", "q", 80), 1, NOW + 4 * T)
    await put(store, observation("o2", "p", 72), 1, NOW + 5 * T)
    assert {r.id for r in await store.filed_in("p")} == {"p", "o", "o2"}

    async with store.transaction() as tx:
        erased = await tx.expunge("Observation", "o")
        assert await tx.expunge("Observation", "never") == []
    assert [v.version for v in erased] == [1, 2, 3]
    assert [v.deleted for v in erased] == [False, False, True]
    assert await store.read("Observation", "o") is None
    for version in (1, 2, 3):
        assert await store.vread("Observation", "o", version) is None
    history = await store.history("Observation", None, since_us=None, count=50, cursor=None)
    assert {e.id for e in history.entries} == {"kept", "o2"}
    assert (await store.history("Observation", "o", since_us=None, count=50, cursor=None)).entries == []
    assert {r.id for r in await store.filed_in("p")} == {"p", "o2"}

    async with store.transaction() as tx:
        await tx.expunge("Observation", "o2")
        await tx.expunge("Patient", "p")
    assert await store.read("Patient", "p") is None
    assert await ids(store, "Observation", [("subject", "Patient/p")]) == []
    assert await ids(store, "Observation", [("code", "http://loinc.org|29463-7")]) == ["kept"]
    assert await ids(store, "Patient", [("_has:Observation:subject:code", "29463-7")]) == ["q"]
    assert await ids(store, "Patient", [("name", "MARTIN")]) == ["q"]
    assert await store.compartment("p", None, None, 0, 100) == []
    assert await store.referrers([("Patient", "p")]) == []
    assert [r.id for r in await store.referrers([("Patient", "q")])] == ["kept"]
    assert await store.filed_in("p") == []
    assert await store.relations("p", ["*"], now_us=NOW) == []


async def test_a_failed_transaction_expunges_nothing(store: ResourceStore) -> None:
    await put(store, patient("p"), 1, NOW)
    await put(store, observation("o", "p", 70), 1, NOW + T)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.expunge("Observation", "o")
            assert await tx.read_for_update("Observation", "o") is None  # the transaction sees it
            raise RuntimeError("crash")
    found = await store.read("Observation", "o")
    assert found is not None and not found.deleted
    assert await ids(store, "Observation", [("subject", "Patient/p")]) == ["o"]


async def test_a_blob_goes_with_the_last_binary_naming_it(store: ResourceStore) -> None:
    blobs = blobs_of(store)
    await put(store, patient("p"), 1, NOW)
    await put(store, patient("q"), 1, NOW)
    await put(store, binary("shared-p", "p", b"%PDF same letter"), 1, NOW)
    await put(store, binary("shared-q", "q", b"%PDF same letter"), 1, NOW)
    await put(store, binary("own", "p", b"%PDF first"), 1, NOW)
    await put(store, binary("own", "p", b"%PDF second"), 2, NOW + T)  # both versions name a blob
    assert len(blobs.blobs) == 3
    for digest in blobs.blobs:
        blobs.put_at[digest] = 0.0  # stored long ago

    async with store.transaction() as tx:
        await tx.expunge("Binary", "shared-p")
        await tx.expunge("Binary", "own")
    assert len(blobs.blobs) == 1  # the shared content stays: shared-q names it
    found = await store.read("Binary", "shared-q")
    assert found is not None and b"data" in found.content  # still readable, content inlined

    async with store.transaction() as tx:
        await tx.expunge("Binary", "shared-q")
    assert blobs.blobs == {}


async def test_a_blob_put_again_within_the_grace_period_stays(store: ResourceStore) -> None:
    blobs = blobs_of(store)
    await put(store, patient("p"), 1, NOW)
    await put(store, binary("b", "p", b"%PDF uploaded again just now"), 1, NOW)
    async with store.transaction() as tx:
        await tx.expunge("Binary", "b")
    # the same content was put moments ago: an upload may be about to name it
    assert len(blobs.blobs) == 1
    assert await store.read("Binary", "b") is None
