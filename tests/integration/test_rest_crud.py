"""The RESTful interactions over HTTP, on SQLite and PostgreSQL.

Each test talks to the real ASGI app with httpx, the way a FHIR client does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

pytestmark = pytest.mark.anyio

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def patient(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "285044523412351"}],
        "name": [{"family": "Martin", "given": ["Claire"]}],
        "gender": "female",
        "birthDate": "1985-04-12",
    }
    body.update(extra)
    return body


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_create_returns_201_location_etag_and_the_stored_resource(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["resourceType"] == "Patient"
    assert body["meta"]["versionId"] == "1"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert "last-modified" in r.headers


async def test_post_ignores_a_client_id_and_assigns_one(client: httpx.AsyncClient) -> None:
    body = await create(client, patient(id="chosen-by-client"))
    assert body["id"] != "chosen-by-client"


async def test_read_returns_exactly_what_was_stored(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    r = await client.get(f"/fhir/Patient/{created['id']}")
    assert r.status_code == 200
    assert r.json() == created
    assert r.headers["etag"] == 'W/"1"'


async def test_read_unknown_is_404_with_outcome(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient/does-not-exist")
    assert r.status_code == 404
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"


async def test_unknown_type_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patientt/1")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_invalid_id_is_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient/" + "x" * 65)
    assert r.status_code == 400
    r = await client.put("/fhir/Patient/bad_id!", json=patient(id="bad_id!"), headers=FHIR_JSON)
    assert r.status_code == 400


async def test_update_creates_with_client_chosen_id_then_versions(client: httpx.AsyncClient) -> None:
    r = await client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["versionId"] == "1"
    r = await client.put("/fhir/Patient/p-1", json=patient(id="p-1", gender="other"), headers=FHIR_JSON)
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert r.headers["etag"] == 'W/"2"'
    old = await client.get("/fhir/Patient/p-1/_history/1")
    assert old.status_code == 200
    assert old.json()["gender"] == "female"
    assert (await client.get("/fhir/Patient/p-1/_history/3")).status_code == 404


async def test_update_id_mismatch_or_missing_is_400(client: httpx.AsyncClient) -> None:
    r = await client.put("/fhir/Patient/a", json=patient(id="b"), headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["id"]
    r = await client.put("/fhir/Patient/a", json=patient(), headers=FHIR_JSON)
    assert r.status_code == 400


async def test_resource_type_contradicting_the_url_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Observation", json=patient(), headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["resourceType"]


async def test_if_match_mismatch_is_412_and_nothing_changes(client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/p-2", json=patient(id="p-2"), headers=FHIR_JSON)
    r = await client.put(
        "/fhir/Patient/p-2", json=patient(id="p-2", gender="male"), headers={**FHIR_JSON, "If-Match": 'W/"7"'}
    )
    assert r.status_code == 412
    assert (await client.get("/fhir/Patient/p-2")).json()["gender"] == "female"
    r = await client.put(
        "/fhir/Patient/p-2", json=patient(id="p-2", gender="male"), headers={**FHIR_JSON, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200


async def test_delete_then_read_is_410_and_history_keeps_versions(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    pid = created["id"]
    r = await client.delete(f"/fhir/Patient/{pid}")
    assert r.status_code == 204
    r = await client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 410
    assert r.json()["issue"][0]["code"] == "deleted"
    again = await client.delete(f"/fhir/Patient/{pid}")
    assert again.status_code == 204
    history = (await client.get(f"/fhir/Patient/{pid}/_history")).json()
    assert history["type"] == "history"
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    # recreate after delete continues the version sequence
    r = await client.put(
        f"/fhir/Patient/{pid}", json={k: v for k, v in created.items() if k != "meta"}, headers=FHIR_JSON
    )
    assert r.status_code == 201
    assert r.json()["meta"]["versionId"] == "3"


async def test_deleted_resource_leaves_search(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    await client.delete(f"/fhir/Patient/{created['id']}")
    bundle = (await client.get("/fhir/Patient", params={"family": "martin"})).json()
    assert bundle.get("entry", []) == []


async def test_conditional_create_if_none_exist(client: httpx.AsyncClient) -> None:
    headers = {**FHIR_JSON, "If-None-Exist": "identifier=urn:oid:1.2.250.1.213.1.4.8|285044523412351"}
    first = await client.post("/fhir/Patient", json=patient(), headers=headers)
    assert first.status_code == 201
    second = await client.post("/fhir/Patient", json=patient(), headers=headers)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    third = await client.post("/fhir/Patient", json=patient(), headers=headers)
    assert third.status_code == 412


async def test_conditional_update(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/fhir/Patient",
        params={"identifier": "urn:oid:1.2.250.1.213.1.4.8|285044523412351"},
        json=patient(),
        headers=FHIR_JSON,
    )
    assert r.status_code == 201
    pid = r.json()["id"]
    r = await client.put(
        "/fhir/Patient",
        params={"identifier": "urn:oid:1.2.250.1.213.1.4.8|285044523412351"},
        json=patient(gender="other"),
        headers=FHIR_JSON,
    )
    assert r.status_code == 200
    assert r.json()["id"] == pid
    assert r.json()["meta"]["versionId"] == "2"


async def test_conditional_delete(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    r = await client.delete(
        "/fhir/Patient", params={"identifier": "urn:oid:1.2.250.1.213.1.4.8|285044523412351"}
    )
    assert r.status_code == 204
    assert (await client.get(f"/fhir/Patient/{created['id']}")).status_code == 410


async def test_json_patch(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    ops = [
        {"op": "replace", "path": "/gender", "value": "other"},
        {"op": "add", "path": "/active", "value": True},
    ]
    r = await client.patch(
        f"/fhir/Patient/{created['id']}",
        content=orjson.dumps(ops),
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "other"
    assert r.json()["active"] is True
    assert r.json()["meta"]["versionId"] == "2"


async def test_json_patch_producing_invalid_resource_is_422(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    ops = [{"op": "replace", "path": "/gender", "value": "homme"}]
    r = await client.patch(
        f"/fhir/Patient/{created['id']}",
        content=orjson.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 422
    assert (await client.get(f"/fhir/Patient/{created['id']}")).json()["gender"] == "female"


async def test_prefer_return(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert "location" in r.headers
    r = await client.post(
        "/fhir/Patient", json=patient(), headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"}
    )
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_xml_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/Patient",
        content=b"<Patient xmlns='http://hl7.org/fhir'/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    assert r.status_code == 415
    assert r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/Patient", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 415
    r = await client.get("/fhir/Patient", params={"_format": "xml"})
    assert r.status_code == 415


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", content=b'{"resourceType": "Patient",', headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["code"] == "structure"


async def test_invalid_resource_is_422_with_expression(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", json=patient(birthDate="12/04/1985"), headers=FHIR_JSON)
    assert r.status_code == 422
    exprs = [e for i in r.json()["issue"] for e in i.get("expression", [])]
    assert any("birthDate" in e for e in exprs)


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    big = patient(
        text={
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * 1_100_000 + "</div>",
        }
    )
    r = await client.post("/fhir/Patient", json=big, headers=FHIR_JSON)
    assert r.status_code == 413
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_concurrent_updates_with_same_if_match_one_wins(client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/race", json=patient(id="race"), headers=FHIR_JSON)
    headers = {**FHIR_JSON, "If-Match": 'W/"1"'}
    results = await asyncio.gather(
        *[
            client.put("/fhir/Patient/race", json=patient(id="race", gender=g), headers=headers)
            for g in ("male", "other")
        ]
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses[0] == 200
    assert statuses[1] in (409, 412)
    assert (await client.get("/fhir/Patient/race")).json()["meta"]["versionId"] == "2"


async def test_history_type_and_system_with_since_and_count(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create(client, patient())
    bundle = (await client.get("/fhir/Patient/_history", params={"_count": 2})).json()
    assert len(bundle["entry"]) == 2
    nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    assert nxt
    page2 = (await client.get(nxt[0].replace("http://testserver", ""))).json()
    assert len(page2["entry"]) == 1
    system = (await client.get("/fhir/_history", params={"_since": "2000-01-01"})).json()
    assert len(system["entry"]) == 3
    future = (await client.get("/fhir/_history", params={"_since": "2999-01-01"})).json()
    assert future["entry"] == []


async def test_metadata_is_a_capability_statement(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    patient_entry = next(x for x in cs["rest"][0]["resource"] if x["type"] == "Patient")
    assert {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    } in patient_entry["operation"]
    names = {p["name"] for p in patient_entry["searchParam"]}
    assert {"family", "identifier", "birthdate"} <= names


async def test_binary_is_kept_in_the_blob_store_and_read_natively(
    client: httpx.AsyncClient, service: Any
) -> None:
    import base64

    pdf = b"%PDF-1.4\n% Hygie test\n" + bytes(range(256))
    binary = {
        "resourceType": "Binary",
        "contentType": "application/pdf",
        "data": base64.b64encode(pdf).decode(),
    }
    created = await client.post("/fhir/Binary", json=binary, headers=FHIR_JSON)
    assert created.status_code == 201
    bid = created.json()["id"]
    as_fhir = await client.get(f"/fhir/Binary/{bid}")
    assert as_fhir.json()["data"] == binary["data"]
    native = await client.get(f"/fhir/Binary/{bid}", headers={"Accept": "application/pdf"})
    assert native.status_code == 200
    assert native.headers["content-type"] == "application/pdf"
    assert native.content == pdf
    # the database row holds only the blob's address, not the bytes
    raw = await service.store.inner.read("Binary", bid)
    assert b"blob-sha256" in raw.content
    assert binary["data"].encode() not in raw.content


async def test_fhir_api_answers_cors(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/fhir/Patient", headers={"Origin": "https://app.example.fr", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    r = await client.get("/fhir/metadata", headers={"Origin": "https://app.example.fr"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "ETag" in r.headers["access-control-expose-headers"]
    plain = await client.get("/fhir/metadata")
    assert "access-control-allow-origin" not in plain.headers


async def test_failing_patch_names_the_operation_without_echoing_the_record(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, patient())
    ops = [{"op": "replace", "path": "/gender", "value": "other"}, {"op": "remove", "path": "/telecom/3"}]
    r = await client.patch(
        f"/fhir/Patient/{created['id']}",
        content=orjson.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 422
    text = r.json()["issue"][0]["diagnostics"]
    assert "operation 1 (remove /telecom/3)" in text
    assert "285044523412351" not in r.text


async def test_a_lost_blob_is_an_error_not_an_empty_binary(client: httpx.AsyncClient, service: Any) -> None:
    import base64

    binary = {
        "resourceType": "Binary",
        "contentType": "text/plain",
        "data": base64.b64encode(b"bonjour").decode(),
    }
    bid = (await client.post("/fhir/Binary", json=binary, headers=FHIR_JSON)).json()["id"]
    service.store.blobs.blobs.clear()  # the test's in-memory blob store loses everything
    r = await client.get(f"/fhir/Binary/{bid}")
    assert r.status_code == 500
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_percent_encoded_ids_are_not_decoded_twice(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient/a%252Fb")
    assert r.status_code == 400  # the id is 'a%2Fb', not 'a/b'


async def test_references_only_a_transaction_can_resolve_are_refused(client: httpx.AsyncClient) -> None:
    for ref in ("urn:uuid:6f2a5b1e-0000-4000-8000-000000000001", "Patient?identifier=urn:test|1"):
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": ref},
        }
        r = await client.post("/fhir/Observation", json=obs, headers=FHIR_JSON)
        assert r.status_code == 422, ref
        assert r.json()["issue"][0]["expression"] == ["Observation.subject.reference"]
