"""``DELETE …?_expunge=true`` over HTTP, on every store (memory, SQLite, PostgreSQL): the
resource is erased with every version instead of a tombstone — alone, in a batch, in a
transaction (all or nothing) or by a conditional delete — decided by the rule of a delete and
recorded as a delete that says ``_expunge=true``; a refusal erases nothing; a Binary's content
goes with the last Binary that names it.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore

pytestmark = pytest.mark.anyio
PORTAL = "hygie-portal"
WEIGHT = {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"}


def observation(oid: str, patient: str, value: float, by: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": WEIGHT,
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [{"reference": by}],
        "valueQuantity": {"value": value, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text


async def seed(client: httpx.AsyncClient) -> None:
    """Léa's record: her own weight (two versions), a weight her doctor measured; Max's record."""
    await put(client, {"resourceType": "Patient", "id": "lea", "name": [{"family": "DURAND"}]})
    await put(client, {"resourceType": "Patient", "id": "max", "name": [{"family": "PETIT"}]})
    await put(client, {"resourceType": "Practitioner", "id": "gp", "name": [{"family": "BERNARD"}]})
    await put(
        client,
        {
            "resourceType": "CareTeam",
            "id": "ct",
            "status": "active",
            "subject": {"reference": "Patient/lea"},
            "participant": [{"member": {"reference": "Practitioner/gp"}}],
        },
    )
    await put(client, observation("own", "lea", 64, "Patient/lea"))
    await put(client, observation("own", "lea", 63.5, "Patient/lea"))  # version 2
    await put(client, observation("pro", "lea", 64.2, "Practitioner/gp"))


async def citizen(runtime: Runtime, who: str) -> dict[str, str]:
    return await bearer(runtime, kind="citizen", scope="openid", fhir_user=who, client_id=PORTAL)


async def professional(runtime: Runtime) -> dict[str, str]:
    return await bearer(
        runtime, kind="professional", scope="openid", fhir_user="Practitioner/gp", client_id=PORTAL
    )


async def versions(client: httpx.AsyncClient, rtype: str, id: str) -> int | None:
    """How many versions the instance history shows (None: a 404, nothing known of it)."""
    r = await client.get(f"/fhir/{rtype}/{id}/_history")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return len(r.json().get("entry", []))


async def in_type_history(client: httpx.AsyncClient, rtype: str, id: str) -> bool:
    r = await client.get(f"/fhir/{rtype}/_history", params={"_count": "200"})
    assert r.status_code == 200, r.text
    return any(e["fullUrl"].endswith(f"/{rtype}/{id}") for e in r.json().get("entry", []))


async def gone_for_good(client: httpx.AsyncClient, rtype: str, id: str) -> None:
    """Nothing says the resource ever existed: 404 (not 410), no version, no history entry."""
    assert (await client.get(f"/fhir/{rtype}/{id}")).status_code == 404
    assert (await client.get(f"/fhir/{rtype}/{id}/_history/1")).status_code == 404
    assert await versions(client, rtype, id) is None
    assert not await in_type_history(client, rtype, id)


async def deletions(runtime: Runtime, patient: str) -> list[dict[str, Any]]:
    records = (await runtime.audit.list_for_patient(patient, count=200)).records
    return [orjson.loads(r.entry.content) for r in records if r.entry.action == "D"]


def data_entity(event: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in event["entity"] if e.get("role", {}).get("code") == "4")


async def test_the_patient_expunges_her_own_entry(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    lea = await citizen(runtime, "Patient/lea")
    assert await versions(client, "Observation", "own") == 2

    r = await client.delete("/fhir/Observation/own", params={"_expunge": "true"}, headers=lea)
    assert r.status_code == 204, r.text
    assert "etag" not in r.headers  # no version written: there is no tombstone
    await gone_for_good(client, "Observation", "own")
    assert (await client.get("/fhir/Observation/own", headers=lea)).status_code == 404
    found = await client.get("/fhir/Observation", params={"patient": "lea"}, headers=lea)
    assert [e["resource"]["id"] for e in found.json()["entry"]] == ["pro"]
    # the same request again: nothing left, nothing done
    again = await client.delete("/fhir/Observation/own", params={"_expunge": "true"}, headers=lea)
    assert again.status_code == 204

    # recorded in Léa's chain as her delete, saying it was an erasure
    [event] = [e for e in await deletions(runtime, "lea") if e["outcome"] == "0"]
    assert data_entity(event)["what"] == {"reference": "Observation/own"}
    assert data_entity(event)["detail"] == [{"type": "modifier", "valueString": "_expunge=true"}]
    requestor = next(a for a in event["agent"] if a["requestor"])
    assert requestor["who"]["identifier"]["value"] == "Patient/lea"


async def test_a_plain_delete_still_keeps_the_history(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    lea = await citizen(runtime, "Patient/lea")
    for value in ("false", None):
        await put(client, observation("own", "lea", 63, "Patient/lea"))
        params = {"_expunge": value} if value else {}
        r = await client.delete("/fhir/Observation/own", params=params, headers=lea)
        assert r.status_code == 204 and r.headers["etag"].startswith('W/"')
        assert (await client.get("/fhir/Observation/own")).status_code == 410
    assert await versions(client, "Observation", "own") == 6  # 2 + (update, delete) twice
    assert all("detail" not in data_entity(e) for e in await deletions(runtime, "lea"))


async def test_a_refused_expunge_erases_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    lea = await citizen(runtime, "Patient/lea")
    max_ = await citizen(runtime, "Patient/max")

    # her doctor's measurement is read-only for her: she reads it, so the refusal is a 403
    r = await client.delete("/fhir/Observation/pro", params={"_expunge": "true"}, headers=lea)
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert (await client.get("/fhir/Observation/pro")).status_code == 200
    assert await versions(client, "Observation", "pro") == 1
    refused = [e for e in await deletions(runtime, "lea") if e["outcome"] != "0"]
    assert [data_entity(e)["detail"][0]["valueString"] for e in refused] == ["_expunge=true"]
    assert refused[0]["outcomeDesc"] == "entries from professionals are read-only for the patient"

    # another person's entry: not even its existence (404), and nothing erased
    r = await client.delete("/fhir/Observation/own", params={"_expunge": "true"}, headers=max_)
    assert r.status_code == 404, r.text
    assert await versions(client, "Observation", "own") == 2


async def test_a_professional_deletes_but_never_erases_for_good(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The record is medico-legal: her doctor may delete his entry (a tombstone, its history
    kept), never erase it or anything else of the record, even his own."""
    await seed(client)
    gp = await professional(runtime)
    for entry in ("pro", "own"):
        r = await client.delete(f"/fhir/Observation/{entry}", params={"_expunge": "true"}, headers=gp)
        assert r.status_code == 403, r.text
        assert "erasing for good" in r.json()["issue"][0]["diagnostics"]
    assert await versions(client, "Observation", "pro") == 1
    assert await versions(client, "Observation", "own") == 2
    assert (await client.delete("/fhir/Observation/pro", headers=gp)).status_code == 204
    assert await versions(client, "Observation", "pro") == 2
    refused = [e for e in await deletions(runtime, "lea") if e["outcome"] != "0"]
    assert len(refused) == 2 and all("erasing for good" in e["outcomeDesc"] for e in refused)


