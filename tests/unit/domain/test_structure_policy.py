"""A backend client bound to a structure (a practice's software) acts as that Organization: one
test per rule, each with the case it allows and the case it refuses — and the search restriction
that says the same for every row of a search. Unbound backend clients stay platform jobs."""

from __future__ import annotations

from hygie.auth.scopes import parse_scopes
from hygie.domain.policy import Principal, Relation, Target, decide, restriction_for
from hygie.domain.relations import relations_from

NOW = 1_800_000_000_000_000
CABINET = "Organization/cabinet"
SOFTWARE = Principal(
    "system", "logiciel-cabinet", organization=CABINET, scopes=parse_scopes("system/*.cruds")
)
PLATFORM = Principal("system", "export-job", scopes=parse_scopes("system/*.cruds"))
ENCOUNTER = [Relation("encounter")]
OBS = Target("Observation", "claire")
REPORT = Target(
    "DocumentReference", "claire", categories=frozenset({"10"}), authors=frozenset({"Practitioner/other"})
)
OWN_REPORT = Target(
    "DocumentReference",
    "claire",
    categories=frozenset({"10"}),
    authors=frozenset({"Practitioner/gp", CABINET}),
)
SUMMARY = Target(
    "DocumentReference", "claire", categories=frozenset({"11"}), authors=frozenset({"Practitioner/other"})
)


def allowed(interaction: str, target: Target, relations: list[Relation], who: Principal = SOFTWARE) -> bool:
    return decide(who, interaction, target, relations, now_us=NOW).allowed  # type: ignore[arg-type]


def test_a_bound_client_is_the_structure_and_an_unbound_one_a_platform_job() -> None:
    assert SOFTWARE.structure == CABINET
    assert PLATFORM.structure is None
    # a professional's structure does not make them a structure
    assert Principal("practitioner", "Practitioner/gp", organization=CABINET).structure is None
    # the platform job: every record its scopes name, no relation needed
    assert allowed("read", REPORT, [], PLATFORM)
    assert allowed("create", Target("Observation", "paul"), [], PLATFORM)
    assert restriction_for(PLATFORM, "DocumentReference").relation_actor is None


def test_the_structure_reaches_a_record_only_through_its_own_care_relation() -> None:
    for kind in ("encounter", "care_team", "grant"):
        assert allowed("read", OBS, [Relation(kind)]), kind  # type: ignore[arg-type]
        assert allowed("create", OBS, [Relation(kind)]), kind  # type: ignore[arg-type]
    assert not allowed("read", OBS, [])
    assert not allowed("create", OBS, [])
    # an expired relation is no relation
    assert not allowed("read", OBS, [Relation("encounter", expires_us=NOW - 1)])
    # no break-glass for a machine
    emergency = Principal(
        "system", "logiciel", organization=CABINET, scopes=SOFTWARE.scopes, break_glass=frozenset({"claire"})
    )
    assert not allowed("read", OBS, [], emergency)


def test_a_block_of_the_structure_or_a_closed_space_wins() -> None:
    assert allowed("read", OBS, ENCOUNTER)
    assert not allowed("read", OBS, [*ENCOUNTER, Relation("block")])
    assert not allowed("create", OBS, [*ENCOUNTER, Relation("block")])
    assert not allowed("read", OBS, [*ENCOUNTER, Relation("space_closed")])
    assert not allowed("create", OBS, [Relation("grant"), Relation("space_closed")])


def test_the_structure_reads_the_documents_it_authored_not_others() -> None:
    assert allowed("read", OWN_REPORT, ENCOUNTER)
    assert allowed("search", OWN_REPORT, ENCOUNTER)
    assert not allowed("read", REPORT, ENCOUNTER)
    assert not allowed("history", REPORT, ENCOUNTER)
    # uncategorised data of the record is open with the relation
    assert allowed("search", OBS, ENCOUNTER)


def test_a_grant_to_the_structure_opens_its_categories() -> None:
    summaries = [Relation("grant", frozenset({"11"}))]
    assert allowed("read", SUMMARY, summaries)
    assert not allowed("read", REPORT, summaries)
    assert allowed("read", REPORT, [Relation("grant")])  # a grant limited to no class: every class
    # an encounter beside a grant does not widen the documents the structure reads
    assert not allowed("read", REPORT, [*summaries, *ENCOUNTER])


