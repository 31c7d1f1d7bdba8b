"""The ENS profile's demo content on an in-memory runtime: a trusted person without access, the
person's wishes, her own entries and a blood group — added once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hygie.bootstrap import Runtime
from hygie.config import load_settings
from hygie.demo.ens_profile import seed_demo
from hygie.domain.access import Caller
from hygie.domain.ens import profile
from hygie.domain.relations import relations_from
from hygie.fhir.interactions import FhirService
from hygie.fhir.targets import target_of_resource
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


async def test_the_demo_profile_is_added_once(tmp_path: Path) -> None:
    store = MemoryResourceStore()
    service = FhirService(store, base_url="http://demo/fhir")
    runtime = Runtime(
        load_settings(data_dir=tmp_path, database_url="sqlite://"), store, MemoryBlobStore(), service
    )
    door = Door(service)
    patient = await door.create(OPERATOR, {"resourceType": "Patient", "name": [{"family": "DUPONT"}]})
    gp = await door.create(OPERATOR, {"resourceType": "Practitioner", "name": [{"family": "BERNARD"}]})
    pid = patient["id"]
    await seed_demo(runtime, pid, gp["id"])
    await seed_demo(runtime, pid, gp["id"])  # a second run adds nothing

    related = await door.search(OPERATOR, "RelatedPerson", [("patient", pid)])
    assert len(related) == 1
    view = profile.related_view(related[0], majority_us=None, now_us=0)
    assert view.trusted and view.access is None and view.name == "Sophie MARTIN"
    assert relations_from(related[0]) == []

    flags = await door.search(
        OPERATOR, "Observation", [("patient", pid), ("code", "http://loinc.org|75320-2")]
    )
    assert len(flags) == 1 and profile.flag_of(flags[0]).place == "medecin"
    consents = await door.search(OPERATOR, "Consent", [("patient", pid)])
    assert [profile.donation_of(c).choice for c in consents] == ["accepte"]

    statements = await door.search(OPERATOR, "MedicationStatement", [("patient", pid)])
    procedures = await door.search(OPERATOR, "Procedure", [("patient", pid)])
    assert len(statements) == 1 and len(procedures) == 1
    mine = target_of_resource("MedicationStatement", pid, statements[0]).authors
    assert mine == {f"Patient/{pid}"}
    blood = await door.search(OPERATOR, "Observation", [("patient", pid), ("code", "http://loinc.org|882-1")])
    assert len(blood) == 1
    assert target_of_resource("Observation", pid, blood[0]).authors == {f"Practitioner/{gp['id']}"}
    assert blood[0]["valueCodeableConcept"]["coding"][0]["code"] == "278149003"