async def test_a_deleted_entry_is_expunged_by_the_rule_of_its_record(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A tombstone's row names no record any more: the erasure is judged on its last content."""
    await seed(client)
    lea = await citizen(runtime, "Patient/lea")
    max_ = await citizen(runtime, "Patient/max")
    gp = await professional(runtime)
    assert (await client.delete("/fhir/Observation/own", headers=lea)).status_code == 204
    assert (await client.delete("/fhir/Observation/pro", headers=gp)).status_code == 204
    assert await versions(client, "Observation", "own") == 3

    # neither another patient, nor a professional outside her care, nor Léa on her doctor's
    # entry erases a deleted one (judged outside any record, the stranger's erasure would pass)
    await put(client, {"resourceType": "Practitioner", "id": "stranger", "name": [{"family": "X"}]})
    stranger = await bearer(
        runtime, kind="professional", scope="openid", fhir_user="Practitioner/stranger", client_id=PORTAL
    )
    for headers in (max_, stranger):
        r = await client.delete("/fhir/Observation/own", params={"_expunge": "true"}, headers=headers)
        assert r.status_code == 404, r.text
    r = await client.delete("/fhir/Observation/pro", params={"_expunge": "true"}, headers=lea)
    assert r.status_code == 403, r.text
    assert await versions(client, "Observation", "own") == 3
    assert await versions(client, "Observation", "pro") == 2

    r = await client.delete("/fhir/Observation/own", params={"_expunge": "true"}, headers=lea)
    assert r.status_code == 204, r.text
    await gone_for_good(client, "Observation", "own")


async def test_an_expunge_in_a_failing_transaction_erases_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    lea = await citizen(runtime, "Patient/lea")

    def bundle(*entries: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}

    expunge = {"request": {"method": "DELETE", "url": "Observation/own?_expunge=true"}}
    # an entry refused by the policy (her doctor's entry) after the erasure
    r = await client.post(
        "/fhir",
        json=bundle(expunge, {"request": {"method": "DELETE", "url": "Observation/pro?_expunge=true"}}),
        headers=lea,
    )
    assert r.status_code == 403, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    # an entry that fails on its own (a stale If-Match) after the erasure
    stale = observation("own", "lea", 62, "Patient/lea")
    r = await client.post(
        "/fhir",
        json=bundle(
            expunge,
            {
                "resource": {**stale, "id": "other"},
                "request": {"method": "PUT", "url": "Observation/other", "ifMatch": 'W/"7"'},
            },
        ),
        headers=lea,
    )
    assert r.status_code == 412, r.text
    for oid, count in (("own", 2), ("pro", 1)):
        assert (await client.get(f"/fhir/Observation/{oid}")).status_code == 200
        assert await versions(client, "Observation", oid) == count
    assert all(e["outcome"] != "0" for e in await deletions(runtime, "lea"))  # none committed

    # the same erasure with a sound entry: both happen
    note = observation("new", "lea", 61, "Patient/lea")
    r = await client.post(
        "/fhir",
        json=bundle(expunge, {"resource": note, "request": {"method": "PUT", "url": "Observation/new"}}),
        headers=lea,
    )
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["204", "201"]
    await gone_for_good(client, "Observation", "own")
    assert (await client.get("/fhir/Observation/new")).status_code == 200


async def test_batch_conditional_and_bad_values(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed(client)
    lea = await citizen(runtime, "Patient/lea")
    await put(client, observation("second", "lea", 60, "Patient/lea"))

    r = await client.delete("/fhir/Observation/own", params={"_expunge": "yes"}, headers=lea)
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["_expunge"]
    r = await client.post(
        "/fhir",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": "Observation/own?_expunge=1"}}],
        },
        headers=lea,
    )
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request.url"]
    assert await versions(client, "Observation", "own") == 2

    # a batch: each entry on its own, the refused one erases nothing
    r = await client.post(
        "/fhir",
        json={
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "DELETE", "url": "Observation/own?_expunge=true"}},
                {"request": {"method": "DELETE", "url": "Observation/pro?_expunge=true"}},
            ],
        },
        headers=lea,
    )
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["204", "403"]
    await gone_for_good(client, "Observation", "own")
    assert await versions(client, "Observation", "pro") == 1

    # a conditional delete: _expunge is no search criterion
    r = await client.delete(
        "/fhir/Observation",
        params={"_id": "second", "performer": "Patient/lea", "_expunge": "true"},
        headers=lea,
    )
    assert r.status_code == 204, r.text
    await gone_for_good(client, "Observation", "second")
    r = await client.delete("/fhir/Observation", params={"_expunge": "true"}, headers=lea)
    assert r.status_code == 400, r.text


