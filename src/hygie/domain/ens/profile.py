"""The person's profile (*Mon profil*): identity, contact details, relatives and personal wishes.

* **Civil status** — the INS traits (birth names and first names, birth date, sex, birth place),
  the INS and its trust status, read from the ``fr-core-patient-ins`` Patient
  (:mod:`hygie.domain.identity.fr_core`); read-only: only an identity check changes them.
* **Used names** — ``Patient.name`` with ``use = usual`` (*nom d'usage*, *prénom utilisé*), which
  the person may set or clear; **contact details** — ``Patient.telecom`` (phone, e-mail).
* **Trusted person** (*personne de confiance*, CSP L.1111-6) — a ``RelatedPerson`` with the role
  TRE_R260-HL7RoleClass ``NOK`` and the family link (v3-RoleCode). Being named opens no access
  to the record (``domain/relations.py``); only if the person ticks it does the RelatedPerson also
  carry the ``CAREGIVER`` role, which makes them an aidant.
* **Advance directives** (*directives anticipées*, CSP L.1111-11) — a yes/no ``Observation``
  (LOINC 75320-2) saying whether the person wrote some and where they are kept, and the document
  itself: a PDF in a ``DocumentReference`` (LOINC 75320-2 and TRE_A05 ``EXPPAT_3``, class 90).
* **Organ donation** — the position the person states, as a ``Consent`` (scope ``adr``, after
  the Australian organ donor register's profile): presumed consent applies in France, and only
  the national refusal register (*registre national des refus*) makes a refusal official; the
  Consent records what the person wants their relatives and carers to know.

Pure functions: they check what was typed (French message per field) and build resources.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hygie.domain.identity.fr_core import EXT_BIRTH_PLACE, identity_state_of, ins_of, traits_of
from hygie.domain.identity.status import IdentityError
from hygie.domain.relations import EXPLICIT_AIDANT_CODE, TRUSTED_PERSON_CODE, relations_from

__all__ = [
    "DIRECTIVE_LOINC",
    "DIRECTIVE_PLACES",
    "DONATION_CHOICES",
    "LINKS",
    "ORGANS",
    "CivilStatus",
    "Donation",
    "Related",
    "check_pdf",
    "civil_status",
    "directive_document",
    "directive_flag",
    "donation_consent",
    "donation_of",
    "flag_of",
    "related_view",
    "trusted_person",
    "with_contact",
    "with_used_names",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ROLE_CLASS = "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
TRE_A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
TRE_A05 = "https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
DIRECTIVE_LOINC = "75320-2"
DIRECTIVE_PLACE_SYSTEM = "https://hygie.esante.example/fhir/CodeSystem/advance-directive-location"
DONATION_CATEGORY = "64300-7"  # LOINC, as in the Australian organ donor register's Consent
CONSENT_CATEGORY = "59284-0"  # LOINC "Consent"
DONATION_ACTION = "53958007"  # SNOMED CT, the same profile's action (removal for donation)
FRENCH_DONATION_LAW = "https://www.legifrance.gouv.fr/codes/article_lc/LEGIARTI000031972232"
MAX_PDF_BYTES = 5 * 1024 * 1024

_STATUS = {
    "PROV": ("Identité provisoire", "Votre identité n’a pas encore été vérifiée."),
    "RECUP": (
        "Identité récupérée",
        "Vos traits d’identité viennent du téléservice INSi de l’Assurance maladie, "
        "mais n’ont pas été vérifiés sur une pièce d’identité.",
    ),
    "VALI": (
        "Identité validée",
        "Votre identité a été vérifiée sur une pièce d’identité, mais pas auprès du téléservice INSi.",
    ),
    "QUAL": (
        "Identité qualifiée",
        "Votre identité a été vérifiée sur une pièce d’identité et auprès du téléservice INSi : "
        "votre INS peut être utilisé par vos soignants.",
    ),
}
_SEX = {"male": "Masculin", "female": "Féminin", "other": "Autre", "unknown": "Non renseigné"}

# the family links a trusted person may have (v3-RoleCode); the role itself is NOK
LINKS: dict[str, str] = {
    "SPS": "Conjoint ou conjointe",
    "DOMPART": "Partenaire (pacs, concubinage)",
    "CHILD": "Enfant",
    "PRN": "Parent",
    "SIB": "Frère ou sœur",
    "FAMMEMB": "Autre membre de la famille",
    "FRND": "Ami ou amie",
    "NBOR": "Voisin ou voisine",
    "O": "Autre",
}
DIRECTIVE_PLACES: dict[str, str] = {
    "dossier": "Dans ce dossier (document ajouté ci-dessous)",
    "domicile": "À mon domicile",
    "medecin": "Chez mon médecin traitant",
    "confiance": "Chez ma personne de confiance",
    "proche": "Chez un proche",
    "etablissement": "Dans un établissement de santé ou médico-social",
    "autre": "Ailleurs",
}
DONATION_CHOICES: dict[str, str] = {
    "accepte": "Je ne m’oppose pas au don de mes organes et tissus",
    "refus-partiel": "Je refuse le prélèvement de certains organes ou tissus",
    "refus": "Je refuse tout prélèvement de mes organes et tissus",
}
# organs and tissues one may refuse (SNOMED CT body structures)
ORGANS: dict[str, tuple[str, str]] = {
    "coeur": ("80891009", "Cœur"),
    "poumons": ("39607008", "Poumons"),
    "reins": ("64033007", "Reins"),
    "foie": ("10200004", "Foie"),
    "pancreas": ("15776009", "Pancréas"),
    "intestins": ("113276009", "Intestins"),
    "cornees": ("28726007", "Cornées"),
    "peau": ("39937001", "Peau"),
}

_NAME_RE = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿŒœ' \-’]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_RE = re.compile(r"^(?:\+(\d{2,3})|0)(\d{9})$")


def _text(values: Mapping[str, str], name: str) -> str:
    return " ".join(str(values.get(name, "")).split())


# --------------------------------------------------------------------------- civil status
@dataclass(frozen=True, slots=True)
class CivilStatus:
    birth_name: str
    birth_given: str  # all birth first names, in order
    first_given: str
    birth_date: date | None
    sex: str
    birth_place: str
    ins: str | None
    ins_kind: str  # "INS (NIR)", "NIA (numéro provisoire)"…
    status: str  # PROV, RECUP, VALI, QUAL
    status_label: str
    status_help: str
    used_name: str
    used_given: str
    incomplete: bool = False


def _birth_place(patient: Mapping[str, Any]) -> str:
    for ext in patient.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == EXT_BIRTH_PLACE:
            address = ext.get("valueAddress") or {}
            city = address.get("city")
            if city:
                postal = address.get("postalCode")
                return f"{city} ({postal})" if postal else str(city)
            return str(address.get("country") or address.get("text") or "")
    return ""


def civil_status(patient: Mapping[str, Any]) -> CivilStatus:
    """The civil status of a Patient, as tolerant as a page must be (missing traits: empty)."""
    incomplete = False
    try:
        traits = traits_of(patient)
        birth_name, given = traits.birth_name, " ".join(traits.birth_given_names)
        first = traits.birth_given_names[0] if traits.birth_given_names else ""
        birth_date: date | None = traits.birth_date
        used_name, used_given = traits.used_name or "", traits.used_first_name or ""
    except (IdentityError, ValueError):
        incomplete = True
        official: Mapping[str, Any] = next(
            (n for n in patient.get("name", []) or [] if n.get("use") != "usual"), {}
        )
        birth_name = str(official.get("family", ""))
        given = " ".join(official.get("given", []) or [])
        first = (official.get("given") or [""])[0]
        raw = patient.get("birthDate")
        birth_date = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
        usual: Mapping[str, Any] = next(
            (n for n in patient.get("name", []) or [] if n.get("use") == "usual"), {}
        )
        used_name, used_given = str(usual.get("family", "")), (usual.get("given") or [""])[0]
    try:
        ins = ins_of(patient)
    except (IdentityError, ValueError):
        ins = None
    try:
        status = str(identity_state_of(patient).status)
    except (IdentityError, ValueError):
        status = "PROV"
    status = status if status in _STATUS else "PROV"
    kind = ""
    if ins is not None:
        kind = {
            "NIA": "NIA (numéro d’attente provisoire)",
            "demo": "INS de démonstration",
            "test": "INS de test",
        }.get(ins.kind, "INS (numéro de sécurité sociale)")
    label, help_text = _STATUS[status]
    return CivilStatus(
        birth_name=birth_name,
        birth_given=given,
        first_given=first,
        birth_date=birth_date,
        sex=_SEX.get(str(patient.get("gender")), "Non renseigné"),
        birth_place=_birth_place(patient),
        ins=ins.matricule if ins is not None else None,
        ins_kind=kind,
        status=status,
        status_label=label,
        status_help=help_text,
        used_name=used_name,
        used_given=used_given,
        incomplete=incomplete,
    )


def _name_problem(value: str, what: str) -> str | None:
    if len(value) > 100:
        return f"{what} est trop long (100 caractères au plus)."
    if value and not _NAME_RE.match(value):
        return f"{what} ne peut contenir que des lettres, des espaces, des tirets et des apostrophes."
    return None


def with_used_names(
    patient: Mapping[str, Any], values: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The Patient with its used name and first name (``use = usual``) as typed; empty clears."""
    errors: dict[str, str] = {}
    family, given = _text(values, "nom_usage"), _text(values, "prenom_utilise")
    for name, value, what in (
        ("nom_usage", family, "Le nom d’usage"),
        ("prenom_utilise", given, "Le prénom utilisé"),
    ):
        problem = _name_problem(value, what)
        if problem:
            errors[name] = problem
    names = [n for n in patient.get("name", []) or [] if n.get("use") != "usual"]
    if family or given:
        usual: dict[str, Any] = {"use": "usual"}
        if family:
            usual["family"] = family.upper()
        if given:
            usual["given"] = [given]
        names.append(usual)
    return {**patient, "name": names}, errors


