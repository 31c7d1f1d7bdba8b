"""What a third-party app writes carries its provenance (CNNum recommendation 12), on every store.

Through the real FHIR API with real tokens: an app's create, update, patch and the entries of its
transaction and batch Bundles are stored with ``meta.source = urn:hygie:app:<client_id>``,
whatever the app sent; a write by Hygie's own portal session keeps a ``meta.source`` of its own
but never an app's (nobody passes their data off as an app's); the operator restoring an export
(``hygie import``) keeps the provenance as it was recorded.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime
from hygie.domain.access import PORTAL_CLIENT, Caller
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

pytestmark = pytest.mark.anyio

APP = "balance-connectee"
APP_SOURCE = f"urn:hygie:app:{APP}"
APP_SCOPE = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.cruds"
LAB = "https://labo.example.fr/sil"  # a sender's own system: not an app's provenance
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def weight(kg: float, meta: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"},
        "subject": {"reference": "Patient/lea"},
        "effectiveDateTime": "2026-05-01T08:00:00+02:00",
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        **extra,
    }
    if meta is not None:
        resource["meta"] = meta
    return resource


async def as_app(runtime: Runtime) -> dict[str, str]:
    """Léa's token in a third-party app (standalone launch, her record only)."""
    return await bearer(
        runtime, kind="citizen", scope=APP_SCOPE, fhir_user="Patient/lea", patient="lea", client_id=APP
    )


async def as_portal(runtime: Runtime) -> dict[str, str]:
    """Léa in Hygie's own portal (the first-party client: the rules alone apply)."""
    return await bearer(
        runtime, kind="citizen", scope="openid", fhir_user="Patient/lea", client_id=PORTAL_CLIENT
    )


async def seed(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/fhir/Patient/lea",
        json={"resourceType": "Patient", "id": "lea", "name": [{"family": "Durand", "given": ["Léa"]}]},
    )
    assert r.status_code == 201, r.text


def reference(location: str) -> str:
    """``Observation/<id>`` from a Location (``<base>/Observation/<id>/_history/<n>``)."""
    return location.split("/fhir/", 1)[-1].split("/_history", maxsplit=1)[0]


async def source_of(client: httpx.AsyncClient, reference: str) -> str | None:
    """The stored ``meta.source`` (read back by the test's platform client)."""
    r = await client.get(f"/fhir/{reference}")
    assert r.status_code == 200, r.text
    return r.json().get("meta", {}).get("source")


