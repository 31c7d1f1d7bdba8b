"""Identifying a patient and entering the care relationship, end to end through the FHIR API on
every store: ``Patient/$identify`` (INSi by traits, by INS and birth date), ``$identity-check``
(identity status transitions) and ``$declare-care`` (a declared Encounter opens the record)."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import orjson
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime
from hygie.domain.access import Caller
from hygie.domain.identity.fr_core import Ins, InsTraits, patient_from_traits
from hygie.domain.identity.insi import RegisterEntry, RegisterInsiService
from hygie.domain.identity.nir import INS_NIR_SYSTEM, build_nir
from hygie.domain.identity.status import (
    CollectionMethod,
    IdentityAttribute,
    IdentityState,
    IdentityStatus,
    set_attribute,
)
from hygie.domain.relations import SPACE_CATEGORY, SPACE_CATEGORY_SYSTEM
from hygie.fhir.outcome import Forbidden
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

pytestmark = pytest.mark.anyio

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
PORTAL = "hygie-portal"
PRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]}
PRIVACY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
}

LEA = InsTraits("DURAND", ("Léa", "Marie"), "female", date(1985, 4, 12), "45234")
LEA_INS = Ins(build_nir("female", 1985, 4, "45234", 123))
PAUL = InsTraits("MARTIN", ("Paul",), "male", date(1970, 6, 3), "75056")
PAUL_INS = Ins(build_nir("male", 1970, 6, "75056", 42))
MARC = InsTraits("DOUTEUX", ("Marc",), "male", date(1960, 3, 9), "13055")
MARC_INS = Ins(build_nir("male", 1960, 3, "13055", 7))
ZOE = InsTraits("PETIT", ("Zoé",), "female", date(2001, 9, 30), "33063")  # in the register only
ZOE_INS = Ins(build_nir("female", 2001, 9, "33063", 5))
# two people the traits alone cannot tell apart (different birth places)
JEAN_PARIS = InsTraits("DUPONT", ("Jean",), "male", date(1990, 1, 1), "75056")
JEAN_LYON = InsTraits("DUPONT", ("Jean",), "male", date(1990, 1, 1), "69123")


def practitioner(pid: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": f"8{pid}"}],
        "name": [{"family": name, "prefix": ["Dr"]}],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
    }


def patient(
    pid: str, traits: InsTraits, ins: Ins | None, state: IdentityState, **extra: Any
) -> dict[str, Any]:
    return {**patient_from_traits(traits, ins, state, patient_id=pid), **extra}


def deny(cid: str, pid: str, actor: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": PRIVACY,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": {"type": "deny", "actor": [{"role": PRCP, "reference": {"reference": actor}}]},
    }


def closed_space(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": f"space-{pid}",
        "status": "active",
        "scope": PRIVACY,
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
            {"coding": [{"system": SPACE_CATEGORY_SYSTEM, "code": SPACE_CATEGORY}]},
        ],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": {"type": "deny"},
    }


RECUP = IdentityState(
    IdentityStatus.RECUP, insi_query_date=date(2025, 1, 2), method_collection=CollectionMethod.CV
)


async def seed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    register = [
        RegisterEntry(LEA_INS, LEA),
        RegisterEntry(PAUL_INS, PAUL),
        RegisterEntry(MARC_INS, MARC),
        RegisterEntry(ZOE_INS, ZOE),
        RegisterEntry(Ins(build_nir("male", 1990, 1, "75056", 10)), JEAN_PARIS),
        RegisterEntry(Ins(build_nir("male", 1990, 1, "69123", 11)), JEAN_LYON),
    ]
    RegisterInsiService.from_entries(register).save(runtime.settings.insi_register_path)
    resources: list[dict[str, Any]] = [
        patient(
            "lea", LEA, LEA_INS, IdentityState(), telecom=[{"system": "email", "value": "lea@example.fr"}]
        ),
        # the same woman, recorded without her INS and with a typo: a duplicate to warn about
        patient("lea-bis", InsTraits("DURANT", ("Léa",), "female", date(1985, 4, 12)), None, IdentityState()),
        patient("paul", PAUL, PAUL_INS, RECUP),
        patient("marc", MARC, MARC_INS, set_attribute(IdentityState(), IdentityAttribute.DOUT)),
        {"resourceType": "Patient", "id": "nina", "name": [{"use": "official", "family": "NINA"}]},
        practitioner("gp", "Bernard"),
        practitioner("other", "Autre"),
        practitioner("blocked", "Bloqué"),
        {"resourceType": "Organization", "id": "clinic", "name": "Clinique des Lilas"},
        {
            "resourceType": "PractitionerRole",
            "id": "other-clinic",
            "active": True,
            "practitioner": {"reference": "Practitioner/other"},
            "organization": {"reference": "Organization/clinic"},
        },
        {
            "resourceType": "CareTeam",
            "id": "ct",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [{"member": {"reference": "Practitioner/gp"}}],
        },
        {
            "resourceType": "CareTeam",
            "id": "ct-paul",
            "status": "active",
            "subject": {"reference": "Patient/paul"},
            "participant": [{"member": {"reference": "Practitioner/gp"}}],
        },
        deny("lea-blocks", "lea", "Practitioner/blocked"),
        closed_space("nina"),
        {
            "resourceType": "DocumentReference",
            "id": "doc-lea",
            "status": "current",
            "subject": {"reference": "Patient/lea"},
            "category": [{"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "11"}]}],
            "content": [{"attachment": {"contentType": "text/plain", "data": "Y29tcHRlLXJlbmR1"}}],
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


def parameters(*items: tuple[str, str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": n, k: v} for n, k, v in items]}


def by_traits(traits: InsTraits, *, place: bool = False) -> dict[str, Any]:
    items: list[tuple[str, str, Any]] = [
        ("family", "valueString", traits.birth_name),
        ("given", "valueString", " ".join(traits.birth_given_names)),
        ("birthDate", "valueDate", traits.birth_date.isoformat()),
        ("gender", "valueCode", traits.gender),
    ]
    if place and traits.birth_place_code:
        items.append(("birthPlace", "valueString", traits.birth_place_code))
    return parameters(*items)


def values(body: dict[str, Any], name: str) -> list[Any]:
    return [
        p.get("resource") or next((v for k, v in p.items() if k.startswith("value")), p)
        for p in body.get("parameter", body.get("part", []))
        if p["name"] == name
    ]


def value(body: dict[str, Any], name: str) -> Any:
    found = values(body, name)
    assert found, f"no {name} in {body}"
    return found[0]


def matches(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {value(m, "patient")["reference"]: m for m in values(body, "match")}


def issue(response: httpx.Response) -> dict[str, Any]:
    first: dict[str, Any] = response.json()["issue"][0]
    return first


async def identify(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.post("/fhir/Patient/$identify", json=body, headers=headers)


async def history(runtime: Runtime, pid: str) -> list[str]:
    """The query descriptions of the patient's audit records (what was done, and how)."""
    page = await runtime.audit.list_for_patient(pid, count=200)
    return [
        entity.get("description", "")
        for record in page.records
        for entity in record.entry.event().get("entity", [])
        if entity.get("description")
    ]


