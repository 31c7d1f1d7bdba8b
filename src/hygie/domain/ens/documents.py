"""The documents of the shared medical record (DMP) as the citizen sees and adds them.

Framework-free: the page module (``web/ens/documents.py``) reads and writes FHIR resources
through the door and hands them here.

* **Listing** — :func:`summarize` turns a DocumentReference into what a line of the list shows
  (title, class, date of the document, who wrote it, masked or not); :class:`Filters` (class,
  period, source, words of the title) and :func:`page_of` choose and cut the list.
* **Adding** — :func:`check_file` trusts the bytes, never the declared type: a PDF that
  ``pypdf`` reads, or a JPEG/PNG image that Pillow decodes in full; :func:`validate_upload`
  gives one French sentence per wrong field; :func:`upload_bundle` builds ONE transaction
  Bundle (Binary + DocumentReference) so that a failure leaves nothing half-written.
* **Versions** — a new version is a new DocumentReference that ``replaces`` the previous one,
  whose status becomes ``superseded`` in the same transaction (:func:`upload_bundle` with
  ``replaces``); :func:`deletion_bundle` removes a document the person added, with its
  previous versions.

Codes: document classes TRE_A03 (French labels of JDV_J57, the DMP's class codes), types LOINC
plus the DMP's TRE_A05 types for documents added by the patient (``DOCPATxx``), class ``90``
("Autres documents déposés par le patient").
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import unicodedata
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hygie.domain.french import FRENCH_MONTHS
from hygie.domain.identity.nos import TRE_A03_CLASS, TRE_A07_VISIBILITY, nos
from hygie.domain.policy import HIDDEN_FROM_PATIENT, MASKED_FROM_PROFESSIONALS
from hygie.domain.provenance import app_of, app_source

__all__ = [
    "CLASS_LABELS",
    "PAGE_SIZE",
    "PATIENT_CLASS",
    "PATIENT_TYPES",
    "CheckedFile",
    "DocumentLine",
    "FileRefused",
    "Filters",
    "Page",
    "PatientType",
    "UploadDraft",
    "check_file",
    "deletion_bundle",
    "document_transaction",
    "fr_date",
    "fr_size",
    "page_of",
    "summarize",
    "upload_bundle",
    "validate_upload",
]

LOINC = "http://loinc.org"
TRE_A05_TYPE = nos("TRE_A05-TypeDocComplementaire")
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
IHE_FORMAT = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
PAGE_SIZE = 20
TITLE_MAX = 200
OLDEST = date(1900, 1, 1)

# TRE_A03 classes with their labels in the DMP's value set JDV_J57-ClassCode-DMP
CLASS_LABELS: dict[str, str] = {
    "10": "Compte rendu",
    "11": "Synthèse",
    "31": "Imagerie médicale",
    "42": "Prescription",
    "43": "Dispensation",
    "44": "Plan de soins, protocole de soins",
    "45": "Traitement administré",
    "52": "Certificat, déclaration",
    "60": "Données de remboursement",
    "90": "Documents que vous avez ajoutés",
    "95": "Document de gestion",
}
PATIENT_CLASS = "90"  # "Autres documents déposés par le patient"


@dataclass(frozen=True, slots=True)
class PatientType:
    """A kind of document a person adds: its LOINC code, and the DMP's TRE_A05 type."""

    key: str  # the form's value
    label: str
    loinc: str
    loinc_display: str
    dmp: str
    dmp_display: str


