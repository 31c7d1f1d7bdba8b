"""A closed health space through the FHIR API, on every store: professionals (with a care
relation, or an emergency access) and helpers find nothing of the record, in reads and in
searches; the patient and her legal representative still read it; reopening restores access."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime
from hygie.domain.relations import SPACE_CATEGORY, SPACE_CATEGORY_SYSTEM

pytestmark = pytest.mark.anyio
PORTAL = "hygie-portal"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def space(kind: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": "space-lea",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
            {"coding": [{"system": SPACE_CATEGORY_SYSTEM, "code": SPACE_CATEGORY}]},
        ],
        "patient": {"reference": "Patient/lea"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]
        },
        "provision": {"type": kind, "period": {"start": "2026-11-01T10:00:00Z"}},
    }


async def test_a_closed_space_is_shut_to_professionals_and_helpers(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "lea", "birthDate": "2012-05-01", "name": [{"family": "Durand"}]},
        {"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Bernard"}]},
        {
            "resourceType": "CareTeam",
            "id": "ct",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [{"member": {"reference": "Practitioner/gp"}}],
        },
        {
            "resourceType": "RelatedPerson",
            "id": "mother",
            "patient": {"reference": "Patient/lea"},
            "relationship": [{"coding": [{"system": ROLE, "code": "MTH"}]}],
        },
        {
            "resourceType": "RelatedPerson",
            "id": "helper",
            "patient": {"reference": "Patient/lea"},
            "relationship": [{"coding": [{"system": ROLE, "code": "CAREGIVER"}]}],
        },
        {
            "resourceType": "Observation",
            "id": "o",
            "status": "final",
            "code": {"text": "Poids"},
            "subject": {"reference": "Patient/lea"},
        },
    ]
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text

    async def who(kind: str, fhir_user: str) -> dict[str, str]:
        return await bearer(runtime, kind=kind, scope="openid", fhir_user=fhir_user, client_id=PORTAL)

    gp = await who("professional", "Practitioner/gp")
    helper = await who("citizen", "RelatedPerson/helper")
    mother = await who("citizen", "RelatedPerson/mother")
    lea = await who("citizen", "Patient/lea")

    async def sees(headers: dict[str, str]) -> tuple[int, int]:
        read = await client.get("/fhir/Observation/o", headers=headers)
        found = await client.get("/fhir/Observation", params={"patient": "lea"}, headers=headers)
        return read.status_code, len(found.json().get("entry", []))

    for headers in (gp, helper, mother, lea):
        assert await sees(headers) == (200, 1)
    assert (await client.put("/fhir/Consent/space-lea", json=space("deny"), headers=lea)).status_code == 201
    assert await sees(gp) == (404, 0)
    assert await sees(helper) == (404, 0)
    assert await sees(mother) == (200, 1)
    assert await sees(lea) == (200, 1)
    patients = await client.get("/fhir/Patient", params={"_id": "lea"}, headers=gp)
    assert patients.json().get("entry", []) == []
    assert (
        await client.put("/fhir/Consent/space-lea", json=space("permit"), headers=mother)
    ).status_code == 200
    for headers in (gp, helper, mother, lea):
        assert await sees(headers) == (200, 1)
