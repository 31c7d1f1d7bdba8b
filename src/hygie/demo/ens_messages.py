"""Demo content for the messaging, alerts and questionnaires of one demo citizen's health space.

* a conversation with the médecin traitant: the doctor sends the results of a blood test, the
  person answers (both read), the doctor follows up (not read yet: one unread message);
* a public-health alert (seasonal flu vaccination) targeted at the person's region, with its reason;
* a hospital stay that ended twelve days ago, for which the e-Satis-style questionnaire is proposed
  (the shipped questionnaires are installed as reference data).

Everything is written through the FHIR service as the operator ``hygie demo``, once: a second
run finds the demo conversation by its identifier and adds nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hygie.domain.access import Caller
from hygie.domain.ens import alerts as al
from hygie.domain.ens import questionnaires as qs
from hygie.domain.ens.messaging import HYGIE_FHIR, new_message
from hygie.web.portal.door import Door

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["seed_demo"]

DEMO_SYSTEM = f"{HYGIE_FHIR}/demo"
_HOUR_US = 3600 * 1_000_000


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    door = Door(runtime.service)
    caller = Caller.operator("hygie demo")
    await qs.install(door, caller)
    if await door.search(
        caller, "Communication", [("identifier", f"{DEMO_SYSTEM}|ens-messages-{patient_id}")]
    ):
        return
    patient = await door.read(caller, "Patient", patient_id)
    if patient is None:
        return
    if practitioner_id is None:
        refs = [str(g.get("reference", "")) for g in patient.get("generalPractitioner", []) or []]
        practitioner_id = next((r.split("/", 1)[1] for r in refs if r.startswith("Practitioner/")), None)
    now = datetime.now(UTC).replace(microsecond=0)
    if practitioner_id is not None:
        await _conversation(door, caller, patient, practitioner_id, now)
    await _alert(door, caller, patient, now)
    await _stay(door, caller, patient_id, now)


async def _conversation(
    door: Door, caller: Caller, patient: dict[str, Any], practitioner_id: str, now: datetime
) -> None:
    practitioner = await door.read(caller, "Practitioner", practitioner_id) or {}
    name = practitioner.get("name", [{}])[0]
    doctor = f"Dr {' '.join(name.get('given', [])[:1])} {name.get('family', '')}".strip()
    patient_ref = f"Patient/{patient['id']}"
    gp_ref = f"Practitioner/{practitioner_id}"
    who = " ".join(patient.get("name", [{}])[0].get("given", [])[:1])
    subject = "Résultats de votre bilan sanguin"
    first_sent = now - timedelta(days=3, hours=2)
    first = new_message(
        patient_ref=patient_ref,
        sender=(gp_ref, doctor),
        recipients=[(patient_ref, "")],
        subject=subject,
        text=(
            f"Bonjour {who},\n\nJ’ai reçu les résultats de votre prise de sang : la glycémie et le "
            "cholestérol sont normaux. Le taux de fer est un peu bas ; je vous propose de le "
            "recontrôler dans trois mois.\n\nBien cordialement,\n" + doctor
        ),
        now_us=_us(first_sent),
    )
    first["identifier"] = [{"system": DEMO_SYSTEM, "value": f"ens-messages-{patient['id']}"}]
    first["received"] = _iso(first_sent + timedelta(hours=5))
    root = str((await door.create(caller, first))["id"])
    reply_sent = first_sent + timedelta(hours=5, minutes=10)
    reply = new_message(
        patient_ref=patient_ref,
        sender=(patient_ref, who),
        recipients=[(gp_ref, doctor)],
        subject=subject,
        text="Bonjour Docteur,\n\nMerci. Dois-je prendre un complément en fer d’ici là ?\n\nCordialement",
        now_us=_us(reply_sent),
        root_id=root,
        in_response_to=root,
    )
    reply["received"] = _iso(reply_sent + timedelta(hours=16))
    reply_id = str((await door.create(caller, reply))["id"])
    follow_up = new_message(
        patient_ref=patient_ref,
        sender=(gp_ref, doctor),
        recipients=[(patient_ref, "")],
        subject=subject,
        text=(
            "Pas pour l’instant : mangez des lentilles, des épinards et de la viande rouge deux fois "
            "par semaine, et nous referons le point au prochain contrôle.\n\n" + doctor
        ),
        now_us=_us(now - timedelta(hours=20)),
        root_id=root,
        in_response_to=reply_id,
    )
    await door.create(caller, follow_up)


async def _alert(door: Door, caller: Caller, patient: dict[str, Any], now: datetime) -> None:
    region = al.region_of(patient)
    criteria = al.Criteria(regions=(region,) if region else ())
    reasons = al.reasons_for(patient, criteria, al.Facts(), date.today()) or []
    alert = al.Alert(
        "La vaccination contre la grippe a commencé",
        "La campagne de vaccination contre la grippe saisonnière a commencé. Le vaccin est "
        "recommandé et pris en charge pour les personnes de 65 ans et plus, les personnes atteintes "
        "de certaines maladies chroniques et les femmes enceintes.\n\nParlez-en à votre médecin, "
        "votre pharmacien ou votre infirmier.",
        "vaccination",
        "Agence régionale de santé",
    )
    await door.create(
        caller,
        al.alert_resource(alert, str(patient["id"]), reasons, uuid.uuid4().hex, _us(now - timedelta(days=1))),
    )


async def _stay(door: Door, caller: Caller, patient_id: str, now: datetime) -> None:
    hospitals = await door.search(caller, "Organization", [("type", "SA01"), ("_count", "1")], limit=1)
    provider: dict[str, str] = {"display": "Centre hospitalier"}
    if hospitals:
        provider = {
            "reference": f"Organization/{hospitals[0]['id']}",
            "display": str(hospitals[0].get("name")),
        }
    end = now - timedelta(days=12)
    await door.create(
        caller,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
                "display": "inpatient encounter",
            },
            "type": [
                {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "32485007", "display": "Hospitalisation"}
                    ]
                }
            ],
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {"start": _iso(end - timedelta(days=3, hours=4)), "end": _iso(end)},
            "serviceProvider": provider,
        },
    )
