"""A checked prescription as FHIR R4 resources (digest §8, design note).

* one ``MedicationRequest`` per line, all sharing ``groupIdentifier`` = the prescription number
  (``intent`` order, ``status`` active, ``requester`` the Practitioner, ``dosageInstruction``
  in French with its timing and dose, ``dispenseRequest`` with the validity period, the packs of
  one delivery, the supply duration and ``numberOfRepeatsAllowed`` = *à renouveler N fois*,
  ``substitution.allowedBoolean``). R4 has no search parameter on ``groupIdentifier``: each line
  also carries the number as an ``identifier``, which is how a pharmacy finds the lines;
* the printed prescription: a ``Binary`` (PDF, filed in the patient's record by its
  ``securityContext``) and its ``DocumentReference`` (TRE_A03 class ``42`` *Prescription*, LOINC
  ``57833-6`` *Ordonnance de produits de santé*), whose ``context.related`` names the lines.

Each line holds the SHA-256 of the QR code's secret in an extension (:data:`CODE_HASH_URL`):
whoever reads the line learns nothing that opens it at a pharmacy.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from hygie.domain.eprescription.medicines import CIP13_SYSTEM
from hygie.domain.eprescription.numbers import display_number
from hygie.domain.eprescription.rules import PrescribedLine, Prescription
from hygie.domain.identity.directory import IDNAT_PS_SYSTEM, RPPS_SYSTEM
from hygie.domain.identity.fr_core import ins_of
from hygie.domain.identity.nos import TRE_A03_CLASS, TRE_G15_PROFESSION

__all__ = [
    "CODE_HASH_URL",
    "CONFIDENTIALITY",
    "LOINC",
    "PRESCRIPTION_CLASS",
    "PRESCRIPTION_TYPE",
    "TRE_A03_CLASS",
    "UCUM",
    "Issuer",
    "PatientBanner",
    "banner_of",
    "binary",
    "cip13_of",
    "code_hash_of",
    "completed_renewal",
    "document_reference",
    "identifier_of",
    "issuer_of",
    "medication_request",
    "number_of",
    "person_name",
    "renewed_lines",
    "rpps_of",
]

CODE_HASH_URL: Final = "https://hygie.esante.example/fhir/StructureDefinition/eprescription-code-hash"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
IHE_FORMAT: Final = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
PRESCRIPTION_CLASS: Final = {"system": TRE_A03_CLASS, "code": "42", "display": "Prescription"}
PRESCRIPTION_TYPE: Final = {"system": LOINC, "code": "57833-6", "display": "Ordonnance de produits de santé"}
PROFESSIONS: Final = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
}


@dataclass(frozen=True, slots=True)
class Issuer:
    """The prescriber as the prescription shows them (from the directory)."""

    reference: str  # Practitioner/…
    name: str  # "Dr Marie Bernard"
    rpps: str | None = None
    idnat: str | None = None
    profession: str = ""  # "Médecin"
    structure: str | None = None
    structure_reference: str | None = None  # Organization/…
    address: tuple[str, ...] = ()
    city: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class PatientBanner:
    """The patient as the prescription shows them."""

    name: str
    birth_date: date | None
    ins: str | None = None


def person_name(resource: Mapping[str, Any] | None) -> str:
    """A Practitioner's or a Patient's name as written: text, else prefix given family."""
    for name in (resource or {}).get("name", []) or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p).strip()
        if text:
            return text
    return ""


def identifier_of(resource: Mapping[str, Any], system: str) -> str | None:
    for identifier in resource.get("identifier", []) or []:
        if isinstance(identifier, dict) and identifier.get("system") == system and identifier.get("value"):
            return str(identifier["value"])
    return None


def rpps_of(practitioner: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(RPPS, IdNat_PS): the RPPS identifier, else the IdNat_PS of type 8 without its prefix."""
    idnat = identifier_of(practitioner, IDNAT_PS_SYSTEM)
    rpps = identifier_of(practitioner, RPPS_SYSTEM) or (
        idnat[1:] if idnat and idnat.startswith("8") else None
    )
    return rpps, idnat