# -- $identify -----------------------------------------------------------------------------------


async def test_identify_by_traits_shows_the_local_record_its_duplicates_and_the_callers_relation(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    gp = await as_pro(runtime, "gp")
    r = await identify(client, by_traits(LEA), gp)
    assert r.status_code == 200, r.text
    body = r.json()
    assert value(body, "outcome") == "found"
    assert value(body, "ins") == {
        "use": "official",
        "type": {
            "coding": [
                {"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR"}
            ]
        },
        "system": INS_NIR_SYSTEM,
        "value": LEA_INS.matricule,
    }
    assert value(value(body, "traits"), "birthPlace") == "45234"
    found = matches(body)
    assert list(found) == ["Patient/lea"]
    lea = found["Patient/lea"]
    identity = value(lea, "identity")
    # a minimal identity projection: never the telecom, address or anything clinical
    assert set(identity) <= {"resourceType", "id", "active", "identifier", "name", "gender", "birthDate"}
    assert identity["birthDate"] == "1985-04-12" and identity["name"][0]["family"] == "DURAND"
    assert value(lea, "identityStatus")["code"] == "PROV"
    assert value(lea, "identityStatus")["display"] == "identité provisoire"
    assert values(lea, "relation") == ["care_team"] and value(lea, "access") == "care-relation"
    assert value(lea, "blocked") is False
    # the record created without the INS, with a typo in the name, is a duplicate to review
    duplicates = values(body, "duplicate")
    assert [value(d, "patient")["reference"] for d in duplicates] == ["Patient/lea-bis"]
    assert any("noms très proches" in reason for reason in values(duplicates[0], "reason"))
    # an unrelated professional of a structure sees no relation: the portal offers to declare one
    other = matches((await identify(client, by_traits(LEA), await as_pro(runtime, "other"))).json())
    assert values(other["Patient/lea"], "relation") == []
    assert value(other["Patient/lea"], "access") == "declare-care"
    # the professional Léa blocked is told so
    blocked = matches((await identify(client, by_traits(LEA), await as_pro(runtime, "blocked"))).json())
    assert value(blocked["Patient/lea"], "blocked") is True
    assert value(blocked["Patient/lea"], "access") == "refused"
    # each lookup is in the patient's access history (and in the duplicate's)
    assert sum("$identify by traits" in d for d in await history(runtime, "lea")) == 3
    assert any("$identify by traits" in d for d in await history(runtime, "lea-bis"))


async def test_identify_by_traits_not_found_and_ambiguous(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    gp = await as_pro(runtime, "gp")
    unknown = InsTraits("INCONNU", ("Personne",), "female", date(1985, 4, 12))
    r = await identify(client, by_traits(unknown), gp)
    assert r.status_code == 200, r.text
    assert value(r.json(), "outcome") == "not-found"
    assert "Aucune identité" in value(r.json(), "message")
    assert values(r.json(), "match") == [] and values(r.json(), "duplicate") == []
    twins = await identify(client, by_traits(JEAN_PARIS), gp)
    assert value(twins.json(), "outcome") == "ambiguous"
    assert value(twins.json(), "candidates") == 2
    assert "précisez" in value(twins.json(), "message")
    # the birth place tells them apart
    precise = await identify(client, by_traits(JEAN_LYON, place=True), gp)
    assert value(precise.json(), "outcome") == "found"
    assert value(precise.json(), "ins")["value"] == build_nir("male", 1990, 1, "69123", 11)
    # missing or malformed traits name the parameter
    no_gender = parameters(("family", "valueString", "DURAND"), ("given", "valueString", "Léa"))
    no_gender["parameter"].append({"name": "birthDate", "valueDate": "1985-04-12"})
    r = await identify(client, no_gender, gp)
    assert r.status_code == 400 and issue(r)["expression"] == ["Parameters.parameter[gender]"]
    bad_date = by_traits(LEA)
    bad_date["parameter"][2]["valueDate"] = "12/04/1985"
    r = await identify(client, bad_date, gp)
    assert r.status_code == 400 and issue(r)["expression"] == ["Parameters.parameter[birthDate]"]


async def test_identify_by_ins_needs_the_birth_date_and_reveals_nothing_to_a_guess(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    gp = await as_pro(runtime, "gp")
    ins = {"system": INS_NIR_SYSTEM, "value": LEA_INS.matricule}
    alone = await identify(client, parameters(("ins", "valueIdentifier", ins)), gp)
    assert alone.status_code == 400, alone.text
    assert issue(alone)["expression"] == ["Parameters.parameter[birthDate]"]
    assert "second trait" in issue(alone)["diagnostics"]
    # INS + birth date: the local record carrying both, confirmed by INSi on its own traits
    r = await identify(
        client, parameters(("ins", "valueIdentifier", ins), ("birthDate", "valueDate", "1985-04-12")), gp
    )
    assert r.status_code == 200, r.text
    assert value(r.json(), "outcome") == "found" and list(matches(r.json())) == ["Patient/lea"]
    # a bare matricule works too
    bare = await identify(
        client,
        parameters(("ins", "valueString", LEA_INS.matricule), ("birthDate", "valueDate", "1985-04-12")),
        gp,
    )
    assert list(matches(bare.json())) == ["Patient/lea"]
    # a wrong day of birth: exactly as an unknown INS, nothing disclosed
    wrong = await identify(
        client, parameters(("ins", "valueIdentifier", ins), ("birthDate", "valueDate", "1985-04-13")), gp
    )
    assert value(wrong.json(), "outcome") == "not-found" and values(wrong.json(), "match") == []
    # INS + traits to verify: found, mismatch (naming the traits, never their values), and a birth
    # date the register does not hold for this INS answered as not found
    verified = by_traits(LEA)
    verified["parameter"].append({"name": "ins", "valueIdentifier": ins})
    assert value((await identify(client, verified, gp)).json(), "outcome") == "found"
    other_name = by_traits(InsTraits("DUPUIS", ("Léa",), "female", date(1985, 4, 12)))
    other_name["parameter"].append({"name": "ins", "valueIdentifier": ins})
    mismatch = (await identify(client, other_name, gp)).json()
    assert value(mismatch, "outcome") == "mismatch"
    assert [d["code"] for d in values(mismatch, "difference")] == ["birth_name"]
    assert values(mismatch, "match") == [] and "DURAND" not in orjson.dumps(mismatch).decode()
    other_day = by_traits(InsTraits("DURAND", ("Léa",), "female", date(1985, 4, 20)))
    other_day["parameter"].append({"name": "ins", "valueIdentifier": ins})
    assert value((await identify(client, other_day, gp)).json(), "outcome") == "not-found"
    # a register-only person: found, no local record
    zoe = by_traits(ZOE)
    zoe["parameter"].append({"name": "ins", "valueString": ZOE_INS.matricule})
    zoe_body = (await identify(client, zoe, gp)).json()
    assert value(zoe_body, "outcome") == "found" and values(zoe_body, "match") == []
    # a matricule whose key is wrong
    typo = LEA_INS.matricule[:-2] + ("00" if LEA_INS.matricule[-2:] != "00" else "01")
    bad = await identify(
        client, parameters(("ins", "valueString", typo), ("birthDate", "valueDate", "1985-04-12")), gp
    )
    assert bad.status_code == 422 and issue(bad)["expression"] == ["Parameters.parameter[ins]"]
    # the lookups that found nobody left no record in Léa's history; the others did
    assert sum("$identify by ins" in d for d in await history(runtime, "lea")) == 3


async def test_identify_by_ins_of_a_doubtful_identity_is_refused_by_insi(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    body = parameters(
        ("ins", "valueIdentifier", {"system": INS_NIR_SYSTEM, "value": MARC_INS.matricule}),
        ("birthDate", "valueDate", "1960-03-09"),
    )
    r = await identify(client, body, await as_pro(runtime, "gp"))
    assert r.status_code == 200, r.text
    assert value(r.json(), "outcome") == "blocked"
    assert "INSi interdit" in value(r.json(), "message")
    marc = matches(r.json())["Patient/marc"]
    assert value(marc, "identityAttribute")["code"] == "DOUT"


async def test_citizens_and_anonymous_callers_do_not_identify_patients(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    r = await identify(client, by_traits(LEA), await as_patient(runtime, "lea"))
    assert r.status_code == 403, r.text
    # over HTTP an anonymous caller is stopped at the door (401); in-process the operation refuses
    no_token = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with no_token:
        assert (await no_token.post("/fhir/Patient/$identify", json=by_traits(LEA))).status_code == 401
    request = FhirRequest("POST", "Patient/$identify", resource=by_traits(LEA), caller=Caller.anonymous())
    with pytest.raises(Forbidden):
        await route(runtime.service, request)
    # a backend service with system/ scopes may (identity vigilance jobs): no relation facts
    system = await identify(client, by_traits(LEA), {})
    assert value(matches(system.json())["Patient/lea"], "access") == "trusted"


# -- $identity-check -----------------------------------------------------------------------------


async def check(
    client: httpx.AsyncClient, pid: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"/fhir/Patient/{pid}/$identity-check", json=body, headers=headers)


async def version(client: httpx.AsyncClient, pid: str) -> str:
    return str((await client.get(f"/fhir/Patient/{pid}")).json()["meta"]["versionId"])


async def test_identity_check_moves_the_status_through_the_normal_write_path(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    gp = await as_pro(runtime, "gp")
    # PROV → VALI: an identity card checked
    r = await check(client, "lea", parameters(("validationMode", "valueCode", "CN")), gp)
    assert r.status_code == 200, r.text
    assert value(r.json(), "previousStatus")["code"] == "PROV" and value(r.json(), "status")["code"] == "VALI"
    assert r.headers["etag"] == 'W/"2"'
    stored = (await client.get("/fhir/Patient/lea")).json()
    reliability = {e["url"]: e for e in stored["extension"][0]["extension"]}
    assert reliability["validationMode"]["valueCoding"]["code"] == "CN"
    # VALI → QUAL: INSi confirms the INS; an If-Match that is not the current version is refused
    stale = await client.post(
        "/fhir/Patient/lea/$identity-check",
        json=parameters(("insi", "valueBoolean", True)),
        headers={**gp, "If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412
    qual = await client.post(
        "/fhir/Patient/lea/$identity-check",
        json=parameters(("insi", "valueBoolean", True), ("methodCollection", "valueCode", "CV")),
        headers={**gp, "If-Match": 'W/"2"'},
    )
    assert qual.status_code == 200, qual.text
    assert value(qual.json(), "status")["code"] == "QUAL" and value(qual.json(), "insi") == "found"
    # RECUP → QUAL: a passport checked for Paul, whose INS came from INSi
    paul = await check(client, "paul", parameters(("validationMode", "valueCode", "PA")), gp)
    assert value(paul.json(), "previousStatus")["code"] == "RECUP"
    assert value(paul.json(), "status")["code"] == "QUAL"
    # each check is a new version in the history, audited in the patient's chain
    hist = (await client.get("/fhir/Patient/lea/_history")).json()
    assert len(hist["entry"]) == 3
    assert sum("$identity-check" in d for d in await history(runtime, "lea")) >= 2


async def test_identity_check_refusals_write_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client, runtime)
    gp = await as_pro(runtime, "gp")
    # Marc's identity is doubtful: no validation, no INSi call
    await client.put(
        "/fhir/CareTeam/ct-marc",
        json={
            "resourceType": "CareTeam",
            "id": "ct-marc",
            "status": "active",
            "subject": {"reference": "Patient/marc"},
            "participant": [{"member": {"reference": "Practitioner/gp"}}],
        },
    )
    before = await version(client, "marc")
    doubtful = await check(client, "marc", parameters(("validationMode", "valueCode", "CN")), gp)
    assert doubtful.status_code == 422, doubtful.text
    assert issue(doubtful)["expression"] == ["Parameters.parameter[validationMode]"]
    assert "identité douteuse" in issue(doubtful)["diagnostics"]
    insi = await check(client, "marc", parameters(("insi", "valueBoolean", True)), gp)
    assert insi.status_code == 422 and issue(insi)["expression"] == ["Parameters.parameter[insi]"]
    assert "INSi interdit" in issue(insi)["diagnostics"]
    assert await version(client, "marc") == before
    # a minors' mode for an adult, an unknown mode, nothing asked
    minors = await check(client, "lea", parameters(("validationMode", "valueCode", "LEP")), gp)
    assert minors.status_code == 422 and "réservé aux mineurs" in issue(minors)["diagnostics"]
    unknown = await check(client, "lea", parameters(("validationMode", "valueCode", "XX")), gp)
    assert unknown.status_code == 400 and issue(unknown)["expression"] == [
        "Parameters.parameter[validationMode]"
    ]
    empty = await check(client, "lea", parameters(), gp)
    assert empty.status_code == 400
    # a professional without a care relation: "not known", like any refusal; the patient herself: 403
    other = await check(
        client, "lea", parameters(("validationMode", "valueCode", "CN")), await as_pro(runtime, "other")
    )
    assert other.status_code == 404
    lea = await check(
        client, "lea", parameters(("validationMode", "valueCode", "CN")), await as_patient(runtime, "lea")
    )
    assert lea.status_code == 403
    assert await version(client, "lea") == "1"


# -- $declare-care -------------------------------------------------------------------------------


async def declare(
    client: httpx.AsyncClient,
    pid: str,
    headers: dict[str, str],
    attestation: str = "patient-present",
    **extra: Any,
) -> httpx.Response:
    items: list[tuple[str, str, Any]] = [
        ("attestation", "valueCode", attestation),
        ("reason", "valueString", "Consultation pour une entorse de la cheville"),
    ]
    items += [(k, "valueBoolean", v) for k, v in extra.items()]
    return await client.post(f"/fhir/Patient/{pid}/$declare-care", json=parameters(*items), headers=headers)


async def encounters(client: httpx.AsyncClient, pid: str) -> list[dict[str, Any]]:
    found = (await client.get("/fhir/Encounter", params={"patient": pid})).json()
    return [e["resource"] for e in found.get("entry", [])]


async def test_declare_care_opens_the_record_once_and_tells_the_patient(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    other = await as_pro(runtime, "other")
    assert (await client.get("/fhir/DocumentReference/doc-lea", headers=other)).status_code == 404
    r = await declare(client, "lea", other, teleconsultation=True)
    assert r.status_code == 201, r.text
    assert value(r.json(), "declared") is True
    assert value(r.json(), "relationEnd")
    assert (await client.get("/fhir/DocumentReference/doc-lea", headers=other)).status_code == 200
    [encounter] = await encounters(client, "lea")
    assert value(r.json(), "encounter")["reference"] == f"Encounter/{encounter['id']}"
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "VR"
    assert encounter["period"]["start"] == encounter["period"]["end"]
    assert encounter["participant"][0]["individual"] == {"reference": "Practitioner/other"}
    assert encounter["serviceProvider"] == {"reference": "Organization/clinic"}
    assert encounter["meta"]["tag"][0]["code"] == "patient-present"
    # the patient is told, and sees it in her access history with the attestation
    assert runtime.outbox is not None
    mails = [m for m in await runtime.outbox.pending(due_only=False) if m.to == "lea@example.fr"]
    assert len(mails) == 1 and "relation de soins" in mails[0].body
    assert any("$declare-care attestation=patient-present" in d for d in await history(runtime, "lea"))
    # declaring again within the live relation writes nothing
    again = await declare(client, "lea", other, "patient-consent")
    assert again.status_code == 200, again.text
    assert value(again.json(), "declared") is False and "déjà en cours" in value(again.json(), "message")
    assert len(await encounters(client, "lea")) == 1
    assert len([m for m in await runtime.outbox.pending(due_only=False) if m.to == "lea@example.fr"]) == 1


async def test_declare_care_is_refused_when_the_patient_said_no_or_the_identity_is_doubtful(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client, runtime)
    blocked = await declare(client, "lea", await as_pro(runtime, "blocked"))
    assert blocked.status_code == 403, blocked.text
    assert "s'oppose" in issue(blocked)["diagnostics"]
    other = await as_pro(runtime, "other")
    closed = await declare(client, "nina", other)
    assert closed.status_code == 403 and "fermé son espace" in issue(closed)["diagnostics"]
    doubtful = await declare(client, "marc", other)
    assert doubtful.status_code == 422 and "douteuse" in issue(doubtful)["diagnostics"]
    for pid in ("lea", "nina", "marc"):
        assert await encounters(client, pid) == []
    assert (
        await client.get("/fhir/DocumentReference/doc-lea", headers=await as_pro(runtime, "blocked"))
    ).status_code == 404
    # bad input names the parameter; only professionals declare
    bad = await declare(client, "lea", other, "patient-absent")
    assert bad.status_code == 400 and issue(bad)["expression"] == ["Parameters.parameter[attestation]"]
    short = await client.post(
        "/fhir/Patient/lea/$declare-care",
        json=parameters(("attestation", "valueCode", "patient-present"), ("reason", "valueString", "vu")),
        headers=other,
    )
    assert short.status_code == 400 and issue(short)["expression"] == ["Parameters.parameter[reason]"]
    citizen = await declare(client, "lea", await as_patient(runtime, "lea"))
    assert citizen.status_code == 403
    assert await encounters(client, "lea") == []
    # the refusals are in the patient's history too
    assert any("$declare-care" in d for d in await history(runtime, "lea"))
