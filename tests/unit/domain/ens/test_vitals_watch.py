"""The threshold watch on a real FHIR service: a value an app sends that crosses a personal
threshold becomes one Flag and one e-mail (without the value) to the contact point of the record
(``domain/ens/notifications.py``), however many passes run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hygie.bootstrap import Runtime, clock_us
from hygie.domain.access import Caller
from hygie.domain.ens import vitals as v
from hygie.domain.ens.vitals_watch import ThresholdWatch
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


def weight(patient: str, kg: float, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


async def test_a_crossing_is_flagged_and_told_once(runtime: Runtime) -> None:
    door = Door(runtime.service)
    assert runtime.accounts is not None and runtime.outbox is not None
    patient = (
        await door.create(
            OPERATOR,
            {
                "resourceType": "Patient",
                "birthDate": "1980-01-01",
                "telecom": [{"system": "email", "value": "claire@example.fr"}],
            },
        )
    )["id"]
    await runtime.accounts.create(
        "citizen", "claire@example.fr", "Un mot de passe solide 42", patient_id=patient
    )
    now = datetime.now(UTC)
    measure = v.MEASURES["poids"]
    # a value from yesterday, before any threshold: never flagged
    await door.create(OPERATOR, weight(patient, 90, now - timedelta(days=1)))
    watch = ThresholdWatch(door, runtime.kv, runtime.outbox, clock_us)
    assert await watch.sweep(OPERATOR) == 0  # nobody is watched yet

    await door.create(
        OPERATOR,
        v.goal(measure, {"29463-7": (60.0, 75.5)}, f"Patient/{patient}", f"Patient/{patient}", now.date()),
    )
    await watch.follow(patient)
    await door.create(OPERATOR, weight(patient, 74, now))  # inside the range
    await door.create(OPERATOR, weight(patient, 77.2, now))  # an app sends a value above it
    assert await watch.sweep(OPERATOR) == 1
    assert await watch.sweep(OPERATOR) == 0
    assert await watch.check(OPERATOR, patient) == []

    notices = await watch.notices(OPERATOR, patient)
    assert [n.text for n in notices] == ["Poids : 77,2 kg, au-dessus de votre seuil haut (75,5 kg)."]
    assert notices[0].measure_key == "poids"
    messages = [m for m in await runtime.outbox.pending(due_only=False) if m.to == "claire@example.fr"]
    assert len(messages) == 1
    assert "votre espace santé" in messages[0].body and "77" not in messages[0].body

    flags = await door.search(OPERATOR, "Flag", [("patient", patient)])
    assert len(flags) == 1
    assert {e["valueReference"]["reference"].split("/")[0] for e in flags[0]["extension"]} == {
        "Observation",
        "Goal",
    }
    assert await watch.dismiss(OPERATOR, patient, flags[0])
    assert await watch.notices(OPERATOR, patient) == []
    # a flag of another record is not dismissed through this one
    assert not await watch.dismiss(OPERATOR, "someone-else", flags[0])

    # a later value below the low threshold
    await door.create(OPERATOR, weight(patient, 58, now))
    [crossing] = await watch.check(OPERATOR, patient)
    assert crossing.side == "low"
    assert len([m for m in await runtime.outbox.pending(due_only=False) if m.to == "claire@example.fr"]) == 2


async def test_the_background_delivery_catches_a_value_written_through_the_api(runtime: Runtime) -> None:
    from hygie.delivery import DeliveryWorker
    from hygie.domain.outbox import MemorySender

    door = Door(runtime.service)
    assert runtime.accounts is not None and runtime.outbox is not None
    patient = (
        await door.create(
            OPERATOR,
            {
                "resourceType": "Patient",
                "birthDate": "1980-01-01",
                "telecom": [{"system": "email", "value": "paul@example.fr"}],
            },
        )
    )["id"]
    other = (await door.create(OPERATOR, {"resourceType": "Patient", "birthDate": "1981-01-01"}))["id"]
    await runtime.accounts.create(
        "citizen", "paul@example.fr", "Un mot de passe solide 42", patient_id=patient
    )
    now = datetime.now(UTC)
    glucose = v.MEASURES["glycemie"]
    await door.create(
        OPERATOR,
        v.goal(glucose, {"2339-0": (70.0, 180.0)}, f"Patient/{patient}", f"Patient/{patient}", now.date()),
    )
    watch = ThresholdWatch(door, runtime.kv, runtime.outbox, clock_us)
    await watch.follow(patient)
    mail, sms = MemorySender(), MemorySender()
    worker = DeliveryWorker(runtime, senders={"email": mail, "sms": sms})
    await worker.round()
    assert mail.sent == []
    reading = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "effectiveDateTime": now.isoformat(),
        "device": {"reference": "Device/glucometer"},
        "valueQuantity": {
            "value": 62,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
    }
    await door.create(OPERATOR, {**reading, "subject": {"reference": f"Patient/{patient}"}})
    await door.create(OPERATOR, {**reading, "subject": {"reference": f"Patient/{other}"}})  # not watched
    await worker.round()
    assert [m.to for m in mail.sent] == ["paul@example.fr"]
    assert "62" not in mail.sent[0].body
    await worker.round()
    assert len(mail.sent) == 1
    [notice] = await watch.notices(OPERATOR, patient)
    assert notice.text == "Glycémie : 62 mg/dL, en dessous de votre seuil bas (70 mg/dL)."
    assert await door.search(OPERATOR, "Flag", [("patient", other)]) == []
