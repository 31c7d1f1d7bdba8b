"""The access policy's search restriction compiled into SQL (ADR 0007), on SQLite and PostgreSQL.

Relations come from real resources (care teams, an encounter, a blocking consent), derived at
write time into ``idx_relation``; the point is that matches, totals, chains and ``_has`` only
ever see the rows the restriction lets through, on every store.
"""

from __future__ import annotations

from typing import Any

import pytest

from hygie.domain.access import Caller
from hygie.domain.policy import Principal, restriction_for
from hygie.fhir.interactions import FhirService
from hygie.fhir.outcome import NotFound
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.fhir.search import parse_search

OPERATOR = Caller.operator("tests")

pytestmark = pytest.mark.anyio

NOW = 2_000_000_000_000_000
LOINC = "http://loinc.org"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)


async def put(service: FhirService, resource: dict[str, Any]) -> None:
    r = await route(
        service,
        FhirRequest(
            "PUT", f"{resource['resourceType']}/{resource['id']}", resource=resource, caller=OPERATOR
        ),
    )
    assert r.status in (200, 201)


def obs(oid: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def doc(
    did: str, patient: str, category: str, *, masked: bool = False, author: str | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "current",
        "subject": {"reference": f"Patient/{patient}"},
        "category": [{"coding": [{"system": "urn:test:class", "code": category}]}],
        "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/x"}}],
    }
    if masked:
        resource["securityLabel"] = [{"coding": [{"system": TRE_A07, "code": "MASQUE_PS"}]}]
    if author:
        resource["author"] = [{"reference": author}]
    return resource


def care_team(tid: str, patient: str, member: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": tid,
        "status": "active",
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"member": {"reference": member}}],
    }


@pytest.fixture
async def world(service: FhirService) -> FhirService:
    """Relations come from real resources, derived on write (domain/relations.py)."""
    for pid in ("claire", "paul", "lea"):
        await put(service, {"resourceType": "Patient", "id": pid, "gender": "female"})
        await put(service, obs(f"o-{pid}", pid))
    await put(service, {"resourceType": "Practitioner", "id": "gp"})
    await put(service, doc("d-report", "claire", "10"))
    await put(service, doc("d-masked", "claire", "11", masked=True, author="Practitioner/other"))
    await put(service, doc("d-own-masked", "claire", "11", masked=True, author="Practitioner/gp"))
    await put(service, care_team("ct-claire", "claire", "Practitioner/gp"))
    await put(
        service,
        {  # an encounter long over: its relation has expired
            "resourceType": "Encounter",
            "id": "e-paul",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/paul"},
            "period": {"start": "2020-01-01", "end": "2020-01-02"},
            "participant": [{"individual": {"reference": "Practitioner/gp"}}],
        },
    )
    await put(service, care_team("ct-lea", "lea", "Practitioner/gp"))
    await put(
        service,
        {  # Léa blocks the GP: the block wins over the care team
            "resourceType": "Consent",
            "id": "c-lea",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
            "patient": {"reference": "Patient/lea"},
            "provision": {
                "type": "deny",
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "IRCP",
                                }
                            ]
                        },
                        "reference": {"reference": "Practitioner/gp"},
                    }
                ],
            },
        },
    )
    return service


async def found(
    service: FhirService, principal: Principal, rtype: str, params: list[tuple[str, str]]
) -> list[str]:
    query = parse_search(rtype, [*params, ("_count", "100")])
    query.restriction = restriction_for(principal, rtype)
    page = await service.store.search(query, now_us=NOW)
    assert await service.store.count(query, now_us=NOW) == len(page.resources)
    return sorted(r.id for r in page.resources)


GP = Principal("practitioner", "Practitioner/gp", profession="10")
PHARMACIST = Principal("practitioner", "Practitioner/gp", profession="21")


async def test_professional_sees_only_live_unblocked_relations(world: FhirService) -> None:
    assert await found(world, GP, "Observation", []) == ["o-claire"]
    assert await found(world, GP, "Patient", []) == ["claire"]
    # outside every compartment: visible
    assert await found(world, GP, "Practitioner", []) == ["gp"]


async def test_masked_documents_stay_with_their_authors(world: FhirService) -> None:
    assert await found(world, GP, "DocumentReference", []) == ["d-own-masked", "d-report"]


async def test_profession_matrix_filters_document_categories(world: FhirService) -> None:
    # pharmacists: category 11 (summary) yes, 10 (report) no
    assert await found(world, PHARMACIST, "DocumentReference", []) == ["d-own-masked"]


async def test_patient_sees_only_their_own_record(world: FhirService) -> None:
    claire = Principal("patient", "Patient/claire")
    assert await found(world, claire, "Observation", []) == ["o-claire"]
    assert await found(world, claire, "DocumentReference", []) == ["d-masked", "d-own-masked", "d-report"]


async def test_chains_and_has_cannot_reveal_hidden_rows(world: FhirService) -> None:
    # paul's observation exists but the GP may not see it: _has on it must not reveal Paul
    assert await found(world, GP, "Patient", [("_has:Observation:subject:code", "29463-7")]) == ["claire"]
    assert await found(world, GP, "Observation", [("subject:Patient.gender", "female")]) == ["o-claire"]


