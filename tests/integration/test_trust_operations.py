"""The citizen's controls and the emergency access, end to end through the FHIR API:
access history and "je ne reconnais pas", break-glass, share codes — on every store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime

pytestmark = pytest.mark.anyio

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
PORTAL = "hygie-portal"  # first-party sessions: the rules alone apply


def practitioner(pid: str, name: str, profession: str = "10") -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": f"8{pid}"}],
        "name": [{"family": name, "prefix": ["Dr"]}],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": profession}]}}],
    }


async def seed(client: httpx.AsyncClient) -> None:
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "lea",
            "name": [{"family": "Durand", "given": ["Léa"]}],
            "telecom": [{"system": "email", "value": "lea.durand@example.fr"}],
        },
        {"resourceType": "Patient", "id": "paul", "name": [{"family": "Martin"}]},
        practitioner("gp", "Bernard"),
        practitioner("er", "Urgentiste"),
        practitioner("other", "Autre"),
        {
            "resourceType": "CareTeam",
            "id": "ct-lea",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [{"member": {"reference": "Practitioner/gp"}}],
        },
        {
            "resourceType": "Observation",
            "id": "obs-lea",
            "status": "final",
            "code": {"text": "Poids"},
            "subject": {"reference": "Patient/lea"},
            "valueQuantity": {"value": 61.5, "unit": "kg"},
        },
        {
            "resourceType": "Observation",
            "id": "obs-paul",
            "status": "final",
            "code": {"text": "Poids"},
            "subject": {"reference": "Patient/paul"},
        },
        {  # Paul refuses emergency access to his record
            "resourceType": "Consent",
            "id": "no-btg-paul",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/paul"},
            "provision": {
                "type": "deny",
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG"}],
            },
        },
    ]
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


async def as_patient(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(runtime, kind="citizen", scope="openid", fhir_user=f"Patient/{pid}", client_id=PORTAL)


async def as_pro(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(
        runtime, kind="professional", scope="openid", fhir_user=f"Practitioner/{pid}", client_id=PORTAL
    )


def parameters(**values: Any) -> dict[str, Any]:
    params = []
    for name, value in values.items():
        key = "valueDecimal" if isinstance(value, float) else "valueString"
        params.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": params}


def value(body: dict[str, Any], name: str) -> Any:
    for p in body["parameter"]:
        if p["name"] == name:
            return next(v for k, v in p.items() if k.startswith("value"))
    raise KeyError(name)


async def test_the_patient_sees_who_accessed_her_record_and_disputes_an_access(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    gp = await as_pro(runtime, "gp")
    assert (await client.get("/fhir/Observation/obs-lea", headers=gp)).status_code == 200
    other = await as_pro(runtime, "other")
    assert (await client.get("/fhir/Observation/obs-lea", headers=other)).status_code == 404
    lea = await as_patient(runtime, "lea")
    r = await client.get("/fhir/Patient/lea/$access-history", headers=lea)
    assert r.status_code == 200, r.text
    events = [e["resource"] for e in r.json()["entry"]]
    by_gp = [
        e
        for e in events
        if any(a.get("who", {}).get("display") == "Dr Bernard" for a in e["agent"])
        and any(x.get("what", {}).get("reference") == "Observation/obs-lea" for x in e["entity"])
    ]
    assert by_gp and by_gp[0]["outcome"] == "0"
    refused = [e for e in events if e["outcome"] == "4"]
    assert refused, "the refused attempt of another professional is in the history too"
    # paging, newest first
    page = await client.get("/fhir/Patient/lea/$access-history", params={"_count": "1"}, headers=lea)
    assert len(page.json()["entry"]) == 1
    assert any(link["relation"] == "next" for link in page.json()["link"])
    # only the patient (and her representatives) read it
    assert (await client.get("/fhir/Patient/lea/$access-history", headers=gp)).status_code == 404
    paul = await as_patient(runtime, "paul")
    assert (await client.get("/fhir/Patient/lea/$access-history", headers=paul)).status_code == 404
    # "je ne reconnais pas cet accès"
    event_id = by_gp[0]["id"]
    r = await client.post(
        f"/fhir/AuditEvent/{event_id}/$dispute",
        json=parameters(comment="Je ne connais pas ce médecin"),
        headers=lea,
    )
    assert r.status_code == 201, r.text
    case = await runtime.audit.get_dispute(value(r.json(), "dispute"))
    assert case is not None and case.status == "open" and case.patient == "lea"
    again = await client.post(
        f"/fhir/AuditEvent/{event_id}/$dispute", json=parameters(comment="encore"), headers=lea
    )
    assert again.status_code == 422
    not_hers = await client.post(
        f"/fhir/AuditEvent/{event_id}/$dispute", json=parameters(comment="?"), headers=paul
    )
    assert not_hers.status_code == 404


async def test_break_glass_opens_a_traced_emergency_access_unless_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    er = await as_pro(runtime, "er")
    assert (await client.get("/fhir/Observation/obs-lea", headers=er)).status_code == 404
    short = await client.post(
        "/fhir/Patient/lea/$break-glass",
        json=parameters(reason="URGENCE_VITALE", justification="urgent"),
        headers=er,
    )
    assert short.status_code == 422
    assert "10 caractères" in short.json()["issue"][0]["diagnostics"]
    r = await client.post(
        "/fhir/Patient/lea/$break-glass",
        json=parameters(reason="PATIENT_INCONSCIENT", justification="Patiente inconsciente aux urgences"),
        headers=er,
    )
    assert r.status_code == 201, r.text
    assert value(r.json(), "expires")
    read = await client.get("/fhir/Observation/obs-lea", headers=er)
    assert read.status_code == 200
    # the patient is told, the structure reviews it, the trail says BTG
    assert runtime.outbox is not None
    assert any(m.to == "lea.durand@example.fr" for m in await runtime.outbox.pending(due_only=False))
    assert runtime.break_glass is not None
    assert [g.patient for g in await runtime.break_glass.review_queue(None)] == ["lea"]
    page = await runtime.audit.list_for_patient("lea", count=200)
    purposes = [r.entry.purpose or "" for r in page.records]
    assert sum("BTG" in p for p in purposes) >= 2  # the opening and the read under it
    # Paul refused emergency access: nothing opens
    refused = await client.post(
        "/fhir/Patient/paul/$break-glass",
        json=parameters(reason="URGENCE_VITALE", justification="Patient inconscient aux urgences"),
        headers=er,
    )
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["refused-by-patient"]
    assert (await client.get("/fhir/Observation/obs-paul", headers=er)).status_code == 404
    # a citizen cannot open one
    lea = await as_patient(runtime, "lea")
    assert (
        await client.post(
            "/fhir/Patient/paul/$break-glass",
            json=parameters(reason="URGENCE_VITALE", justification="Patient inconscient aux urgences"),
            headers=lea,
        )
    ).status_code == 403


async def test_a_share_code_grants_a_professional_until_revoked(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    lea = await as_patient(runtime, "lea")
    other = await as_pro(runtime, "other")
    assert (await client.get("/fhir/Observation/obs-lea", headers=other)).status_code == 404
    r = await client.post("/fhir/Patient/lea/$share", json=parameters(days=2.0), headers=lea)
    assert r.status_code == 201, r.text
    code = value(r.json(), "code")
    assert len(code) == 8
    assert value(r.json(), "qr").startswith("data:image/svg+xml")
    # another patient cannot share Léa's record; a professional cannot redeem as a patient
    paul = await as_patient(runtime, "paul")
    assert (
        await client.post("/fhir/Patient/lea/$share", json=parameters(days=1.0), headers=paul)
    ).status_code == 404
    assert (
        await client.post("/fhir/$redeem-share", json=parameters(code=code), headers=paul)
    ).status_code == 403
    redeemed = await client.post("/fhir/$redeem-share", json=parameters(code=code.lower()), headers=other)
    assert redeemed.status_code == 201, redeemed.text
    consent = value(redeemed.json(), "consent")
    assert (await client.get("/fhir/Observation/obs-lea", headers=other)).status_code == 200
    assert (await client.get("/fhir/Observation/obs-paul", headers=other)).status_code == 404
    # a code is used once
    reused = await client.post("/fhir/$redeem-share", json=parameters(code=code), headers=other)
    assert reused.status_code == 422
    # the patient sees the grant in her record and revokes it
    mine = await client.get("/fhir/Consent", params={"patient": "lea"}, headers=lea)
    assert consent.split("/")[1] in {e["resource"]["id"] for e in mine.json()["entry"]}
    assert (await client.delete(f"/fhir/{consent}", headers=lea)).status_code == 204
    assert (await client.get("/fhir/Observation/obs-lea", headers=other)).status_code == 404


async def test_representatives_lose_access_at_majority_and_respect_the_adolescents_confidential_mode(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A parent reads the child's record until the child comes of age (HYGIE_MAJORITY_AGE); an
    adolescent who denies her parent keeps her documents out of the parent's sight — in reads and
    in searches alike."""
    await seed(client)
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "ado", "birthDate": "2011-05-02"},
        {"resourceType": "Patient", "id": "grown", "birthDate": "2001-05-02"},
        {
            "resourceType": "RelatedPerson",
            "id": "mum-ado",
            "patient": {"reference": "Patient/ado"},
            "relationship": [{"coding": [{"code": "MTH"}]}],
        },
        {
            "resourceType": "RelatedPerson",
            "id": "mum-grown",
            "patient": {"reference": "Patient/grown"},
            "relationship": [{"coding": [{"code": "MTH"}]}],
        },
        {
            "resourceType": "Observation",
            "id": "obs-ado",
            "status": "final",
            "code": {"text": "Taille"},
            "subject": {"reference": "Patient/ado"},
        },
        {
            "resourceType": "Observation",
            "id": "obs-grown",
            "status": "final",
            "code": {"text": "Taille"},
            "subject": {"reference": "Patient/grown"},
        },
        {
            "resourceType": "DocumentReference",
            "id": "doc-ado",
            "status": "current",
            "subject": {"reference": "Patient/ado"},
            "category": [{"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "11"}]}],
            "content": [{"attachment": {"contentType": "text/plain", "data": "Y29uZmlkZW50aWVs"}}],
        },
    ]
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text

    async def mother_of(child: str) -> dict[str, str]:
        return await bearer(
            runtime, kind="citizen", scope="openid", fhir_user=f"RelatedPerson/mum-{child}", client_id=PORTAL
        )

    mum, mum_grown = await mother_of("ado"), await mother_of("grown")
    assert (await client.get("/fhir/Observation/obs-ado", headers=mum)).status_code == 200
    assert (await client.get("/fhir/DocumentReference/doc-ado", headers=mum)).status_code == 200
    # the 25-year-old's record was handed over to her: her mother no longer reads it
    assert (await client.get("/fhir/Observation/obs-grown", headers=mum_grown)).status_code == 404
    found = await client.get("/fhir/Observation", params={"patient": "grown"}, headers=mum_grown)
    assert found.json().get("total", 0) == 0 and not found.json().get("entry")
    # the adolescent turns on her confidential mode: a deny naming her mother
    confidential = {
        "resourceType": "Consent",
        "id": "ado-private",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/ado"},
        "provision": {
            "type": "deny",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                        ]
                    },
                    "reference": {"reference": "RelatedPerson/mum-ado"},
                }
            ],
        },
    }
    ado = await as_patient(runtime, "ado")
    r = await client.put("/fhir/Consent/ado-private", json=confidential, headers=ado)
    assert r.status_code == 201, r.text
    assert (await client.get("/fhir/DocumentReference/doc-ado", headers=mum)).status_code == 404
    docs = await client.get(
        "/fhir/DocumentReference", params={"patient": "ado", "_total": "accurate"}, headers=mum
    )
    assert docs.json()["total"] == 0
    # the rest of the record stays shared
    assert (await client.get("/fhir/Observation/obs-ado", headers=mum)).status_code == 200
