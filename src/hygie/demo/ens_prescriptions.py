"""Demo content for the « Ordonnances » of one demo citizen: the pharmacy, and a current renewal.

The synthetic history prescribes (``MedicationRequest`` grouped by ``groupIdentifier``) but has no
pharmacy, and it ends on 31 December of its last year. This adds

* the ``MedicationDispense`` of the prescriptions of the history's last year: a delivery per
  supply period within the prescription's validity (by a pharmacy of the directory when there
  is one);
* a current e-prescription by the médecin traitant, three weeks old, renewing the person's
  ongoing treatments (``courseOfTherapyType`` continuous, still ``active``) « à renouveler 2
  fois », delivered once: it shows as partly delivered, and a renewal can be asked for.

Everything is written through the FHIR service as the operator ``hygie demo``, once: a second run
finds the dispenses and adds nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hygie.domain.access import Caller
from hygie.domain.ens.vitals import PARIS
from hygie.web.portal.door import Door
from hygie.web.portal.session import person_name

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["seed_demo"]

CONTINUOUS = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def _supply_days(request: dict[str, Any]) -> int:
    value = ((request.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}).get("value")
    return int(value) if isinstance(value, (int, float)) and value > 0 else 30


def _dispense(
    request: dict[str, Any], patient_id: str, pharmacy: dict[str, str], handed: date
) -> dict[str, Any]:
    days = _supply_days(request)
    dispense: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": request.get("medicationCodeableConcept"),
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"actor": pharmacy}],
        "authorizingPrescription": [{"reference": f"MedicationRequest/{request['id']}"}],
        "quantity": {"value": max(1, days // 30), "unit": "boîte"},
        "daysSupply": {"value": days, "unit": "jours", "system": "http://unitsofmeasure.org", "code": "d"},
        "whenHandedOver": handed.isoformat(),
    }
    if request.get("dosageInstruction"):
        dispense["dosageInstruction"] = request["dosageInstruction"]
    return dispense


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    door = Door(runtime.service)
    caller = Caller.operator("hygie demo")
    if await door.search(caller, "MedicationDispense", [("patient", patient_id), ("_count", "1")], limit=1):
        return
    patient = await door.read(caller, "Patient", patient_id)
    if patient is None:
        return
    requests = await door.search(caller, "MedicationRequest", [("patient", patient_id)], limit=2000)
    pharmacies = await door.search(caller, "Organization", [("name", "pharmacie"), ("_count", "1")], limit=1)
    pharmacy: dict[str, str] = {"display": "Pharmacie du Marché"}
    if pharmacies:
        pharmacy = {
            "reference": f"Organization/{pharmacies[0]['id']}",
            "display": str(pharmacies[0].get("name")),
        }
    today = datetime.now(PARIS).date()
    authored = [d for d in (_day(r.get("authoredOn")) for r in requests) if d is not None]
    if authored:
        recent = max(authored) - timedelta(days=365)
        for request in requests:
            day = _day(request.get("authoredOn"))
            if day is None or day < recent or request.get("status") not in ("active", "completed"):
                continue
            dispense_request = request.get("dispenseRequest") or {}
            allowed = 1 + int(dispense_request.get("numberOfRepeatsAllowed") or 0)
            until = min(today, _day((dispense_request.get("validityPeriod") or {}).get("end")) or today)
            handed = day + timedelta(days=1)
            for _ in range(allowed):
                if handed > until:
                    break
                await door.create(caller, _dispense(request, patient_id, pharmacy, handed))
                handed += timedelta(days=_supply_days(request))
    await _renewal(door, caller, patient, practitioner_id, requests, pharmacy, today)


async def _renewal(
    door: Door,
    caller: Caller,
    patient: dict[str, Any],
    practitioner_id: str | None,
    requests: list[dict[str, Any]],
    pharmacy: dict[str, str],
    today: date,
) -> None:
    ongoing = [
        r
        for r in requests
        if r.get("status") == "active"
        and any(c.get("code") == "continuous" for c in (r.get("courseOfTherapyType") or {}).get("coding", []))
    ]
    if practitioner_id is None:
        refs = [str(g.get("reference", "")) for g in patient.get("generalPractitioner", []) or []]
        practitioner_id = next((r.split("/", 1)[1] for r in refs if r.startswith("Practitioner/")), None)
    if not ongoing or practitioner_id is None:
        return
    doctor = person_name(await door.read(caller, "Practitioner", practitioner_id)) or "Médecin traitant"
    authored = today - timedelta(days=21)
    number = f"{str(patient['id'])[:8].upper()}-R01"
    seen: set[str] = set()
    for old in ongoing:
        medicine = str((old.get("medicationCodeableConcept") or {}).get("text") or "")
        if medicine in seen:
            continue
        seen.add(medicine)
        days = _supply_days(old)
        new: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "groupIdentifier": {"value": number},
            "medicationCodeableConcept": old.get("medicationCodeableConcept"),
            "subject": {"reference": f"Patient/{patient['id']}"},
            "authoredOn": authored.isoformat(),
            "requester": {"reference": f"Practitioner/{practitioner_id}", "display": doctor},
            "courseOfTherapyType": old.get("courseOfTherapyType"),
            "dispenseRequest": {
                "validityPeriod": {
                    "start": authored.isoformat(),
                    "end": (authored + timedelta(days=min(days, 30) * 3 + 10)).isoformat(),
                },
                "numberOfRepeatsAllowed": 2,
                "expectedSupplyDuration": {
                    "value": min(days, 30),
                    "unit": "jours",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                },
            },
        }
        for key in ("dosageInstruction", "reasonReference"):
            if old.get(key):
                new[key] = old[key]
        created = await door.create(caller, new)
        await door.create(
            caller, _dispense(created, str(patient["id"]), pharmacy, authored + timedelta(days=1))
        )