def normalize_phone(text: str) -> str | None:
    """A French or international phone number as ``+33 6 12 34 56 78`` (None if not one)."""
    digits = re.sub(r"[\s.\-()]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    match = _PHONE_RE.match(digits)
    if not match:
        return None
    country, rest = match.group(1) or "33", match.group(2)
    return f"+{country} {rest[0]} " + " ".join(rest[i : i + 2] for i in range(1, 9, 2))


def _contact_fields(values: Mapping[str, str], errors: dict[str, str]) -> tuple[str, str]:
    phone_text, email = _text(values, "telephone"), _text(values, "courriel")
    phone = ""
    if phone_text:
        normalized = normalize_phone(phone_text)
        if normalized is None:
            errors["telephone"] = (
                "Ce numéro de téléphone n’est pas valide : 10 chiffres, par exemple 06 12 34 56 78."
            )
        else:
            phone = normalized
    if email and (len(email) > 200 or not _EMAIL_RE.match(email)):
        errors["courriel"] = (
            "Cette adresse électronique n’est pas valide : par exemple prenom.nom@exemple.fr."
        )
    return phone, email.lower()


def with_contact(
    patient: Mapping[str, Any], values: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The Patient with its phone and e-mail as typed (other contact points kept)."""
    errors: dict[str, str] = {}
    phone, email = _contact_fields(values, errors)
    kept = [t for t in patient.get("telecom", []) or [] if t.get("system") not in ("phone", "email")]
    telecom = list(kept)
    if phone:
        telecom.append({"system": "phone", "value": phone, "use": "mobile"})
    if email:
        telecom.append({"system": "email", "value": email, "use": "home"})
    out = {**patient, "telecom": telecom}
    if not telecom:
        out.pop("telecom")
    return out, errors


def contact_of(resource: Mapping[str, Any]) -> dict[str, str]:
    telecom = resource.get("telecom", []) or []
    phone = next((t.get("value", "") for t in telecom if t.get("system") == "phone"), "")
    email = next((t.get("value", "") for t in telecom if t.get("system") == "email"), "")
    return {"telephone": str(phone), "courriel": str(email)}


# --------------------------------------------------------------------------- relatives
def trusted_person(
    values: Mapping[str, str], *, patient_ref: str, today: date
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """A trusted person's RelatedPerson from the form; access to the record only if ticked."""
    errors: dict[str, str] = {}
    family, given = _text(values, "nom"), _text(values, "prenom")
    if not family:
        errors["nom"] = "Écrivez le nom de la personne."
    if not given:
        errors["prenom"] = "Écrivez le prénom de la personne."
    for name, value, what in (("nom", family, "Le nom"), ("prenom", given, "Le prénom")):
        problem = _name_problem(value, what)
        if problem:
            errors.setdefault(name, problem)
    link = _text(values, "lien")
    if link not in LINKS:
        errors["lien"] = "Choisissez votre lien avec cette personne dans la liste."
    phone, email = _contact_fields(values, errors)
    if not phone and not email and "telephone" not in errors and "courriel" not in errors:
        errors["telephone"] = (
            "Donnez au moins un moyen de joindre cette personne : téléphone ou adresse électronique."
        )
    access = values.get("acces") == "oui"
    if errors:
        return None, errors
    relationship: list[dict[str, Any]] = [
        {
            "coding": [
                {"system": ROLE_CLASS, "code": TRUSTED_PERSON_CODE, "display": "personne de confiance"}
            ],
            "text": "Personne de confiance",
        },
        {"coding": [{"system": ROLE_CODE, "code": link}], "text": LINKS[link]},
    ]
    if access:
        relationship.append(
            {
                "coding": [{"system": ROLE_CLASS, "code": EXPLICIT_AIDANT_CODE, "display": "Aidant"}],
                "text": "Aidant, avec accès au dossier",
            }
        )
    telecom = []
    if phone:
        telecom.append({"system": "phone", "value": phone, "use": "mobile"})
    if email:
        telecom.append({"system": "email", "value": email, "use": "home"})
    return {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": patient_ref},
        "relationship": relationship,
        "name": [{"use": "official", "family": family.upper(), "given": [given]}],
        "telecom": telecom,
        "period": {"start": today.isoformat()},
    }, errors


@dataclass(frozen=True, slots=True)
class Related:
    """A relative as the profile lists them."""

    id: str
    name: str
    roles: tuple[str, ...]  # French labels: "Personne de confiance", "Parent"…
    trusted: bool  # named trusted person (the person may remove them here)
    access: str | None  # "aidant" / "representative" when the relative may act in the record
    contact: str


def _relationship_labels(resource: Mapping[str, Any]) -> list[str]:
    out = []
    for concept in resource.get("relationship", []) or []:
        if not isinstance(concept, dict):
            continue
        text = concept.get("text")
        codes = [c.get("code") for c in concept.get("coding", []) or [] if isinstance(c, dict)]
        if text:
            out.append(str(text))
        elif any(c in LINKS for c in codes):
            out.append(next(LINKS[c] for c in codes if c in LINKS))
        elif "MTH" in codes:
            out.append("Mère")
        elif "FTH" in codes:
            out.append("Père")
        elif "GUARD" in codes:
            out.append("Tuteur ou tutrice")
        elif "CAREGIVER" in codes:
            out.append("Aidant")
    return out


def related_view(resource: Mapping[str, Any], *, majority_us: int | None, now_us: int) -> Related:
    """A RelatedPerson as the profile shows it, with whether it may act in the record (as the
    access rules derive it, :func:`~hygie.domain.relations.relations_from`)."""
    names = resource.get("name") or [{}]
    name = names[0] if isinstance(names, list) and names else {}
    full = " ".join([*(name.get("given") or [])[:1], str(name.get("family", "")).upper()]).strip()
    codes = {
        c.get("code")
        for concept in resource.get("relationship", []) or []
        if isinstance(concept, dict)
        for c in concept.get("coding", []) or []
        if isinstance(c, dict)
    }
    rows = [
        r
        for r in relations_from(dict(resource), majority_us=majority_us)
        if r.expires_us is None or r.expires_us > now_us
    ]
    access = rows[0].kind if rows else None
    contact = contact_of(resource)
    return Related(
        id=str(resource.get("id", "")),
        name=full or str(name.get("text", "")) or "Sans nom",
        roles=tuple(_relationship_labels(resource)),
        trusted=TRUSTED_PERSON_CODE in codes,
        access=access,
        contact=" · ".join(v for v in (contact["telephone"], contact["courriel"]) if v),
    )


# --------------------------------------------------------------------------- advance directives
@dataclass(frozen=True, slots=True)
class Flag:
    has: bool | None  # None: not said
    place: str  # a key of DIRECTIVE_PLACES or ""
    detail: str
    day: str


def directive_flag(
    values: Mapping[str, str], *, patient_ref: str, actor_ref: str, now: str
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The yes/no Observation "I wrote advance directives, kept there" (LOINC 75320-2)."""
    errors: dict[str, str] = {}
    answer = _text(values, "redigees")
    if answer not in ("oui", "non"):
        errors["redigees"] = "Dites si vous avez rédigé des directives anticipées."
    place, detail = _text(values, "lieu"), _text(values, "precision")
    if answer == "oui" and place not in DIRECTIVE_PLACES:
        errors["lieu"] = "Choisissez où elles sont conservées."
    if len(detail) > 300:
        errors["precision"] = "Ce texte est trop long (300 caractères au plus)."
    if errors:
        return None, errors
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": LOINC, "code": DIRECTIVE_LOINC, "display": "Advance directive"}],
            "text": "Directives anticipées",
        },
        "subject": {"reference": patient_ref},
        "effectiveDateTime": now,
        "performer": [{"reference": actor_ref}],
        "valueBoolean": answer == "oui",
    }
    if answer == "oui":
        resource["component"] = [
            {
                "code": {
                    "coding": [{"system": DIRECTIVE_PLACE_SYSTEM, "code": "location"}],
                    "text": "Lieu de conservation",
                },
                "valueCodeableConcept": {
                    "coding": [{"system": DIRECTIVE_PLACE_SYSTEM, "code": place}],
                    "text": DIRECTIVE_PLACES[place],
                },
            }
        ]
        if detail:
            resource["note"] = [{"text": detail}]
    return resource, errors


def flag_of(resource: Mapping[str, Any] | None) -> Flag:
    if not resource:
        return Flag(None, "", "", "")
    place = ""
    for component in resource.get("component", []) or []:
        for coding in (component.get("valueCodeableConcept") or {}).get("coding", []) or []:
            if coding.get("system") == DIRECTIVE_PLACE_SYSTEM and coding.get("code") in DIRECTIVE_PLACES:
                place = str(coding["code"])
    note = (resource.get("note") or [{}])[0].get("text", "")
    value = resource.get("valueBoolean")
    return Flag(
        value if isinstance(value, bool) else None,
        place,
        str(note),
        str(resource.get("effectiveDateTime", ""))[:10],
    )


def check_pdf(filename: str, content_type: str, data: bytes, *, max_bytes: int = MAX_PDF_BYTES) -> str | None:
    """Why an upload is not an acceptable PDF (a French sentence), or None."""
    if not data:
        return "Le fichier est vide."
    if len(data) > max_bytes:
        return f"Le fichier est trop volumineux : {max_bytes // (1024 * 1024)} Mo au plus."
    if not filename.lower().endswith(".pdf") or content_type not in (
        "application/pdf",
        "application/x-pdf",
        "application/octet-stream",
    ):
        return "Seuls les fichiers PDF sont acceptés."
    if not data.startswith(b"%PDF-"):
        return "Ce fichier n’est pas un PDF : enregistrez votre document au format PDF et recommencez."
    import pypdf  # noqa: PLC0415 - only for uploads
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return "Ce PDF est protégé par un mot de passe : enregistrez-le sans protection et recommencez."
        pages = len(reader.pages)
        if pages == 0:
            return "Ce PDF ne contient aucune page."
        reader.pages[0].extract_text()  # the first page must be readable
    except (
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        OSError,
        RecursionError,
        AttributeError,
        IndexError,
    ):
        return "Ce PDF est endommagé et ne peut pas être lu : enregistrez-le de nouveau et recommencez."
    return None


def directive_document(
    *, filename: str, data: bytes, patient_ref: str, actor_ref: str, now: str, title: str
) -> dict[str, Any]:
    """The advance directives as a DocumentReference carrying its PDF (one write, no partial state)."""
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {"system": LOINC, "code": DIRECTIVE_LOINC, "display": "Advance directive"},
                {"system": TRE_A05, "code": "EXPPAT_3", "display": "Directives anticipées"},
            ],
            "text": "Directives anticipées",
        },
        "category": [{"coding": [{"system": TRE_A03, "code": "90", "display": "Document du patient"}]}],
        "subject": {"reference": patient_ref},
        "date": now,
        "author": [{"reference": actor_ref}],
        "description": title or "Mes directives anticipées",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "fr-FR",
                    "data": base64.b64encode(data).decode("ascii"),
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
                    "title": filename[-120:],
                    "creation": now,
                }
            }
        ],
    }


# --------------------------------------------------------------------------- organ donation
@dataclass(frozen=True, slots=True)
class Donation:
    choice: str  # a key of DONATION_CHOICES or ""
    organs: tuple[str, ...] = field(default_factory=tuple)
    day: str = ""


def donation_consent(
    values: Mapping[str, str], organs: Sequence[str], *, patient_ref: str, actor_ref: str, now: str
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The person's stated position on organ donation as a Consent (scope ``adr``)."""
    errors: dict[str, str] = {}
    choice = _text(values, "position")
    if choice not in DONATION_CHOICES:
        errors["position"] = "Choisissez votre position dans la liste."
    unknown = [o for o in organs if o not in ORGANS]
    chosen = [o for o in ORGANS if o in organs]
    if unknown:
        errors["organes"] = "Choisissez les organes dans la liste."
    elif choice == "refus-partiel" and not chosen:
        errors["organes"] = "Cochez les organes ou tissus dont vous refusez le prélèvement."
    if errors:
        return None, errors
    action = [
        {
            "coding": [{"system": SNOMED, "code": DONATION_ACTION}],
            "text": "Prélèvement d’organes et de tissus en vue de don",
        }
    ]
    provision: dict[str, Any] = {"type": "deny" if choice == "refus" else "permit", "action": action}
    if choice == "refus-partiel":
        provision["provision"] = [
            {
                "type": "deny",
                "action": action,
                "code": [{"coding": [{"system": SNOMED, "code": ORGANS[o][0]}], "text": ORGANS[o][1]}],
            }
            for o in chosen
        ]
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "adr"}], "text": "Volontés"},
        "category": [
            {"coding": [{"system": LOINC, "code": CONSENT_CATEGORY}]},
            {"coding": [{"system": LOINC, "code": DONATION_CATEGORY}], "text": "Don d’organes et de tissus"},
        ],
        "patient": {"reference": patient_ref},
        "dateTime": now,
        "performer": [{"reference": actor_ref}],
        "policy": [{"uri": FRENCH_DONATION_LAW}],
        "provision": provision,
    }, errors


def donation_of(resource: Mapping[str, Any] | None) -> Donation:
    if not resource or resource.get("status") != "active":
        return Donation("")
    provision = resource.get("provision") or {}
    refused: list[str] = []
    for child in provision.get("provision", []) or []:
        codes = {
            c.get("code") for concept in child.get("code", []) or [] for c in concept.get("coding", []) or []
        }
        refused.extend(k for k, (code, _) in ORGANS.items() if code in codes)
    if provision.get("type") == "deny":
        choice = "refus"
    elif refused:
        choice = "refus-partiel"
    else:
        choice = "accepte"
    return Donation(choice, tuple(refused), str(resource.get("dateTime", ""))[:10])


def is_donation(resource: Mapping[str, Any]) -> bool:
    return any(
        c.get("code") == DONATION_CATEGORY
        for concept in resource.get("category", []) or []
        for c in concept.get("coding", []) or []
    )