def _phone(resource: Mapping[str, Any]) -> str | None:
    for telecom in resource.get("telecom", []) or []:
        if isinstance(telecom, dict) and telecom.get("system") == "phone" and telecom.get("value"):
            return str(telecom["value"])
    return None


def issuer_of(
    reference: str,
    practitioner: Mapping[str, Any],
    organization_ref: str | None = None,
    organization: Mapping[str, Any] | None = None,
) -> Issuer:
    """The prescriber from the directory: Practitioner (name, RPPS, IdNat_PS, TRE_G15 profession)
    and the structure they act for (name, first address, telephone)."""
    rpps, idnat = rpps_of(practitioner)
    profession = next(
        (
            str(c.get("code"))
            for q in practitioner.get("qualification", []) or []
            if isinstance(q, dict)
            for c in (q.get("code") or {}).get("coding", []) or []
            if isinstance(c, dict) and c.get("system") == TRE_G15_PROFESSION
        ),
        "",
    )
    address: tuple[str, ...] = ()
    city = None
    if organization:
        for item in organization.get("address", []) or []:
            if not isinstance(item, dict):
                continue
            lines = [str(x) for x in item.get("line", []) or [] if x]
            town = " ".join(str(x) for x in (item.get("postalCode"), item.get("city")) if x)
            address = (*lines, town) if town else tuple(lines)
            city = str(item["city"]) if item.get("city") else None
            break
    return Issuer(
        reference=reference,
        name=person_name(practitioner) or "Prescripteur",
        rpps=rpps,
        idnat=idnat,
        profession=PROFESSIONS.get(profession, ""),
        structure=str(organization.get("name") or "") or None if organization else None,
        structure_reference=organization_ref if organization else None,
        address=address,
        city=city,
        phone=(_phone(organization) if organization else None) or _phone(practitioner),
    )


def banner_of(patient: Mapping[str, Any]) -> PatientBanner:
    """Name, birth date and INS (when the Patient carries a valid one)."""
    born = patient.get("birthDate")
    try:
        birth = date.fromisoformat(born) if isinstance(born, str) and len(born) == 10 else None
    except ValueError:
        birth = None
    try:
        ins = ins_of(patient)
    except ValueError:
        ins = None
    return PatientBanner(person_name(patient) or "Patient", birth, ins.matricule if ins else None)


def _days(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "jours" if value > 1 else "jour", "system": UCUM, "code": "d"}


def medication_request(
    line: PrescribedLine,
    prescription: Prescription,
    *,
    number: str,
    number_system: str,
    code_hash: str,
    patient_ref: str,
    issuer: Issuer,
    authored_on: str,
    prior: str | None = None,
) -> dict[str, Any]:
    """The ``MedicationRequest`` of one line (``prior``: the line it renews)."""
    medicine = line.medicine
    printed = display_number(number)
    dosage: dict[str, Any] = {
        "sequence": 1,
        "text": line.dosage_text(),
        "timing": {
            "repeat": {
                "boundsDuration": _days(line.duration_days),
                "frequency": line.takes_per_day,
                "period": 1,
                "periodUnit": "d",
            }
        },
        "doseAndRate": [{"doseQuantity": {"value": line.dose, "unit": medicine.unit}}],
    }
    if line.instructions:
        dosage["patientInstruction"] = line.instructions
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "extension": [{"url": CODE_HASH_URL, "valueString": code_hash}],
        "identifier": [{"system": number_system, "value": printed}],
        "status": "active",
        "intent": "order",
        "groupIdentifier": {"system": number_system, "value": printed},
        "medicationCodeableConcept": medicine.codeable_concept(),
        "subject": {"reference": patient_ref},
        "authoredOn": authored_on,
        "requester": {"reference": issuer.reference, "display": issuer.name},
        "dosageInstruction": [dosage],
        "dispenseRequest": {
            "validityPeriod": {"start": prescription.start.isoformat(), "end": prescription.end.isoformat()},
            "numberOfRepeatsAllowed": line.renewals,
            "quantity": {"value": line.packs_per_delivery, "unit": medicine.pack_unit},
            "expectedSupplyDuration": _days(line.duration_days),
        },
        "substitution": {"allowedBoolean": line.substitution_allowed},
    }
    if prior:
        request["priorPrescription"] = {"reference": prior}
    return request