PATIENT_TYPES: tuple[PatientType, ...] = (
    PatientType(
        "compte-rendu",
        "Compte rendu (consultation, hospitalisation…)",
        "11488-4",
        "Consult note",
        "DOCPAT03",
        "CR déposé par le patient",
    ),
    PatientType(
        "biologie",
        "Résultats d’analyses (prise de sang…)",
        "11502-2",
        "Laboratory report",
        "DOCPAT05",
        "CR de biologie déposé par le patient",
    ),
    PatientType(
        "imagerie",
        "Imagerie (radiographie, échographie…)",
        "18748-4",
        "Diagnostic imaging study",
        "DOCPAT04",
        "Imagerie déposée par le patient",
    ),
    PatientType(
        "ordonnance",
        "Ordonnance ou traitement",
        "57833-6",
        "Prescription for medication",
        "DOCPAT02",
        "Traitement ou document de soins déposé par le patient",
    ),
    PatientType(
        "vaccination",
        "Vaccinations, prévention",
        "11369-6",
        "History of Immunization note",
        "DOCPAT06",
        "CR de prévention déposé par le patient",
    ),
    PatientType(
        "administratif",
        "Document administratif",
        "51851-4",
        "Administrative note",
        "DOCPAT09",
        "Document administratif déposé par le patient",
    ),
    PatientType(
        "autre", "Autre document", "51855-5", "Patient note", "EXPPAT_2", "Autre document du patient"
    ),
)
_TYPES_BY_KEY = {t.key: t for t in PATIENT_TYPES}


def fr_date(value: str | date | None) -> str:
    """ "12 avril 2025" from an ISO date or dateTime (its date part), "" when unreadable."""
    if value is None:
        return ""
    day = value if isinstance(value, date) else _iso_day(value)
    if day is None:
        return str(value)[:10] if isinstance(value, str) and len(value) >= 4 else ""
    return f"{day.day} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def fr_size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} octets"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} ko"
    return f"{size / (1024 * 1024):.1f} Mo".replace(".", ",")


