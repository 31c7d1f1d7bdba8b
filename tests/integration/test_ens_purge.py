"""The end of the archive period (``domain/ens/purge.py``), over the real app and stores.

A space closed with a document, the clock moved past its archive period, the purge: the record
is gone through the API (404: nothing says it existed), its encrypted content too, other people's
records untouched, a reopened space and one still within its period untouched, a dry run erases
nothing, the audit trail still verifies and holds the purge in the person's chain, and a second
run finds nothing to do.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from hygie.bootstrap import Runtime
from hygie.delivery import DeliveryWorker
from hygie.domain.audit import verify_chain
from hygie.domain.ens.lifecycle import SpaceRules, closing_consent, reopening_consent, state_of
from hygie.domain.ens.purge import PURGE_REASON, purge_expired
from hygie.stores.files import MemoryBlobStore

pytestmark = pytest.mark.anyio

YEAR_US = 365 * 86_400 * 1_000_000
CLOSED_AT = 1_500_000_000_000_000  # 2017-07-14
RULES = SpaceRules(archive_years=10)
AFTER = CLOSED_AT + 11 * YEAR_US  # the clock moved past the archive period


async def created(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    found: dict[str, Any] = response.json()
    return found


async def person(client: httpx.AsyncClient, pid: str) -> None:
    await created(client, {"resourceType": "Patient", "id": pid, "name": [{"family": pid.upper()}]})


async def close(client: httpx.AsyncClient, pid: str, at_us: int) -> dict[str, Any]:
    consent = closing_consent(
        pid, state_of(None, at_us, RULES), None, by=f"Patient/{pid}", now_us=at_us, rules=RULES
    )
    consent["id"] = f"espace-{pid}"
    return await created(client, consent)


async def document(client: httpx.AsyncClient, pid: str, text: bytes) -> None:
    await created(
        client,
        {
            "resourceType": "Binary",
            "id": f"bin-{pid}",
            "contentType": "application/pdf",
            "securityContext": {"reference": f"Patient/{pid}"},
            "data": base64.b64encode(text).decode(),
        },
    )
    await created(
        client,
        {
            "resourceType": "DocumentReference",
            "id": f"doc-{pid}",
            "status": "current",
            "subject": {"reference": f"Patient/{pid}"},
            "content": [{"attachment": {"contentType": "application/pdf", "url": f"Binary/bin-{pid}"}}],
        },
    )
    await created(
        client,
        {
            "resourceType": "Observation",
            "id": f"poids-{pid}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "performer": [{"reference": f"Patient/{pid}"}],
            "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        },
    )


async def test_the_record_is_erased_at_the_end_of_the_archive_period(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    store = runtime.store
    # the test's store keeps its blobs in memory (conftest): "stored years ago"
    blobs = getattr(store, "blobs", None)
    assert isinstance(blobs, MemoryBlobStore)
    for pid in ("lea", "paul", "rose", "jade"):
        await person(client, pid)
        await document(client, pid, f"%PDF compte rendu de {pid}".encode())
    # an entry deleted at closing: still in the history until the purge
    assert (await client.delete("/fhir/Observation/poids-lea")).status_code in (200, 204)
    await close(client, "lea", CLOSED_AT)  # archive period over
    reopened = await close(client, "rose", CLOSED_AT)  # closed, then reopened in time
    rose = reopening_consent(
        "rose", state_of(reopened, 0, RULES), reopened, by="Patient/rose", now_us=CLOSED_AT + YEAR_US
    )
    await created(client, rose)
    await close(client, "jade", AFTER - YEAR_US)  # closed a year ago: archived for nine more
    # a message between lea and paul is paul's record too
    await created(
        client,
        {
            "resourceType": "Communication",
            "id": "mot",
            "status": "completed",
            "subject": {"reference": "Patient/lea"},
            "sender": {"reference": "Patient/lea"},
            "recipient": [{"reference": "Patient/paul"}],
        },
    )
    for digest in blobs.blobs:
        blobs.put_at[digest] = 0.0

    dry = await purge_expired(store, runtime.audit, now_us=AFTER, rules=RULES, dry_run=True)
    assert [s.patient_id for s in dry.spaces] == ["lea"]
    assert dry.spaces[0].erased == {
        "Patient": 1,
        "Binary": 1,
        "DocumentReference": 1,
        "Observation": 1,
        "Consent": 1,
    }
    assert dry.spaces[0].kept == ["Communication/mot"]
    assert (await client.get("/fhir/Patient/lea")).status_code == 200  # a dry run erases nothing
    assert len(blobs.blobs) == 4

    report = await purge_expired(store, runtime.audit, now_us=AFTER, rules=RULES)
    assert [(s.patient_id, s.resources, s.versions) for s in report.purged] == [("lea", 5, 6)]
    for path in ("Patient/lea", "DocumentReference/doc-lea", "Binary/bin-lea", "Observation/poids-lea"):
        assert (await client.get(f"/fhir/{path}")).status_code == 404, path
        assert (await client.get(f"/fhir/{path}/_history")).json().get("total", 0) == 0
    assert (await client.get("/fhir/Consent/espace-lea")).status_code == 404
    assert len(blobs.blobs) == 3  # lea's encrypted content is gone, nobody else's
    searched = (await client.get("/fhir/DocumentReference", params={"subject": "Patient/lea"})).json()
    assert searched.get("entry", []) == []
    for pid in ("paul", "rose", "jade"):
        for path in (f"Patient/{pid}", f"DocumentReference/doc-{pid}", f"Binary/bin-{pid}"):
            assert (await client.get(f"/fhir/{path}")).status_code == 200, path
    assert (await client.get("/fhir/Communication/mot")).status_code == 200

    # the audit trail is kept, still verifies, and says what happened in lea's chain
    records = [r async for r in runtime.audit.iter_all()]
    assert verify_chain(records, [], {}).ok
    purges = [r for r in records if r.partition == "lea" and PURGE_REASON in r.entry.content.decode()]
    assert len(purges) == 1
    event = orjson.loads(purges[0].entry.content)
    assert event["action"] == "D"
    assert {d["type"]: d["valueString"] for d in event["entity"][-1]["detail"]}["DocumentReference"] == "1"

    again = await purge_expired(store, runtime.audit, now_us=AFTER, rules=RULES)
    assert again.spaces == []


async def test_the_background_worker_purges_once_a_day(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """The delivery worker's round runs the day's purge in the first process to claim the day;
    another round (or another process) the same day leaves it, the next day runs again."""
    await person(client, "lea")
    await document(client, "lea", b"%PDF compte rendu")
    await close(client, "lea", CLOSED_AT)
    worker = DeliveryWorker(runtime, senders={})
    now = [AFTER]
    worker.clock = lambda: now[0]
    other = DeliveryWorker(runtime, senders={})
    other.clock = worker.clock
    assert await worker.purge_when_due() == 1
    assert (await client.get("/fhir/Patient/lea")).status_code == 404
    await person(client, "paul")
    await close(client, "paul", CLOSED_AT)
    assert await other.purge_when_due() == 0  # the day is taken
    assert (await client.get("/fhir/Patient/paul")).status_code == 200
    now[0] += 86_400 * 1_000_000
    assert await other.purge_when_due() == 1
    assert (await client.get("/fhir/Patient/paul")).status_code == 404
