"""Correspondence outside any record (``domain/policy.py`` *correspondence*), through the FHIR API
on every store: a message between professionals that names no patient is read, searched and
acknowledged by its parties only — its sender, its recipients, the members of a recipient
structure — and by nobody else, patients and other professionals included."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime

pytestmark = pytest.mark.anyio

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
PORTAL = "hygie-portal"
CATEGORY = "https://hygie.example/fhir/CodeSystem/ens-communication"


def practitioner(pid: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "name": [{"family": name, "prefix": ["Dr"]}],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
    }


def letter(sender: str, recipient: str, text: str = "Pouvez-vous me rappeler ?") -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY, "code": "correspondance"}]}],
        "topic": {"text": "Un avis"},
        "sent": "2026-03-01T10:00:00Z",
        "sender": {"reference": sender},
        "recipient": [{"reference": recipient}],
        "payload": [{"contentString": text}],
    }


async def seed(client: httpx.AsyncClient) -> None:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "lea", "name": [{"family": "Durand", "given": ["Léa"]}]},
        practitioner("gp", "Bernard"),
        practitioner("cardio", "Cardio"),
        practitioner("stranger", "Inconnu"),
        practitioner("colleague", "Collègue"),
        {"resourceType": "Organization", "id": "cabinet", "name": "Cabinet du Port"},
        {
            "resourceType": "PractitionerRole",
            "id": "colleague-at-cabinet",
            "active": True,
            "practitioner": {"reference": "Practitioner/colleague"},
            "organization": {"reference": "Organization/cabinet"},
        },
    ]
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


async def as_pro(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(
        runtime, kind="professional", scope="openid", fhir_user=f"Practitioner/{pid}", client_id=PORTAL
    )


async def as_patient(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(runtime, kind="citizen", scope="openid", fhir_user=f"Patient/{pid}", client_id=PORTAL)


async def test_a_letter_between_professionals_is_its_parties_alone(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    gp, cardio = await as_pro(runtime, "gp"), await as_pro(runtime, "cardio")
    stranger, lea = await as_pro(runtime, "stranger"), await as_patient(runtime, "lea")

    created = await client.post(
        "/fhir/Communication", json=letter("Practitioner/gp", "Practitioner/cardio"), headers=gp
    )
    assert created.status_code == 201, created.text
    message_id = created.json()["id"]
    path = f"/fhir/Communication/{message_id}"

    # the parties read it; anyone else finds nothing there (refused looks like absent)
    assert (await client.get(path, headers=gp)).status_code == 200
    assert (await client.get(path, headers=cardio)).status_code == 200
    assert (await client.get(path, headers=stranger)).status_code == 404
    assert (await client.get(path, headers=lea)).status_code == 404
    assert (await client.get(f"{path}/_history", headers=stranger)).status_code == 404

    # nor does a search show it to anyone else, its total included
    for headers, expected in ((gp, 1), (cardio, 1), (stranger, 0), (lea, 0)):
        found = await client.get("/fhir/Communication", params={"_total": "accurate"}, headers=headers)
        assert found.status_code == 200
        assert len(found.json().get("entry", [])) == expected
        assert found.json().get("total", expected) == expected
    by_recipient = await client.get(
        "/fhir/Communication", params={"recipient": "Practitioner/cardio"}, headers=stranger
    )
    assert by_recipient.json().get("entry", []) == []

    # only the recipient acknowledges it; only the sender changes it
    assert (await client.post(f"{path}/$mark-received", headers=stranger)).status_code == 404
    assert (await client.post(f"{path}/$mark-received", headers=gp)).status_code == 403
    read = await client.post(f"{path}/$mark-received", headers=cardio)
    assert read.status_code == 200 and read.json()["received"]
    rewritten = {**read.json(), "payload": [{"contentString": "autre chose"}]}
    assert (await client.put(path, json=rewritten, headers=cardio)).status_code == 403
    assert (await client.put(path, json=rewritten, headers=stranger)).status_code == 404
    assert (await client.delete(path, headers=stranger)).status_code == 404


async def test_a_letter_is_sent_in_ones_own_name_by_a_professional(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    gp, lea = await as_pro(runtime, "gp"), await as_patient(runtime, "lea")
    forged = await client.post(
        "/fhir/Communication", json=letter("Practitioner/cardio", "Practitioner/stranger"), headers=gp
    )
    assert forged.status_code == 403
    # a patient's messages are in their record (as its sender, she files it there); outside any
    # record a patient writes nothing, not even a letter signed by a professional
    from_patient = await client.post(
        "/fhir/Communication", json=letter("Patient/lea", "Practitioner/gp"), headers=lea
    )
    assert from_patient.status_code == 201 and from_patient.json()["sender"]["reference"] == "Patient/lea"
    between_others = await client.post(
        "/fhir/Communication", json=letter("Practitioner/gp", "Practitioner/cardio"), headers=lea
    )
    assert between_others.status_code == 403
    stray = letter("Practitioner/gp", "Practitioner/cardio")
    stray["sender"] = {"display": "quelqu’un"}
    assert (await client.post("/fhir/Communication", json=stray, headers=gp)).status_code == 403


async def test_a_structures_mailbox_is_read_by_its_members(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    gp, colleague = await as_pro(runtime, "gp"), await as_pro(runtime, "colleague")
    stranger = await as_pro(runtime, "stranger")
    created = await client.post(
        "/fhir/Communication", json=letter("Practitioner/gp", "Organization/cabinet"), headers=gp
    )
    assert created.status_code == 201, created.text
    path = f"/fhir/Communication/{created.json()['id']}"
    assert (await client.get(path, headers=colleague)).status_code == 200
    assert (await client.get(path, headers=stranger)).status_code == 404
    found = await client.get(
        "/fhir/Communication", params={"recipient": "Organization/cabinet"}, headers=colleague
    )
    assert len(found.json()["entry"]) == 1
    acknowledged = await client.post(f"{path}/$mark-received", headers=colleague)
    assert acknowledged.status_code == 200 and acknowledged.json()["received"]


async def test_an_authoritys_alert_reaches_only_its_professional(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from hygie.domain.access import Caller
    from hygie.domain.bsp.alerts import professional_alert
    from hygie.domain.ens.alerts import Alert
    from hygie.web.portal.door import Door

    await seed(client)
    alert = professional_alert(
        Alert("Canicule", "Repérez vos patients isolés.", "canicule", "ARS Bretagne"),
        "gp",
        ["êtes médecin"],
        "b1",
        1_780_000_000_000_000,
    )
    created = await Door(runtime.service).create(Caller.operator("tests"), alert)
    path = f"/fhir/Communication/{created['id']}"
    assert (await client.get(path, headers=await as_pro(runtime, "gp"))).status_code == 200
    assert (await client.get(path, headers=await as_pro(runtime, "stranger"))).status_code == 404
    received = await client.post(f"{path}/$mark-received", headers=await as_pro(runtime, "gp"))
    assert received.status_code == 200
