"""Demo content for the « Agenda » of one demo citizen.

* a follow-up consultation with the médecin traitant in nine days, and one three weeks ago
  (fulfilled), booked by the practice's software (the practitioner among the participants);
* a personal entry the person noted themselves (the dentist), which they may change or delete.

Prevention and vaccination reminders need no data: they are computed from the person's age and
record. Everything is written through the FHIR service as the operator ``hygie demo``, once: a
second run finds the appointments by their identifier and adds nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from hygie.domain.access import Caller
from hygie.domain.ens import calendar as cal
from hygie.domain.ens.vitals import ENS_SYSTEM, PARIS
from hygie.web.portal.door import Door
from hygie.web.portal.session import person_name

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["seed_demo"]

DEMO_SYSTEM = f"{ENS_SYSTEM}/demo-agenda"


def _slot(day_offset: int, hour: int, minute: int, minutes: int) -> tuple[datetime, datetime]:
    day = datetime.now(PARIS).date() + timedelta(days=day_offset)
    while day.weekday() >= 5:  # the practice is closed at the weekend
        day += timedelta(days=1)
    start = datetime.combine(day, time(hour, minute), PARIS)
    return start, start + timedelta(minutes=minutes)


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    door = Door(runtime.service)
    caller = Caller.operator("hygie demo")
    if await door.search(caller, "Appointment", [("identifier", f"{DEMO_SYSTEM}|{patient_id}-1")]):
        return
    patient = await door.read(caller, "Patient", patient_id)
    if patient is None:
        return
    if practitioner_id is None:
        refs = [str(g.get("reference", "")) for g in patient.get("generalPractitioner", []) or []]
        practitioner_id = next((r.split("/", 1)[1] for r in refs if r.startswith("Practitioner/")), None)
    patient_ref = f"Patient/{patient_id}"
    if practitioner_id is not None:
        doctor = person_name(await door.read(caller, "Practitioner", practitioner_id)) or "Médecin traitant"
        for n, (offset, status, reason) in enumerate(
            ((9, "booked", "Consultation de suivi"), (-21, "fulfilled", "Consultation")), start=1
        ):
            start, end = _slot(offset, 9, 30, 20)
            appointment: dict[str, Any] = {
                "resourceType": "Appointment",
                "identifier": [{"system": DEMO_SYSTEM, "value": f"{patient_id}-{n}"}],
                "status": status,
                "serviceCategory": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/service-category",
                                "code": "17",
                                "display": "General Practice",
                            }
                        ]
                    }
                ],
                "description": reason,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "minutesDuration": 20,
                "created": (start - timedelta(days=12)).date().isoformat(),
                "participant": [
                    {
                        "actor": {"reference": f"Practitioner/{practitioner_id}", "display": doctor},
                        "required": "required",
                        "status": "accepted",
                    },
                    {
                        "actor": {"reference": patient_ref, "display": person_name(patient)},
                        "required": "required",
                        "status": "accepted",
                    },
                ],
            }
            await door.create(caller, appointment)
    start, end = _slot(16, 17, 0, 30)
    dentist = cal.Personal("Dentiste (détartrage)", start, end, "Cabinet dentaire du centre", "")
    resource = cal.personal_appointment(dentist, patient_ref, person_name(patient))
    resource["identifier"] = [{"system": DEMO_SYSTEM, "value": f"{patient_id}-3"}]
    await door.create(caller, resource)
