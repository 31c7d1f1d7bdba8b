"""The declarative access matrix: actor × resource type × interaction × relation → verdict.

Each row of ``MATRIX`` is one cell, written as the rule a reader expects; the test runs the pure
decision function on it. (The same table will run through the FHIR API on every store once the
policy is wired into the interactions.)

Relations: ``own`` — the record of the actor's own patient (or of the represented / cared-for
patient); ``other`` — another patient's record; ``absent`` — a resource outside every patient
compartment (directory, terminology).
"""

from __future__ import annotations

import itertools

import pytest

from hygie.auth.scopes import parse_scopes
from hygie.domain.policy import CategoryMatrix, Principal, Relation, Target, decide

NOW = 1_900_000_000_000_000

ACTORS: dict[str, tuple[Principal, list[Relation], list[Relation]]] = {
    # name: (principal, relations to "own" patient, relations to "other" patient)
    "patient": (Principal("patient", "Patient/own"), [], []),
    "legal_representative": (
        Principal("representative", "RelatedPerson/parent"),
        [Relation("representative")],
        [],
    ),
    "aidant": (Principal("aidant", "RelatedPerson/helper"), [Relation("aidant")], []),
    "professional_with_relation": (
        Principal("practitioner", "Practitioner/gp", profession="10"),
        [Relation("medecin_traitant")],
        [],
    ),
    "professional_without_relation": (Principal("practitioner", "Practitioner/x", profession="10"), [], []),
    "break_glass": (
        Principal("practitioner", "Practitioner/er", profession="10", break_glass=frozenset({"own"})),
        [],
        [],
    ),
    "app": (
        Principal(
            "patient",
            "Patient/own",
            scopes=parse_scopes("patient/Observation.rs patient/Patient.r"),
            launch_patient="own",
        ),
        [],
        [],
    ),
    "backend_client": (
        Principal("system", "pms", scopes=parse_scopes("system/*.rs system/DocumentReference.c")),
        [],
        [],
    ),
    "structure_client": (
        Principal(
            "system",
            "logiciel-cabinet",
            organization="Organization/cabinet",
            scopes=parse_scopes("system/*.cruds"),
        ),
        [Relation("encounter")],
        [],
    ),
    "anonymous": (Principal("anonymous"), [], []),
}
TYPES = ("Observation", "DocumentReference", "Patient", "Practitioner")
INTERACTIONS = ("read", "search", "create", "update", "delete")
RELATIONS = ("own", "other", "absent")

# Every cell allowed ("Y") — anything not listed is refused.
ALLOWED: set[tuple[str, str, str, str]] = set()


def allow(
    actor: str, types: tuple[str, ...], interactions: tuple[str, ...], relations: tuple[str, ...]
) -> None:
    ALLOWED.update(itertools.product([actor], types, interactions, relations))


READS = ("read", "search")
ALL = INTERACTIONS
CLINICAL = ("Observation", "DocumentReference", "Patient")
# patients: their own record (reads and writes of their own entries), the shared directory (read)
allow("patient", CLINICAL, ALL, ("own",))
allow("patient", ("Practitioner",), READS, ("absent",))
# legal representatives and aidants act for the patient, like the patient
allow("legal_representative", CLINICAL, ALL, ("own",))
allow("legal_representative", ("Practitioner",), READS, ("absent",))
allow("aidant", CLINICAL, ALL, ("own",))
allow("aidant", ("Practitioner",), READS, ("absent",))
# professionals within a relation: everything on that patient; the directory: read and write
allow("professional_with_relation", CLINICAL, ALL, ("own",))
allow("professional_with_relation", ("Practitioner",), ALL, ("absent",))
allow("professional_without_relation", ("Practitioner",), ALL, ("absent",))
allow("break_glass", CLINICAL, ALL, ("own",))
allow("break_glass", ("Practitioner",), ALL, ("absent",))
# the app: its scopes, for its launch patient (a patient/ scope reaches resources outside compartments
# only for the types it names)
allow("app", ("Observation",), READS, ("own",))
allow("app", ("Patient",), ("read",), ("own",))
# the backend: its system scopes, every patient
allow("backend_client", TYPES, READS, ("own", "other", "absent"))
allow("backend_client", ("DocumentReference",), ("create",), ("own", "other", "absent"))
# a backend client bound to a structure: the record its structure has a care relation with; it
# reads the documents it authored (the table's name no author: none) and changes those naming no other
allow("structure_client", ("Observation", "Patient"), ALL, ("own",))
allow("structure_client", ("DocumentReference",), ("create", "update", "delete"), ("own",))
allow("structure_client", ("Practitioner",), READS, ("absent",))


def target(rtype: str, relation: str) -> Target:
    if relation == "absent" or rtype == "Practitioner":
        return Target(rtype, None)
    patient = "own" if relation == "own" else "someone-else"
    categories = frozenset({"10"}) if rtype == "DocumentReference" else frozenset()
    return Target(rtype, patient, categories=categories)


CELLS = [
    (a, t, i, r)
    for a, t, i, r in itertools.product(ACTORS, TYPES, INTERACTIONS, RELATIONS)
    # a Practitioner is never inside a patient's record; clinical types always are
    if (t == "Practitioner") == (r == "absent")
]


@pytest.mark.parametrize(("actor", "rtype", "interaction", "relation"), CELLS)
def test_matrix_cell(actor: str, rtype: str, interaction: str, relation: str) -> None:
    principal, own_relations, other_relations = ACTORS[actor]
    relations = own_relations if relation == "own" else other_relations if relation == "other" else []
    verdict = decide(principal, interaction, target(rtype, relation), relations, now_us=NOW)  # type: ignore[arg-type]
    expected = (actor, rtype, interaction, relation) in ALLOWED
    assert verdict.allowed == expected, f"{actor} {interaction} {rtype} ({relation}): {verdict.reason}"


def test_the_matrix_covers_every_actor() -> None:
    assert {c[0] for c in CELLS} == set(ACTORS)
    assert len(CELLS) == len(ACTORS) * (len(TYPES) - 1) * len(INTERACTIONS) * 2 + len(ACTORS) * len(
        INTERACTIONS
    )


def test_the_category_matrix_is_data_and_an_operator_table_replaces_it() -> None:
    """The shipped table loads from its JSON file; a malformed operator table is refused."""
    shipped = CategoryMatrix.default()
    assert shipped.may_read("10", frozenset({"31"}))
    assert not shipped.may_read("21", frozenset({"10"}))
    own = CategoryMatrix.from_json(b'{"professions": {"21": {"classes": ["10"]}}}')
    assert own.may_read("21", frozenset({"10"}))
    assert not own.may_read("10", frozenset({"10"}))  # a profession absent from the table reads none
    with pytest.raises(ValueError, match="classes"):
        CategoryMatrix.from_json(b'{"professions": {"21": {"classes": "10"}}}')
    with pytest.raises(ValueError, match="professions"):
        CategoryMatrix.from_json(b"[]")
