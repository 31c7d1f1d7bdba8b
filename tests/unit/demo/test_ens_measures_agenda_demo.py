"""The demo's measures, agenda and pharmacy content, seeded once on a real FHIR service."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hygie.bootstrap import Runtime, clock_us
from hygie.config import load_settings
from hygie.demo import ens_agenda, ens_prescriptions, ens_vitals
from hygie.domain.access import Caller
from hygie.domain.ens import calendar as cal
from hygie.domain.ens import prescriptions as rx
from hygie.domain.ens import vitals as v
from hygie.domain.ens.vitals_watch import ThresholdWatch
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


async def test_the_demo_gives_measures_thresholds_appointments_and_dispenses(tmp_path: Path) -> None:
    store = BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore())
    service = FhirService(store, base_url="http://test/fhir")
    runtime = Runtime(
        load_settings(data_dir=tmp_path, database_url="sqlite://"), store, MemoryBlobStore(), service
    )
    door = Door(service)
    gp = (await door.create(OPERATOR, {"resourceType": "Practitioner", "name": [{"family": "LEROY", "given": ["Anne"], "prefix": ["Dr"]}]}))["id"]  # fmt: skip
    patient = (
        await door.create(
            OPERATOR,
            {
                "resourceType": "Patient",
                "name": [{"family": "DUPONT", "given": ["Claire"]}],
                "birthDate": "1985-04-12",
                "gender": "female",
                "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
            },
        )
    )["id"]
    await door.create(
        OPERATOR,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": (date.today() - timedelta(days=40)).isoformat(),
            "valueQuantity": {
                "value": 64.2,
                "unit": "kg",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            },
        },
    )
    authored = date.today() - timedelta(days=75)
    await door.create(
        OPERATOR,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "groupIdentifier": {"value": "DEMO-001"},
            "medicationCodeableConcept": {"text": "Lévothyroxine 75 µg, comprimé"},
            "subject": {"reference": f"Patient/{patient}"},
            "authoredOn": authored.isoformat(),
            "requester": {"reference": f"Practitioner/{gp}", "display": "Dr Anne LEROY"},
            "courseOfTherapyType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "continuous"}]},
            "dispenseRequest": {
                "validityPeriod": {"start": authored.isoformat(), "end": (authored + timedelta(days=120)).isoformat()},
                "numberOfRepeatsAllowed": 3,
                "expectedSupplyDuration": {"value": 30, "unit": "jours", "system": "http://unitsofmeasure.org", "code": "d"},
            },
        },
    )  # fmt: skip
    for _ in range(2):  # a second run adds nothing
        await ens_vitals.seed_demo(runtime, patient, None)
        await ens_agenda.seed_demo(runtime, patient, None)
        await ens_prescriptions.seed_demo(runtime, patient, None)

    # measures: home blood pressure, thresholds, and this morning's value flagged on first look
    goals = await door.search(OPERATOR, "Goal", [("patient", patient)])
    thresholds = v.thresholds_of(goals)
    assert thresholds["poids"][0] == {"29463-7": (58.0, 68.0)}
    assert thresholds["tension"][0] == {"8480-6": (None, 140.0), "8462-4": (None, 90.0)}
    pressures = await door.search(
        OPERATOR, "Observation", [("patient", patient), ("code", "http://loinc.org|85354-9")]
    )
    assert len(pressures) == 6
    assert runtime.outbox is not None and runtime.accounts is not None
    watch = ThresholdWatch(door, runtime.kv, runtime.outbox, clock_us)
    crossed = await watch.check(OPERATOR, patient)
    assert sorted((c.field.loinc, c.value) for c in crossed) == [("8462-4", 92.0), ("8480-6", 146.0)]

    # agenda: the GP's appointments, and a personal entry
    events = cal.appointment_events(await door.search(OPERATOR, "Appointment", [("patient", patient)]), {})
    assert [(e.kind, e.status) for e in events] == [
        ("professional", "fulfilled"),
        ("professional", "booked"),
        ("personal", "booked"),
    ]
    assert events[1].source == "Dr Anne LEROY" and events[1].start > datetime.now(UTC)

    # prescriptions: the history's dispensed as long as valid, and a current renewal by the GP
    requests = await door.search(OPERATOR, "MedicationRequest", [("patient", patient)])
    dispenses = await door.search(OPERATOR, "MedicationDispense", [("patient", patient)])
    assert len(dispenses) == 4  # days 1, 31 and 61 of a 75-day-old prescription, and the renewal's first
    renewal, old = rx.group(requests, dispenses, {}, date.today())
    assert old.number == "DEMO-001" and old.state == "partial" and old.lines[0].remaining == 1
    assert renewal.number.endswith("-R01") and renewal.prescriber_ref == f"Practitioner/{gp}"
    assert renewal.lines[0].medicine == "Lévothyroxine 75 µg, comprimé"
    assert renewal.state == "partial" and renewal.lines[0].remaining == 2
    assert rx.why_not_renewable(renewal) is None