async def test_a_binary_content_goes_with_the_last_binary_naming_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    store = runtime.service.store
    assert isinstance(store, BinaryOffloadingStore) and isinstance(store.blobs, MemoryBlobStore)
    store.blob_grace_s = 0.0  # no upload of the same content is under way
    blobs = store.blobs
    await seed(client)

    def binary(bid: str, data: bytes) -> dict[str, Any]:
        return {
            "resourceType": "Binary",
            "id": bid,
            "contentType": "application/pdf",
            "securityContext": {"reference": "Patient/lea"},
            "data": base64.b64encode(data).decode(),
        }

    for bid, data in (("shared-1", b"%PDF shared"), ("shared-2", b"%PDF shared"), ("alone", b"%PDF alone")):
        await put(client, binary(bid, data))
    assert len([d async for d in blobs.iter_digests()]) == 2

    # a patient never rewrites nor erases a document's content
    lea = await citizen(runtime, "Patient/lea")
    r = await client.delete("/fhir/Binary/alone", params={"_expunge": "true"}, headers=lea)
    assert r.status_code == 403, r.text

    # the platform (system/*.cruds) may: the blob goes with the only Binary naming it
    assert (await client.delete("/fhir/Binary/alone", params={"_expunge": "true"})).status_code == 204
    await gone_for_good(client, "Binary", "alone")
    assert len([d async for d in blobs.iter_digests()]) == 1
    # a shared blob stays while another Binary names it
    assert (await client.delete("/fhir/Binary/shared-1", params={"_expunge": "true"})).status_code == 204
    assert len([d async for d in blobs.iter_digests()]) == 1
    shared = await client.get("/fhir/Binary/shared-2")
    assert base64.b64decode(shared.json()["data"]) == b"%PDF shared"
    assert (await client.delete("/fhir/Binary/shared-2", params={"_expunge": "true"})).status_code == 204
    assert [d async for d in blobs.iter_digests()] == []
