"""``Observation/$lastn`` through the FHIR API, on the memory, SQLite and PostgreSQL stores.

The latest ``max`` Observations of each code for one patient, in one query — and the one door
of a search: the access restriction is applied before anything is ranked (another patient's
values, a value hidden from a legal representative never take a place in a group), the app's
scopes are checked, refusals are 403 or an empty answer as a search would give, the audit trail
records the search per patient, and malformed requests are 400 with the parameter's path.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime

pytestmark = pytest.mark.anyio

LOINC = "http://loinc.org"
VITALS = "http://terminology.hl7.org/CodeSystem/observation-category"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
PORTAL = "hygie-portal"
WEIGHT, HEIGHT, GLUCOSE, STEPS = "29463-7", "8302-2", "2339-0", "41950-7"


def obs(
    oid: str,
    patient: str,
    code: str,
    day: str | None,
    *,
    category: str = "vital-signs",
    label: str | None = None,
    status: str = "final",
    also: tuple[str, str] | None = None,
) -> dict[str, Any]:
    codings = [{"system": LOINC, "code": code}]
    if also is not None:
        codings.append({"system": also[0], "code": also[1]})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [{"coding": [{"system": VITALS, "code": category}]}],
        "code": {"coding": codings},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 1, "unit": "1"},
    }
    if day is not None:
        resource["effectiveDateTime"] = day
    if label is not None:
        resource["meta"] = {"security": [{"system": TRE_A07, "code": label}]}
    return resource


def world() -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": "lea", "birthDate": "1980-06-15", "name": [{"family": "Durand"}]},
        {"resourceType": "Patient", "id": "paul", "birthDate": "1975-01-01", "name": [{"family": "Martin"}]},
        {"resourceType": "Patient", "id": "zoe", "birthDate": "2011-03-02", "name": [{"family": "Martin"}]},
        {
            "resourceType": "Practitioner",
            "id": "dr-care",
            "name": [{"family": "Soin"}],
            "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
        },
        {
            "resourceType": "Practitioner",
            "id": "dr-none",
            "name": [{"family": "Aucun"}],
            "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
        },
        {
            "resourceType": "CareTeam",
            "id": "ct-lea",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [{"member": {"reference": "Practitioner/dr-care"}}],
        },
        {
            "resourceType": "RelatedPerson",
            "id": "rp-mother",
            "active": True,
            "patient": {"reference": "Patient/zoe"},
            "relationship": [{"coding": [{"system": ROLE_CODE, "code": "MTH"}]}],
        },
        # Léa: four weights (one of them entered in error, one without a date), two heights,
        # a glucose (laboratory), steps (activity) coded twice
        obs("w1", "lea", WEIGHT, "2026-01-10"),
        obs("w2", "lea", WEIGHT, "2026-03-01T08:00:00+01:00"),
        obs("w3", "lea", WEIGHT, "2026-02-14"),
        obs("w4", "lea", WEIGHT, None),
        obs("h1", "lea", HEIGHT, "2025-06-01"),
        obs("h2", "lea", HEIGHT, "2026-02-01"),
        obs("g1", "lea", GLUCOSE, "2026-02-20", category="laboratory"),
        obs("s1", "lea", STEPS, "2026-02-21", category="activity", also=("urn:app:pas", "steps")),
        # Paul's weight is more recent than all of Léa's: it must never take a place in her group
        obs("pw", "paul", WEIGHT, "2026-04-01"),
        # Zoé (14): her latest weight is hidden from her legal representatives
        obs("zw1", "zoe", WEIGHT, "2026-01-05"),
        obs("zw2", "zoe", WEIGHT, "2026-03-05", label="INVISIBLE_REPRESENTANTS_LEGAUX"),
        obs("zh1", "zoe", HEIGHT, "2026-03-06", label="INVISIBLE_REPRESENTANTS_LEGAUX"),
    ]


async def seed(client: httpx.AsyncClient) -> None:
    for resource in world():
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


def ids(bundle: dict[str, Any]) -> list[str]:
    return [
        e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"
    ]


async def lastn(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: str) -> Any:
    return await client.get("/fhir/Observation/$lastn", params=params, headers=headers or {})


async def as_patient(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(runtime, kind="citizen", scope="openid", fhir_user=f"Patient/{pid}", client_id=PORTAL)


async def as_pro(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(
        runtime, kind="professional", scope="openid", fhir_user=f"Practitioner/{pid}", client_id=PORTAL
    )


async def test_the_latest_value_of_each_code_grouped_and_newest_first(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await lastn(client, patient="lea", category="vital-signs")
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "searchset"
    # groups in code order (LOINC 29463-7 < 8302-2), the newest of each: another patient's
    # more recent weight takes no place
    assert ids(bundle) == ["w2", "h2"]
    assert bundle["total"] == 2

    r = await lastn(client, patient="Patient/lea", category="vital-signs", max="3")
    assert ids(r.json()) == ["w2", "w3", "w1", "h2", "h1"]
    # an Observation without an effective date comes after the dated ones
    r = await lastn(client, subject="Patient/lea", code=f"{LOINC}|{WEIGHT}", max="10")
    assert ids(r.json()) == ["w2", "w3", "w1", "w4"]


async def test_max_category_and_code_filters(client: httpx.AsyncClient) -> None:
    await seed(client)
    every = f"{LOINC}|{WEIGHT},{LOINC}|{HEIGHT},{LOINC}|{GLUCOSE},{LOINC}|{STEPS}"
    r = await lastn(client, patient="lea", code=every)
    assert ids(r.json()) == ["g1", "w2", "s1", "h2"]  # 2339-0 < 29463-7 < 41950-7 < 8302-2
    r = await lastn(client, patient="lea", category="laboratory,activity")
    assert ids(r.json()) == ["g1", "s1"]
    # other search parameters narrow the candidates before the grouping
    r = await lastn(client, patient="lea", category="vital-signs", date="lt2026-02-01", max="5")
    assert ids(r.json()) == ["w1", "h1"]
    # the steps coded in LOINC and by the app are one group (its smallest system|code), once
    r = await lastn(client, patient="lea", code="urn:app:pas|steps")
    assert ids(r.json()) == ["s1"]
    # POST: a form body or a Parameters resource
    r = await client.post(
        "/fhir/Observation/$lastn",
        content="patient=lea&category=vital-signs&max=2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert ids(r.json()) == ["w2", "w3", "h2", "h1"]
    r = await client.post(
        "/fhir/Observation/$lastn",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "patient", "valueReference": {"reference": "Patient/lea"}},
                {"name": "code", "valueString": f"{LOINC}|{HEIGHT}"},
                {"name": "max", "valuePositiveInt": 1},
            ],
        },
        headers={"content-type": "application/fhir+json"},
    )
    assert ids(r.json()) == ["h2"]
    # nothing matches: an empty searchset, no error
    r = await lastn(client, patient="paul", category="laboratory")
    assert r.status_code == 200 and ids(r.json()) == [] and r.json()["total"] == 0


@pytest.mark.parametrize(
    ("params", "expression"),
    [
        ({"patient": "lea", "category": "vital-signs", "max": "0"}, "max"),
        ({"patient": "lea", "category": "vital-signs", "max": "deux"}, "max"),
        ({"patient": "lea", "category": "vital-signs", "max": "1001"}, "max"),
        ({"category": "vital-signs"}, "patient"),
        ({"patient": "lea"}, "code"),
        ({"patient": "lea", "category": "vital-signs", "_sort": "date"}, "_sort"),
        ({"patient": "lea", "category": "vital-signs", "_count": "3"}, "_count"),
        ({"patient": "lea", "category": "vital-signs", "date": "lundi"}, "date"),
    ],
)
async def test_malformed_requests_are_400_at_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], expression: str
) -> None:
    r = await lastn(client, **params)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]


async def test_only_get_and_post(client: httpx.AsyncClient) -> None:
    r = await client.delete("/fhir/Observation/$lastn")
    assert r.status_code == 405
    r = await client.get("/fhir/metadata")
    observation = next(x for x in r.json()["rest"][0]["resource"] if x["type"] == "Observation")
    assert {"name": "lastn", "definition": "http://hl7.org/fhir/OperationDefinition/Observation-lastn"} in (
        observation["operation"]
    )


async def test_a_patient_sees_her_own_values_only(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    lea = await as_patient(runtime, "lea")
    r = await lastn(client, lea, patient="lea", category="vital-signs")
    assert ids(r.json()) == ["w2", "h2"]
    # asking for Paul's: the restriction leaves nothing, as a search of his record would
    r = await lastn(client, lea, patient="paul", category="vital-signs")
    assert r.status_code == 200 and ids(r.json()) == []


async def test_an_apps_scopes_are_checked(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    reading = await bearer(
        runtime,
        kind="citizen",
        scope="openid fhirUser launch/patient patient/Observation.rs",
        fhir_user="Patient/lea",
        patient="lea",
        client_id="carnet-app",
    )
    r = await lastn(client, reading, patient="lea", category="vital-signs")
    assert r.status_code == 200 and ids(r.json()) == ["w2", "h2"]
    other = await bearer(
        runtime,
        kind="citizen",
        scope="openid fhirUser launch/patient patient/Condition.rs",
        fhir_user="Patient/lea",
        patient="lea",
        client_id="agenda-app",
    )
    r = await lastn(client, other, patient="lea", category="vital-signs")
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_a_professional_without_a_relation_gets_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    care = await as_pro(runtime, "dr-care")
    r = await lastn(client, care, patient="lea", category="vital-signs")
    assert ids(r.json()) == ["w2", "h2"]
    none = await as_pro(runtime, "dr-none")
    r = await lastn(client, none, patient="lea", category="vital-signs", max="5")
    assert r.status_code == 200 and ids(r.json()) == []


async def test_values_hidden_from_a_representative_are_never_ranked(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    mother = await bearer(
        runtime, kind="citizen", scope="openid", fhir_user="RelatedPerson/rp-mother", client_id=PORTAL
    )
    r = await lastn(client, mother, patient="zoe", category="vital-signs")
    assert r.status_code == 200, r.text
    # the hidden weight does not take the group's one place, the hidden height leaves no group
    assert ids(r.json()) == ["zw1"]
    zoe = await as_patient(runtime, "zoe")
    r = await lastn(client, zoe, patient="zoe", category="vital-signs")
    assert ids(r.json()) == ["zw2", "zh1"]


async def test_the_audit_trail_records_the_search_per_patient(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    lea = await as_patient(runtime, "lea")
    r = await lastn(client, lea, patient="lea", category="vital-signs")
    assert r.status_code == 200
    page = await runtime.service.audit.list_for_patient("lea", count=200)
    searched = [r.entry for r in page.records if b"$lastn" in r.entry.content]
    assert len(searched) == 1, [r.entry.summary() for r in page.records]
    assert searched[0].agent == "Patient/lea" and searched[0].outcome == "0"
    event = orjson.loads(searched[0].content)
    assert searched[0].action == "E"
    assert [c["code"] for c in event["subtype"]] == ["search-type"], event["subtype"]
    # a refused request is recorded too
    other = await bearer(
        runtime,
        kind="citizen",
        scope="openid fhirUser launch/patient patient/Condition.rs",
        fhir_user="Patient/lea",
        patient="lea",
        client_id="agenda-app",
    )
    assert (await lastn(client, other, patient="lea", category="vital-signs")).status_code == 403
    page = await runtime.service.audit.list_for_patient("lea", count=200)
    assert len([r for r in page.records if b"$lastn" in r.entry.content]) == 1  # no record of Léa's
    # Paul's record is not touched by a search that returned none of his data
    paul = await runtime.service.audit.list_for_patient("paul", count=200)
    assert not [r for r in paul.records if b"$lastn" in r.entry.content]
