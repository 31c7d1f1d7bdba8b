"""Batch and transaction Bundles, and the import of the shared Synthea bundles."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from hygie.fhir.interactions import FhirService
from hygie.fhir.search import parse_search
from hygie.importer import import_paths

pytestmark = pytest.mark.anyio

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def tx(entries: list[dict[str, Any]], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def post(full_url: str, resource: dict[str, Any], **request: Any) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Bernard"}],
    "identifier": [{"system": "urn:test", "value": "42"}],
}


async def count(client: httpx.AsyncClient, rtype: str) -> int:
    return int((await client.get(f"/fhir/{rtype}", params={"_summary": "count"})).json()["total"])


async def test_transaction_rewrites_urn_uuid_references(client: httpx.AsyncClient) -> None:
    bundle = tx(
        [
            post("urn:uuid:11111111-1111-4111-8111-111111111111", PATIENT),
            post(
                "urn:uuid:22222222-2222-4222-8222-222222222222",
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "poids"},
                    "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                },
            ),
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201", "201"]
    patient_loc = out["entry"][0]["response"]["location"]
    pid = patient_loc.split("/Patient/")[1].split("/")[0]
    obs_id = out["entry"][1]["response"]["location"].split("/Observation/")[1].split("/")[0]
    obs = (await client.get(f"/fhir/Observation/{obs_id}")).json()
    assert obs["subject"]["reference"] == f"Patient/{pid}"


async def test_transaction_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    bundle = tx(
        [
            post("urn:uuid:a", PATIENT),
            post(
                "urn:uuid:b", {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}
            ),
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 422
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(e.startswith("Bundle.entry[1]") for i in outcome["issue"] for e in i.get("expression", []))
    assert await count(client, "Patient") == 0
    assert (await client.get("/fhir/_history")).json()["entry"] == []


async def test_transaction_processing_order_and_conditional_references(client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/old", json={"resourceType": "Patient", "id": "old"}, headers=FHIR_JSON)
    await client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON)
    bundle = tx(
        [
            {"request": {"method": "GET", "url": "Patient?identifier=urn:test|42"}},
            {
                "fullUrl": "urn:uuid:o",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "Patient?identifier=urn:test|42"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {"request": {"method": "DELETE", "url": "Patient/old"}},
            {
                "resource": {"resourceType": "Patient", "id": "new"},
                "request": {"method": "PUT", "url": "Patient/new"},
            },
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["200", "201", "204", "201"]
    # the GET ran last: it sees the state after the writes
    assert entries[0]["resource"]["type"] == "searchset"
    obs_id = entries[1]["response"]["location"].split("/Observation/")[1].split("/")[0]
    obs = (await client.get(f"/fhir/Observation/{obs_id}")).json()
    pid = (await client.get("/fhir/Patient", params={"identifier": "urn:test|42"})).json()["entry"][0][
        "resource"
    ]["id"]
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert (await client.get("/fhir/Patient/old")).status_code == 410


async def test_conditional_reference_without_match_fails_the_transaction(client: httpx.AsyncClient) -> None:
    bundle = tx(
        [
            post(
                "urn:uuid:o",
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "Patient?identifier=urn:test|nobody"},
                },
            )
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code in (400, 404, 412)
    assert await count(client, "Observation") == 0


async def test_conditional_create_in_transaction_maps_to_existing(client: httpx.AsyncClient) -> None:
    first = await client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON)
    pid = first.json()["id"]
    bundle = tx(
        [
            post("urn:uuid:p", PATIENT, ifNoneExist="identifier=urn:test|42"),
            post(
                "urn:uuid:o",
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "urn:uuid:p"},
                },
            ),
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"] == "200"
    assert await count(client, "Patient") == 1
    obs_id = r.json()["entry"][1]["response"]["location"].split("/Observation/")[1].split("/")[0]
    assert (await client.get(f"/fhir/Observation/{obs_id}")).json()["subject"][
        "reference"
    ] == f"Patient/{pid}"


async def test_batch_entries_succeed_or_fail_independently(client: httpx.AsyncClient) -> None:
    bundle = tx(
        [
            post("urn:uuid:a", PATIENT),
            post("urn:uuid:b", {"resourceType": "Patient", "gender": "homme"}),
            {"request": {"method": "GET", "url": "Patient/missing"}},
        ],
        kind="batch",
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200
    out = r.json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses == ["201", "422", "404"]
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert await count(client, "Patient") == 1


async def test_bad_bundles(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=FHIR_JSON)
    assert r.status_code == 400
    r = await client.post("/fhir", json=tx([{"resource": PATIENT}]), headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    r = await client.post("/fhir", json=PATIENT, headers=FHIR_JSON)
    assert r.status_code == 400


async def test_synthea_bundles_import_as_transactions(
    service: FhirService, shared_data: Path, tmp_path: Path
) -> None:
    bundles = sorted((shared_data / "synthea-r4" / "bundles").glob("*.json.gz"))[:3]
    report = await import_paths(service, bundles)
    assert report.rejected == []
    expected = 0
    for path in bundles:
        expected += len(orjson.loads(gzip.decompress(path.read_bytes()))["entry"])
    assert report.stored_total == expected
    # references were rewritten to the server's ids
    page = await service.store.search(parse_search("Observation", [("_count", "1")]), now_us=0)
    obs = orjson.loads(page.resources[0].content)
    assert obs["subject"]["reference"].startswith("Patient/")


async def test_import_reports_rejections_with_reasons(service: FhirService, tmp_path: Path) -> None:
    good = {"resourceType": "Patient", "id": "ok"}
    bad = {"resourceType": "Patient", "id": "bad", "birthDate": "hier"}
    (tmp_path / "data.ndjson").write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(bad) + b"\nnot json\n")
    (tmp_path / "one.json.gz").write_bytes(
        gzip.compress(orjson.dumps({"resourceType": "Practitioner", "id": "pr"}))
    )
    report = await import_paths(service, [tmp_path])
    assert report.stored == {"Patient": 1, "Practitioner": 1}
    reasons = {r.source.rsplit("/", 1)[-1]: r.reason for r in report.rejected}
    assert "birthDate" in reasons["data.ndjson:2"]
    assert "malformed JSON" in reasons["data.ndjson:3"]


async def test_conditional_create_matching_an_earlier_entry_of_the_same_transaction(
    client: httpx.AsyncClient,
) -> None:
    bundle = tx(
        [
            {"resource": {**PATIENT, "id": "first"}, "request": {"method": "PUT", "url": "Patient/first"}},
            post("urn:uuid:again", PATIENT, ifNoneExist="identifier=urn:test|42"),
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    # POSTs run before PUTs: the conditional create found nothing and created; the PUT then created "first"
    assert await count(client, "Patient") == 2
    bundle = tx(
        [
            post("urn:uuid:a", {**PATIENT, "identifier": [{"system": "urn:test", "value": "77"}]}),
            post(
                "urn:uuid:b",
                {**PATIENT, "identifier": [{"system": "urn:test", "value": "77"}]},
                ifNoneExist="identifier=urn:test|77",
            ),
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201", "200"]
    assert (await client.get("/fhir/Patient", params={"identifier": "urn:test|77"})).json()["total"] == 1


async def test_a_read_in_a_transaction_sees_its_writes(client: httpx.AsyncClient) -> None:
    bundle = tx(
        [
            {"resource": {**PATIENT, "id": "fresh"}, "request": {"method": "PUT", "url": "Patient/fresh"}},
            {"request": {"method": "GET", "url": "Patient/fresh"}},
        ]
    )
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201", "200"]
    assert r.json()["entry"][1]["resource"]["id"] == "fresh"


async def test_transaction_errors_point_at_the_entry_part(client: httpx.AsyncClient) -> None:
    no_id = tx([{"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient/x"}}])
    r = await client.post("/fhir", json=no_id, headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.id"]
    await client.put("/fhir/Patient/v", json={"resourceType": "Patient", "id": "v"}, headers=FHIR_JSON)
    stale = tx(
        [
            {
                "resource": {"resourceType": "Patient", "id": "v"},
                "request": {"method": "PUT", "url": "Patient/v", "ifMatch": 'W/"9"'},
            }
        ]
    )
    r = await client.post("/fhir", json=stale, headers=FHIR_JSON)
    assert r.status_code == 412
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request.ifMatch"]
