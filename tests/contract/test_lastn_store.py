"""The store's ``lastn`` (``Observation/$lastn``), the same on memory, SQLite and PostgreSQL.

The grouping rule (the smallest ``system|code`` of ``Observation.code``), the ranking (latest
effective instant, none last, newer resource first on ties), ``per_group``, the order of the
groups, deleted resources, and a restriction applied before the ranking: the answers must be
identical on every backend, the memory store being the SQL's twin.
"""

from __future__ import annotations

from typing import Any

import pytest

from hygie.domain.policy import SearchRestriction
from hygie.fhir.indexing import extract_index
from hygie.fhir.resources import stamp
from hygie.fhir.search import parse_search
from hygie.ports import ResourceStore, WriteOp

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000_000
LOINC = "http://loinc.org"
LOCAL = "urn:local"


def obs(oid: str, patient: str, codings: list[tuple[str, str]], effective: Any = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": s, "code": c} for s, c in codings]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if isinstance(effective, str):
        resource["effectiveDateTime"] = effective
    elif isinstance(effective, tuple):
        resource["effectivePeriod"] = {"start": effective[0], "end": effective[1]}
    return resource


async def put(
    store: ResourceStore, resource: dict[str, Any], version: int = 1, deleted: bool = False
) -> None:
    index = extract_index(resource)
    patient = index.compartments[0] if index.compartments else None
    rid = resource["id"]
    op = WriteOp(
        resource["resourceType"],
        rid,
        version,
        NOW,
        stamp(resource, rid, version, NOW),
        None if deleted else index,
        "DELETE" if deleted else "PUT",
        deleted,
        patient,
    )
    async with store.transaction() as tx:
        await tx.write(op)


async def seed(store: ResourceStore) -> None:
    for resource in (
        obs("a1", "p1", [(LOINC, "1-1")], "2026-01-01"),
        obs("a2", "p1", [(LOINC, "1-1")], "2026-03-01"),
        obs("a3", "p1", [(LOINC, "1-1")], "2026-02-01"),
        # the same day as a2 (an instant ends at the same microsecond): the newer resource first
        obs("a4", "p1", [(LOINC, "1-1")], "2026-03-01"),
        # no effective date: after the dated ones
        obs("a5", "p1", [(LOINC, "1-1")]),
        # a period: ranked by its end
        obs("b1", "p1", [(LOINC, "2-2")], ("2025-01-01", "2026-06-01")),
        obs("b2", "p1", [(LOINC, "2-2")], "2026-05-01"),
        # coded twice: the group of its smallest system|code (LOINC's "http…" < "urn…")
        obs("c1", "p1", [(LOCAL, "zz"), (LOINC, "3-3")], "2026-01-01"),
        obs("c2", "p1", [(LOINC, "3-3")], "2025-01-01"),
        obs("d1", "p1", [(LOCAL, "aa")], "2026-01-01"),
        # text only: no group
        {
            "resourceType": "Observation",
            "id": "t1",
            "status": "final",
            "code": {"text": "Poids"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2026-01-01",
        },
        # another patient's, newer than all
        obs("x1", "p2", [(LOINC, "1-1")], "2026-09-01"),
    ):
        await put(store, resource)


def ids(rows: list[Any]) -> list[str]:
    return [r.id for r in rows]


async def lastn(
    store: ResourceStore,
    params: list[tuple[str, str]],
    per_group: int,
    restriction: SearchRestriction | None = None,
) -> list[str]:
    query = parse_search("Observation", params)
    query.restriction = restriction
    return ids(await store.lastn(query, group="code", by="date", per_group=per_group, now_us=NOW))


async def test_groups_ranks_and_limits(store: ResourceStore) -> None:
    await seed(store)
    assert await lastn(store, [("patient", "p1")], 1) == ["a4", "b1", "c1", "d1"]
    assert await lastn(store, [("patient", "p1")], 2) == ["a4", "a2", "b1", "b2", "c1", "c2", "d1"]
    assert await lastn(store, [("patient", "p1"), ("code", f"{LOINC}|1-1")], 10) == [
        "a4",
        "a2",
        "a3",
        "a1",
        "a5",
    ]
    # a criterion on a coding that is not the group's: the Observation keeps its one group
    assert await lastn(store, [("patient", "p1"), ("code", f"{LOCAL}|zz")], 3) == ["c1"]


async def test_the_restriction_and_deletions_apply_before_the_ranking(store: ResourceStore) -> None:
    await seed(store)
    # everyone's: Paul's newer weight takes the place…
    assert (await lastn(store, [("code", f"{LOINC}|1-1")], 1)) == ["x1"]
    # …not when the restriction keeps to p1's record
    only_p1 = SearchRestriction(patients=frozenset({"p1"}))
    assert await lastn(store, [("code", f"{LOINC}|1-1")], 1, only_p1) == ["a4"]
    assert await lastn(store, [("code", f"{LOINC}|1-1")], 1, SearchRestriction(nothing=True)) == []
    # a deleted Observation leaves its place to the next one
    await put(store, obs("a4", "p1", [(LOINC, "1-1")], "2026-03-01"), version=2, deleted=True)
    assert await lastn(store, [("patient", "p1"), ("code", f"{LOINC}|1-1")], 1) == ["a2"]
