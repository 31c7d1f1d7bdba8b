"""The ResourceStore port's contract, checked on every backend (memory, SQLite, PostgreSQL).

These tests talk to the port itself (``hygie.ports``), not to HTTP: versions and conflicts,
deletion markers, all-or-nothing transactions, a transaction seeing its own writes, history
order and paging, compartment membership, references both ways, and search paging.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from hygie.fhir.indexing import extract_index
from hygie.fhir.outcome import Conflict, InvalidRequest
from hygie.fhir.resources import stamp
from hygie.fhir.search import parse_search
from hygie.ports import ResourceStore, StoredResource, WriteOp
from hygie.stores.sql import Cursor, encode_cursor

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000_000_000  # microseconds: 2023-11-14T22:13:20Z
T = 1_000_000  # one second


def write_op(resource: dict[str, Any], version: int, ts: int, method: str = "PUT") -> WriteOp:
    """The WriteOp the FHIR service would build for ``resource`` (content stamped, index extracted)."""
    rtype, rid = resource["resourceType"], resource["id"]
    index = extract_index(resource)
    patient = index.compartments[0] if index.compartments else None
    return WriteOp(rtype, rid, version, ts, stamp(resource, rid, version, ts), index, method, False, patient)


def delete_op(current: StoredResource, ts: int) -> WriteOp:
    return WriteOp(
        current.resource_type,
        current.id,
        current.version + 1,
        ts,
        current.content,
        None,
        "DELETE",
        deleted=True,
    )


async def put(
    store: ResourceStore, resource: dict[str, Any], version: int, ts: int, method: str = "PUT"
) -> None:
    async with store.transaction() as tx:
        await tx.write(write_op(resource, version, ts, method))


async def delete(store: ResourceStore, rtype: str, id: str, ts: int) -> None:
    async with store.transaction() as tx:
        current = await tx.read_for_update(rtype, id)
        assert current is not None
        await tx.write(delete_op(current, ts))


def patient(id: str, family: str = "Martin", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": id, "name": [{"family": family}], **extra}


def observation(
    id: str, subject: str, *, performer: str | None = None, code: str = "8867-4"
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
    }
    if performer is not None:
        obs["performer"] = [{"reference": performer}]
    return obs


async def search_ids(store: ResourceStore, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    page = await store.search(parse_search(rtype, params, max_count=1000), now_us=NOW)
    return [r.id for r in page.resources]


async def rid_of(store: ResourceStore, rtype: str, id: str) -> int:
    found = await store.read(rtype, id)
    assert found is not None
    return found.rid


# -- versions ----------------------------------------------------------------------------------


async def test_write_read_and_vread_every_version(store: ResourceStore) -> None:
    await put(store, patient("p1", "Martin"), 1, NOW, "POST")
    first = await store.read("Patient", "p1")
    await put(store, patient("p1", "Durand"), 2, NOW + T)

    current = await store.read("Patient", "p1")
    assert current is not None and first is not None
    assert (current.version, current.last_updated, current.deleted) == (2, NOW + T, False)
    assert orjson.loads(current.content)["name"] == [{"family": "Durand"}]
    assert orjson.loads(current.content)["meta"]["versionId"] == "2"
    assert current.rid == first.rid  # the internal id is stable across versions

    v1 = await store.vread("Patient", "p1", 1)
    v2 = await store.vread("Patient", "p1", 2)
    assert v1 is not None and v2 is not None
    assert (v1.version, v1.last_updated, v1.method) == (1, NOW, "POST")
    assert orjson.loads(v1.content)["name"] == [{"family": "Martin"}]
    assert (v2.version, v2.method, v2.content) == (2, "PUT", current.content)
    assert await store.vread("Patient", "p1", 3) is None
    assert await store.vread("Patient", "p1", 0) is None
    assert await store.read("Patient", "nobody") is None
    assert await store.read("Observation", "p1") is None  # ids are scoped by type


async def test_stale_or_skipped_versions_raise_conflict_and_change_nothing(store: ResourceStore) -> None:
    await put(store, patient("p1"), 1, NOW)
    await put(store, patient("p1", "Durand"), 2, NOW + T)
    for version in (1, 2, 4):  # already written, already written, skips version 3
        with pytest.raises(Conflict):
            await put(store, patient("p1", "Stale"), version, NOW + 2 * T)
    with pytest.raises(Conflict):  # version 2 of a resource that never existed
        await put(store, patient("ghost"), 2, NOW + 2 * T)

    current = await store.read("Patient", "p1")
    assert current is not None and current.version == 2
    assert await store.read("Patient", "ghost") is None
    history = await store.history("Patient", None, since_us=None, count=10, cursor=None)
    assert [(e.id, e.version) for e in history.entries] == [("p1", 2), ("p1", 1)]
    assert await search_ids(store, "Patient", [("family", "Stale")]) == []


async def test_concurrent_creates_of_one_id_let_exactly_one_win(store: ResourceStore) -> None:
    async def create(family: str) -> str:
        async with store.transaction() as tx:
            await tx.read_for_update("Patient", "twin")
            await asyncio.sleep(0.01)  # let the other transaction start
            await tx.write(write_op(patient("twin", family), 1, NOW, "POST"))
        return family

    results = await asyncio.gather(create("First"), create("Second"), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], Conflict)
    current = await store.read("Patient", "twin")
    assert current is not None and current.version == 1
    assert orjson.loads(current.content)["name"] == [{"family": winners[0]}]
    history = await store.history("Patient", "twin", since_us=None, count=10, cursor=None)
    assert len(history.entries) == 1


async def test_concurrent_updates_from_one_version_let_exactly_one_win(store: ResourceStore) -> None:
    await put(store, patient("p1"), 1, NOW)

    async def update(family: str) -> str:
        async with store.transaction() as tx:
            await tx.read_for_update("Patient", "p1")
            await asyncio.sleep(0.01)
            await tx.write(write_op(patient("p1", family), 2, NOW + T))
        return family

    results = await asyncio.gather(update("A"), update("B"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "str"], results
    current = await store.read("Patient", "p1")
    assert current is not None and current.version == 2


# -- deletion ----------------------------------------------------------------------------------


async def test_deletion_leaves_a_marker_version(store: ResourceStore) -> None:
    await put(store, patient("p1", "Martin"), 1, NOW, "POST")
    await delete(store, "Patient", "p1", NOW + T)

    marker = await store.read("Patient", "p1")
    assert marker is not None
    assert (marker.version, marker.deleted, marker.last_updated) == (2, True, NOW + T)
    assert orjson.loads(marker.content)["name"] == [{"family": "Martin"}]  # the last live content
    v2 = await store.vread("Patient", "p1", 2)
    assert v2 is not None and v2.deleted and v2.method == "DELETE"
    v1 = await store.vread("Patient", "p1", 1)
    assert v1 is not None and not v1.deleted
    assert await search_ids(store, "Patient", [("family", "Martin")]) == []
    assert await search_ids(store, "Patient", [("_id", "p1")]) == []
    assert await store.count(parse_search("Patient", []), now_us=NOW) == 0

    with pytest.raises(Conflict):  # a deleted resource still has a current version
        await put(store, patient("p1", "Again"), 1, NOW + 2 * T, "POST")
    await put(store, patient("p1", "Again"), 3, NOW + 2 * T)
    again = await store.read("Patient", "p1")
    assert again is not None and (again.version, again.deleted) == (3, False)
    assert await search_ids(store, "Patient", [("family", "Again")]) == ["p1"]
    assert await search_ids(store, "Patient", [("family", "Martin")]) == []


async def test_read_many_returns_live_resources_only(store: ResourceStore) -> None:
    await put(store, patient("a"), 1, NOW)
    await put(store, patient("b"), 1, NOW)
    await put(store, observation("a", "Patient/a"), 1, NOW)
    await delete(store, "Patient", "b", NOW + T)

    found = await store.read_many(
        [("Patient", "a"), ("Patient", "b"), ("Patient", "zz"), ("Observation", "a")]
    )
    assert sorted((r.resource_type, r.id, r.version) for r in found) == [
        ("Observation", "a", 1),
        ("Patient", "a", 1),
    ]
    assert all(not r.deleted for r in found)
    assert await store.read_many([]) == []


# -- transactions ------------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


async def test_an_exception_rolls_back_resources_history_and_index(store: ResourceStore) -> None:
    await put(store, patient("kept", "Before"), 1, NOW)
    await put(store, observation("o1", "Patient/kept"), 1, NOW)

    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.write(write_op(patient("new", "Fresh"), 1, NOW + T, "POST"))
            await tx.write(write_op(patient("kept", "After"), 2, NOW + T))
            current = await tx.read_for_update("Observation", "o1")
            assert current is not None
            await tx.write(delete_op(current, NOW + T))
            assert await tx.read_for_update("Patient", "new") is not None  # staged, visible inside
            raise Boom

    assert await store.read("Patient", "new") is None
    assert await store.vread("Patient", "new", 1) is None
    kept = await store.read("Patient", "kept")
    assert kept is not None and kept.version == 1
    obs = await store.read("Observation", "o1")
    assert obs is not None and not obs.deleted
    history = await store.history(None, None, since_us=None, count=10, cursor=None)
    assert sorted((e.resource_type, e.id, e.version) for e in history.entries) == [
        ("Observation", "o1", 1),
        ("Patient", "kept", 1),
    ]
    assert await search_ids(store, "Patient", [("family", "Fresh")]) == []
    assert await search_ids(store, "Patient", [("family", "After")]) == []
    assert await search_ids(store, "Patient", [("family", "Before")]) == ["kept"]
    assert await search_ids(store, "Observation", [("subject", "Patient/kept")]) == ["o1"]

    # the store is usable afterwards, and the rolled-back id is free
    await put(store, patient("new", "Later"), 1, NOW + 2 * T, "POST")
    assert await search_ids(store, "Patient", [("family", "Later")]) == ["new"]


async def test_a_conflict_mid_transaction_undoes_the_earlier_writes(store: ResourceStore) -> None:
    await put(store, patient("existing"), 1, NOW)
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            await tx.write(write_op(patient("first", "Bundle"), 1, NOW + T, "POST"))
            await tx.write(write_op(patient("existing", "Bundle"), 1, NOW + T, "POST"))  # stale
    assert await store.read("Patient", "first") is None
    assert await search_ids(store, "Patient", [("family", "Bundle")]) == []


async def test_search_keys_in_a_transaction_sees_its_staged_writes(store: ResourceStore) -> None:
    await put(store, patient("old", "Renamed"), 1, NOW)
    await put(store, patient("gone", "Gone"), 1, NOW)

    def query(family: str) -> Any:
        return parse_search("Patient", [("family", family)], strict=True)

    async with store.transaction() as tx:
        assert await tx.search_keys(query("Staged"), 10) == []
        await tx.write(write_op(patient("new", "Staged"), 1, NOW + T, "POST"))
        assert await tx.search_keys(query("Staged"), 10) == [("Patient", "new")]
        await tx.write(write_op(patient("old", "Changed"), 2, NOW + T))
        assert await tx.search_keys(query("Renamed"), 10) == []
        assert await tx.search_keys(query("Changed"), 10) == [("Patient", "old")]
        gone = await tx.read_for_update("Patient", "gone")
        assert gone is not None
        await tx.write(delete_op(gone, NOW + T))
        assert await tx.search_keys(query("Gone"), 10) == []
        everyone = await tx.search_keys(parse_search("Patient", []), 10)
        assert sorted(everyone) == [("Patient", "new"), ("Patient", "old")]
        assert len(await tx.search_keys(parse_search("Patient", []), 1)) == 1

    assert await search_ids(store, "Patient", [("family", "Staged")]) == ["new"]
    assert await search_ids(store, "Patient", [("family", "Changed")]) == ["old"]


# -- history -----------------------------------------------------------------------------------


async def test_history_is_newest_first_filtered_by_since_and_paged(store: ResourceStore) -> None:
    await put(store, patient("a", "A1"), 1, NOW, "POST")
    await put(store, patient("b", "B1"), 1, NOW + T, "POST")
    await put(store, patient("a", "A2"), 2, NOW + 2 * T)
    await put(store, observation("o", "Patient/a"), 1, NOW + 3 * T, "POST")
    await delete(store, "Patient", "b", NOW + 4 * T)

    def keys(entries: list[StoredResource]) -> list[tuple[str, int, str]]:
        return [(e.id, e.version, e.method) for e in entries]

    everything = await store.history(None, None, since_us=None, count=10, cursor=None)
    assert keys(everything.entries) == [
        ("b", 2, "DELETE"),
        ("o", 1, "POST"),
        ("a", 2, "PUT"),
        ("b", 1, "POST"),
        ("a", 1, "POST"),
    ]
    assert everything.next_cursor is None
    assert [e.deleted for e in everything.entries] == [True, False, False, False, False]

    patients = await store.history("Patient", None, since_us=None, count=10, cursor=None)
    assert keys(patients.entries) == [("b", 2, "DELETE"), ("a", 2, "PUT"), ("b", 1, "POST"), ("a", 1, "POST")]
    one = await store.history("Patient", "a", since_us=None, count=10, cursor=None)
    assert keys(one.entries) == [("a", 2, "PUT"), ("a", 1, "POST")]
    assert orjson.loads(one.entries[1].content)["name"] == [{"family": "A1"}]

    since = await store.history("Patient", None, since_us=NOW + 2 * T, count=10, cursor=None)
    assert keys(since.entries) == [("b", 2, "DELETE"), ("a", 2, "PUT")]  # since is inclusive
    assert (await store.history("Patient", None, since_us=NOW + 5 * T, count=10, cursor=None)).entries == []

    seen: list[tuple[str, int, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.history(None, None, since_us=None, count=2, cursor=cursor)
        seen.extend(keys(page.entries))
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == keys(everything.entries)
    assert pages == 3

    with pytest.raises(InvalidRequest):
        await store.history(None, None, since_us=None, count=2, cursor="not-a-cursor")


# -- compartments and references ---------------------------------------------------------------


async def test_compartment_membership_through_any_compartment_param(store: ResourceStore) -> None:
    await put(store, patient("p"), 1, NOW)
    await put(store, patient("q"), 1, NOW)
    await put(store, observation("by-subject", "Patient/p"), 1, NOW)
    # subject is another patient: in p's compartment only through performer (its second param)
    await put(store, observation("by-performer", "Patient/q", performer="Patient/p"), 1, NOW + T)
    await put(store, observation("other", "Patient/q"), 1, NOW + T)
    await put(
        store,
        {
            "resourceType": "Encounter",
            "id": "e",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p"},
        },
        1,
        NOW + 2 * T,
    )
    await put(store, observation("deleted", "Patient/p"), 1, NOW + 2 * T)
    await delete(store, "Observation", "deleted", NOW + 3 * T)

    members = await store.compartment("p", None, None, 0, 100)
    assert [(r.resource_type, r.id) for r in members] == [
        ("Patient", "p"),
        ("Observation", "by-subject"),
        ("Observation", "by-performer"),
        ("Encounter", "e"),
    ]
    rids = [r.rid for r in members]
    assert rids == sorted(rids)
    q_members = await store.compartment("q", None, None, 0, 100)
    assert {r.id for r in q_members} == {"q", "by-performer", "other"}

    only_obs = await store.compartment("p", ["Observation"], None, 0, 100)
    assert [r.id for r in only_obs] == ["by-subject", "by-performer"]
    recent = await store.compartment("p", None, NOW + T, 0, 100)
    assert [r.id for r in recent] == ["by-performer", "e"]
    first_two = await store.compartment("p", None, None, 0, 2)
    assert [r.id for r in first_two] == ["p", "by-subject"]
    rest = await store.compartment("p", None, None, first_two[-1].rid, 100)
    assert [r.id for r in rest] == ["by-performer", "e"]
    assert await store.compartment("nobody", None, None, 0, 100) == []


async def test_references_from_and_referencing(store: ResourceStore) -> None:
    await put(store, patient("p"), 1, NOW)
    await put(store, patient("q"), 1, NOW)
    await put(store, {"resourceType": "Practitioner", "id": "doc"}, 1, NOW)
    await put(store, observation("o1", "Patient/p", performer="Practitioner/doc"), 1, NOW)
    await put(store, observation("o2", "Patient/q", performer="Patient/p"), 1, NOW)
    await put(store, observation("o3", "Patient/p"), 1, NOW)
    o1, o2, o3 = [await rid_of(store, "Observation", i) for i in ("o1", "o2", "o3")]

    subjects = await store.references_from([o1, o2], "Observation", "subject", None)
    assert sorted(subjects) == [("Patient", "p"), ("Patient", "q")]
    assert sorted(await store.references_from([o1, o2, o3], "Observation", "subject", "Patient")) == [
        ("Patient", "p"),
        ("Patient", "q"),
    ]
    performers = await store.references_from([o1, o2], "Observation", "performer", None)
    assert sorted(performers) == [("Patient", "p"), ("Practitioner", "doc")]
    assert await store.references_from([o1, o2], "Observation", "performer", "Practitioner") == [
        ("Practitioner", "doc")
    ]
    assert await store.references_from([o1], "Patient", "subject", None) == []  # wrong source type
    assert await store.references_from([], "Observation", "subject", None) == []

    def ids(rows: list[StoredResource]) -> list[str]:
        return [r.id for r in rows]

    assert ids(await store.referencing([("Patient", "p")], "Observation", "subject", 10)) == ["o1", "o3"]
    assert ids(await store.referencing([("Patient", "p")], "Observation", "performer", 10)) == ["o2"]
    assert ids(
        await store.referencing([("Patient", "p"), ("Patient", "q")], "Observation", "subject", 10)
    ) == [
        "o1",
        "o2",
        "o3",
    ]
    assert ids(
        await store.referencing([("Patient", "p"), ("Patient", "q")], "Observation", "subject", 2)
    ) == [
        "o1",
        "o2",
    ]
    assert await store.referencing([("Patient", "p")], "Encounter", "subject", 10) == []
    assert await store.referencing([], "Observation", "subject", 10) == []

    await delete(store, "Observation", "o1", NOW + T)
    assert ids(await store.referencing([("Patient", "p")], "Observation", "subject", 10)) == ["o3"]
    assert await store.references_from([o1], "Observation", "subject", None) == []


# -- search ------------------------------------------------------------------------------------


async def test_sorted_search_puts_missing_values_last_and_pages_both_ways(store: ResourceStore) -> None:
    births = {
        "a": "1990-05-01",
        "b": "1970-01-01",
        "c": None,
        "d": "1985-12-31",
        "e": "1970-01-01",
        "f": None,
    }
    for i, (pid, birth) in enumerate(births.items()):
        extra = {"birthDate": birth} if birth else {}
        await put(store, patient(pid, **extra), 1, NOW + i * T)

    async def all_pages(sort: str, count: int) -> tuple[list[str], list[list[str]]]:
        params = [("_sort", sort), ("_count", str(count))]
        pages: list[list[str]] = []
        page = await store.search(parse_search("Patient", params), now_us=NOW)
        pages.append([r.id for r in page.resources])
        while page.next_cursor:
            query = parse_search("Patient", [*params, ("_cursor", page.next_cursor)])
            page = await store.search(query, now_us=NOW)
            pages.append([r.id for r in page.resources])
        return [i for p in pages for i in p], pages

    ascending, pages = await all_pages("birthdate", 2)
    assert ascending == ["b", "e", "d", "a", "c", "f"]  # ties and missing values by rid
    assert pages == [["b", "e"], ["d", "a"], ["c", "f"]]
    descending, _ = await all_pages("-birthdate", 4)
    assert descending == ["a", "d", "b", "e", "c", "f"]
    by_id_desc, _ = await all_pages("-_id", 5)
    assert by_id_desc == ["f", "e", "d", "c", "b", "a"]
    two_keys, _ = await all_pages("-birthdate,-_id", 1)
    assert two_keys == ["a", "d", "e", "b", "f", "c"]

    # previous from the second page gives the first one back, with the same cursors format
    params = [("_sort", "birthdate"), ("_count", "2")]
    first = await store.search(parse_search("Patient", params), now_us=NOW)
    assert first.prev_cursor is None and first.next_cursor is not None
    second = await store.search(
        parse_search("Patient", [*params, ("_cursor", first.next_cursor)]), now_us=NOW
    )
    assert second.prev_cursor is not None
    back = await store.search(parse_search("Patient", [*params, ("_cursor", second.prev_cursor)]), now_us=NOW)
    assert [r.id for r in back.resources] == ["b", "e"]
    assert back.prev_cursor is None and back.next_cursor is not None

    # the paging snapshot: a resource created after the first page stays out of the later ones
    await put(store, patient("late", birthDate="1900-01-01"), 1, NOW + 10 * T)
    later = await store.search(parse_search("Patient", [*params, ("_cursor", first.next_cursor)]), now_us=NOW)
    assert [r.id for r in later.resources] == ["d", "a"]
    snap_query = parse_search("Patient", [*params, ("_cursor", first.next_cursor)])
    assert await store.count(snap_query, now_us=NOW) == 6
    assert await store.count(parse_search("Patient", []), now_us=NOW) == 7

    unpaged = await store.search(parse_search("Patient", [("_count", "100")]), now_us=NOW)
    assert unpaged.total == 7 and unpaged.next_cursor is None
    assert [r.id for r in unpaged.resources] == [*births, "late"]  # rid order by default


async def test_a_malformed_cursor_is_an_invalid_request(store: ResourceStore) -> None:
    await put(store, patient("a"), 1, NOW)
    wrong_shape = encode_cursor(Cursor(10, True, ("x", "y", 3)))  # three keys for an unsorted search
    for cursor in ("%%%", "bm90LWpzb24", wrong_shape):
        with pytest.raises(InvalidRequest):
            await store.search(parse_search("Patient", [("_cursor", cursor)]), now_us=NOW)


async def test_string_and_token_sorts_put_missing_values_last(store: ResourceStore) -> None:
    await put(store, patient("m", "Martin", gender="male"), 1, NOW)
    await put(store, {"resourceType": "Patient", "id": "x"}, 1, NOW)
    await put(store, patient("d", "Durand", gender="female"), 1, NOW)
    await put(store, patient("z", "Zola"), 1, NOW)

    async def order(sort: str) -> list[str]:
        return await search_ids(store, "Patient", [("_sort", sort)])

    assert await order("family") == ["d", "m", "z", "x"]
    assert await order("-family") == ["z", "m", "d", "x"]
    assert await order("gender") == ["d", "m", "x", "z"]
    assert await order("-gender,family") == ["m", "d", "z", "x"]


async def test_write_itself_raises_the_conflict(store: ResourceStore, request: pytest.FixtureRequest) -> None:
    """The port: ``write`` "raises Conflict if that version exists", so that a Bundle can name the
    entry at fault; raising only at commit loses that."""
    await put(store, patient("p1"), 1, NOW)
    raised_by_write = False
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            try:
                await tx.write(write_op(patient("p1", "Again"), 1, NOW + T, "POST"))
            except Conflict:
                raised_by_write = True
                raise
    current = await store.read("Patient", "p1")
    assert current is not None and current.version == 1
    # raised by write() itself, or — PostgreSQL buffers new resources — when the transaction
    # commits (ports.StoreTransaction.write says both are allowed); either way nothing was written
    assert raised_by_write or request.node.callspec.params.get("store") == "postgres"
