"""Search semantics over HTTP, on SQLite and PostgreSQL (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

pytestmark = pytest.mark.anyio

FHIR_JSON = {"Content-Type": "application/fhir+json"}
LOINC = "http://loinc.org"
VS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    r = await client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
    )
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def ids(client: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    r = await client.get(f"/fhir/{path}", params=params)
    assert r.status_code == 200, r.text
    return [
        e["resource"]["id"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") == "match"
    ]


def obs(
    id: str, patient: str, code: str, value: float, unit: str, when: str, category: str = "vital-signs"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": VS_CAT, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": f"code {code}"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


@pytest.fixture
async def population(client: httpx.AsyncClient) -> None:
    await put(client, {"resourceType": "Organization", "id": "chu", "name": "CHU de Rennes"})
    await put(
        client,
        {"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Dupont", "given": ["Jean"]}]},
    )
    await put(
        client,
        {
            "resourceType": "Patient",
            "id": "claire",
            "gender": "female",
            "birthDate": "1985-04-12",
            "name": [{"family": "Martin", "given": ["Claire", "Louise"]}],
            "identifier": [
                {
                    "system": "urn:oid:1.2.250.1.213.1.4.8",
                    "value": "285044523412351",
                    "type": {
                        "coding": [
                            {
                                "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                                "code": "INS-NIR",
                            }
                        ]
                    },
                }
            ],
            "managingOrganization": {"reference": "Organization/chu"},
            "generalPractitioner": [{"reference": "Practitioner/gp"}],
            "address": [{"city": "Orléans", "postalCode": "45000"}],
            "meta": {"tag": [{"system": "urn:test", "code": "demo"}]},
        },
    )
    await put(
        client,
        {
            "resourceType": "Patient",
            "id": "eloise",
            "gender": "female",
            "birthDate": "1990",
            "name": [{"family": "Lefèvre", "given": ["Éloïse"]}],
            "managingOrganization": {"reference": "Organization/chu"},
        },
    )
    await put(
        client,
        {
            "resourceType": "Patient",
            "id": "marc",
            "gender": "male",
            "birthDate": "1962-11-30",
            "name": [{"family": "Martinez", "given": ["Marc"]}],
            "active": True,
        },
    )
    await put(client, obs("w1", "claire", "29463-7", 61.5, "kg", "2024-01-10T08:00:00+01:00"))
    await put(client, obs("w2", "claire", "29463-7", 63.0, "kg", "2024-06-10T08:00:00+02:00"))
    await put(client, obs("w3", "marc", "29463-7", 82.0, "kg", "2023-03-01"))
    await put(client, obs("g1", "claire", "2339-0", 95, "mg/dL", "2024-02-01", category="laboratory"))
    await put(
        client,
        {
            "resourceType": "Observation",
            "id": "bp1",
            "status": "final",
            "category": [{"coding": [{"system": VS_CAT, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": "Patient/claire"},
            "effectiveDateTime": "2024-03-05",
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {
                        "value": 128,
                        "unit": "mm[Hg]",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {
                        "value": 82,
                        "unit": "mm[Hg]",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
            ],
        },
    )


pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("population")]


async def test_string_default_is_accent_and_case_insensitive_prefix(client: httpx.AsyncClient) -> None:
    assert sorted(await ids(client, "Patient", family="martin")) == ["claire", "marc"]
    assert await ids(client, "Patient", family="LEFEVRE") == ["eloise"]
    assert await ids(client, "Patient", given="eloise") == ["eloise"]
    assert await ids(client, "Patient", **{"family:exact": "Martin"}) == ["claire"]
    assert await ids(client, "Patient", **{"family:exact": "martin"}) == []
    assert sorted(await ids(client, "Patient", **{"family:contains": "ART"})) == ["claire", "marc"]
    assert await ids(client, "Patient", address="orleans") == ["claire"]


async def test_token_forms(client: httpx.AsyncClient) -> None:
    ins = "urn:oid:1.2.250.1.213.1.4.8|285044523412351"
    assert await ids(client, "Patient", identifier=ins) == ["claire"]
    assert await ids(client, "Patient", identifier="285044523412351") == ["claire"]
    assert await ids(client, "Patient", identifier="urn:oid:1.2.250.1.213.1.4.8|") == ["claire"]
    assert await ids(client, "Patient", identifier="urn:other|285044523412351") == []
    assert sorted(await ids(client, "Patient", gender="female")) == ["claire", "eloise"]
    assert await ids(client, "Patient", **{"gender:not": "female"}) == ["marc"]
    assert await ids(client, "Patient", active="true") == ["marc"]
    assert sorted(await ids(client, "Observation", code=f"{LOINC}|29463-7")) == ["w1", "w2", "w3"]
    assert await ids(client, "Observation", **{"code:text": "2339"}) == ["g1"]
    of_type = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203|INS-NIR|285044523412351"
    assert await ids(client, "Patient", **{"identifier:of-type": of_type}) == ["claire"]


async def test_or_values_and_and_repetition(client: httpx.AsyncClient) -> None:
    assert sorted(await ids(client, "Patient", _id="claire,marc")) == ["claire", "marc"]
    r = await client.get("/fhir/Patient", params=[("family", "mart"), ("gender", "male")])
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["marc"]
    r = await client.get("/fhir/Observation", params=[("date", "ge2024-01-01"), ("date", "lt2024-03-01")])
    assert sorted(e["resource"]["id"] for e in r.json()["entry"]) == ["g1", "w1"]


async def test_date_prefixes_and_precision(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Patient", birthdate="1985-04-12") == ["claire"]
    assert await ids(client, "Patient", birthdate="1985-04") == ["claire"]
    assert await ids(client, "Patient", birthdate="1985") == ["claire"]
    # a year-precision birth date is not inside one day
    assert await ids(client, "Patient", birthdate="1990-06-01") == []
    assert sorted(await ids(client, "Patient", birthdate="gt1980")) == ["claire", "eloise"]
    assert await ids(client, "Patient", birthdate="lt1970") == ["marc"]
    assert sorted(await ids(client, "Patient", birthdate="ne1985-04-12")) == ["eloise", "marc"]
    assert await ids(client, "Patient", birthdate="sa1989-12-31") == ["eloise"]
    assert await ids(client, "Patient", birthdate="eb1963") == ["marc"]
    assert sorted(await ids(client, "Observation", date="2024")) == ["bp1", "g1", "w1", "w2"]
    assert await ids(client, "Observation", date="ge2024-06-10") == ["w2"]
    assert await ids(client, "Observation", date="ap2023-03-01") == ["w3"]


async def test_bad_date_is_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient", params={"birthdate": "12/04/1985"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["birthdate"]


async def test_reference_forms_type_modifier_and_chain(client: httpx.AsyncClient) -> None:
    assert sorted(await ids(client, "Observation", subject="Patient/claire")) == ["bp1", "g1", "w1", "w2"]
    assert sorted(await ids(client, "Observation", patient="claire")) == ["bp1", "g1", "w1", "w2"]
    assert sorted(await ids(client, "Observation", **{"subject:Patient": "marc"})) == ["w3"]
    assert sorted(await ids(client, "Observation", subject="http://testserver/fhir/Patient/marc")) == ["w3"]
    assert sorted(await ids(client, "Observation", **{"subject:Patient.family": "martinez"})) == ["w3"]
    assert sorted(await ids(client, "Observation", **{"patient.gender": "female", "code": "29463-7"})) == [
        "w1",
        "w2",
    ]
    assert sorted(await ids(client, "Patient", **{"organization.name": "CHU"})) == ["claire", "eloise"]


async def test_has(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Patient", **{"_has:Observation:patient:code": "2339-0"}) == ["claire"]
    assert sorted(await ids(client, "Patient", **{"_has:Observation:subject:code": "29463-7"})) == [
        "claire",
        "marc",
    ]


async def test_quantity_and_number(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Observation", **{"value-quantity": "gt80|http://unitsofmeasure.org|kg"}) == [
        "w3"
    ]
    assert sorted(await ids(client, "Observation", **{"value-quantity": "le63||kg"})) == ["w1", "w2"]
    assert await ids(client, "Observation", **{"value-quantity": "61.5"}) == ["w1"]
    assert await ids(client, "Observation", **{"value-quantity": "63000|http://unitsofmeasure.org|g"}) == [
        "w2"
    ]


async def test_composite_vital_signs(client: httpx.AsyncClient) -> None:
    got = await ids(client, "Observation", **{"component-code-value-quantity": f"{LOINC}|8480-6$gt120"})
    assert got == ["bp1"]
    assert (
        await ids(client, "Observation", **{"component-code-value-quantity": f"{LOINC}|8480-6$lt120"}) == []
    )
    assert await ids(client, "Observation", **{"code-value-quantity": "29463-7$gt80"}) == ["w3"]


async def test_missing(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Patient", **{"active:missing": "false"}) == ["marc"]
    assert sorted(await ids(client, "Patient", **{"organization:missing": "true"})) == ["marc"]


async def test_meta_parameters(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Patient", _tag="urn:test|demo") == ["claire"]
    r = await client.get("/fhir", params={"_tag": "urn:test|demo"})
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["claire"]
    assert len(await ids(client, "Patient", _lastUpdated="gt2000-01-01")) == 3


async def test_sort_several_keys_and_descending(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Observation", code="29463-7", _sort="-date") == ["w2", "w1", "w3"]
    assert await ids(client, "Observation", code="29463-7", _sort="date") == ["w3", "w1", "w2"]
    assert await ids(client, "Patient", _sort="gender,-birthdate") == ["eloise", "claire", "marc"]
    assert await ids(client, "Patient", _sort="family") == ["eloise", "claire", "marc"]


async def test_paging_is_stable_while_others_write(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    r = await client.get("/fhir/Observation", params={"_count": 2, "_sort": "-date"})
    bundle = r.json()
    seen += [e["resource"]["id"] for e in bundle["entry"]]
    # someone creates a resource that would sort first, and deletes one not yet seen
    await put(client, obs("new", "marc", "29463-7", 80.0, "kg", "2025-01-01"))
    await client.delete("/fhir/Observation/g1")
    while True:
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = (await client.get(nxt[0].replace("http://testserver", ""))).json()
        seen += [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert seen == ["w2", "bp1", "w1", "w3"]
    prev = [link["url"] for link in bundle["link"] if link["relation"] == "previous"]
    assert prev
    back = (await client.get(prev[0].replace("http://testserver", ""))).json()
    assert [e["resource"]["id"] for e in back["entry"]] == ["w2", "bp1"]


async def test_summary_count_total_and_elements(client: httpx.AsyncClient) -> None:
    r = (await client.get("/fhir/Observation", params={"_summary": "count"})).json()
    assert r["total"] == 5
    assert "entry" not in r
    r = (await client.get("/fhir/Observation", params={"_count": 1, "_total": "accurate"})).json()
    assert r["total"] == 5
    assert len(r["entry"]) == 1
    r = (await client.get("/fhir/Patient", params={"_id": "claire", "_elements": "gender"})).json()
    resource = r["entry"][0]["resource"]
    assert resource["gender"] == "female"
    assert "name" not in resource
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])
    r = (await client.get("/fhir/Patient", params={"_id": "claire", "_summary": "true"})).json()
    assert "name" in r["entry"][0]["resource"]
    assert "address" in r["entry"][0]["resource"]


async def test_include_and_revinclude(client: httpx.AsyncClient) -> None:
    r = (
        await client.get("/fhir/Patient", params={"_id": "claire", "_include": "Patient:organization"})
    ).json()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in r["entry"]}
    assert modes == {("Patient", "match"), ("Organization", "include")}
    r = (
        await client.get("/fhir/Patient", params={"_id": "marc", "_revinclude": "Observation:subject"})
    ).json()
    assert sorted(e["resource"]["id"] for e in r["entry"]) == ["marc", "w3"]
    r = (
        await client.get(
            "/fhir/Observation",
            params=[
                ("_id", "w3"),
                ("_include", "Observation:subject"),
                ("_include:iterate", "Patient:organization"),
            ],
        )
    ).json()
    assert sorted(e["resource"]["id"] for e in r["entry"]) == ["marc", "w3"]


async def test_include_storm_is_bounded(client: httpx.AsyncClient) -> None:
    for i in range(60):
        await put(client, obs(f"s{i}", "eloise", "8867-4", 60 + i, "/min", "2024-05-01"))
    r = (
        await client.get("/fhir/Patient", params={"_id": "eloise", "_revinclude": "Observation:subject"})
    ).json()
    included = [e for e in r["entry"] if e["search"]["mode"] == "include"]
    assert len(included) == 50  # the test limit
    outcome = [e for e in r["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["code"] == "too-costly"


async def test_unknown_parameter_lenient_then_strict(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient", params={"nonsense": "1"})
    assert r.status_code == 200
    outcome = [e for e in r.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["severity"] == "warning"
    r = await client.get("/fhir/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["nonsense"]


async def test_count_cap_and_bad_count(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient", params={"_count": 100000})
    assert r.status_code == 200
    assert "_count=200" in r.json()["link"][0]["url"]
    r = await client.get("/fhir/Patient", params={"_count": 100000}, headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    assert (await client.get("/fhir/Patient", params={"_count": "many"})).status_code == 400


async def test_post_search(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/Patient/_search",
        content=b"family=martin&gender=male",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["marc"]


async def test_everything(client: httpx.AsyncClient) -> None:
    r = (await client.get("/fhir/Patient/claire/$everything")).json()
    got = sorted((e["resource"]["resourceType"], e["resource"]["id"]) for e in r["entry"])
    assert ("Patient", "claire") in got
    assert ("Observation", "w1") in got
    assert ("Organization", "chu") in got  # referenced, outside the compartment
    assert ("Observation", "w3") not in got
    r = (
        await client.get("/fhir/Patient/claire/$everything", params={"_type": "Observation", "_count": 2})
    ).json()
    assert all(
        e["resource"]["resourceType"] == "Observation" for e in r["entry"] if e["search"]["mode"] == "match"
    )
    nxt = [link["url"] for link in r["link"] if link["relation"] == "next"]
    assert nxt
    r = (await client.get("/fhir/Patient/claire/$everything", params={"_since": "2999-01-01"})).json()
    assert r["entry"] == []
    assert (await client.get("/fhir/Patient/nobody/$everything")).status_code == 404


async def test_phonetic_identifier_reference_profile_and_uri(client: httpx.AsyncClient) -> None:
    assert await ids(client, "Patient", phonetic="Lefebvre") == ["eloise"]
    assert sorted(await ids(client, "Patient", phonetic="Martine")) == ["claire", "marc"]  # Soundex M635
    await put(
        client,
        {
            "resourceType": "Observation",
            "id": "by-ins",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "285044523412351"}},
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        },
    )
    assert await ids(
        client, "Observation", **{"subject:identifier": "urn:oid:1.2.250.1.213.1.4.8|285044523412351"}
    ) == ["by-ins"]
    assert await ids(
        client, "Observation", _profile="http://hl7.org/fhir/StructureDefinition/vitalsigns"
    ) == ["by-ins"]
    await put(
        client,
        {
            "resourceType": "ValueSet",
            "id": "vs",
            "status": "active",
            "url": "https://hygie.example/fhir/ValueSet/demo/v1",
        },
    )
    assert await ids(client, "ValueSet", url="https://hygie.example/fhir/ValueSet/demo/v1") == ["vs"]
    assert await ids(client, "ValueSet", **{"url:below": "https://hygie.example/fhir/ValueSet"}) == ["vs"]
    assert await ids(
        client, "ValueSet", **{"url:above": "https://hygie.example/fhir/ValueSet/demo/v1/extra"}
    ) == ["vs"]
    assert await ids(client, "ValueSet", url="https://hygie.example/fhir/ValueSet") == []


async def test_every_resource_records_its_patient_compartment(
    service: Any, client: httpx.AsyncClient
) -> None:
    from hygie.fhir.indexing import extract_index

    stored = await service.store.read("Observation", "w1")
    index = extract_index(orjson.loads(stored.content))
    assert index.compartments[0] == "claire"
    rows = await service.store.compartment("claire", ["Observation"], None, 0, 100)
    assert {r.id for r in rows} == {"w1", "w2", "g1", "bp1"}


async def test_uri_prefixes_are_literal_and_case_sensitive(client: httpx.AsyncClient) -> None:
    await put(
        client, {"resourceType": "ValueSet", "id": "under", "status": "active", "url": "http://x.org/a_b"}
    )
    # '_' is not a wildcard, and case matters in URIs
    assert await ids(client, "ValueSet", **{"url:above": "http://x.org/aXb/c"}) == []
    assert await ids(client, "ValueSet", **{"url:above": "http://x.org/a_b/c"}) == ["under"]
    assert await ids(client, "ValueSet", **{"url:below": "HTTP://X.ORG/"}) == []
    assert await ids(client, "ValueSet", **{"url:below": "http://x.org/"}) == ["under"]


async def test_composite_second_token_without_system(client: httpx.AsyncClient) -> None:
    await put(
        client,
        {
            "resourceType": "Observation",
            "id": "concept",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "1"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "2"}]},
        },
    )
    assert await ids(client, "Observation", **{"code-value-concept": f"{LOINC}|1$|2"}) == []
    assert await ids(client, "Observation", **{"code-value-concept": f"{LOINC}|1$2"}) == ["concept"]


async def test_elements_keeps_choice_variants_and_summary_text_keeps_mandatory(
    client: httpx.AsyncClient,
) -> None:
    r = (await client.get("/fhir/Observation", params={"_id": "w1", "_elements": "value"})).json()
    resource = r["entry"][0]["resource"]
    assert resource["valueQuantity"]["value"] == 61.5
    assert "code" not in resource
    r = (await client.get("/fhir/Observation", params={"_id": "w1", "_summary": "text"})).json()
    resource = r["entry"][0]["resource"]
    assert {"status", "code"} <= set(resource)
    assert "valueQuantity" not in resource
