"""The access policy's search restriction compiled into SQL (ADR 0007), on SQLite and PostgreSQL.

Relations are written straight into ``idx_relation`` here (their derivation at write time is
tested in ``tests/unit/domain/test_relations.py``); the point is that matches, totals, chains
and ``_has`` only ever see the rows the restriction lets through.
"""

from __future__ import annotations

from typing import Any

import pytest

from hygie.domain.policy import Principal, restriction_for
from hygie.fhir.interactions import FhirService
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.fhir.search import parse_search
from hygie.stores.memory import MemoryResourceStore

pytestmark = pytest.mark.anyio

NOW = 2_000_000_000_000_000
LOINC = "http://loinc.org"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)


async def put(service: FhirService, resource: dict[str, Any]) -> None:
    r = await route(
        service, FhirRequest("PUT", f"{resource['resourceType']}/{resource['id']}", resource=resource)
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


async def relate(
    service: FhirService, kind: str, patient: str, actor: str, expires: int | None = None
) -> None:
    inner: Any = service.store.inner  # the SQL store under the Binary wrapper
    if hasattr(inner, "pool"):
        await inner.pool.execute(
            "INSERT INTO idx_relation (rid, res_type, param, patient, actor, categories, expires) "
            "VALUES (0, 'Test', $1, $2, $3, NULL, $4)",
            kind,
            patient,
            actor,
            expires,
        )
    else:
        inner.writer.execute(
            "INSERT INTO idx_relation (rid, res_type, param, patient, actor, categories, expires) "
            "VALUES (0, 'Test', ?, ?, ?, NULL, ?)",
            (kind, patient, actor, expires),
        )


@pytest.fixture
async def world(service: FhirService) -> FhirService:
    if isinstance(service.store.inner, MemoryResourceStore):  # type: ignore[attr-defined]
        pytest.skip("the in-memory twin applies restrictions once the policy is wired (trust core)")
    for pid in ("claire", "paul", "lea"):
        await put(service, {"resourceType": "Patient", "id": pid, "gender": "female"})
        await put(service, obs(f"o-{pid}", pid))
    await put(service, {"resourceType": "Practitioner", "id": "gp"})
    await put(service, doc("d-report", "claire", "10"))
    await put(service, doc("d-masked", "claire", "11", masked=True, author="Practitioner/other"))
    await put(service, doc("d-own-masked", "claire", "11", masked=True, author="Practitioner/gp"))
    await relate(service, "care_team", "claire", "Practitioner/gp")
    await relate(service, "encounter", "paul", "Practitioner/gp", expires=NOW - 1)  # expired
    await relate(service, "care_team", "lea", "Practitioner/gp")
    await relate(service, "block", "lea", "Practitioner/gp")
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