async def test_anonymous_sees_nothing(world: FhirService) -> None:
    assert await found(world, Principal("anonymous"), "Practitioner", []) == []


async def test_relations_are_derived_on_write_and_replaced_on_update(world: FhirService) -> None:
    kinds = {k for k, _, _ in await world.store.relations("lea", ["Practitioner/gp"], now_us=NOW)}
    assert kinds == {"care_team", "block"}
    assert await world.store.relations("paul", ["Practitioner/gp"], now_us=NOW) == []  # expired
    await put(world, {**care_team("ct-lea", "lea", "Practitioner/someone-else")})
    kinds = {k for k, _, _ in await world.store.relations("lea", ["Practitioner/gp"], now_us=NOW)}
    assert kinds == {"block"}
    await route(world, FhirRequest("DELETE", "Consent/c-lea", caller=OPERATOR))
    assert await world.store.relations("lea", ["Practitioner/gp"], now_us=NOW) == []


CABINET = "Organization/cabinet"
GP_AT_CABINET = Principal("practitioner", "Practitioner/gp", profession="10", organization=CABINET)
COLLEAGUE = Principal("practitioner", "Practitioner/colleague", profession="10", organization=CABINET)


IRCP = {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}


def consent(cid: str, patient: str, kind: str, actor: str, classes: tuple[str, ...] = ()) -> dict[str, Any]:
    scope = {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {"coding": [scope]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": {
            "type": kind,
            "actor": [{"role": {"coding": [IRCP]}, "reference": {"reference": actor}}],
            **({"class": [{"system": "urn:test:class", "code": c} for c in classes]} if classes else {}),
        },
    }


async def readable(service: FhirService, principal: Principal, reference: str) -> bool:
    """The single read's verdict (domain/policy.py decide, through the FHIR service)."""
    try:
        r = await route(service, FhirRequest("GET", reference, caller=Caller.of(principal)))
    except NotFound:  # refused looks like absent
        return False
    assert r.status == 200
    return True


async def test_a_professionals_structure_opens_and_closes_their_searches_as_their_reads(
    world: FhirService,
) -> None:
    # a colleague of the GP's practice, with no relation of their own: nothing yet
    assert await found(world, COLLEAGUE, "Patient", []) == []
    assert not await readable(world, COLLEAGUE, "Observation/o-paul")
    # Paul consults the practice (a declared encounter: $declare-care names it serviceProvider)
    await put(
        world,
        {
            "resourceType": "Encounter",
            "id": "e-paul-cabinet",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/paul"},
            "serviceProvider": {"reference": CABINET},
        },
    )
    for who, patients in ((COLLEAGUE, ["paul"]), (GP_AT_CABINET, ["claire", "paul"]), (GP, ["claire"])):
        assert await found(world, who, "Patient", []) == patients
        assert await found(world, who, "Observation", []) == [f"o-{p}" for p in patients]
        for pid in ("claire", "paul", "lea"):
            assert await readable(world, who, f"Observation/o-{pid}") == (pid in patients), (who, pid)
    # Claire blocks the practice: gone from every member's searches and reads, even the GP's own
    # care team gives way (a block wins); the GP outside the practice still reaches her
    await put(world, consent("c-claire-cabinet", "claire", "deny", CABINET))
    for who, patients in ((COLLEAGUE, ["paul"]), (GP_AT_CABINET, ["paul"]), (GP, ["claire"])):
        assert await found(world, who, "Patient", []) == patients
        assert await found(world, who, "DocumentReference", [("patient", "claire")]) == (
            ["d-own-masked", "d-report"] if "claire" in patients else []
        )
        for pid in ("claire", "paul"):
            assert await readable(world, who, f"Patient/{pid}") == (pid in patients), (who, pid)


async def test_a_grant_to_the_structure_limited_to_classes_limits_its_members(world: FhirService) -> None:
    # Léa grants the practice her summaries (class 11) only: a member without relation of their
    # own finds and reads her summaries, not her reports
    await put(world, doc("d-lea-report", "lea", "10"))
    await put(world, doc("d-lea-summary", "lea", "11"))
    await put(world, consent("c-lea-cabinet", "lea", "permit", CABINET, ("11",)))
    assert await found(world, COLLEAGUE, "DocumentReference", []) == ["d-lea-summary"]
    assert await readable(world, COLLEAGUE, "DocumentReference/d-lea-summary")
    assert not await readable(world, COLLEAGUE, "DocumentReference/d-lea-report")
    assert await found(world, COLLEAGUE, "Observation", []) == ["o-lea"]
    # the colleague's own grant of reports adds to the structure's: both classes now
    await put(world, consent("c-lea-colleague", "lea", "permit", "Practitioner/colleague", ("10",)))
    own = await world.store.relations("lea", ["Practitioner/colleague"], now_us=NOW)
    assert [k for k, _, _ in own] == ["grant"]
    assert await found(world, COLLEAGUE, "DocumentReference", []) == ["d-lea-report", "d-lea-summary"]
    assert await readable(world, COLLEAGUE, "DocumentReference/d-lea-report")
