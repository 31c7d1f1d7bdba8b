"""A professional's structure (the Organization of their PractitionerRole) brings its relations to
them: its encounters, care teams and grants open a record, its blocks close it — in a single read
(``AccessPolicy.facts`` gathers the relations of both) and in a search (the restriction names both
actors: ``SearchRestriction.actor_structure``). One test per rule, with what it allows and what it
refuses; ``tests/integration/test_access_matrix_api.py`` runs the same rules on every store."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hygie.auth.scopes import parse_scopes
from hygie.domain.access import AccessPolicy, Caller
from hygie.domain.policy import Principal, Relation, Target, decide, restriction_for
from hygie.domain.relations import relations_from

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000_000_000
CABINET = "Organization/cabinet"
DOCTOR = Principal("practitioner", "Practitioner/dr", profession="10", organization=CABINET)
ALONE = Principal("practitioner", "Practitioner/solo", profession="10")
SOFTWARE = Principal("system", "logiciel", organization=CABINET, scopes=parse_scopes("system/*.cruds"))
OBS = Target("Observation", "claire")
REPORT = Target("DocumentReference", "claire", categories=frozenset({"10"}))
SUMMARY = Target("DocumentReference", "claire", categories=frozenset({"11"}))
MASKED = Target("DocumentReference", "claire", categories=frozenset({"11"}), labels=frozenset({"MASQUE_PS"}))

# relations to Claire, by actor: what the store's idx_relation would hold
Rows = dict[str, list[tuple[str, str | None, int | None]]]


def policy(rows: Rows) -> tuple[AccessPolicy, list[list[str]]]:
    """An access policy over these relation rows, recording the actors it asks about."""
    asked: list[list[str]] = []

    async def relations(
        patient: str, actors: Sequence[str], now_us: int
    ) -> list[tuple[str, str | None, int | None]]:
        asked.append(list(actors))
        return [row for actor in actors for row in rows.get(actor, [])] if patient == "claire" else []

    return AccessPolicy(relations, lambda: NOW), asked


def allowed(who: Principal, target: Target, relations: list[Relation]) -> bool:
    return decide(who, "read", target, relations, now_us=NOW).allowed


async def test_a_read_weighs_the_relations_of_the_professional_and_of_their_structure() -> None:
    access, asked = policy({CABINET: [("encounter", None, None)]})
    facts = await access.facts(Caller.of(DOCTOR), "claire")
    assert asked == [["Practitioner/dr", CABINET]]
    assert allowed(DOCTOR, OBS, facts)  # the structure's encounter opens the record
    assert not allowed(ALONE, OBS, await access.facts(Caller.of(ALONE), "claire"))
    # the structure's software has the structure's relations only, never its members'
    await access.facts(Caller.of(SOFTWARE), "claire")
    assert asked[-1] == [CABINET]


def test_the_search_restriction_names_the_professional_and_their_structure() -> None:
    r = restriction_for(DOCTOR, "Observation")
    assert r.relation_actor == "Practitioner/dr" and r.actor_structure == CABINET
    assert r.with_structure("Practitioner/dr") == frozenset({"Practitioner/dr", CABINET})
    # care relations, blocks and grants: the same two actors
    assert r.blocked_for_actor == "Practitioner/dr" and r.grant_categories_actor == "Practitioner/dr"
    # a professional without a structure: themselves alone
    alone = restriction_for(ALONE, "Observation")
    assert alone.actor_structure is None
    assert alone.with_structure("Practitioner/solo") == frozenset({"Practitioner/solo"})
    # a structure's software stays the structure, as before
    software = restriction_for(SOFTWARE, "Observation")
    assert software.relation_actor == CABINET and software.structure_actor == CABINET
    assert software.actor_structure is None
    assert software.with_structure(CABINET) == frozenset({CABINET})


def test_a_care_relation_of_the_structure_opens_the_record_to_its_professionals() -> None:
    for kind in ("encounter", "care_team", "grant"):
        assert allowed(DOCTOR, OBS, [Relation(kind)]), kind
    assert not allowed(DOCTOR, OBS, [])
    assert not allowed(DOCTOR, OBS, [Relation("encounter", expires_us=NOW - 1)])
    # restriction: the structure's encounters and care teams count, never a médecin traitant
    r = restriction_for(DOCTOR, "Observation")
    assert {"encounter", "care_team", "grant"} <= r.relation_kinds


def test_a_block_of_the_structure_wins_over_the_professionals_own_care_relation() -> None:
    assert allowed(DOCTOR, OBS, [Relation("care_team")])
    assert not allowed(DOCTOR, OBS, [Relation("care_team"), Relation("block")])
    assert not decide(DOCTOR, "create", OBS, [Relation("care_team"), Relation("block")], now_us=NOW).allowed
    # the blocked actors of the search are the person and the structure
    r = restriction_for(DOCTOR, "Observation")
    assert r.blocked_for_actor is not None
    assert CABINET in r.with_structure(r.blocked_for_actor)


def test_the_medecin_traitant_exception_stays_with_the_person() -> None:
    # an Organization is never a médecin traitant: the relation is not derived for it
    patient = {
        "resourceType": "Patient",
        "id": "claire",
        "generalPractitioner": [{"reference": CABINET}, {"reference": "Practitioner/dr"}],
    }
    assert [(r.kind, r.actor) for r in relations_from(patient)] == [("medecin_traitant", "Practitioner/dr")]
    # masked documents: the structure's encounter opens the record, not the masked document…
    assert not allowed(DOCTOR, MASKED, [Relation("encounter")])
    assert allowed(DOCTOR, MASKED, [Relation("encounter"), Relation("medecin_traitant")])
    # …and the search keeps the exception to the person's relations (relation_actor alone)
    r = restriction_for(DOCTOR, "DocumentReference")
    assert r.unless_relation == frozenset({"medecin_traitant"}) and r.unless_author == "Practitioner/dr"
    assert r.relation_actor == "Practitioner/dr"


def test_a_structure_grant_limited_to_classes_limits_as_a_personal_one() -> None:
    summaries = Relation("grant", frozenset({"11"}))
    reports = Relation("grant", frozenset({"10"}))
    # the structure's grant is the only relation: its classes only
    assert allowed(DOCTOR, SUMMARY, [summaries])
    assert not allowed(DOCTOR, REPORT, [summaries])
    # the person's grant and the structure's add up
    assert allowed(DOCTOR, REPORT, [summaries, reports])
    # a care relation of either lifts the limit
    assert allowed(DOCTOR, REPORT, [summaries, Relation("encounter")])
    assert allowed(DOCTOR, REPORT, [summaries, Relation("care_team")])


def test_an_app_launched_by_the_professional_follows_their_structure_too() -> None:
    app = Principal(
        "practitioner",
        "Practitioner/dr",
        profession="10",
        organization=CABINET,
        scopes=parse_scopes("patient/*.rs"),
        launch_patient="claire",
    )
    opened = restriction_for(app, "Observation", launch_relations=[Relation("encounter")], now_us=NOW)
    assert opened.patients == frozenset({"claire"}) and opened.actor_structure == CABINET
    blocked = restriction_for(
        app, "Observation", launch_relations=[Relation("care_team"), Relation("block")], now_us=NOW
    )
    assert blocked.patients == frozenset()
    limited = restriction_for(
        app, "DocumentReference", launch_relations=[Relation("grant", frozenset({"11"}))], now_us=NOW
    )
    assert limited.categories == frozenset({"11"})


def test_an_emergency_access_is_not_narrowed_by_a_limited_grant() -> None:
    """Break-glass opens the whole record, as the search restriction does: a grant limited to
    summaries does not keep the reports from a professional in an emergency (unless refused)."""
    from hygie.domain.policy import Principal, Relation, Target, decide

    grant = Relation("grant", frozenset({"11"}))
    report = Target("DocumentReference", "lea", categories=frozenset({"10"}))
    doctor = Principal("practitioner", "Practitioner/p", profession="10")
    assert not decide(doctor, "read", report, [grant]).allowed
    emergency = Principal("practitioner", "Practitioner/p", profession="10", break_glass=frozenset({"lea"}))
    assert decide(emergency, "read", report, [grant]).allowed
    refused = [grant, Relation("emergency_refusal")]
    assert not decide(emergency, "read", report, refused).allowed
