"""Tokens become principals: citizens, representatives, professionals with their profession,
backend services, and apps whose scopes travel with them."""

from __future__ import annotations

from typing import Any

import pytest

from hygie.auth.principals import TRE_G15, PrincipalResolver, profession_of
from hygie.auth.scopes import parse_scopes
from hygie.auth.tokens import AccessToken

pytestmark = pytest.mark.anyio

DOCTOR = {
    "resourceType": "Practitioner",
    "id": "gp",
    "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
}


def token(
    kind: str, fhir_user: str | None = None, patient: str | None = None, client: str = "app"
) -> AccessToken:
    return AccessToken(
        subject="acc",
        client_id=client,
        kind=kind,
        scopes=parse_scopes("patient/*.rs"),
        patient=patient,
        fhir_user=fhir_user,
    )


async def test_principals_from_tokens() -> None:
    reads: list[tuple[str, str]] = []

    async def read(rtype: str, rid: str) -> dict[str, Any] | None:
        reads.append((rtype, rid))
        if rtype == "RelatedPerson":
            code = {"mother": "MTH", "friend": "FRND"}[rid]
            return {"resourceType": rtype, "id": rid, "relationship": [{"coding": [{"code": code}]}]}
        return DOCTOR if rid == "gp" else None

    resolver = PrincipalResolver(read)
    citizen = await resolver.principal(token("citizen", "Patient/claire"))
    assert (citizen.kind, citizen.patient_id, citizen.launch_patient) == ("patient", "claire", "claire")
    assert citizen.scopes is not None
    parent = await resolver.principal(token("citizen", "RelatedPerson/mother", patient="lea"))
    assert (parent.kind, parent.launch_patient) == ("representative", "lea")
    helper = await resolver.principal(token("citizen", "RelatedPerson/friend", patient="lea"))
    assert helper.kind == "aidant"
    pro = await resolver.principal(token("professional", "Practitioner/gp", patient="claire"))
    assert (pro.kind, pro.profession, pro.launch_patient) == ("practitioner", "10", "claire")
    await resolver.principal(token("professional", "Practitioner/gp"))
    assert reads.count(("Practitioner", "gp")) == 1  # cached
    backend = await resolver.principal(token("system", client="pms"))
    assert (backend.kind, backend.subject) == ("system", "pms")
    portal = await resolver.principal(token("citizen", "Patient/claire", client="hygie-portal"))
    assert portal.scopes is None
    assert (await resolver.principal(token("professional", None))).kind == "anonymous"


def test_profession_of() -> None:
    assert profession_of(DOCTOR) == "10"
    assert profession_of({"resourceType": "Practitioner"}) is None
