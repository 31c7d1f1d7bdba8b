"""Where SQLite starts a search (``EXPLAIN QUERY PLAN``), for the shapes the portals send.

Without statistics SQLite's planner used to start ``Observation?patient=…&code=…`` from the
type index (every Observation of the database, each tested against the patient's list) and,
under a citizen's restriction, from the patient's whole record; a search by ``_id`` must keep its
(res_type, res_id) lookup. These are plans, not timings: they do not depend on the machine.
"""

from __future__ import annotations

import sqlite3

import pytest

from hygie.domain.policy import SearchRestriction
from hygie.fhir.search import parse_search
from hygie.stores import sql
from hygie.stores.sqlite import SqliteResourceStore

LOINC = "http://loinc.org"
CITIZEN = SearchRestriction(
    patients=frozenset({"p1"}),
    exclude_labels=frozenset({"INVISIBLE_PATIENT"}),
    outside_compartments=True,
    correspondent=frozenset({"Patient/p1"}),
)


@pytest.fixture
def conn() -> sqlite3.Connection:
    store = SqliteResourceStore(":memory:")
    store.create_schema()
    return store.writer


def plan(conn: sqlite3.Connection, text: str, args: list[object]) -> list[str]:
    """How the outer query reaches ``resources r``: its SEARCH/SCAN steps."""
    steps = [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + text, args)]
    return [s for s in steps if s.startswith(("SEARCH r ", "SCAN r"))]


@pytest.mark.parametrize("restriction", [None, CITIZEN], ids=["backend", "citizen"])
def test_a_patients_search_starts_from_their_reference_list(
    conn: sqlite3.Connection, restriction: SearchRestriction | None
) -> None:
    query = parse_search(
        "Observation",
        [("patient", "p1"), ("code", f"{LOINC}|29463-7"), ("_sort", "-date"), ("_count", "5")],
    )
    query.restriction = restriction
    text, args, _ = sql.compile_search("sqlite", query, None, 6, 0)
    steps = plan(conn, text, args)
    assert steps and all("INTEGER PRIMARY KEY" in s for s in steps), steps


@pytest.mark.parametrize("restriction", [None, CITIZEN], ids=["backend", "citizen"])
def test_lastn_starts_from_the_patients_reference_list(
    conn: sqlite3.Connection, restriction: SearchRestriction | None
) -> None:
    query = parse_search("Observation", [("patient", "p1"), ("category", "vital-signs")])
    query.restriction = restriction
    text, args = sql.compile_lastn("sqlite", query, "code", "date", 5, 0)
    steps = plan(conn, text, args)
    assert steps and all("INTEGER PRIMARY KEY" in s for s in steps), steps


def test_a_search_by_id_keeps_its_type_and_id_lookup(conn: sqlite3.Connection) -> None:
    query = parse_search("Practitioner", [("_id", "a,b,c")])
    query.restriction = CITIZEN
    text, args, _ = sql.compile_search("sqlite", query, None, 21, 0)
    steps = plan(conn, text, args)
    assert not any(s.startswith("SCAN r") for s in steps), steps
    assert any("(res_type=? AND res_id=?)" in s for s in steps), steps
