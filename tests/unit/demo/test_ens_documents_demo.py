"""The ENS documents' demo content on an in-memory runtime: a citizen's own document in two
versions and a structured summary the portal can render — added once."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from hygie.bootstrap import Runtime
from hygie.config import load_settings
from hygie.demo.ens_documents import seed_demo
from hygie.domain.access import Caller
from hygie.domain.ens.document_view import render
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


async def test_the_demo_documents_are_added_once(tmp_path: Path) -> None:
    store = BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore())
    service = FhirService(store, base_url="http://demo/fhir")
    runtime = Runtime(
        load_settings(data_dir=tmp_path, database_url="sqlite://"), store, MemoryBlobStore(), service
    )
    door = Door(service)
    patient = await door.create(OPERATOR, {"resourceType": "Patient", "name": [{"family": "DUPONT"}]})
    gp = await door.create(OPERATOR, {"resourceType": "Practitioner", "name": [{"family": "BERNARD"}]})
    await door.create(
        OPERATOR,
        {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{patient['id']}"},
            "code": {"text": "Pénicilline"},
        },
    )
    await seed_demo(runtime, patient["id"], gp["id"])
    await seed_demo(runtime, patient["id"], gp["id"])  # a second run adds nothing

    documents = await door.search(OPERATOR, "DocumentReference", [("patient", patient["id"])])
    by_status: dict[str, list[dict[str, Any]]] = {}
    for d in documents:
        by_status.setdefault(d["status"], []).append(d)
    assert len(documents) == 3 and len(by_status["superseded"]) == 1 and len(by_status["current"]) == 2
    own = next(d for d in by_status["current"] if d["author"] == [{"reference": f"Patient/{patient['id']}"}])
    assert (
        own["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{by_status['superseded'][0]['id']}"
    )
    assert own["category"][0]["coding"][0]["code"] == "90"

    summary = next(d for d in by_status["current"] if d is not own)
    assert summary["author"] == [{"reference": f"Practitioner/{gp['id']}"}]
    binary_id = summary["content"][0]["attachment"]["url"].split("/")[-1]
    binary = await door.read(OPERATOR, "Binary", binary_id)
    assert binary is not None
    rendered = render(base64.b64decode(binary["data"]), binary["contentType"])
    assert rendered is not None and rendered.title == "Volet de synthèse médicale"
    allergies = next(s for s in rendered.sections if s.title == "Allergies et intolérances")
    assert "Pénicilline" in allergies.html
