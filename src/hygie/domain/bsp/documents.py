"""A professional deposits a document in a patient's record (the DMP's "alimentation").

What the form asks, as the DMP's metadata require it (digest §3.2): the type (LOINC, with the
TRE_A03 class it files under), the title, the date of the act, the content — a PDF or image
(checked like the citizen's uploads: real type from the bytes, proof it opens), a structured CDA
R2 document, or a text typed in the form — and the visibility choices (§3.3): hidden from the
patient until an announcement consultation (``INVISIBLE_PATIENT``), not visible to the legal
representatives (``INVISIBLE_REPRESENTANTS_LEGAUX``). The author is the signed-in professional and
the custodian their structure; nobody types them.

Pure functions: :func:`validate_deposit` gives a draft or one French sentence per faulty field,
:func:`professional_document` the DocumentReference; the portal files both in one transaction
(``domain/ens/documents.py document_transaction``), replacing a former version when asked.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from hygie.domain.ens.documents import (
    CONFIDENTIALITY,
    IHE_FORMAT,
    LOINC,
    OLDEST,
    TITLE_MAX,
    TRE_A05_TYPE,
    FileRefused,
    check_file,
    fr_size,
)
from hygie.domain.identity.nos import TRE_A03_CLASS, TRE_A07_VISIBILITY
from hygie.domain.policy import HIDDEN_FROM_PATIENT, HIDDEN_FROM_REPRESENTATIVES

__all__ = [
    "PRO_TYPES",
    "DepositDraft",
    "ProType",
    "professional_document",
    "validate_deposit",
]

CDA_NS = "urn:hl7-org:v3"
TEXT_MAX = 20_000  # characters of a note typed in the form


@dataclass(frozen=True, slots=True)
class ProType:
    """A kind of document a professional deposits: its LOINC (or TRE_A05) type and TRE_A03 class."""

    key: str  # the form's value
    label: str
    code: str
    display: str
    class_code: str
    class_label: str
    system: str = LOINC


# the common types of digest §3.2 (JDV_J07 labels), with the class the DMP files them under
PRO_TYPES: tuple[ProType, ...] = (
    ProType("11490-0", "Lettre de liaison de sortie", "11490-0", "Discharge letter", "10", "Compte rendu"),
    ProType("34112-3", "Compte rendu d’hospitalisation", "34112-3", "Hospital stay report", "10", "Compte rendu"),
    ProType("11488-4", "Compte rendu de consultation", "11488-4", "Consult note", "10", "Compte rendu"),
    ProType("34874-8", "Compte rendu opératoire", "34874-8", "Operative report", "10", "Compte rendu"),
    ProType("15507-7", "Compte rendu des urgences", "15507-7", "Emergency department report", "10", "Compte rendu"),
    ProType("11502-2", "Compte rendu de biologie", "11502-2", "Laboratory report", "10", "Compte rendu"),
    ProType("18748-4", "Compte rendu d’imagerie", "18748-4", "Diagnostic imaging report", "31", "Imagerie médicale"),
    ProType("96349-6", "Lettre d’adressage", "96349-6", "Referral letter", "10", "Compte rendu"),
    ProType("34133-9", "Synthèse d’épisode de soins", "34133-9", "Summary of episode note", "11", "Synthèse"),
    ProType("60591-5", "Volet de synthèse médicale (VSM)", "60591-5", "Patient summary", "11", "Synthèse"),
    ProType("57832-8", "Prescription de soins", "57832-8", "Prescription for care", "42", "Prescription"),
    ProType("PRESC-BIO", "Prescription d’examens de biologie", "PRESC-BIO", "Prescription de biologie", "42", "Prescription", TRE_A05_TYPE),
    ProType("87273-9", "Note de vaccination", "87273-9", "Immunization note", "45", "Traitement administré"),
    ProType("52", "Certificat médical", "CERT_DECL", "Certificat, déclaration", "52", "Certificat, déclaration", TRE_A05_TYPE),
)  # fmt: skip
_TYPES = {t.key: t for t in PRO_TYPES}


@dataclass(frozen=True, slots=True)
class DepositDraft:
    kind: ProType
    title: str
    day: date  # the date of the act
    content_type: str  # application/pdf, image/…, text/xml (CDA), text/plain
    data: bytes
    hidden_from_patient: bool
    hidden_from_representatives: bool


def _day(text: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _cda(data: bytes) -> bool:
    """A CDA R2 document: XML (parsed safely) whose root is ``ClinicalDocument``."""
    from xml.etree.ElementTree import ParseError  # noqa: PLC0415

    from defusedxml import DefusedXmlException, ElementTree  # noqa: PLC0415

    try:
        root = ElementTree.fromstring(data)
    except (ParseError, DefusedXmlException, ValueError):  # unreadable, or a forbidden construct
        return False
    return bool(root.tag == f"{{{CDA_NS}}}ClinicalDocument")


def _content(
    data: bytes | None, text: str, *, too_large: bool, max_bytes: int
) -> tuple[tuple[str, bytes] | None, str | None]:
    """The content to file and its type, or why not."""
    if too_large or (data is not None and len(data) > max_bytes):
        return None, f"Le fichier est trop volumineux : {fr_size(max_bytes)} au plus."
    if data:
        if data.lstrip()[:1] == b"<":
            if _cda(data):
                return ("text/xml", data), None
            return None, "Ce fichier XML n’est pas un document CDA R2 lisible (élément ClinicalDocument)."
        try:
            checked = check_file(data)
        except FileRefused as refused:
            return None, str(refused).replace(
                "choisissez un PDF, ou une image JPEG ou PNG",
                "choisissez un PDF, une image JPEG ou PNG, ou un document CDA",
            )
        return (checked.content_type, checked.data), None
    if text.strip():
        if len(text) > TEXT_MAX:
            return None, f"Le texte est trop long : {TEXT_MAX} caractères au plus."
        return ("text/plain", text.strip().encode("utf-8")), None
    return None, "Joignez le document (PDF, image ou CDA) ou saisissez son texte."


def validate_deposit(
    values: Mapping[str, str],
    data: bytes | None,
    *,
    too_large: bool,
    max_bytes: int,
    today: date,
) -> tuple[DepositDraft | None, dict[str, str]]:
    """The form ``type``, ``titre``, ``date``, ``fichier`` or ``texte``, ``invisible_patient``,
    ``invisible_representants``: a draft, or one French sentence per faulty field (nothing is
    filed without its mandatory metadata)."""
    errors: dict[str, str] = {}
    kind = _TYPES.get(str(values.get("type", "")))
    if kind is None:
        errors["type"] = "Choisissez le type de document dans la liste."
    title = " ".join(str(values.get("titre", "")).split())
    if not title:
        errors["titre"] = "Donnez un titre au document, par exemple « Lettre de liaison — séjour du 3 mars »."
    elif len(title) > TITLE_MAX:
        errors["titre"] = f"Le titre est trop long : {TITLE_MAX} caractères au plus."
    raw_day = str(values.get("date", "")).strip()
    day = _day(raw_day)
    if not raw_day:
        errors["date"] = "Indiquez la date de l’acte."
    elif day is None:
        errors["date"] = "Saisissez une date au format jj/mm/aaaa, par exemple 12/04/2026."
    elif day > today:
        errors["date"] = "La date de l’acte ne peut pas être dans le futur."
    elif day < OLDEST:
        errors["date"] = "Cette date est trop ancienne : vérifiez l’année."
    content, problem = _content(data, str(values.get("texte", "")), too_large=too_large, max_bytes=max_bytes)
    if problem is not None:
        errors["fichier"] = problem
    if errors or kind is None or day is None or content is None:
        return None, errors
    return (
        DepositDraft(
            kind,
            title,
            day,
            content[0],
            content[1],
            values.get("invisible_patient") == "oui",
            values.get("invisible_representants") == "oui",
        ),
        {},
    )


def professional_document(
    draft: DepositDraft,
    *,
    patient_ref: str,
    author_ref: str,
    author_display: str,
    custodian_ref: str | None,
    now_instant: str,
) -> dict[str, Any]:
    """The DocumentReference of a professional's deposit (its content's ``url`` is set by the
    transaction that files it)."""
    kind = draft.kind
    labels: list[dict[str, Any]] = [{"coding": [{"system": CONFIDENTIALITY, "code": "N"}]}]
    if draft.hidden_from_patient:
        labels.append({"coding": [{"system": TRE_A07_VISIBILITY, "code": HIDDEN_FROM_PATIENT}]})
    if draft.hidden_from_representatives:
        labels.append({"coding": [{"system": TRE_A07_VISIBILITY, "code": HIDDEN_FROM_REPRESENTATIVES}]})
    fmt = (
        {"system": IHE_FORMAT, "code": "urn:hl7-org:sdwg:ccda-structuredBody:2.1", "display": "CDA R2"}
        if draft.content_type == "text/xml"
        else {
            "system": IHE_FORMAT,
            "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
            "display": "mimeType Sufficient",
        }
    )
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": kind.system, "code": kind.code, "display": kind.display}],
            "text": kind.label,
        },
        "category": [
            {"coding": [{"system": TRE_A03_CLASS, "code": kind.class_code, "display": kind.class_label}]}
        ],
        "subject": {"reference": patient_ref},
        "date": now_instant,
        "author": [{"reference": author_ref, "display": author_display}],
        "description": draft.title,
        "securityLabel": labels,
        "content": [
            {
                "attachment": {
                    "contentType": draft.content_type,
                    "language": "fr-FR",
                    "size": len(draft.data),
                    "hash": base64.b64encode(hashlib.sha1(draft.data).digest()).decode("ascii"),
                    "title": draft.title,
                    "creation": now_instant,
                },
                "format": fmt,
            }
        ],
        "context": {"period": {"start": draft.day.isoformat()}},
    }
    if custodian_ref:
        document["author"].append({"reference": custodian_ref})
        document["custodian"] = {"reference": custodian_ref}
    return document