def _iso_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _fold(text: str) -> str:
    """Lower case, without accents: what a search of words compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _codes(concepts: Any, system: str | None = None) -> list[str]:
    return [
        str(coding["code"])
        for concept in (concepts if isinstance(concepts, list) else [concepts])
        if isinstance(concept, dict)
        for coding in concept.get("coding") or []
        if isinstance(coding, dict)
        and coding.get("code")
        and (system is None or coding.get("system") == system)
    ]


def _refs(items: Any) -> list[str]:
    return [
        str(item["reference"])
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("reference"), str)
    ]


# -- one line of the list --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """What the portal shows of one DocumentReference."""

    id: str
    version: str
    title: str
    type_label: str
    class_code: str
    class_label: str
    day: date | None  # the document's own date (of the act, of its writing)
    added: str  # when it reached the record (DocumentReference.date)
    authors: tuple[str, ...]  # references
    author_label: str  # "Dr Paul BERNARD", "Vous", "Anne DURAND (pour vous)"
    own: bool  # written by the patient or by someone acting for them: theirs to change
    mine: bool  # written by the visitor themselves: the policy lets them replace or delete it
    masked: bool
    status: str
    content_type: str
    size: int | None
    replaces: tuple[str, ...]  # ids of the versions this one replaces
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def date_label(self) -> str:
        return fr_date(self.day) if self.day else ""

    @property
    def format_label(self) -> str:
        return _format_label(self.content_type)


def _format_label(content_type: str) -> str:
    base = content_type.split(";", maxsplit=1)[0].strip().lower()
    return {
        "application/pdf": "PDF",
        "image/jpeg": "Image JPEG",
        "image/png": "Image PNG",
        "text/plain": "Texte",
        "application/fhir+json": "Document structuré (FHIR)",
        "application/json": "Document structuré (FHIR)",
        "text/xml": "Document structuré (CDA)",
        "application/xml": "Document structuré (CDA)",
        "application/hl7-v3+xml": "Document structuré (CDA)",
    }.get(base, base or "inconnu")


def document_day(resource: Mapping[str, Any]) -> date | None:
    """The document's own date: its content's creation, else the act, else its registration."""
    for content in resource.get("content") or []:
        creation = (content.get("attachment") or {}).get("creation") if isinstance(content, dict) else None
        if isinstance(creation, str) and (day := _iso_day(creation)):
            return day
    period = (resource.get("context") or {}).get("period") or {}
    for value in (period.get("start"), resource.get("date")):
        if isinstance(value, str) and (day := _iso_day(value)):
            return day
    return None


def title_of(resource: Mapping[str, Any]) -> str:
    for content in resource.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if isinstance(attachment, dict) and attachment.get("title") and not resource.get("description"):
            return str(attachment["title"])
    if resource.get("description"):
        return str(resource["description"])
    return type_label_of(resource) or "Document"


def type_label_of(resource: Mapping[str, Any]) -> str:
    concept = resource.get("type") or {}
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("system") == LOINC:
            known = next((t for t in PATIENT_TYPES if t.loinc == coding.get("code")), None)
            if known:
                return known.label
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return ""


def is_masked(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta") or {}
    meta_codes = [str(c.get("code")) for c in meta.get("security") or [] if isinstance(c, dict)]
    return MASKED_FROM_PROFESSIONALS in _codes(resource.get("securityLabel")) + meta_codes


def summarize(
    resource: Mapping[str, Any],
    *,
    patient_ref: str,
    actor_ref: str,
    names: Mapping[str, str],
) -> DocumentLine:
    """One line of the list. ``names``: display names of authors by reference, and of the app
    that sent the document by its ``meta.source`` (``domain/provenance.py``)."""
    authors = tuple(_refs(resource.get("author")))
    own = bool(authors) and all(a == patient_ref or a.startswith("RelatedPerson/") for a in authors)
    if not authors:
        author_label = "Auteur non précisé"
    else:
        labels = []
        for ref in authors:
            if ref == actor_ref:
                labels.append("Vous")
            elif ref == patient_ref:
                labels.append(names.get(ref) or "La personne elle-même")
            else:
                labels.append(names.get(ref) or "Un professionnel de santé")
        author_label = ", ".join(labels)
    app = app_of(resource)
    if app is not None:  # the app that sent it (meta.source, set by the server), by its name
        name = names.get(app_source(app))
        via = f"application « {name} »" if name else "une application"
        author_label = f"{author_label} ({via})" if authors else via[0].upper() + via[1:]
    classes = _codes(resource.get("category"), TRE_A03_CLASS) or _codes(resource.get("category"))
    class_code = classes[0] if classes else ""
    class_label = CLASS_LABELS.get(class_code, "Autre")
    attachment: Mapping[str, Any] = {}
    for content in resource.get("content") or []:
        if isinstance(content, dict) and isinstance(content.get("attachment"), dict):
            attachment = content["attachment"]
            break
    size = attachment.get("size")
    replaces = tuple(
        ref.split("/", 1)[1]
        for relation in resource.get("relatesTo") or []
        if isinstance(relation, dict) and relation.get("code") == "replaces"
        for ref in _refs([relation.get("target")])
        if ref.startswith("DocumentReference/")
    )
    return DocumentLine(
        id=str(resource.get("id", "")),
        version=str((resource.get("meta") or {}).get("versionId", "")),
        title=title_of(resource),
        type_label=type_label_of(resource),
        class_code=class_code,
        class_label=class_label,
        day=document_day(resource),
        added=str(resource.get("date", "")),
        authors=authors,
        author_label=author_label,
        own=own,
        mine=actor_ref in authors,
        masked=is_masked(resource),
        status=str(resource.get("status", "")),
        content_type=str(attachment.get("contentType") or ""),
        size=size if isinstance(size, int) else None,
        replaces=replaces,
        raw=resource,
    )


def hidden_from_patient(resource: Mapping[str, Any]) -> bool:
    """A document hidden until it is announced (the policy refuses it; never shown if met)."""
    return HIDDEN_FROM_PATIENT in _codes(resource.get("securityLabel"))


# -- filters and pages -----------------------------------------------------------------------------

SOURCES = {
    "tous": "Tous",
    "professionnels": "Des professionnels de santé",
    "moi": "Ajoutés par vous ou vos proches",
}


@dataclass(slots=True)
class Filters:
    category: str = ""
    start: date | None = None
    end: date | None = None
    source: str = "tous"
    words: str = ""
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)
    typed: dict[str, str] = field(default_factory=dict)  # what was typed, shown back as is

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        """From the list's query string (``categorie``, ``du``, ``au``, ``source``, ``q``, ``page``)."""
        out = cls(typed={k: str(query.get(k, "")).strip() for k in ("categorie", "du", "au", "source", "q")})
        category = out.typed["categorie"]
        out.category = category if category in CLASS_LABELS else ""
        for key, name in (("du", "start"), ("au", "end")):
            text = out.typed[key]
            if not text:
                continue
            day = _iso_day(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
            if day is None:
                out.errors[key] = "Saisissez une date au format jj/mm/aaaa, par exemple 12/04/2025."
            else:
                setattr(out, name, day)
        if out.start and out.end and out.start > out.end:
            out.errors["au"] = "La date de fin doit être après la date de début."
            out.end = None
        source = out.typed["source"]
        out.source = source if source in SOURCES else "tous"
        out.words = out.typed["q"][:100]
        try:
            out.page = max(1, int(str(query.get("page", "1"))))
        except ValueError:
            out.page = 1
        return out

    @property
    def active(self) -> bool:
        return bool(self.category or self.start or self.end or self.source != "tous" or self.words)

    def keeps(self, line: DocumentLine) -> bool:
        if self.category and line.class_code != self.category:
            return False
        if self.start and (line.day is None or line.day < self.start):
            return False
        if self.end and (line.day is None or line.day > self.end):
            return False
        if self.source == "moi" and not line.own:
            return False
        if self.source == "professionnels" and line.own:
            return False
        if self.words:
            haystack = _fold(f"{line.title} {line.type_label}")
            if not all(word in haystack for word in _fold(self.words).split()):
                return False
        return True

    def query(self, **changes: Any) -> str:
        """The list's query string for these filters (``page`` and others changed)."""
        from urllib.parse import urlencode  # noqa: PLC0415

        values = {
            "categorie": self.category,
            "du": self.start.isoformat() if self.start else "",
            "au": self.end.isoformat() if self.end else "",
            "source": "" if self.source == "tous" else self.source,
            "q": self.words,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        if values["page"] == "1":
            values["page"] = ""
        return urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True, slots=True)
class Page:
    items: list[DocumentLine]
    number: int
    count: int  # pages
    total: int  # lines over every page


def sort_lines(lines: Iterable[DocumentLine]) -> list[DocumentLine]:
    """Newest document first (by its own date, then by arrival)."""
    return sorted(lines, key=lambda d: (d.day or OLDEST, d.added), reverse=True)


def page_of(lines: Sequence[DocumentLine], number: int, size: int = PAGE_SIZE) -> Page:
    count = max(1, -(-len(lines) // size))
    number = min(max(1, number), count)
    return Page(list(lines[(number - 1) * size : number * size]), number, count, len(lines))


# -- files -------------------------------------------------------------------------------------------


class FileRefused(ValueError):
    """A file that is not accepted, with the reason in plain French."""


@dataclass(frozen=True, slots=True)
class CheckedFile:
    content_type: str  # from the bytes: application/pdf, image/jpeg, image/png
    data: bytes
    extension: str


_PDF_PAGES_CHECKED = 50


def check_file(data: bytes) -> CheckedFile:
    """The file's real type from its first bytes, and proof that it opens: a PDF read by
    ``pypdf`` (every page's content parsed, up to 50 pages), an image decoded in full by Pillow."""
    if not data:
        raise FileRefused("Le fichier est vide.")
    if data.startswith(b"%PDF-"):
        _check_pdf(data)
        return CheckedFile("application/pdf", data, "pdf")
    if data.startswith(b"\xff\xd8\xff"):
        _check_image(data, "JPEG")
        return CheckedFile("image/jpeg", data, "jpg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        _check_image(data, "PNG")
        return CheckedFile("image/png", data, "png")
    raise FileRefused("Ce type de fichier n’est pas accepté : choisissez un PDF, ou une image JPEG ou PNG.")


_DAMAGED = (
    "Le fichier est endommagé ou incomplet : il ne s’ouvre pas. Vérifiez-le et choisissez-le à nouveau."
)


def _check_pdf(data: bytes) -> None:
    from pypdf import PdfReader  # noqa: PLC0415 - only when a PDF is added

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            encrypted = reader.is_encrypted
            count = 0 if encrypted else len(reader.pages)
            for index in range(min(count, _PDF_PAGES_CHECKED)):
                reader.pages[index].extract_text()
    except Exception as exc:
        raise FileRefused(_DAMAGED) from exc  # whatever stops pypdf, the file does not open
    if encrypted:
        raise FileRefused(
            "Ce PDF est protégé par un mot de passe : les professionnels ne pourraient pas le lire. "
            "Enregistrez-le sans mot de passe puis ajoutez-le."
        )
    if count == 0:
        raise FileRefused(_DAMAGED)


def _check_image(data: bytes, expected: str) -> None:
    from PIL import Image  # noqa: PLC0415 - only when an image is added

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                found = image.format
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # verify() does not decode: a truncated image fails only here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FileRefused("Cette image est trop grande (en pixels) pour être ajoutée.") from exc
    except Exception as exc:
        raise FileRefused(_DAMAGED) from exc  # whatever stops Pillow, the image does not open
    if found != expected:
        raise FileRefused(_DAMAGED)


# -- the form ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadDraft:
    title: str
    kind: PatientType
    day: date
    file: CheckedFile


def validate_upload(
    values: Mapping[str, str],
    data: bytes | None,
    *,
    too_large: bool,
    max_bytes: int,
    today: date,
) -> tuple[UploadDraft | None, dict[str, str]]:
    """The form ``titre``, ``type``, ``date``, ``fichier``: a draft, or one French sentence per
    wrong field."""
    errors: dict[str, str] = {}
    title = " ".join(str(values.get("titre", "")).split())
    if not title:
        errors["titre"] = "Donnez un titre au document, par exemple « Prise de sang de mars »."
    elif len(title) > TITLE_MAX:
        errors["titre"] = f"Le titre est trop long : {TITLE_MAX} caractères au plus."
    kind = _TYPES_BY_KEY.get(str(values.get("type", "")))
    if kind is None:
        errors["type"] = "Choisissez le type de document dans la liste."
    text = str(values.get("date", "")).strip()
    day = _iso_day(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    if not text:
        errors["date"] = "Indiquez la date du document."
    elif day is None:
        errors["date"] = "Saisissez une date au format jj/mm/aaaa, par exemple 12/04/2025."
    elif day > today:
        errors["date"] = "La date du document ne peut pas être dans le futur."
    elif day < OLDEST:
        errors["date"] = "Cette date est trop ancienne : vérifiez l’année."
    checked: CheckedFile | None = None
    limit = fr_size(max_bytes)
    if too_large:
        errors["fichier"] = f"Le fichier est trop volumineux : {limit} au plus."
    elif not data:
        errors["fichier"] = "Choisissez le fichier à ajouter (PDF, JPEG ou PNG)."
    elif len(data) > max_bytes:
        errors["fichier"] = f"Le fichier est trop volumineux : {limit} au plus."
    else:
        try:
            checked = check_file(data)
        except FileRefused as refused:
            errors["fichier"] = str(refused)
    if errors or kind is None or day is None or checked is None:
        return None, errors
    return UploadDraft(title, kind, day, checked), {}


# -- the transactions --------------------------------------------------------------------------------


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def new_document(
    draft: UploadDraft, *, patient_ref: str, author_ref: str, binary_url: str, now_instant: str
) -> dict[str, Any]:
    """The DocumentReference of a document the person adds (class 90, their type, their date)."""
    data = draft.file.data
    kind = draft.kind
    return {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {"system": LOINC, "code": kind.loinc, "display": kind.loinc_display},
                {"system": TRE_A05_TYPE, "code": kind.dmp, "display": kind.dmp_display},
            ],
            "text": kind.label,
        },
        "category": [
            {
                "coding": [
                    {
                        "system": TRE_A03_CLASS,
                        "code": PATIENT_CLASS,
                        "display": "Autres documents déposés par le patient",
                    }
                ]
            }
        ],
        "subject": {"reference": patient_ref},
        "date": now_instant,
        "author": [{"reference": author_ref}],
        "description": draft.title,
        "securityLabel": [{"coding": [{"system": CONFIDENTIALITY, "code": "N"}]}],
        "content": [
            {
                "attachment": {
                    "contentType": draft.file.content_type,
                    "language": "fr-FR",
                    "url": binary_url,
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
                    "title": draft.title,
                    "creation": draft.day.isoformat(),
                },
                "format": {
                    "system": IHE_FORMAT,
                    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    "display": "mimeType Sufficient",
                },
            }
        ],
        "context": {"period": {"start": draft.day.isoformat()}},
    }


def upload_bundle(
    draft: UploadDraft,
    *,
    patient_ref: str,
    author_ref: str,
    now_instant: str,
    replaces: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The person's upload as one transaction (see :func:`document_transaction`)."""
    document = new_document(
        draft, patient_ref=patient_ref, author_ref=author_ref, binary_url="", now_instant=now_instant
    )
    return document_transaction(
        document, draft.file.content_type, draft.file.data, patient_ref=patient_ref, replaces=replaces
    )


def document_transaction(
    document: dict[str, Any],
    content_type: str,
    data: bytes,
    *,
    patient_ref: str,
    replaces: Mapping[str, Any] | None = None,
    keep_labels: bool = True,
) -> dict[str, Any]:
    """One transaction: the content (Binary), its DocumentReference (its first content pointing
    at the Binary) and, for a new version, the previous one marked ``superseded`` (only if nobody
    changed it meanwhile: ``ifMatch``). With ``keep_labels`` the new version keeps the former
    one's labels (what the person chose about who sees it: a mask stays, on the new content too,
    as the ``$mask`` operation puts it); a professional depositing a new version chooses them
    again instead."""
    binary_urn, document_urn = _urn(), _urn()
    binary: dict[str, Any] = {
        "resourceType": "Binary",
        "contentType": content_type,
        "securityContext": {"reference": patient_ref},
        "data": base64.b64encode(data).decode("ascii"),
    }
    document["content"][0]["attachment"]["url"] = binary_urn
    entries: list[dict[str, Any]] = [
        {"fullUrl": binary_urn, "resource": binary, "request": {"method": "POST", "url": "Binary"}},
    ]
    if replaces is not None:
        previous_id = str(replaces["id"])
        document["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{previous_id}"}}
        ]
        if keep_labels:
            document["securityLabel"] = replaces.get("securityLabel") or document.get("securityLabel", [])
        if is_masked(document) or (keep_labels and is_masked(replaces)):
            binary["meta"] = {"security": [{"system": TRE_A07_VISIBILITY, "code": MASKED_FROM_PROFESSIONALS}]}
        superseded = {k: v for k, v in replaces.items() if k != "meta"}
        superseded["status"] = "superseded"
        request: dict[str, Any] = {"method": "PUT", "url": f"DocumentReference/{previous_id}"}
        version = (replaces.get("meta") or {}).get("versionId")
        if version:
            request["ifMatch"] = f'W/"{version}"'
        entries.append(
            {
                "fullUrl": f"DocumentReference/{previous_id}",
                "resource": superseded,
                "request": request,
            }
        )
    entries.append(
        {
            "fullUrl": document_urn,
            "resource": document,
            "request": {"method": "POST", "url": "DocumentReference"},
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def deletion_bundle(documents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One transaction deleting these DocumentReferences (a document and its former versions).
    Their content (Binary) stays, unreachable: a patient never rewrites content (the policy)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": f"DocumentReference/{d['id']}"}} for d in documents
        ],
    }


def binary_id(resource: Mapping[str, Any], index: int = 0) -> str | None:
    """The id of the Binary holding the ``index``-th content (``Binary/x`` or a URL ending so)."""
    contents = [c for c in resource.get("content") or [] if isinstance(c, dict)]
    if not 0 <= index < len(contents):
        return None
    url = str((contents[index].get("attachment") or {}).get("url") or "")
    match = re.fullmatch(r"(?:.*/)?Binary/([A-Za-z0-9\-.]{1,64})", url)
    return match.group(1) if match else None
