"""Read and write the INS identity of a FHIR Patient in the FR Core ``fr-core-patient-ins`` form.

The profile (digest §1.7) carries the INS in three places, all read and written here so that the rest
of the code works with plain values (:class:`Ins`, :class:`InsTraits`,
:class:`~hygie.domain.identity.status.IdentityState`) instead of JSON paths:

* the **matricule** in ``identifier`` (system = OID of NIR, NIA, test or demo INS; type from
  ``fr-core-cs-v2-0203``; ``use`` official, or temp for a NIA; ``old`` = deactivated, ignored);
* the **traits**: official ``name`` (``family`` = birth name, ``given`` = first birth given name only,
  the full list in the ``fr-core-patient-birth-list-given-name`` extension, space-separated),
  ``gender``, ``birthDate`` and the ``patient-birthPlace`` extension with the INSEE commune code in
  ``fr-core-address-insee-code``; a person born abroad has ``99`` + the INSEE country code, written in
  ``address.country`` (the generator's older form, the code inside ``text``, is also read). The used
  name and first name (``use = usual``) are complementary traits;
* the **trust status** in the ``fr-core-identity-reliability`` extension, sub-extensions
  ``identityStatus``, ``methodCollection``, ``dateInterrogationINSi``, ``validationDate``,
  ``validationMode``, ``comment``.

The RNIV attributes (``DOUT``, ``FICT``, ``HOMD``, ``HOMA``) have no place in that extension: they are
written as ``meta.tag`` codings of :data:`IDENTITY_ATTRIBUTE_SYSTEM` (*design note*: a Hygie code
system, not a national one).

Everything is pure: functions take dicts and return new dicts, never mutating their input.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal, TypeVar

from hygie.domain.identity.nir import (
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_SYSTEM,
    INS_NIR_TEST_SYSTEM,
    INS_TYPE_SYSTEM,
    InvalidNir,
    normalize_nir,
    parse_nir,
)
from hygie.domain.identity.status import (
    CollectionMethod,
    IdentityAttribute,
    IdentityError,
    IdentityState,
    IdentityStatus,
    ValidationMode,
    check_state,
)

__all__ = [
    "EXT_BIRTH_LIST_GIVEN_NAME",
    "EXT_BIRTH_PLACE",
    "EXT_IDENTITY_RELIABILITY",
    "EXT_INSEE_CODE",
    "IDENTITY_ATTRIBUTE_SYSTEM",
    "IDENTITY_STATUS_SYSTEM",
    "METHOD_COLLECTION_SYSTEM",
    "PROFILE_PATIENT_INS",
    "TRE_R13_COMMUNE",
    "VALIDATION_MODE_SYSTEM",
    "Gender",
    "IncompleteTraits",
    "Ins",
    "InsKind",
    "InsTraits",
    "InvalidIns",
    "identity_state_of",
    "ins_identifier",
    "ins_of",
    "normalize_name",
    "patient_from_traits",
    "reliability_extension",
    "traits_of",
    "with_identity_state",
]

FR_CORE_SD: Final = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
PROFILE_PATIENT_INS: Final = FR_CORE_SD + "fr-core-patient-ins"
EXT_IDENTITY_RELIABILITY: Final = FR_CORE_SD + "fr-core-identity-reliability"
EXT_BIRTH_LIST_GIVEN_NAME: Final = FR_CORE_SD + "fr-core-patient-birth-list-given-name"
EXT_INSEE_CODE: Final = FR_CORE_SD + "fr-core-address-insee-code"
EXT_BIRTH_PLACE: Final = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
IDENTITY_STATUS_SYSTEM: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status"
VALIDATION_MODE_SYSTEM: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-mode-validation-identity"
METHOD_COLLECTION_SYSTEM: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-method-collection"
TRE_R13_COMMUNE: Final = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
IDENTITY_ATTRIBUTE_SYSTEM: Final = "https://hygie.esante.example/fhir/CodeSystem/identity-attribute"
"""Hygie code system for RNIV attributes in ``meta.tag`` (design note: no FR Core element for them)."""

InsKind = Literal["NIR", "NIA", "test", "demo"]
Gender = Literal["male", "female", "other", "unknown"]

_KIND_BY_SYSTEM: Final[dict[str, InsKind]] = {
    INS_NIR_SYSTEM: "NIR",
    INS_NIA_SYSTEM: "NIA",
    INS_NIR_TEST_SYSTEM: "test",
    INS_NIR_DEMO_SYSTEM: "demo",
}
_SYSTEM_BY_KIND: Final[dict[InsKind, str]] = {kind: system for system, kind in _KIND_BY_SYSTEM.items()}
_TYPE_BY_KIND: Final[dict[InsKind, str]] = {
    "NIR": "INS-NIR",
    "NIA": "INS-NIA",
    "test": "INS-NIR-TEST",
    "demo": "INS-NIR-DEMO",
}
_KIND_PREFERENCE: Final[tuple[InsKind, ...]] = ("NIR", "test", "demo", "NIA")
_ABROAD_RE: Final = re.compile(r"\b(99[0-9]{3})\b")
_PLACE_RE: Final = re.compile(r"^(?:[0-9]{2}|2[AB])[0-9]{3}$")
_SEPARATORS_RE: Final = re.compile(r"[-‐‑‒–—'’‘`´_.,]")
_SPACES_RE: Final = re.compile(r"\s+")
_LIGATURES: Final = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


class InvalidIns(IdentityError):
    """An INS identifier whose matricule fails the NIR/NIA checks."""

    code = "invalid-ins"


class IncompleteTraits(IdentityError):
    """A Patient that lacks a trait the INS representation requires (birth name, sex, birth date)."""

    code = "incomplete-traits"


def normalize_name(value: str) -> str:
    """A name reduced for comparison: no accents, upper case, hyphens/apostrophes as spaces, single spaces.

    ``"Jean-François d'Arc"`` and ``"JEAN FRANCOIS D ARC"`` compare equal; ligatures are expanded
    (``Œ``→``OE``). This is how INSi-style comparisons tolerate typing differences, not how names are
    stored: the stored traits keep the register's spelling.
    """
    text = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _SEPARATORS_RE.sub(" ", text)
    return _SPACES_RE.sub(" ", text).strip().upper()


@dataclass(frozen=True, slots=True)
class Ins:
    """An INS matricule (the person's own NIR or NIA) and the kind that gives its OID."""

    matricule: str
    kind: InsKind = "NIR"

    @property
    def system(self) -> str:
        """The FHIR identifier system, ``urn:oid:`` + the OID of this kind of INS."""
        return _SYSTEM_BY_KIND[self.kind]

    @property
    def oid(self) -> str:
        """The bare OID (``1.2.250.1.213.1.4.8`` for a NIR)."""
        return self.system.removeprefix("urn:oid:")

    @property
    def type_code(self) -> str:
        """The ``fr-core-cs-v2-0203`` type code (``INS-NIR``, ``INS-NIA``…)."""
        return _TYPE_BY_KIND[self.kind]

    @property
    def use(self) -> Literal["official", "temp"]:
        """``temp`` for a NIA (a waiting number), ``official`` otherwise."""
        return "temp" if self.kind == "NIA" else "official"

    @classmethod
    def parse(cls, matricule: str, system: str) -> Ins:
        """Check the matricule (length, fields, key) and map the system to its kind.

        Raises :class:`InvalidIns` with a French reason.
        """
        kind = _KIND_BY_SYSTEM.get(system)
        if kind is None:
            raise InvalidIns(f"Le système {system} n'est pas celui d'un INS.", code="not-an-ins-system")
        try:
            parts = parse_nir(matricule)
        except InvalidNir as error:
            raise InvalidIns(_french_nir_problem(matricule, error)) from error
        return cls(str(parts), kind)


def _french_nir_problem(matricule: str, error: InvalidNir) -> str:
    """A French sentence for a rejected matricule (``InvalidNir`` reasons are English, for developers)."""
    value = normalize_nir(matricule)
    if len(value) != 15:
        return f"Matricule INS {matricule} invalide : 15 caractères attendus, {len(value)} saisis."
    if error.reason.startswith("wrong key"):
        return (
            f"Matricule INS {matricule} invalide : la clé de contrôle ne correspond pas (erreur de saisie ?)."
        )
    return f"Matricule INS {matricule} invalide : format non conforme au NIR/NIA."


def ins_identifier(ins: Ins) -> dict[str, Any]:
    """The FHIR ``Identifier`` of an INS, as FR Core writes it."""
    return {
        "use": ins.use,
        "type": {"coding": [{"system": INS_TYPE_SYSTEM, "code": ins.type_code}]},
        "system": ins.system,
        "value": ins.matricule,
    }


@dataclass(frozen=True, slots=True)
class InsTraits:
    """The INS traits of a person (digest §1.5) plus the complementary used name and first name.

    ``birth_given_names`` is the full list of birth first names in birth-record order;
    ``birth_place_code`` is the 5-character INSEE commune code or ``99`` + the INSEE country code.
    """

    birth_name: str
    birth_given_names: tuple[str, ...]
    gender: Gender
    birth_date: date
    birth_place_code: str | None = None
    used_name: str | None = None
    used_first_name: str | None = None

    @property
    def first_given_name(self) -> str:
        """The first birth first name (the only one in ``name.given`` of the official name)."""
        return self.birth_given_names[0] if self.birth_given_names else ""

    @property
    def born_abroad(self) -> bool:
        """True when the birth place code is a country (``99…``)."""
        return bool(self.birth_place_code and self.birth_place_code.startswith("99"))


# --------------------------------------------------------------------------- reading
def ins_of(patient: Mapping[str, Any]) -> Ins | None:
    """The INS of a Patient, or None when it has none.

    Identifiers with ``use = old`` (deactivated matricules) are skipped. When several INS remain, a NIR
    wins over a test or demo INS, which win over a NIA. Raises :class:`InvalidIns` when the chosen
    matricule fails its key: a wrong INS must be corrected, not silently ignored.
    """
    found: dict[InsKind, str] = {}
    for identifier in patient.get("identifier", ()):
        kind = _KIND_BY_SYSTEM.get(identifier.get("system", ""))
        value = identifier.get("value")
        if kind is None or not value or identifier.get("use") == "old":
            continue
        found.setdefault(kind, value)
    for kind in _KIND_PREFERENCE:
        if kind in found:
            return Ins.parse(found[kind], _SYSTEM_BY_KIND[kind])
    return None


def _official_name(patient: Mapping[str, Any]) -> Mapping[str, Any] | None:
    name: Mapping[str, Any]
    for name in patient.get("name", ()):
        if name.get("use") == "official":
            return name
    return None


def _extension(element: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    extension: Mapping[str, Any]
    for extension in element.get("extension", ()):
        if extension.get("url") == url:
            return extension
    return None


def _birth_place_code(patient: Mapping[str, Any]) -> str | None:
    birth_place = _extension(patient, EXT_BIRTH_PLACE)
    if birth_place is None:
        return None
    address = birth_place.get("valueAddress", {})
    insee = _extension(address, EXT_INSEE_CODE)
    if insee is not None:
        code = insee.get("valueCoding", {}).get("code")
        if code:
            return str(code).upper()
    country = str(address.get("country", ""))
    if _ABROAD_RE.fullmatch(country):
        return country
    match = _ABROAD_RE.search(str(address.get("text", "")))
    return match.group(1) if match else None


def traits_of(patient: Mapping[str, Any]) -> InsTraits:
    """The INS traits of a Patient in the ``fr-core-patient-ins`` form.

    Raises :class:`IncompleteTraits` if the official name, the gender or the birth date is missing.
    Without the birth-list extension, the official ``given`` names are taken as the full list.
    """
    official = _official_name(patient)
    if official is None or not official.get("family"):
        raise IncompleteTraits(
            "Le nom de naissance (nom officiel du patient) est absent.", code="missing-birth-name"
        )
    gender = patient.get("gender")
    if gender not in ("male", "female", "other", "unknown"):
        raise IncompleteTraits("Le sexe du patient est absent.", code="missing-gender")
    birth = patient.get("birthDate")
    if not birth or len(birth) != 10:
        raise IncompleteTraits(
            "La date de naissance complète du patient est absente.", code="missing-birth-date"
        )
    birth_list = _extension(official, EXT_BIRTH_LIST_GIVEN_NAME)
    if birth_list is not None and birth_list.get("valueString", "").strip():
        given = tuple(birth_list["valueString"].split())
    else:
        given = tuple(official.get("given", ()))
    used_name = used_first = None
    for name in patient.get("name", ()):
        if name.get("use") == "usual":
            used_name = name.get("family") or None
            used_first = (name.get("given") or [None])[0]
            break
    return InsTraits(
        birth_name=official["family"],
        birth_given_names=given,
        gender=gender,
        birth_date=date.fromisoformat(birth),
        birth_place_code=_birth_place_code(patient),
        used_name=used_name,
        used_first_name=used_first,
    )


def _coding_code(extension: Mapping[str, Any]) -> str:
    return str(extension.get("valueCoding", {}).get("code", ""))


def _date_value(extension: Mapping[str, Any]) -> date:
    raw = extension.get("valueDate") or extension.get("valueDateTime") or ""
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError as error:
        raise IdentityError(
            f"Date illisible dans la fiabilité de l'identité : {raw!r}.", code="bad-date"
        ) from error


def identity_state_of(patient: Mapping[str, Any]) -> IdentityState:
    """The trust state of a Patient: its ``fr-core-identity-reliability`` extension plus attribute tags.

    A Patient without the extension is ``PROV`` (a new, unverified identity). Unknown codes raise
    :class:`~hygie.domain.identity.status.IdentityError` (code ``unknown-code``). The state is returned
    as written; use :func:`~hygie.domain.identity.status.check_state` to check its consistency.
    """
    attributes: set[IdentityAttribute] = set()
    for tag in patient.get("meta", {}).get("tag", ()):
        if tag.get("system") == IDENTITY_ATTRIBUTE_SYSTEM:
            attributes.add(_enum(IdentityAttribute, tag.get("code"), "attribut d'identité"))
    reliability = _extension(patient, EXT_IDENTITY_RELIABILITY)
    if reliability is None:
        return IdentityState(attributes=frozenset(attributes))
    fields: dict[str, Any] = {}
    for sub in reliability.get("extension", ()):
        url = sub.get("url")
        if url == "identityStatus":
            fields["status"] = _enum(IdentityStatus, _coding_code(sub), "statut d'identité")
        elif url == "validationMode":
            fields["validation_mode"] = _enum(ValidationMode, _coding_code(sub), "mode de validation")
        elif url == "methodCollection":
            fields["method_collection"] = _enum(CollectionMethod, _coding_code(sub), "mode de recueil")
        elif url == "validationDate":
            fields["validation_date"] = _date_value(sub)
        elif url == "dateInterrogationINSi":
            fields["insi_query_date"] = _date_value(sub)
        elif url == "comment":
            fields["comment"] = sub.get("valueString") or None
    return IdentityState(attributes=frozenset(attributes), **fields)


_E = TypeVar("_E", IdentityStatus, IdentityAttribute, ValidationMode, CollectionMethod)


def _enum(kind: type[_E], code: object, what: str) -> _E:
    try:
        return kind(str(code))
    except ValueError as error:
        raise IdentityError(f"Code de {what} inconnu : {code!r}.", code="unknown-code") from error


# --------------------------------------------------------------------------- writing
def reliability_extension(state: IdentityState) -> dict[str, Any]:
    """The ``fr-core-identity-reliability`` extension of a state, sub-extensions in the digest's order."""
    subs: list[dict[str, Any]] = [
        {
            "url": "identityStatus",
            "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": state.status.value},
        }
    ]
    if state.method_collection is not None:
        subs.append(
            {
                "url": "methodCollection",
                "valueCoding": {"system": METHOD_COLLECTION_SYSTEM, "code": state.method_collection.value},
            }
        )
    if state.insi_query_date is not None:
        subs.append({"url": "dateInterrogationINSi", "valueDate": state.insi_query_date.isoformat()})
    if state.validation_date is not None:
        subs.append({"url": "validationDate", "valueDate": state.validation_date.isoformat()})
    if state.validation_mode is not None:
        subs.append(
            {
                "url": "validationMode",
                "valueCoding": {"system": VALIDATION_MODE_SYSTEM, "code": state.validation_mode.value},
            }
        )
    if state.comment:
        subs.append({"url": "comment", "valueString": state.comment})
    return {"url": EXT_IDENTITY_RELIABILITY, "extension": subs}


def _with_attribute_tags(meta: Mapping[str, Any], state: IdentityState) -> dict[str, Any]:
    result = dict(meta)
    tags = [t for t in meta.get("tag", ()) if t.get("system") != IDENTITY_ATTRIBUTE_SYSTEM]
    tags.extend(
        {"system": IDENTITY_ATTRIBUTE_SYSTEM, "code": a.value, "display": a.label}
        for a in sorted(state.attributes)
    )
    if tags:
        result["tag"] = tags
    else:
        result.pop("tag", None)
    return result


def with_identity_state(patient: Mapping[str, Any], state: IdentityState) -> dict[str, Any]:
    """A copy of ``patient`` whose reliability extension and attribute tags describe ``state``.

    The extension keeps its position among the Patient's extensions (first when it is new). Raises
    :class:`~hygie.domain.identity.status.IdentityError` if the state is inconsistent
    (:func:`~hygie.domain.identity.status.check_state`), so an impossible state is never stored.
    """
    check_state(state)
    result = copy.deepcopy(dict(patient))
    extension = reliability_extension(state)
    extensions = list(result.get("extension", ()))
    for index, existing in enumerate(extensions):
        if existing.get("url") == EXT_IDENTITY_RELIABILITY:
            extensions[index] = extension
            break
    else:
        extensions.insert(0, extension)
    result["extension"] = extensions
    meta = _with_attribute_tags(result.get("meta", {}), state)
    if meta:
        result["meta"] = meta
    return result


def _birth_place(code: str) -> dict[str, Any]:
    if code.startswith("99"):
        return {"country": code}
    return {
        "extension": [{"url": EXT_INSEE_CODE, "valueCoding": {"system": TRE_R13_COMMUNE, "code": code}}],
        "country": "FR",
    }


def patient_from_traits(
    traits: InsTraits, ins: Ins | None, state: IdentityState, *, patient_id: str | None = None
) -> dict[str, Any]:
    """A ``fr-core-patient-ins`` Patient carrying these traits, INS and trust state.

    The official name has the first birth first name in ``given`` and the whole list in the
    birth-list extension; a ``usual`` name is added when a used name or first name is known. Raises
    :class:`IncompleteTraits` for an empty birth name or an invalid birth place code, and
    :class:`~hygie.domain.identity.status.IdentityError` for an inconsistent state.
    """
    if not traits.birth_name.strip():
        raise IncompleteTraits("Le nom de naissance est obligatoire.", code="missing-birth-name")
    if traits.birth_place_code is not None and not _PLACE_RE.match(traits.birth_place_code.upper()):
        raise IncompleteTraits(
            f"Code de lieu de naissance {traits.birth_place_code!r} invalide : "
            "attendu un code commune INSEE à 5 caractères ou 99 suivi du code pays.",
            code="bad-birth-place",
        )
    official: dict[str, Any] = {"use": "official", "family": traits.birth_name}
    if traits.birth_given_names:
        official["given"] = [traits.first_given_name]
        official["extension"] = [
            {"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": " ".join(traits.birth_given_names)}
        ]
    names = [official]
    if traits.used_name or traits.used_first_name:
        usual: dict[str, Any] = {"use": "usual", "family": traits.used_name or traits.birth_name}
        first = traits.used_first_name or traits.first_given_name
        if first:
            usual["given"] = [first]
        names.append(usual)
    extensions: list[dict[str, Any]] = []
    if traits.birth_place_code:
        extensions.append(
            {"url": EXT_BIRTH_PLACE, "valueAddress": _birth_place(traits.birth_place_code.upper())}
        )
    patient: dict[str, Any] = {"resourceType": "Patient"}
    if patient_id is not None:
        patient["id"] = patient_id
    patient["meta"] = {"profile": [PROFILE_PATIENT_INS]}
    patient["extension"] = extensions
    if ins is not None:
        patient["identifier"] = [ins_identifier(ins)]
    patient["name"] = names
    patient["gender"] = traits.gender
    patient["birthDate"] = traits.birth_date.isoformat()
    return with_identity_state(patient, state)