def binary(pdf: bytes, patient_ref: str) -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "contentType": "application/pdf",
        "securityContext": {"reference": patient_ref},
        "data": base64.b64encode(pdf).decode("ascii"),
    }


def document_reference(
    pdf: bytes,
    *,
    number: str,
    number_system: str,
    patient_ref: str,
    issuer: Issuer,
    date: str,
    binary_id: str,
    request_ids: Sequence[str],
    master_identifier: str,
    authored_day: str,
) -> dict[str, Any]:
    """The printed prescription's ``DocumentReference`` (its content: ``Binary/binary_id``)."""
    printed = display_number(number)
    author: dict[str, Any] = {"reference": issuer.reference, "display": issuer.name}
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": master_identifier},
        "identifier": [{"system": number_system, "value": printed}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [dict(PRESCRIPTION_TYPE)], "text": PRESCRIPTION_TYPE["display"]},
        "category": [{"coding": [dict(PRESCRIPTION_CLASS)]}],
        "subject": {"reference": patient_ref},
        "date": date,
        "author": [author],
        "description": f"Ordonnance n° {printed}",
        "securityLabel": [{"coding": [{"system": CONFIDENTIALITY, "code": "N"}]}],
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "fr-FR",
                    "url": f"Binary/{binary_id}",
                    "size": len(pdf),
                    "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
                    "title": f"Ordonnance n° {printed}",
                    "creation": date,
                },
                "format": {
                    "system": IHE_FORMAT,
                    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    "display": "mimeType Sufficient",
                },
            }
        ],
        "context": {
            "period": {"start": authored_day},
            "related": [{"reference": f"MedicationRequest/{rid}"} for rid in request_ids],
        },
    }
    if issuer.structure_reference:
        document["custodian"] = {"reference": issuer.structure_reference, "display": issuer.structure or ""}
    return document


def code_hash_of(request: dict[str, Any]) -> str | None:
    """The stored hash of the QR code's secret, if the line has one."""
    for extension in request.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == CODE_HASH_URL:
            value = extension.get("valueString")
            return value if isinstance(value, str) else None
    return None


def number_of(request: dict[str, Any]) -> str:
    group = request.get("groupIdentifier")
    return str(group.get("value") or "") if isinstance(group, dict) else ""


def renewed_lines(task: dict[str, Any]) -> list[str]:
    """The ids of the lines a renewal request names (its ``focus`` and ``input`` references)."""
    refs = [str((task.get("focus") or {}).get("reference", ""))]
    refs.extend(
        str((i.get("valueReference") or {}).get("reference", ""))
        for i in task.get("input") or []
        if isinstance(i, dict)
    )
    return [r.split("/", 1)[1] for r in dict.fromkeys(refs) if r.startswith("MedicationRequest/")]


def completed_renewal(
    task: dict[str, Any], *, number: str, lines: Sequence[tuple[str, PrescribedLine]], when: str
) -> dict[str, Any]:
    """The renewal request, answered: ``completed``, its ``output`` naming the new lines."""
    done = dict(task)
    done["status"] = "completed"
    done["lastModified"] = when
    done["businessStatus"] = {"text": f"Ordonnance n° {display_number(number)}"}
    done["output"] = [
        *(task.get("output") or []),
        *(
            {
                "type": {"text": "Ordonnance renouvelée"},
                "valueReference": {"reference": f"MedicationRequest/{rid}", "display": line.medicine.name},
            }
            for rid, line in lines
        ),
    ]
    return done


def cip13_of(concept: Any) -> str | None:
    """The CIP13 code of a ``medicationCodeableConcept``."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and coding.get("system") == CIP13_SYSTEM and coding.get("code"):
            return str(coding["code"])
    return None