def test_a_document_masked_by_the_patient_stays_with_its_authors() -> None:
    masked_other = Target(
        "DocumentReference",
        "claire",
        categories=frozenset({"11"}),
        labels=frozenset({"MASQUE_PS"}),
        authors=frozenset({"Practitioner/other"}),
    )
    masked_own = Target(
        "DocumentReference",
        "claire",
        categories=frozenset({"11"}),
        labels=frozenset({"MASQUE_PS"}),
        authors=frozenset({CABINET}),
    )
    assert not allowed("read", masked_other, [Relation("grant")])
    assert not allowed("update", masked_other, [Relation("grant")])
    assert allowed("read", masked_own, ENCOUNTER)
    assert allowed("update", masked_own, ENCOUNTER)
    # depositing a masked document, and its content (a Binary names no author), is allowed
    masked_content = Target("Binary", "claire", labels=frozenset({"MASQUE_PS"}))
    assert allowed("create", masked_content, ENCOUNTER)
    assert not allowed("read", masked_content, ENCOUNTER)
    # hidden from the patient or their representatives: a professional's concern, not a block
    hidden = Target(
        "DocumentReference",
        "claire",
        categories=frozenset({"10"}),
        labels=frozenset({"INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}),
        authors=frozenset({CABINET}),
    )
    assert allowed("read", hidden, ENCOUNTER)


def test_the_structure_changes_only_what_it_authored() -> None:
    assert allowed("update", OWN_REPORT, ENCOUNTER)
    assert allowed("delete", OWN_REPORT, ENCOUNTER)
    assert not allowed("update", REPORT, [Relation("grant")])
    assert not allowed("delete", SUMMARY, [Relation("grant")])
    # an entry that names no author (a measure loaded without performer) is the record's
    assert allowed("update", OBS, ENCOUNTER)


def test_the_structure_deposits_content_but_never_reads_or_rewrites_it() -> None:
    content = Target("Binary", "claire")
    assert allowed("create", content, ENCOUNTER)
    assert not allowed("read", content, ENCOUNTER)
    assert not allowed("search", content, ENCOUNTER)
    assert not allowed("update", content, ENCOUNTER)
    assert not allowed("delete", content, ENCOUNTER)
    assert not allowed("read", Target("Binary", None), [])  # no content outside a record either
    assert restriction_for(SOFTWARE, "Binary").structure_actor == CABINET


def test_the_patients_consents_and_relatives_are_theirs() -> None:
    assert allowed("read", Target("Consent", "claire"), ENCOUNTER)
    assert not allowed("create", Target("Consent", "claire"), ENCOUNTER)
    assert not allowed("update", Target("RelatedPerson", "claire"), ENCOUNTER)
    assert allowed("create", Target("Encounter", "claire"), ENCOUNTER)


def test_reference_data_is_read_not_written() -> None:
    directory = Target("Practitioner", None)
    assert allowed("read", directory, [])
    assert allowed("search", Target("Organization", None), [])
    assert not allowed("create", directory, [])
    assert not allowed("update", Target("Organization", None), [])


def test_scopes_still_narrow_the_structure() -> None:
    narrow = Principal(
        "system", "logiciel", organization=CABINET, scopes=parse_scopes("system/DocumentReference.c")
    )
    assert allowed("create", OWN_REPORT, ENCOUNTER, narrow)
    assert not allowed("read", OWN_REPORT, ENCOUNTER, narrow)
    assert restriction_for(narrow, "Observation").nothing


def test_the_search_restriction_says_what_decide_says() -> None:
    r = restriction_for(SOFTWARE, "DocumentReference")
    # the structure's relations (a médecin traitant is a person, never a structure), its blocks
    assert r.relation_actor == CABINET and r.blocked_for_actor == CABINET
    assert r.relation_kinds == frozenset({"care_team", "encounter", "grant"})
    # masked documents only when it wrote them; no médecin traitant exception
    assert r.exclude_labels == frozenset({"MASQUE_PS"}) and r.unless_author == CABINET
    assert r.unless_relation == frozenset()
    # its documents and its grants' categories; no break-glass patients; reference data stays
    assert r.structure_actor == CABINET and r.extra_patients == frozenset() and r.outside_compartments
    assert r.categories is None and r.grant_categories_actor is None


def test_an_encounter_at_the_structure_is_the_relation_it_holds() -> None:
    """``domain/relations.py``: the serviceProvider of an encounter is an actor of the record, as
    a care team's member or a consent's actor can be; a médecin traitant never is a structure."""
    rows = relations_from(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "subject": {"reference": "Patient/claire"},
            "serviceProvider": {"reference": CABINET},
        }
    )
    assert [(r.kind, r.actor) for r in rows] == [("encounter", CABINET)]
    gp = relations_from(
        {"resourceType": "Patient", "id": "claire", "generalPractitioner": [{"reference": CABINET}]}
    )
    assert gp == []
