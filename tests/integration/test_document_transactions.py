"""The ENS document writes as the FHIR service runs them, on every store: an upload or a new
version is one transaction — when any part is refused nothing at all is written — and a patient
adds content but never rewrites a professional's."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from hygie.domain.access import Caller
from hygie.domain.ens import documents as rules
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.web.portal.door import Door, PortalError

pytestmark = pytest.mark.anyio

OPERATOR = Caller.operator("tests")
LEA = Caller.of(Principal("patient", "Patient/lea"))
PAUL = Caller.of(Principal("patient", "Patient/paul"))


def pdf() -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(0, 10, "Compte rendu")
    return bytes(document.output())


def draft(title: str) -> rules.UploadDraft:
    made, errors = rules.validate_upload(
        {"titre": title, "type": "compte-rendu", "date": "2026-01-02"},
        pdf(),
        too_large=False,
        max_bytes=1_000_000,
        today=date(2026, 3, 1),
    )
    assert made is not None, errors
    return made


async def upload(door: Door, caller: Caller, title: str, replaces: dict[str, Any] | None = None) -> str:
    bundle = rules.upload_bundle(
        draft(title),
        patient_ref="Patient/lea",
        author_ref=str(caller.subject),
        now_instant="2026-03-01T10:00:00+01:00",
        replaces=replaces,
    )
    answer = await door.operation(caller, "POST", "", resource=bundle)
    location = next(
        e["response"]["location"]
        for e in answer["entry"]
        if "DocumentReference/" in e["response"]["location"]
        and e["response"]["location"].endswith("/_history/1")  # the new one, not the superseded
    )
    return str(location.split("DocumentReference/")[1].split("/")[0])


async def counts(door: Door) -> tuple[int, int]:
    documents = await door.search(OPERATOR, "DocumentReference", [("patient", "lea")])
    binaries = await door.search(OPERATOR, "Binary")
    return len(documents), len(binaries)


async def seed(door: Door) -> None:
    for pid in ("lea", "paul"):
        await door.call(OPERATOR, "PUT", f"Patient/{pid}", resource={"resourceType": "Patient", "id": pid})
    await door.call(
        OPERATOR,
        "PUT",
        "Practitioner/gp",
        resource={"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Bernard"}]},
    )


async def test_a_new_version_on_a_stale_document_writes_nothing(service: FhirService) -> None:
    door = Door(service)
    await seed(door)
    first = await upload(door, LEA, "Bilan")
    stale = await door.read(LEA, "DocumentReference", first)
    assert stale is not None and await counts(door) == (1, 1)
    # someone changes it meanwhile (version 2)
    await door.update(LEA, {**stale, "description": "Bilan (renommé)"})
    with pytest.raises(PortalError) as refused:
        await upload(door, LEA, "Bilan v2", replaces=stale)
    assert refused.value.status in (409, 412)
    assert await counts(door) == (1, 1)  # neither the new content nor the new document
    current = await door.read(LEA, "DocumentReference", first)
    assert current is not None and current["status"] == "current"

    # with the current version it goes through: one more document, the former one superseded
    second = await upload(door, LEA, "Bilan v2", replaces=current)
    assert await counts(door) == (2, 2)
    superseded = await door.read(LEA, "DocumentReference", first)
    assert superseded is not None and superseded["status"] == "superseded"
    new = await door.read(LEA, "DocumentReference", second)
    assert new is not None
    assert new["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{first}"


async def test_a_patient_cannot_supersede_a_professionals_document_nor_touch_content(
    service: FhirService,
) -> None:
    door = Door(service)
    await seed(door)
    report = await door.create(
        OPERATOR,
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": "Patient/lea"},
            "author": [{"reference": "Practitioner/gp"}],
            "description": "Compte rendu du Dr Bernard",
            "content": [{"attachment": {"contentType": "application/pdf"}}],
        },
    )
    before = await counts(door)
    with pytest.raises(PortalError) as refused:
        await upload(door, LEA, "Ma version", replaces=report)
    assert refused.value.status == 403
    assert await counts(door) == before
    kept = await door.read(LEA, "DocumentReference", report["id"])
    assert kept is not None and kept["status"] == "current"

    # her own upload's content: she reads it, another patient does not, nobody rewrites it
    mine = await upload(door, LEA, "Ma radio")
    document = await door.read(LEA, "DocumentReference", mine)
    assert document is not None
    binary_id = rules.binary_id(document)
    assert binary_id is not None
    assert await door.read(LEA, "Binary", binary_id) is not None
    assert await door.read(PAUL, "Binary", binary_id) is None  # "not known" to him
    with pytest.raises(PortalError):
        await door.delete(LEA, "Binary", binary_id)
    assert await door.read(OPERATOR, "Binary", binary_id) is not None