async def test_an_apps_create_update_and_patch_carry_its_source_whatever_it_sent(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    app = await as_app(runtime)
    created = await client.post(
        "/fhir/Observation", json=weight(70.1, {"source": LAB}), headers={**app, **FHIR_JSON}
    )
    assert created.status_code == 201, created.text
    assert created.json()["meta"]["source"] == APP_SOURCE  # in the response too
    oid = created.json()["id"]
    assert await source_of(client, f"Observation/{oid}") == APP_SOURCE

    # a value the person entered in the portal, then changed by the app: the new version is the app's
    portal = await as_portal(runtime)
    entered = await client.post("/fhir/Observation", json=weight(69.0), headers={**portal, **FHIR_JSON})
    assert entered.status_code == 201, entered.text
    assert "source" not in entered.json()["meta"]
    pid = entered.json()["id"]
    changed = weight(69.5, {"source": "urn:hygie:app:une-autre-appli"}, id=pid)
    r = await client.put(f"/fhir/Observation/{pid}", json=changed, headers={**app, **FHIR_JSON})
    assert r.status_code == 200, r.text
    assert await source_of(client, f"Observation/{pid}") == APP_SOURCE
    first = (await client.get(f"/fhir/Observation/{pid}/_history/1")).json()
    assert "source" not in first["meta"]  # the earlier version keeps its own provenance

    # a patch cannot take the source away or change it
    r = await client.patch(
        f"/fhir/Observation/{oid}",
        content=orjson.dumps([{"op": "replace", "path": "/meta/source", "value": LAB}]),
        headers={**app, "Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["source"] == APP_SOURCE
    assert r.json()["meta"]["versionId"] == "2"

    # the index sees the stored value: the app's data is found by its source
    found = await client.get("/fhir/Observation", params={"_source": APP_SOURCE})
    assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == sorted([oid, pid])


async def test_the_entries_of_an_apps_transaction_and_batch_carry_its_source(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    app = await as_app(runtime)
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": weight(70.0 + i, {"source": LAB}),
                "request": {"method": "POST", "url": "Observation"},
            }
            for i in range(3)
        ]
        + [
            {
                "resource": weight(80.0, {"source": "urn:hygie:app:autre"}, id="pese-1"),
                "request": {"method": "PUT", "url": "Observation/pese-1"},
            }
        ],
    }
    r = await client.post("/fhir", json=transaction, headers={**app, **FHIR_JSON})
    assert r.status_code == 200, r.text
    written = [reference(e["response"]["location"]) for e in r.json()["entry"]]
    assert len(written) == 4 and "Observation/pese-1" in written
    for ref in written:
        assert await source_of(client, ref) == APP_SOURCE

    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": weight(71.0), "request": {"method": "POST", "url": "Observation"}}],
    }
    r = await client.post("/fhir", json=batch, headers={**app, **FHIR_JSON})
    assert r.status_code == 200, r.text
    [entry] = r.json()["entry"]
    assert entry["response"]["status"].startswith("201"), entry
    assert await source_of(client, reference(entry["response"]["location"])) == APP_SOURCE


async def test_the_portal_keeps_its_own_source_but_never_an_apps_and_an_import_keeps_both(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(client)
    portal = await as_portal(runtime)
    own = await client.post(
        "/fhir/Observation", json=weight(68.0, {"source": LAB}), headers={**portal, **FHIR_JSON}
    )
    assert own.status_code == 201, own.text
    assert own.json()["meta"]["source"] == LAB
    forged = await client.post(
        "/fhir/Observation",
        json=weight(68.5, {"source": APP_SOURCE, "tag": [{"system": "urn:test", "code": "x"}]}),
        headers={**portal, **FHIR_JSON},
    )
    assert forged.status_code == 201, forged.text
    assert "source" not in forged.json()["meta"]
    assert forged.json()["meta"]["tag"] == [{"system": "urn:test", "code": "x"}]  # the rest is kept

    # an app's value, changed by the person in the portal: the new version is no longer the app's
    app = await as_app(runtime)
    sent = await client.post("/fhir/Observation", json=weight(70.0), headers={**app, **FHIR_JSON})
    oid = sent.json()["id"]
    again = {**sent.json(), "valueQuantity": {**sent.json()["valueQuantity"], "value": 70.2}}
    r = await client.put(f"/fhir/Observation/{oid}", json=again, headers={**portal, **FHIR_JSON})
    assert r.status_code == 200, r.text
    assert "source" not in r.json()["meta"]

    # an operator (hygie import restoring an export): the provenance recorded is kept as it was
    operator = Caller.operator("tests")
    for meta, expected in (({"source": LAB}, LAB), ({"source": APP_SOURCE}, APP_SOURCE)):
        response = await route(
            runtime.service, FhirRequest("POST", "Observation", resource=weight(67.0, meta), caller=operator)
        )
        assert response.status == 201
        assert isinstance(response.body, bytes)
        assert orjson.loads(response.body)["meta"].get("source") == expected
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": weight(66.0, {"source": APP_SOURCE}),
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    response = await route(runtime.service, FhirRequest("POST", "", resource=bundle, caller=operator))
    assert response.status == 200
    assert isinstance(response.body, dict)
    assert await source_of(client, reference(response.body["entry"][0]["response"]["location"])) == APP_SOURCE
