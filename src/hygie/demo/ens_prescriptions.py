"""Demo content for the « Ordonnances » of one demo citizen: what the pharmacy handed over.

The synthetic history prescribes (``MedicationRequest`` grouped by ``groupIdentifier``) but has no
pharmacy: this adds the ``MedicationDispense`` of the person's current prescriptions — a delivery
per month of treatment since the prescription, one fewer than allowed, so that each is partly
delivered with renewals left — by a pharmacy of the directory when there is one.

Everything is written through the FHIR service as the operator ``hygie demo``, once: a second run
finds the dispenses and adds nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hygie.domain.access import Caller
from hygie.domain.ens.vitals import PARIS
from hygie.web.portal.door import Door

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["seed_demo"]


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    door = Door(runtime.service)
    caller = Caller.operator("hygie demo")
    if await door.search(caller, "MedicationDispense", [("patient", patient_id), ("_count", "1")], limit=1):
        return
    requests = await door.search(
        caller, "MedicationRequest", [("patient", patient_id), ("status", "active")], limit=200
    )
    pharmacies = await door.search(caller, "Organization", [("name", "pharmacie"), ("_count", "1")], limit=1)
    pharmacy: dict[str, str] = {"display": "Pharmacie du Marché"}
    if pharmacies:
        pharmacy = {
            "reference": f"Organization/{pharmacies[0]['id']}",
            "display": str(pharmacies[0].get("name")),
        }
    today = datetime.now(PARIS).date()
    for request in requests:
        authored = _day(request.get("authoredOn"))
        dispense_request = request.get("dispenseRequest") or {}
        days = int((dispense_request.get("expectedSupplyDuration") or {}).get("value") or 30)
        allowed = 1 + int(dispense_request.get("numberOfRepeatsAllowed") or 0)
        if authored is None or allowed < 2:
            continue
        handed = authored + timedelta(days=1)
        count = 0
        while handed <= today and count < allowed - 1:
            dispense: dict[str, Any] = {
                "resourceType": "MedicationDispense",
                "status": "completed",
                "medicationCodeableConcept": request.get("medicationCodeableConcept"),
                "subject": {"reference": f"Patient/{patient_id}"},
                "performer": [{"actor": pharmacy}],
                "authorizingPrescription": [{"reference": f"MedicationRequest/{request['id']}"}],
                "quantity": {"value": 1, "unit": "boîte"},
                "daysSupply": {
                    "value": days,
                    "unit": "jours",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                },
                "whenHandedOver": handed.isoformat(),
            }
            if request.get("dosageInstruction"):
                dispense["dosageInstruction"] = request["dosageInstruction"]
            await door.create(caller, dispense)
            count += 1
            handed += timedelta(days=days)
