"""``DocumentReference/[id]/$mask`` and ``$unmask`` through the FHIR API, on every store: the
patient (or a legal representative) hides a professional's document from professionals and
releases it; nobody else may, and nothing but the label changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime

pytestmark = pytest.mark.anyio

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
TRE_A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PORTAL = "hygie-portal"


def practitioner(pid: str, profession: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": f"8{pid}"}],
        "name": [{"family": pid, "prefix": ["Dr"]}],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": profession}]}}],
    }


def document(did: str, patient: str, author: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "category": [{"coding": [{"system": TRE_A03, "code": "10"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "date": "2026-01-05T10:00:00+01:00",
        "author": [{"reference": author}],
        "description": "Compte rendu de consultation",
        "securityLabel": labels,
        "content": [{"attachment": {"contentType": "application/pdf", "url": f"Binary/{did}-pdf"}}],
    }


NORMAL = [{"coding": [{"system": CONFIDENTIALITY, "code": "N"}]}]


def content(bid: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "id": bid,
        "contentType": "application/pdf",
        "securityContext": {"reference": f"Patient/{patient}"},
        "data": "JVBERi0xLjQK",
    }


async def seed(client: httpx.AsyncClient) -> None:
    resources: list[dict[str, Any]] = [
        practitioner("author", "10"),
        practitioner("gp", "10"),
        practitioner("nurse", "60"),
        practitioner("stranger", "10"),
        {
            "resourceType": "Patient",
            "id": "lea",
            "name": [{"family": "Durand", "given": ["Léa"]}],
            "generalPractitioner": [{"reference": "Practitioner/gp"}],  # her médecin traitant
        },
        {"resourceType": "Patient", "id": "paul", "name": [{"family": "Martin"}]},
        {"resourceType": "Patient", "id": "zoe", "name": [{"family": "Durand"}], "birthDate": "2016-03-02"},
        {
            "resourceType": "RelatedPerson",
            "id": "mother",
            "active": True,
            "patient": {"reference": "Patient/zoe"},
            "relationship": [{"coding": [{"system": ROLE_CODE, "code": "MTH"}]}],
            "name": [{"family": "Durand", "given": ["Anne"]}],
        },
        {
            "resourceType": "CareTeam",
            "id": "ct-lea",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [
                {"member": {"reference": "Practitioner/author"}},
                {"member": {"reference": "Practitioner/nurse"}},
            ],
        },
        content("report-pdf", "lea"),
        content("zoe-report-pdf", "zoe"),
        document("report", "lea", "Practitioner/author", NORMAL),
        document("zoe-report", "zoe", "Practitioner/author", NORMAL),
    ]
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


async def as_citizen(runtime: Runtime, who: str) -> dict[str, str]:
    return await bearer(runtime, kind="citizen", scope="openid", fhir_user=who, client_id=PORTAL)


async def as_pro(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(
        runtime, kind="professional", scope="openid", fhir_user=f"Practitioner/{pid}", client_id=PORTAL
    )


def mask_codes(body: dict[str, Any]) -> list[str]:
    return [
        c["code"]
        for label in body.get("securityLabel", [])
        for c in label.get("coding", [])
        if c.get("system") == TRE_A07
    ]


async def test_the_patient_masks_a_professionals_document_and_releases_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    lea = await as_citizen(runtime, "Patient/lea")
    nurse_h, gp_h, author_h = [await as_pro(runtime, p) for p in ("nurse", "gp", "author")]
    before = (await client.get("/fhir/DocumentReference/report", headers=lea)).json()
    assert (await client.get("/fhir/DocumentReference/report", headers=nurse_h)).status_code == 200

    # an update of a professional's document stays refused to her…
    changed = {**before, "description": "autre chose"}
    assert (await client.put("/fhir/DocumentReference/report", json=changed, headers=lea)).status_code == 403
    # …but she may mask it: a new version, the label alone changed
    r = await client.post("/fhir/DocumentReference/report/$mask", headers=lea)
    assert r.status_code == 200, r.text
    masked = r.json()
    assert mask_codes(masked) == ["MASQUE_PS"]
    assert masked["meta"]["versionId"] == "2"
    strip = ("meta", "securityLabel")
    assert {k: v for k, v in masked.items() if k not in strip} == {
        k: v for k, v in before.items() if k not in strip
    }
    assert [label for label in masked["securityLabel"] if label["coding"][0]["system"] != TRE_A07] == NORMAL

    # professionals no longer see it — except its author and the médecin traitant
    assert (await client.get("/fhir/DocumentReference/report", headers=nurse_h)).status_code == 404
    found = (await client.get("/fhir/DocumentReference?patient=lea", headers=nurse_h)).json()
    assert found.get("total", 0) == 0 and not found.get("entry")
    assert (await client.get("/fhir/DocumentReference/report", headers=gp_h)).status_code == 200
    assert (await client.get("/fhir/DocumentReference/report", headers=author_h)).status_code == 200
    assert (await client.get("/fhir/DocumentReference/report", headers=lea)).status_code == 200
    # its content too: not by id, not in a search, not in $everything
    assert (await client.get("/fhir/Binary/report-pdf", headers=nurse_h)).status_code == 404
    assert not (await client.get("/fhir/Binary", headers=nurse_h)).json().get("entry")
    everything = (await client.get("/fhir/Patient/lea/$everything", headers=nurse_h)).json()
    assert "report-pdf" not in str(everything)
    assert (await client.get("/fhir/Binary/report-pdf", headers=gp_h)).status_code == 200
    assert (await client.get("/fhir/Binary/report-pdf", headers=lea)).status_code == 200

    # masking twice writes nothing
    again = await client.post("/fhir/DocumentReference/report/$mask", headers=lea)
    assert again.status_code == 200 and again.json()["meta"]["versionId"] == "2"

    # released: visible again, the other labels kept
    r = await client.post("/fhir/DocumentReference/report/$unmask", headers=lea)
    assert r.status_code == 200, r.text
    assert mask_codes(r.json()) == [] and r.json()["securityLabel"] == NORMAL
    assert (await client.get("/fhir/DocumentReference/report", headers=nurse_h)).status_code == 200
    binary = await client.get("/fhir/Binary/report-pdf", headers=nurse_h)
    assert binary.status_code == 200 and "security" not in binary.json().get("meta", {})

    # the trail shows the operations
    history = (await client.get("/fhir/Patient/lea/$access-history", headers=lea)).json()
    details = " ".join(str(e["resource"]) for e in history.get("entry", []))
    assert "$mask" in details and "$unmask" in details


async def test_professionals_and_other_patients_may_not_mask(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    author = await as_pro(runtime, "author")
    stranger = await as_pro(runtime, "stranger")
    paul = await as_citizen(runtime, "Patient/paul")
    # the author sees the document but may not decide who else does
    r = await client.post("/fhir/DocumentReference/report/$mask", headers=author)
    assert r.status_code == 403
    # someone who cannot see it learns nothing: "not known"
    assert (await client.post("/fhir/DocumentReference/report/$mask", headers=stranger)).status_code == 404
    assert (await client.post("/fhir/DocumentReference/report/$mask", headers=paul)).status_code == 404
    assert (await client.post("/fhir/DocumentReference/report/$unmask", headers=paul)).status_code == 404
    assert (await client.post("/fhir/DocumentReference/nothing/$mask", headers=paul)).status_code == 404
    # the document is unchanged
    lea = await as_citizen(runtime, "Patient/lea")
    current = (await client.get("/fhir/DocumentReference/report", headers=lea)).json()
    assert current["meta"]["versionId"] == "1" and mask_codes(current) == []
    # the operation takes POST only
    assert (await client.get("/fhir/DocumentReference/report/$mask", headers=lea)).status_code == 405


async def test_a_legal_representative_masks_for_the_child_and_if_match_is_honoured(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    mother = await as_citizen(runtime, "RelatedPerson/mother")
    stale = await client.post(
        "/fhir/DocumentReference/zoe-report/$mask", headers={**mother, "If-Match": 'W/"7"'}
    )
    assert stale.status_code == 412
    r = await client.post("/fhir/DocumentReference/zoe-report/$mask", headers={**mother, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert mask_codes(r.json()) == ["MASQUE_PS"]
    # her link is to Zoé, not to Léa
    assert (await client.post("/fhir/DocumentReference/report/$mask", headers=mother)).status_code == 404
