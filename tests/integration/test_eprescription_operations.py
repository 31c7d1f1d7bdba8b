"""E-prescription end to end through the FHIR API with real tokens, on every store: a doctor
prescribes (lines, PDF with its QR code, DocumentReference, in one transaction), a pharmacist
opens the prescription by its code and dispenses it, the prescriber and the patient see what was
handed over, and a renewal request is answered by a new prescription."""

from __future__ import annotations

import asyncio
import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime
from hygie.domain.access import Caller
from hygie.domain.ens import prescriptions as ens_rules
from hygie.domain.identity.luhn import rpps_key
from hygie.domain.policy import Principal
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
PORTAL = "hygie-portal"
DOLIPRANE = "3400935955838"  # boxes of 8, 4 a day at most
TAHOR = "TAHOR 20 mg, comprimé pelliculé"
ATORVASTATINE = "ATORVASTATINE BIOGARAN 20 mg, comprimé pelliculé"
LEA_BORN = "1980-02-01"
# IdNat_PS = "8" + RPPS (11 digits, Luhn key): as the directory has them
IDNAT = {
    pid: f"8{body}{rpps_key(body)}"
    for pid, body in (
        ("gp", "1000123456"),
        ("other", "1000123457"),
        ("nurse", "1000123458"),
        ("pharma", "1000123459"),
    )
}


def practitioner(pid: str, family: str, profession: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": IDNAT[pid]}],
        "name": [
            {"family": family, "given": ["Camille"], **({"prefix": ["Dr"]} if profession == "10" else {})}
        ],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": profession}]}}],
    }


def role(pid: str, organization: str) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": f"role-{pid}",
        "active": True,
        "practitioner": {"reference": f"Practitioner/{pid}"},
        "organization": {"reference": f"Organization/{organization}"},
    }


async def seed(client: httpx.AsyncClient) -> None:
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": "lea",
            "name": [{"family": "Durand", "given": ["Léa"]}],
            "birthDate": LEA_BORN,
        },
        {"resourceType": "Patient", "id": "paul", "name": [{"family": "Martin"}], "birthDate": "1975-06-30"},
        {
            "resourceType": "Organization",
            "id": "cabinet",
            "name": "Cabinet médical du Parc",
            "address": [{"line": ["3 rue du Parc"], "postalCode": "69003", "city": "Lyon"}],
            "telecom": [{"system": "phone", "value": "04 72 00 00 00"}],
        },
        {"resourceType": "Organization", "id": "pharmacie", "name": "Pharmacie du Marché"},
        practitioner("gp", "Bernard", "10"),
        practitioner("other", "Autre", "10"),
        practitioner("nurse", "Soin", "60"),
        practitioner("pharma", "Officine", "21"),
        role("gp", "cabinet"),
        role("pharma", "pharmacie"),
        {
            "resourceType": "CareTeam",
            "id": "ct-lea",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [
                {"member": {"reference": "Practitioner/gp"}},
                {"member": {"reference": "Practitioner/nurse"}},
            ],
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


def line(medication: str = DOLIPRANE, **values: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "dose": 1,
        "takes-per-day": 3,
        "duration-days": 5,
        "renewals": 0,
        "substitution-allowed": True,
        "instructions": "si douleur",
    }
    fields.update(values)
    parts: list[dict[str, Any]] = [{"name": "medication", "valueString": medication}]
    for name, value in fields.items():
        kind = {bool: "valueBoolean", int: "valueInteger", float: "valueDecimal"}.get(
            type(value), "valueString"
        )
        parts.append({"name": name, kind: value})
    return {"name": "line", "part": parts}


def parameters(*items: dict[str, Any], **values: Any) -> dict[str, Any]:
    params = [{"name": name, "valueString": value} for name, value in values.items()]
    return {"resourceType": "Parameters", "parameter": [*params, *items]}


def value(params: list[dict[str, Any]], name: str) -> Any:
    for p in params:
        if p["name"] == name:
            if "part" in p:
                return p["part"]
            return next(v for k, v in p.items() if k.startswith("value") or k == "resource")
    raise KeyError(name)


def values(params: list[dict[str, Any]], name: str) -> list[Any]:
    return [value([p], name) for p in params if p["name"] == name]


async def prescribe(
    client: httpx.AsyncClient, headers: dict[str, str], *lines: dict[str, Any], **extra: Any
) -> httpx.Response:
    return await client.post(
        "/fhir/MedicationRequest/$prescribe",
        json=parameters(*lines, patient="Patient/lea", **extra),
        headers=headers,
    )


async def count(client: httpx.AsyncClient, resource_type: str, *query: tuple[str, str]) -> int:
    """As the backend service (every scope): what is stored."""
    r = await client.get(f"/fhir/{resource_type}", params=[*query, ("_summary", "count")])
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def dispensed(*lines: dict[str, Any], **opening: Any) -> dict[str, Any]:
    return parameters(*lines, **opening)


def handed(line_ref: str, **parts: Any) -> dict[str, Any]:
    items: list[dict[str, Any]] = [{"name": "prescription", "valueReference": {"reference": line_ref}}]
    for name, v in parts.items():
        kind = "valueInteger" if isinstance(v, int) else "valueString"
        items.append({"name": name.replace("_", "-"), kind: v})
    return {"name": "line", "part": items}


async def test_a_doctor_prescribes_lines_a_pdf_and_its_document_in_one_go(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    import zxingcpp
    from PIL import Image
    from pypdf import PdfReader

    await seed(client)
    gp = await as_pro(runtime, "gp")
    r = await prescribe(
        client,
        gp,
        line(),
        line(
            TAHOR, **{"takes-per-day": 1, "duration-days": 30, "renewals": 2, "substitution-allowed": False}
        ),
    )
    assert r.status_code == 201, r.text
    out = r.json()["parameter"]
    number, code = value(out, "number"), value(out, "code")
    assert code.startswith("HYGIE-ORD1:") and number.replace("-", "") in code
    refs = [ref["reference"] for ref in values(out, "medicationRequest")]
    assert len(refs) == 2
    first = (await client.get(f"/fhir/{refs[0]}", headers=gp)).json()
    second = (await client.get(f"/fhir/{refs[1]}", headers=gp)).json()
    assert first["groupIdentifier"]["value"] == second["groupIdentifier"]["value"] == number
    assert first["requester"] == {"reference": "Practitioner/gp", "display": "Dr Camille Bernard"}
    assert first["medicationCodeableConcept"]["coding"][0]["code"] == DOLIPRANE
    assert first["dosageInstruction"][0]["text"] == "1 comprimé 3 fois par jour pendant 5 jours. Si douleur"
    assert second["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert second["substitution"] == {"allowedBoolean": False}
    assert code.split(":")[2] not in str(first)  # only the secret's hash is stored
    # the printout: a DocumentReference (class 42, LOINC 57833-6) and its Binary
    document = (await client.get(f"/fhir/{value(out, 'documentReference')['reference']}", headers=gp)).json()
    assert document["type"]["coding"][0]["code"] == "57833-6"
    assert document["category"][0]["coding"][0]["code"] == "42"
    assert document["author"][0]["reference"] == "Practitioner/gp"
    binary_ref = value(out, "binary")["reference"]
    assert document["content"][0]["attachment"]["url"] == binary_ref
    pdf = await client.get(f"/fhir/{binary_ref}", headers={**gp, "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    page = PdfReader(io.BytesIO(pdf.content)).pages[0]
    text = page.extract_text()
    assert (
        number in text
        and "Léa Durand" in text
        and "À renouveler 2 fois" in text
        and "Cabinet médical du Parc" in text
    )
    qr = [d.text for image in page.images for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(image.data)))]
    assert qr == [code]
    # the patient finds it in her record, as any document
    lea = await as_patient(runtime, "lea")
    assert (await client.get(f"/fhir/{binary_ref}", headers=lea)).status_code == 200


@pytest.mark.parametrize(
    ("items", "extra", "expression", "words"),
    [
        ([line("3400000000001")], {}, "Parameters.parameter[line][0].part[medication]", "Médicament inconnu"),
        (
            [line(), line(dose=3, **{"takes-per-day": 2})],
            {},
            "Parameters.parameter[line][1].part[dose]",
            "dose maximale",
        ),
        ([line()], {"end": "2020-01-01"}, "Parameters.parameter[end]", "passée"),
        ([], {}, "Parameters.parameter[line]", "aucune ligne"),
    ],
)
async def test_a_refused_prescription_says_where_and_stores_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    items: list[dict[str, Any]],
    extra: dict[str, Any],
    expression: str,
    words: str,
) -> None:
    await seed(client)
    r = await prescribe(client, await as_pro(runtime, "gp"), *items, **extra)
    assert r.status_code == 422, r.text
    issues = r.json()["issue"]
    assert [i["expression"] for i in issues] == [[expression]]
    assert words in issues[0]["diagnostics"]
    for resource_type in ("MedicationRequest", "DocumentReference", "Binary"):
        assert await count(client, resource_type) == 0


async def test_only_a_prescriber_in_care_of_the_patient_prescribes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    for who in ("nurse", "pharma", "other"):  # not a prescriber; no care relationship
        r = await prescribe(client, await as_pro(runtime, who), line())
        assert r.status_code == 403, (who, r.text)
    r = await prescribe(client, await as_patient(runtime, "lea"), line())
    assert r.status_code == 403
    assert await count(client, "MedicationRequest") == 0
    page = await runtime.audit.list_for_patient("lea", count=200)
    # the refused creation is in the patient's trail (the others were refused before naming her)
    assert any(
        rec.entry.outcome != "0" and rec.entry.agent.endswith("|" + IDNAT["other"]) for rec in page.records
    )


async def test_the_pharmacist_opens_the_prescription_by_its_code_only(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    r = await prescribe(client, await as_pro(runtime, "gp"), line())
    out = r.json()["parameter"]
    number, code = value(out, "number"), value(out, "code")
    line_ref = value(out, "medicationRequest")["reference"]
    pharma = await as_pro(runtime, "pharma")
    # without the code the pharmacist has no access to the record
    assert (await client.get(f"/fhir/{line_ref}", headers=pharma)).status_code == 404
    r = await client.post("/fhir/MedicationRequest/$lookup", json=parameters(code=code), headers=pharma)
    assert r.status_code == 200, r.text
    read = r.json()["parameter"]
    assert value(read, "number") == number and value(read, "status") == "active"
    patient = value(read, "patient")
    assert value(patient, "name") == "Léa Durand" and value(patient, "birthDate") == LEA_BORN
    assert value(value(read, "prescriber"), "name") == "Dr Camille Bernard"
    first = value(read, "line")
    assert value(first, "prescription")["reference"] == line_ref
    assert (value(first, "deliveries-allowed"), value(first, "deliveries-done"), value(first, "state")) == (
        1,
        0,
        "à délivrer",
    )
    assert "extension" not in value(first, "medicationRequest")  # not even the hash
    # recorded in the patient's trail, with the code as the reason
    page = await runtime.audit.list_for_patient("lea", count=200)
    opened = [
        rec
        for rec in page.records
        if rec.entry.agent.endswith("|" + IDNAT["pharma"]) and rec.entry.outcome == "0"
    ]
    assert opened and all(b"QR code" in rec.entry.content for rec in opened)
    # the printed number opens it with the patient's birth date, not alone
    r = await client.post("/fhir/MedicationRequest/$lookup", json=parameters(number=number), headers=pharma)
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Parameters.parameter[birthDate]"]
    r = await client.post(
        "/fhir/MedicationRequest/$lookup",
        json=parameters(number=number.lower(), birthDate="1980-02-02"),
        headers=pharma,
    )
    assert r.status_code == 404
    r = await client.post(
        "/fhir/MedicationRequest/$lookup", json=parameters(number=number, birthDate=LEA_BORN), headers=pharma
    )
    assert r.status_code == 200
    # a mistyped number is caught by its check character
    typo = number[:-1] + ("A" if number[-1] != "A" else "B")
    r = await client.post(
        "/fhir/MedicationRequest/$lookup", json=parameters(number=typo, birthDate=LEA_BORN), headers=pharma
    )
    assert r.status_code == 422 and "clé de contrôle" in r.json()["issue"][0]["diagnostics"]
    # a forged secret opens nothing, and the attempt is in the patient's trail
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert (
        await client.post("/fhir/MedicationRequest/$lookup", json=parameters(code=forged), headers=pharma)
    ).status_code == 404
    page = await runtime.audit.list_for_patient("lea", count=200)
    assert any(
        rec.entry.agent.endswith("|" + IDNAT["pharma"]) and rec.entry.outcome != "0" for rec in page.records
    )
    # a doctor is not a pharmacist, even with the code
    r = await client.post(
        "/fhir/MedicationRequest/$lookup", json=parameters(code=code), headers=await as_pro(runtime, "gp")
    )
    assert r.status_code == 403


async def test_failed_attempts_stop_a_pharmacist_for_the_hour(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    r = await prescribe(client, await as_pro(runtime, "gp"), line())
    number = value(r.json()["parameter"], "number")
    pharma = await as_pro(runtime, "pharma")
    assert runtime.service.prescriptions is not None
    limit = runtime.service.prescriptions.config.max_failed_lookups
    for _ in range(limit):
        r = await client.post(
            "/fhir/MedicationRequest/$lookup",
            json=parameters(number=number, birthDate="2000-01-01"),
            headers=pharma,
        )
        assert r.status_code == 404
    r = await client.post(
        "/fhir/MedicationRequest/$lookup", json=parameters(number=number, birthDate=LEA_BORN), headers=pharma
    )
    assert r.status_code == 429


async def test_partial_then_complete_deliveries_until_the_renewals_are_used(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    r = await prescribe(client, await as_pro(runtime, "gp"), line(renewals=1))  # 15 tablets: 2 boxes, twice
    out = r.json()["parameter"]
    code, line_ref = value(out, "code"), value(out, "medicationRequest")["reference"]
    pharma = await as_pro(runtime, "pharma")

    async def give(quantity: int) -> httpx.Response:
        return await client.post(
            "/fhir/MedicationRequest/$dispense",
            json=dispensed(handed(line_ref, quantity=quantity), code=code),
            headers=pharma,
        )

    r = await give(1)  # the pharmacy had one box: a partial delivery
    assert r.status_code == 201, r.text
    done = r.json()["parameter"]
    assert value(value(done, "dispense"), "status") == "in-progress"
    state = value(done, "line")
    assert (value(state, "packs-lacking"), value(state, "deliveries-done"), value(state, "state")) == (
        1,
        0,
        "délivrée en partie",
    )
    r = await give(2)  # more than the delivery lacks
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == [
        "Parameters.parameter[line][0].part[quantity]"
    ]
    r = await give(1)  # the rest: the first delivery is complete
    assert value(value(r.json()["parameter"], "dispense"), "status") == "completed"
    r = await give(2)  # the renewal, in full
    assert r.status_code == 201
    state = value(r.json()["parameter"], "line")
    assert (value(state, "deliveries-done"), value(state, "renewals-remaining"), value(state, "state")) == (
        2,
        0,
        "entièrement délivrée",
    )
    assert value(r.json()["parameter"], "status") == "dispensed"
    r = await give(1)  # nothing left
    assert r.status_code == 422 and "entièrement délivrée" in r.json()["issue"][0]["diagnostics"]
    r = await client.post(
        "/fhir/MedicationRequest/$dispense",
        json=dispensed(handed(line_ref, not_delivered="plus besoin"), code=code),
        headers=pharma,
    )
    assert r.status_code == 422
    dispenses = (await client.get("/fhir/MedicationDispense", params={"prescription": line_ref})).json()[
        "entry"
    ]
    resources = [e["resource"] for e in dispenses]
    assert sorted(d["status"] for d in resources) == ["completed", "completed", "in-progress"]
    assert sorted(d["type"]["coding"][0]["code"] for d in resources) == ["FFC", "FFP", "RF"]
    assert all(d["performer"][0]["actor"]["display"] == "Pharmacie du Marché" for d in resources)
    assert all(d["performer"][1]["actor"]["reference"] == "Practitioner/pharma" for d in resources)


async def test_a_dispensing_with_one_refused_line_records_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    r = await prescribe(
        client,
        await as_pro(runtime, "gp"),
        line(),
        line(TAHOR, **{"takes-per-day": 1, "duration-days": 30, "substitution-allowed": False}),
    )
    out = r.json()["parameter"]
    code = value(out, "code")
    doliprane, tahor = (ref["reference"] for ref in values(out, "medicationRequest"))
    pharma = await as_pro(runtime, "pharma")
    url = "/fhir/MedicationRequest/$dispense"
    r = await client.post(url, json=dispensed(handed(doliprane, quantity=2), code=code), headers=pharma)
    assert r.status_code == 201
    # Doliprane again (beyond its deliveries) with Tahor: refused as a whole
    r = await client.post(
        url,
        json=dispensed(handed(tahor, quantity=1), handed(doliprane, quantity=2), code=code),
        headers=pharma,
    )
    assert r.status_code == 422, r.text
    assert [i["expression"] for i in r.json()["issue"]] == [["Parameters.parameter[line][1].part[quantity]"]]
    assert await count(client, "MedicationDispense", ("prescription", tahor)) == 0
    # a generic for a line marked « non substituable » is refused too
    r = await client.post(
        url, json=dispensed(handed(tahor, quantity=1, substitute=ATORVASTATINE), code=code), headers=pharma
    )
    assert r.status_code == 422 and "non substituable" in r.json()["issue"][0]["diagnostics"]
    # a line of another prescription is not this one's
    r = await client.post(
        url, json=dispensed(handed("MedicationRequest/ailleurs", quantity=1), code=code), headers=pharma
    )
    assert r.status_code == 422
    # two pharmacies at once on the last delivery: one hands it over, the other is refused
    r1, r2 = await asyncio.gather(
        client.post(url, json=dispensed(handed(tahor, quantity=1), code=code), headers=pharma),
        client.post(url, json=dispensed(handed(tahor, quantity=1), code=code), headers=pharma),
    )
    assert sorted((r1.status_code, r2.status_code)) == [201, 422]
    assert await count(client, "MedicationDispense", ("prescription", tahor)) == 1


async def test_a_generic_substitution_and_a_line_not_delivered(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    r = await prescribe(
        client, await as_pro(runtime, "gp"), line(TAHOR, **{"takes-per-day": 1, "duration-days": 30}), line()
    )
    out = r.json()["parameter"]
    tahor, doliprane = (ref["reference"] for ref in values(out, "medicationRequest"))
    r = await client.post(
        "/fhir/MedicationRequest/$dispense",
        json=dispensed(
            handed(tahor, quantity=1, substitute=ATORVASTATINE, substitution_reason="droit de substitution"),
            handed(doliprane, not_delivered="le patient en a encore"),
            code=value(out, "code"),
        ),
        headers=await as_pro(runtime, "pharma"),
    )
    assert r.status_code == 201, r.text
    by_line = {}
    for entry in (await client.get("/fhir/MedicationDispense", params={"patient": "lea"})).json()["entry"]:
        by_line[entry["resource"]["authorizingPrescription"][0]["reference"]] = entry["resource"]
    assert by_line[tahor]["substitution"]["wasSubstituted"] is True
    assert by_line[tahor]["medicationCodeableConcept"]["text"] == ATORVASTATINE
    assert by_line[doliprane]["status"] == "declined"


async def test_an_expired_prescription_is_not_dispensed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    today = date.today()
    r = await prescribe(
        client, await as_pro(runtime, "gp"), line(), end=(today + timedelta(days=2)).isoformat()
    )
    out = r.json()["parameter"]
    assert runtime.service.prescriptions is not None
    later = runtime.service.prescriptions.clock() + 5 * 86_400 * 1_000_000
    runtime.service.prescriptions.clock = lambda: later
    pharma = await as_pro(runtime, "pharma")
    r = await client.post(
        "/fhir/MedicationRequest/$lookup", json=parameters(code=value(out, "code")), headers=pharma
    )
    assert value(r.json()["parameter"], "status") == "expired"
    r = await client.post(
        "/fhir/MedicationRequest/$dispense",
        json=dispensed(
            handed(value(out, "medicationRequest")["reference"], quantity=1), code=value(out, "code")
        ),
        headers=pharma,
    )
    assert r.status_code == 422 and "expiré" in r.json()["issue"][0]["diagnostics"]
    assert await count(client, "MedicationDispense") == 0


async def test_the_prescriber_and_the_patient_see_what_was_dispensed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    r = await prescribe(client, await as_pro(runtime, "gp"), line(renewals=1))
    out = r.json()["parameter"]
    line_ref = value(out, "medicationRequest")["reference"]
    r = await client.post(
        "/fhir/MedicationRequest/$dispense",
        json=dispensed(handed(line_ref, quantity=2), code=value(out, "code")),
        headers=await as_pro(runtime, "pharma"),
    )
    assert r.status_code == 201
    # the prescriber, in care of the patient, reads the dispenses of the prescription
    seen = (
        await client.get(
            "/fhir/MedicationDispense", params={"prescription": line_ref}, headers=await as_pro(runtime, "gp")
        )
    ).json()
    assert [e["resource"]["status"] for e in seen.get("entry", [])] == ["completed"]
    unrelated = (
        await client.get(
            "/fhir/MedicationDispense",
            params={"prescription": line_ref},
            headers=await as_pro(runtime, "other"),
        )
    ).json()
    assert not unrelated.get("entry")
    # the patient, through the door her space uses: one delivery of two made
    lea = Caller.of(Principal("patient", "Patient/lea"))
    door = Door(runtime.service)
    requests = await door.search(lea, "MedicationRequest", [("patient", "lea")], limit=100)
    dispenses = await door.search(lea, "MedicationDispense", [("patient", "lea")], limit=100)
    [prescription] = ens_rules.group(requests, dispenses, {}, date.today())
    assert prescription.number == value(out, "number")
    assert prescription.state == "partial"
    [shown] = prescription.lines
    assert (shown.delivered, shown.remaining) == (1, 1)
    assert shown.dispenses[0].pharmacy == "Pharmacie du Marché"


async def test_a_renewal_request_is_answered_by_a_new_prescription(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    gp = await as_pro(runtime, "gp")
    r = await prescribe(client, gp, line(TAHOR, **{"takes-per-day": 1, "duration-days": 30}))
    old_ref = value(r.json()["parameter"], "medicationRequest")["reference"]
    # the patient asks for a renewal from her space (the Task the ENS page writes)
    lea = await as_patient(runtime, "lea")
    requests = [(await client.get(f"/fhir/{old_ref}", headers=lea)).json()]
    [prescription] = ens_rules.group(requests, [], {"Practitioner/gp": "Dr Camille Bernard"}, date.today())
    from datetime import UTC, datetime

    task = ens_rules.renewal_task(prescription, "Patient/lea", "Patient/lea", datetime.now(UTC), "Merci")
    r = await client.post("/fhir/Task", json=task, headers=lea)
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    # another doctor cannot answer it
    r = await prescribe(client, await as_pro(runtime, "other"), line(TAHOR), renews=f"Task/{task_id}")
    assert r.status_code == 403
    r = await prescribe(
        client,
        gp,
        line(TAHOR, **{"takes-per-day": 1, "duration-days": 30, "renewals": 2}),
        renews=f"Task/{task_id}",
    )
    assert r.status_code == 201, r.text
    out = r.json()["parameter"]
    new_ref = value(out, "medicationRequest")["reference"]
    new = (await client.get(f"/fhir/{new_ref}", headers=gp)).json()
    assert new["priorPrescription"] == {"reference": old_ref}
    answered = (await client.get(f"/fhir/Task/{task_id}", headers=lea)).json()
    assert answered["status"] == "completed"
    assert [o["valueReference"]["reference"] for o in answered["output"]] == [new_ref]
    # answered once
    r = await prescribe(client, gp, line(TAHOR), renews=f"Task/{task_id}")
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == ["Parameters.parameter[renews]"]
    assert await count(client, "MedicationRequest") == 2


async def test_the_capability_statement_declares_the_operations(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    assert [o["name"] for o in entry["operation"]] == ["prescribe", "lookup", "dispense"]
    assert all(o["definition"].endswith(f"MedicationRequest-{o['name']}") for o in entry["operation"])
