"""Identifying a patient and entering the care relationship, as FHIR operations (the BSP's services).

* ``POST Patient/$identify`` — a professional (or an operator, a backend service) identifies a
  patient through the INSi teleservice, by traits (birth name, first name, birth date, sex, birth
  place) or by INS **and** birth date; the answer carries the INSi outcome, the register's INS and
  traits, a minimal identity projection of each local Patient carrying that INS (never clinical
  data), the local records whose traits are close (duplicates, ``domain/identity/matching.py``) and,
  for each match, the caller's relation to it (care relation, emergency access, block, closed
  space, refusal of emergency access) with the next step the portal may offer;
* ``POST Patient/[id]/$identity-check`` — records a check against an identity document and/or a new
  INSi verification, moving the identity status as ``domain/identity/status.py`` says
  (``PROV``→``VALI``, ``RECUP``→``QUAL``, ``PROV``→``RECUP``…); the Patient gets its new version
  through the normal write path (policy, ``If-Match``, history, audit);
* ``POST Patient/[id]/$declare-care`` — a professional without a care relationship declares one,
  attesting the patient's agreement (``patient-present``: Vitale card read or patient in front of
  them; ``patient-consent``: agreement collected remotely) with a reason: the operation writes a
  finished ``Encounter`` naming them (and their structure), which opens the ``encounter`` relation
  for :data:`~hygie.domain.relations.ENCOUNTER_RELATION_DAYS` days (``domain/relations.py``).

**Why operations decide for themselves.** Like the emergency access (``trust.py``), identifying a
patient and declaring a care relation happen *before* any relation exists: the access policy would
refuse both. Each operation therefore checks its caller itself, and records its own
:class:`~hygie.domain.access.Decision` in the patient's audit chain, so the patient sees in their
access history who looked them up and who declared a care relation, with the attestation.

**Enumeration.** An INS is a number one may guess (its first digits are the sex, birth year and
month, and birth place). Identification by INS therefore requires a second trait, the birth date,
and a birth date that the register does not hold for that INS is answered exactly as an unknown
INS ("not found"), so a guessed number learns nothing more. What remains (the day of birth is a
1-in-31 guess once the month is known) is mitigated by who may ask (authenticated professionals
and platform actors only) and by the trace: every lookup that discloses a local record is in that
patient's access history. Traits-based identification needs the four mandatory traits.

The INSi service is behind the :class:`~hygie.domain.identity.insi.InsiService` port; an
:class:`InsiSource` hands it to the operations (:class:`RegisterFile`: the reference register the
demo writes, re-read when the file changes; a real teleservice client would be another source).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, Protocol
from zoneinfo import ZoneInfo

import orjson

from hygie.domain.access import AccessRequest, Caller, Decision
from hygie.domain.ens.notifications import portal_base, tell
from hygie.domain.identity.fr_core import (
    EXT_BIRTH_PLACE,
    IDENTITY_ATTRIBUTE_SYSTEM,
    IDENTITY_STATUS_SYSTEM,
    PROFILE_PATIENT_INS,
    IncompleteTraits,
    Ins,
    InsTraits,
    InvalidIns,
    identity_state_of,
    ins_identifier,
    ins_of,
    patient_from_traits,
    traits_of,
    with_identity_state,
)
from hygie.domain.identity.insi import (
    InsiOutcome,
    InsiResult,
    InsiService,
    RegisterFormatError,
    RegisterInsiService,
    TraitName,
    query_insi,
)
from hygie.domain.identity.matching import find_patient_duplicates
from hygie.domain.identity.nir import (
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_SYSTEM,
    INS_NIR_TEST_SYSTEM,
)
from hygie.domain.identity.status import (
    CollectionMethod,
    IdentityError,
    IdentityState,
    IdentityStatus,
    InsiCallBlocked,
    ValidationMode,
    record_document_check,
    with_comment,
)
from hygie.domain.outbox import Outbox
from hygie.domain.policy import CARE_RELATIONS
from hygie.fhir import resources as res
from hygie.fhir.interactions import parse_if_match
from hygie.fhir.outcome import (
    FhirError,
    Forbidden,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.search import parse_search
from hygie.fhir.targets import target_of
from hygie.ports import StoredResource

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService

__all__ = [
    "ATTESTATIONS",
    "CARE_DECLARATION_SYSTEM",
    "MIN_REASON_CHARS",
    "Duplicate",
    "IdentificationQuery",
    "IdentityServices",
    "InsiSource",
    "RegisterFile",
    "RelationFacts",
    "care_encounter",
    "declare_care",
    "duplicate_warnings",
    "identification_query",
    "identify",
    "identity_check",
    "identity_projection",
    "parameter_values",
    "with_register_identity",
]

PARIS: Final = ZoneInfo("Europe/Paris")
CARE_DECLARATION_SYSTEM: Final = "https://hygie.example/fhir/CodeSystem/care-declaration"
INSI_TRAIT_SYSTEM: Final = "https://hygie.example/fhir/CodeSystem/insi-trait"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ATTESTATIONS: Final = {
    "patient-present": "patient présent (carte Vitale lue ou patient en face du professionnel)",
    "patient-consent": "accord du patient recueilli à distance",
}
MIN_REASON_CHARS: Final = 10
MAX_MATCHES: Final = 20  # local Patients carrying one INS (more is an identity-vigilance problem)
MAX_CANDIDATES: Final = 200  # local Patients born the same day with the same sex, for duplicates
_INS_SYSTEMS: Final = frozenset({INS_NIR_SYSTEM, INS_NIA_SYSTEM, INS_NIR_TEST_SYSTEM, INS_NIR_DEMO_SYSTEM})
_PLACE_RE: Final = re.compile(r"^(?:[0-9]{2}|2[AB])[0-9]{3}$")
_DATE_RE: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_IDENTIFIERS: Final = ("practitioner", "operator", "system")
_REFERENCE_KEY: Final = "#identity"  # never a FHIR id: the identified person among local records
_DAY_US: Final = 86_400 * 1_000_000


def _at(name: str) -> str:
    """The ``expression`` of an OperationOutcome issue about one parameter."""
    return f"Parameters.parameter[{name}]"


# -- services ------------------------------------------------------------------------------------


class InsiSource(Protocol):
    """Hands the operations the INSi service to ask (the port), however it is reached."""

    async def service(self) -> InsiService: ...


class RegisterFile:
    """The in-process reference register (``RegisterInsiService``) kept as a JSON file.

    ``hygie demo`` writes the file after the server may have started, so it is read on first use
    and read again whenever it changes (size or modification time); an absent file is an empty
    register (every search answers "not found"). A file that does not parse is an error the
    operator must fix: the operations answer 503 rather than pretend nobody exists.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._service: RegisterInsiService = RegisterInsiService({})
        self._lock = asyncio.Lock()

    async def service(self) -> InsiService:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._service = None, RegisterInsiService({})
            return self._service
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            async with self._lock:
                if stamp != self._stamp:
                    self._service = await asyncio.to_thread(RegisterInsiService.load, self.path)
                    self._stamp = stamp
        return self._service


@dataclass
class IdentityServices:
    """What the identity operations need beside the store: INSi, the outbox, the clock."""

    insi: InsiSource
    outbox: Outbox | None
    clock: Callable[[], int]

    def today(self) -> date:
        """Today in France (identity checks and INSi queries are dated in local time)."""
        return datetime.fromtimestamp(self.clock() / 1_000_000, UTC).astimezone(PARIS).date()


def _services(service: FhirService) -> IdentityServices:
    if service.identity is None:
        raise NotFound("this server does not offer the identity operations")
    return service.identity


async def _insi(services: IdentityServices) -> InsiService:
    try:
        return await services.insi.service()
    except (RegisterFormatError, OSError) as exc:
        raise FhirError(
            "Le référentiel d'identités (INSi) est indisponible ; réessayez plus tard.",
            code="transient",
            status=503,
        ) from exc


# -- parameters (pure) ---------------------------------------------------------------------------


def parameter_values(body: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """``Parameters`` → {name: [value[x], …]} in order; a parameter without a value counts as None.

    Raises :class:`InvalidRequest` when the body is not a ``Parameters`` resource.
    """
    if body is None:
        return {}
    if body.get("resourceType") != "Parameters":
        raise InvalidRequest("this operation takes a Parameters resource", expression="resourceType")
    out: dict[str, list[Any]] = {}
    for param in body.get("parameter", []) or []:
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            continue
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        out.setdefault(param["name"], []).append(value)
    return out


def _first(params: Mapping[str, list[Any]], name: str) -> Any:
    values = params.get(name) or []
    return values[0] if values else None


def _text(params: Mapping[str, list[Any]], name: str) -> str | None:
    """A string parameter (``valueString``, ``valueCode``…), stripped; None when absent or empty."""
    value = _first(params, name)
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("code"), str):  # a valueCoding
        value = value["code"]
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string or a code", expression=_at(name))
    return value.strip() or None


def _flag(params: Mapping[str, list[Any]], name: str) -> bool:
    value = _first(params, name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidRequest(f"{name} must be a boolean", expression=_at(name))


def _date(params: Mapping[str, list[Any]], name: str, *, today: date) -> date | None:
    raw = _text(params, name)
    if raw is None:
        return None
    try:
        value = date.fromisoformat(raw if _DATE_RE.match(raw) else "")
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} doit être une date complète AAAA-MM-JJ (reçu {raw!r}).", expression=_at(name)
        ) from exc
    if value > today:
        raise Unprocessable(f"La date {name} est dans le futur.", code="invalid", expression=_at(name))
    return value


@dataclass(frozen=True, slots=True)
class IdentificationQuery:
    """What the caller of ``$identify`` gave: traits (``mode`` traits), or an INS with its birth
    date and possibly the traits to verify (``mode`` ins). ``ins_kind_known`` is False when the INS
    came as a bare matricule (its OID is then the local record's, else the NIR's)."""

    mode: Literal["traits", "ins"]
    birth_date: date
    traits: InsTraits | None = None
    ins: Ins | None = None
    ins_kind_known: bool = True


def _given_names(params: Mapping[str, list[Any]]) -> tuple[str, ...]:
    names: list[str] = []
    for value in params.get("given") or []:
        if not isinstance(value, str):
            raise InvalidRequest("given must be a string", expression=_at("given"))
        names.extend(value.split())  # as the FR Core birth-list extension: space-separated
    return tuple(names)


def _traits(params: Mapping[str, list[Any]], birth_date: date, *, required: bool) -> InsTraits | None:
    """The traits given, or None when none of them is (and they are not ``required``)."""
    family = _text(params, "family")
    given = _given_names(params)
    gender = _text(params, "gender")
    place = _text(params, "birthPlace")
    if not required and family is None and not given and gender is None:
        return None
    if family is None:
        raise InvalidRequest(
            "Indiquez le nom de naissance (family).", code="required", expression=_at("family")
        )
    if not given:
        raise InvalidRequest(
            "Indiquez le ou les prénoms de naissance (given).", code="required", expression=_at("given")
        )
    if gender is None:
        raise InvalidRequest("Indiquez le sexe (gender).", code="required", expression=_at("gender"))
    if gender not in ("male", "female", "other", "unknown"):
        raise InvalidRequest(
            "gender est male, female, other ou unknown.", code="code-invalid", expression=_at("gender")
        )
    if place is not None and not _PLACE_RE.match(place.upper()):
        raise InvalidRequest(
            "birthPlace est un code commune INSEE à 5 caractères, ou 99 suivi du code pays INSEE.",
            expression=_at("birthPlace"),
        )
    return InsTraits(
        birth_name=family,
        birth_given_names=given,
        gender=gender,  # type: ignore[arg-type]  # checked just above
        birth_date=birth_date,
        birth_place_code=place.upper() if place else None,
    )


def _ins(value: Any) -> tuple[Ins, bool]:
    """An ``ins`` parameter (``valueIdentifier`` with an INS system, or a bare matricule)."""
    if isinstance(value, dict):
        system, matricule = value.get("system"), value.get("value")
        if not isinstance(matricule, str) or not matricule.strip():
            raise InvalidRequest("ins.value est le matricule INS.", code="required", expression=_at("ins"))
        if system is not None:
            if system not in _INS_SYSTEMS:
                raise InvalidRequest(
                    f"Le système {system} n'est pas celui d'un INS.",
                    code="code-invalid",
                    expression=_at("ins"),
                )
            try:
                return Ins.parse(matricule, str(system)), True
            except InvalidIns as exc:
                raise Unprocessable(exc.message, code="invalid", expression=_at("ins")) from exc
        value = matricule
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("ins est un Identifier ou un matricule.", expression=_at("ins"))
    try:
        return Ins.parse(value, INS_NIR_SYSTEM), False
    except InvalidIns as exc:
        raise Unprocessable(exc.message, code="invalid", expression=_at("ins")) from exc


def identification_query(params: Mapping[str, list[Any]], *, today: date) -> IdentificationQuery:
    """Read and check the parameters of ``$identify`` (400/422 naming the faulty parameter).

    With ``ins``, the birth date is mandatory (the second trait that keeps guessed numbers from
    revealing anyone); the other traits are optional and, when given, are all needed.
    """
    birth = _date(params, "birthDate", today=today)
    raw_ins = _first(params, "ins")
    if raw_ins is not None:
        ins, known = _ins(raw_ins)
        if birth is None:
            raise InvalidRequest(
                "L'INS seul ne suffit pas : indiquez aussi la date de naissance du patient (birthDate), "
                "second trait obligatoire pour une identification par INS.",
                code="required",
                expression=_at("birthDate"),
            )
        traits = _traits(params, birth, required=False)
        return IdentificationQuery("ins", birth, traits, ins, known)
    if birth is None:
        raise InvalidRequest(
            "Indiquez la date de naissance (birthDate), ou un INS avec la date de naissance.",
            code="required",
            expression=_at("birthDate"),
        )
    traits = _traits(params, birth, required=True)
    assert traits is not None  # required
    return IdentificationQuery("traits", birth, traits)


# -- projections and pure helpers ----------------------------------------------------------------


def identity_projection(patient: Mapping[str, Any]) -> dict[str, Any]:
    """A minimal Patient for identification: id, active, INS, birth and used names, sex, birth date.

    Nothing else of the record (no address, contact, care team or clinical data) ever leaves here.
    """
    out: dict[str, Any] = {"resourceType": "Patient", "id": patient.get("id")}
    if isinstance(patient.get("active"), bool):
        out["active"] = patient["active"]
    try:
        ins = ins_of(patient)
    except InvalidIns:
        ins = None
    if ins is not None:
        out["identifier"] = [
            i
            for i in patient.get("identifier", []) or []
            if isinstance(i, dict) and i.get("system") == ins.system and i.get("use") != "old"
        ][:1]
    names = []
    for name in patient.get("name", []) or []:
        if isinstance(name, dict) and name.get("use") in ("official", "usual"):
            kept = {k: name[k] for k in ("extension", "use", "family", "given") if k in name}
            names.append(kept)
    if names:
        out["name"] = names
    for key in ("gender", "birthDate"):
        if key in patient:
            out[key] = patient[key]
    return out


def with_register_identity(patient: Mapping[str, Any], ins: Ins, traits: InsTraits) -> dict[str, Any]:
    """A copy of ``patient`` carrying the INS and traits INSi returned (they replace the local ones).

    The official name, sex, birth date and (when the register knows it) birth place become the
    register's; used names and everything else stay. Another INS the record carried is kept as
    ``use = old`` (a NIA replaced by the NIR, say), so the history of identifiers is not lost.
    """
    register = patient_from_traits(
        dc_replace(traits, used_name=None, used_first_name=None), ins, IdentityState()
    )
    out = dict(orjson.loads(orjson.dumps(patient)))  # a deep copy of plain JSON
    identifiers = []
    for identifier in out.get("identifier", []) or []:
        kept = identifier
        if isinstance(identifier, dict) and identifier.get("system") in _INS_SYSTEMS:
            if identifier.get("system") == ins.system and identifier.get("value") == ins.matricule:
                continue  # replaced below by the register's form
            kept = {**identifier, "use": "old"}
        identifiers.append(kept)
    out["identifier"] = [*register["identifier"], *identifiers]
    others = [
        n for n in out.get("name", []) or [] if not (isinstance(n, dict) and n.get("use") == "official")
    ]
    out["name"] = [register["name"][0], *others]
    out["gender"] = traits.gender
    out["birthDate"] = traits.birth_date.isoformat()
    place = [e for e in register.get("extension", []) if e.get("url") == EXT_BIRTH_PLACE]
    if place:
        kept = [
            e
            for e in out.get("extension", []) or []
            if not (isinstance(e, dict) and e.get("url") == EXT_BIRTH_PLACE)
        ]
        out["extension"] = [*kept, *place]
    meta = dict(out.get("meta") or {})
    profiles = list(meta.get("profile") or [])
    if PROFILE_PATIENT_INS not in profiles:
        meta["profile"] = [*profiles, PROFILE_PATIENT_INS]
        out["meta"] = meta
    return out


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A local record that may be the identified person (``other`` None) or a second record of
    the same INS as ``other``; ``reasons`` are French, for the identity-vigilance team."""

    patient: str
    other: str | None
    score: float
    certain: bool
    reasons: tuple[str, ...]


def duplicate_warnings(
    traits: InsTraits,
    ins: Ins | None,
    matches: Sequence[Mapping[str, Any]],
    candidates: Sequence[Mapping[str, Any]],
) -> list[Duplicate]:
    """The duplicate warnings of an identification (rules of ``domain/identity/matching.py``).

    ``matches`` are the local Patients carrying the identified INS, ``candidates`` those born the
    same day with the same sex. Warned: each candidate whose traits are close to the identified
    person's (a record created without the INS, with a typo…), and every second record carrying
    the same INS (a certain duplicate).
    """
    reference = patient_from_traits(traits, ins, IdentityState(), patient_id=_REFERENCE_KEY)
    matched = {str(m.get("id")) for m in matches}
    pool = [reference, *matches, *(c for c in candidates if str(c.get("id")) not in matched)]
    out: list[Duplicate] = []
    for pair in find_patient_duplicates(pool):
        if _REFERENCE_KEY in (pair.first, pair.second):
            other = pair.second if pair.first == _REFERENCE_KEY else pair.first
            if other not in matched:
                out.append(Duplicate(other, None, pair.score, pair.certain, pair.reasons))
        elif pair.first in matched and pair.second in matched:
            out.append(Duplicate(pair.second, pair.first, pair.score, pair.certain, pair.reasons))
    return out


@dataclass(frozen=True, slots=True)
class RelationFacts:
    """What links the caller to one patient, and the next step a portal may offer them."""

    care: tuple[str, ...] = ()  # the caller's live care relation kinds (care_team, encounter…)
    care_until_us: int | None = None  # when the last of them ends (None: open-ended, or none)
    break_glass: bool = False
    blocked: bool = False
    space_closed: bool = False
    emergency_refused: bool = False
    identity_unusable: bool = False  # DOUT or FICT
    trusted: bool = False  # an operator or a backend service: the rules do not go by relations

    @classmethod
    def of(
        cls,
        rows: Sequence[tuple[str, str | None, int | None]],
        *,
        break_glass: bool = False,
        identity_unusable: bool = False,
        trusted: bool = False,
    ) -> RelationFacts:
        """From the live relation rows (kind, categories, expiry) of ``ResourceStore.relations``."""
        kinds = {kind for kind, _, _ in rows}
        care_rows = [(kind, expires) for kind, _, expires in rows if kind in CARE_RELATIONS]
        until = None
        if care_rows and all(expires is not None for _, expires in care_rows):
            until = max(expires for _, expires in care_rows if expires is not None)
        return cls(
            care=tuple(sorted({kind for kind, _ in care_rows})),
            care_until_us=until,
            break_glass=break_glass,
            blocked="block" in kinds,
            space_closed="space_closed" in kinds,
            emergency_refused="emergency_refusal" in kinds,
            identity_unusable=identity_unusable,
            trusted=trusted,
        )

    def access(self) -> tuple[str, str]:
        """The caller's access to the record as a code and a French sentence (same order as the
        policy: a closed space and a block win over everything)."""
        if self.trusted:
            return "trusted", "Acteur de la plateforme : l'accès suit les droits de votre client."
        if self.space_closed:
            return (
                "refused",
                "Le patient a fermé son espace santé : son dossier n'est ouvert à aucun professionnel.",
            )
        if self.blocked:
            return (
                "refused",
                "Le patient s'oppose à votre accès, ou à celui de votre structure, à son dossier.",
            )
        if self.care:
            return (
                "care-relation",
                "Vous avez une relation de soins avec ce patient : son dossier vous est ouvert.",
            )
        if self.break_glass and not self.emergency_refused:
            return "break-glass", "Un accès en urgence est ouvert : il est tracé et prend fin de lui-même."
        if self.identity_unusable:
            return (
                "identity-unusable",
                "L'identité est douteuse ou fictive : levez le doute avant d'entrer en relation de soins.",
            )
        if self.emergency_refused:
            return (
                "declare-care",
                "Aucune relation de soins : déclarez-la avec l'accord du patient "
                "(il a refusé l'accès en urgence à son dossier).",
            )
        return (
            "declare-care",
            "Aucune relation de soins : déclarez-la avec l'accord du patient, "
            "ou ouvrez un accès en urgence si la situation l'exige.",
        )


def care_encounter(
    patient_id: str,
    practitioner: str,
    organization: str | None,
    *,
    attestation: str,
    reason: str,
    teleconsultation: bool,
    now_us: int,
) -> dict[str, Any]:
    """The finished Encounter that records a declared care relation (it opens the ``encounter``
    relation, ``domain/relations.py``); its tag says it was declared and on what attestation."""
    when = res.instant(now_us)
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "meta": {
            "tag": [
                {
                    "system": CARE_DECLARATION_SYSTEM,
                    "code": attestation,
                    "display": f"Déclarée par le professionnel : {ATTESTATIONS[attestation]}",
                }
            ]
        },
        "status": "finished",
        "class": {
            "system": ACT_CODE,
            "code": "VR" if teleconsultation else "AMB",
            "display": "virtual" if teleconsultation else "ambulatory",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [
            {
                "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND"}]}],
                "individual": {"reference": practitioner},
            }
        ],
        "period": {"start": when, "end": when},
        "reasonCode": [{"text": reason}],
    }
    if organization:
        encounter["serviceProvider"] = {"reference": organization}
    return encounter


# -- answers -------------------------------------------------------------------------------------


def _value(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    if isinstance(value, int):
        return {"name": name, "valueInteger": value}
    if isinstance(value, float):
        return {"name": name, "valueDecimal": value}
    return {"name": name, "valueString": value}


def _status_coding(status: IdentityStatus) -> dict[str, Any]:
    return {"system": IDENTITY_STATUS_SYSTEM, "code": status.value, "display": status.label}


def _trait_coding(trait: TraitName) -> dict[str, Any]:
    return {"system": INSI_TRAIT_SYSTEM, "code": trait.value, "display": trait.label}


def _register_traits(traits: InsTraits) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"name": "family", "valueString": traits.birth_name}]
    parts.extend({"name": "given", "valueString": g} for g in traits.birth_given_names)
    parts.append({"name": "gender", "valueCode": traits.gender})
    parts.append({"name": "birthDate", "valueDate": traits.birth_date.isoformat()})
    if traits.birth_place_code:
        parts.append({"name": "birthPlace", "valueString": traits.birth_place_code})
    return {"name": "traits", "part": parts}


def _insi_parts(result: InsiResult) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"name": "difference", "valueCoding": _trait_coding(d)} for d in result.differences
    ]
    if result.outcome is InsiOutcome.AMBIGUOUS:
        parts.append({"name": "candidates", "valueInteger": result.matches})
    return parts


# -- reading local records -----------------------------------------------------------------------


async def _search(service: FhirService, params: list[tuple[str, str]], count: int) -> list[StoredResource]:
    query = parse_search("Patient", [*params, ("_count", str(count))], max_count=max(count, 1))
    page = await service.store.search(query, now_us=service.clock())
    return [r for r in page.resources if not r.deleted]


async def _carrying(service: FhirService, ins: Ins, *, any_kind: bool) -> list[dict[str, Any]]:
    """The local Patients whose INS is ``ins`` (any INS OID for a bare matricule)."""
    token = ins.matricule if any_kind else f"{ins.system}|{ins.matricule}"
    found = []
    for stored in await _search(service, [("identifier", token)], MAX_MATCHES):
        patient = orjson.loads(stored.content)
        try:
            carried = ins_of(patient)
        except InvalidIns:
            continue
        if (
            carried is not None
            and carried.matricule == ins.matricule
            and (any_kind or carried.kind == ins.kind)
        ):
            found.append(patient)
    return found


async def _born_with(service: FhirService, traits: InsTraits) -> list[dict[str, Any]]:
    """Local Patients born the same day with the same sex (the duplicate detection's blocking key)."""
    rows = await _search(
        service,
        [("birthdate", f"eq{traits.birth_date.isoformat()}"), ("gender", traits.gender)],
        MAX_CANDIDATES,
    )
    return [orjson.loads(r.content) for r in rows]


def _state(patient: Mapping[str, Any]) -> IdentityState | None:
    try:
        return identity_state_of(patient)
    except IdentityError:
        return None


async def _facts(service: FhirService, caller: Caller, patient: Mapping[str, Any]) -> RelationFacts:
    principal = caller.principal
    pid = str(patient.get("id"))
    # a professional's relations are theirs and their structure's (as for a read); a structure's
    # software has its structure's
    if caller.kind == "practitioner":
        actors = [a for a in (principal.subject, principal.organization) if a]
    else:
        actors = [principal.structure] if principal.structure else []
    rows = await service.store.relations(pid, actors, now_us=service.clock())
    state = _state(patient)
    return RelationFacts.of(
        rows,
        break_glass=pid in principal.break_glass,
        identity_unusable=state is not None and state.blocked,
        trusted=caller.trusted,
    )


def _record(
    request: FhirRequest, patient_id: str | None, detail: str, reason: str, *, allowed: bool = True
) -> None:
    """An audit record in the patient's chain (or the system's when no patient is concerned)."""
    access = AccessRequest(request.caller, "operation", "Patient", patient_id, patient_id, detail)
    request.audit.decisions.append(Decision(access, allowed, reason))


def _require_identifier(service: FhirService, request: FhirRequest) -> None:
    """Professionals, operators and backend services identify patients; citizens and anonymous
    callers do not, nor apps whose scopes reach only one patient (``patient/``)."""
    caller = request.caller
    refusal = None
    if caller.kind not in _IDENTIFIERS:
        refusal = "only health professionals and platform actors identify patients"
    elif caller.principal.scopes is not None:
        contexts: tuple[Literal["user", "system"], ...] = (
            ("system",) if caller.kind == "system" else ("user",)
        )
        if not any(caller.principal.scopes.permits(c, "Patient", "search")[0] for c in contexts):
            refusal = "scope: identifying patients needs user/ or system/ Patient search"
    if refusal is not None:
        _record(request, None, "$identify", refusal, allowed=False)
        raise Forbidden(f"access refused: {refusal}")


# -- $identify -----------------------------------------------------------------------------------


async def identify(service: FhirService, request: FhirRequest) -> FhirResponse:
    """``POST Patient/$identify``: identify a patient through INSi and find their local records."""
    services = _services(service)
    _require_identifier(service, request)
    params = parameter_values(_body(request))
    query = identification_query(params, today=services.today())
    insi = await _insi(services)
    if query.mode == "traits":
        assert query.traits is not None
        lookup = _Lookup.of(insi.search(query.traits))
    else:
        lookup = await _by_ins(service, insi, query)
    result = lookup.result
    matches: Sequence[dict[str, Any]] = lookup.matches
    if result is not None and result.found and not matches:
        assert result.ins is not None
        matches = await _carrying(service, result.ins, any_kind=False)

    answer: list[dict[str, Any] | None] = [
        {"name": "mode", "valueCode": query.mode},
        {"name": "outcome", "valueCode": lookup.outcome},
        _value("message", lookup.message),
    ]
    duplicates: list[Duplicate] = []
    if result is not None:
        answer += _insi_parts(result)
        if result.found and result.ins is not None and result.traits is not None:
            answer.append({"name": "ins", "valueIdentifier": ins_identifier(result.ins)})
            answer.append(_register_traits(result.traits))
            candidates = await _born_with(service, result.traits)
            duplicates = duplicate_warnings(result.traits, result.ins, matches, candidates)

    # each record disclosed is in its patient's access history: who looked them up, and how
    detail = f"$identify by {query.mode}"
    for patient in matches:
        facts = await _facts(service, request.caller, patient)
        answer.append(_match(patient, facts))
        _record(request, str(patient["id"]), detail, f"identity lookup ({lookup.outcome}): identity shown")
    for duplicate in duplicates:
        answer.append(_duplicate(duplicate))
        _record(request, duplicate.patient, detail, "identity lookup: shown as a possible duplicate")
    if not matches and not duplicates:
        _record(request, None, f"{detail}: {lookup.outcome}", "identity lookup: no local record disclosed")
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": [p for p in answer if p]})


@dataclass(frozen=True, slots=True)
class _Lookup:
    """What an identification found: the INSi answer (None when INSi was not asked), the local
    records to show, and the outcome code and French message for the caller."""

    result: InsiResult | None
    outcome: str
    message: str
    matches: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(
        cls, result: InsiResult, message: str | None = None, matches: Sequence[dict[str, Any]] = ()
    ) -> _Lookup:
        return cls(result, result.outcome.value, message or result.message, tuple(matches))


_NO_INS_MATCH: Final = "Aucune identité ne correspond à cet INS et à cette date de naissance."


async def _by_ins(service: FhirService, insi: InsiService, query: IdentificationQuery) -> _Lookup:
    """Identification by INS and birth date (rules in the module docstring).

    With the traits, INSi verifies them against the INS, and a birth date the register does not
    hold for it is answered as an unknown INS. Without them, the local records carrying the INS
    *and* that birth date are shown, re-verified with INSi on their own traits (refused when they
    are all doubtful or fictitious, EXI SI 09).
    """
    assert query.ins is not None
    local = await _carrying(service, query.ins, any_kind=not query.ins_kind_known)
    states = [_state(p) for p in local]
    if local and all(s is not None and s.blocked for s in states):
        message = (
            "Appel au téléservice INSi interdit : l'identité locale porte l'attribut identité douteuse "
            "ou fictive. Levez le doute avant toute interrogation."
        )
        born = [p for p in local if p.get("birthDate") == query.birth_date.isoformat()]
        return _Lookup(None, "blocked", message, tuple(born))
    if query.traits is not None:
        # the OID: the one given, else the local record's, else the NIR's
        ins = query.ins if query.ins_kind_known or not local else (_ins_of(local[0]) or query.ins)
        result = insi.verify(ins, query.traits)
        if result.outcome is InsiOutcome.MISMATCH and TraitName.BIRTH_DATE in result.differences:
            return _Lookup.of(InsiResult(InsiOutcome.NOT_FOUND), _NO_INS_MATCH)  # a gate, not a hint
        if result.outcome is InsiOutcome.NOT_FOUND:
            return _Lookup.of(result, _NO_INS_MATCH)
        return _Lookup.of(result)
    born = [p for p in local if p.get("birthDate") == query.birth_date.isoformat()]
    usable = [p for p in born if (s := _state(p)) is not None and not s.blocked]
    if not usable:
        return _Lookup.of(
            InsiResult(InsiOutcome.NOT_FOUND),
            _NO_INS_MATCH + " Pour interroger le téléservice INSi, indiquez aussi le nom de naissance, "
            "le prénom et le sexe.",
        )
    subject = usable[0]
    try:
        subject_ins, subject_traits = _ins_of(subject), traits_of(subject)
    except IdentityError:
        subject_ins, subject_traits = None, None
    if subject_ins is None or subject_traits is None:
        message = "Dossier local trouvé, mais ses traits sont incomplets : il n'a pas pu être vérifié auprès de l'INSi."
        return _Lookup(None, "unverified", message, tuple(born))
    result = insi.verify(subject_ins, subject_traits)
    if result.found:
        message = "Identité confirmée par le téléservice INSi."
    elif result.outcome is InsiOutcome.MISMATCH:
        labels = ", ".join(d.label for d in result.differences)
        message = (
            f"Les traits du dossier local ne correspondent pas à l'INS selon le téléservice : {labels} "
            "différent(s). Vérifiez l'identité avant de poursuivre."
        )
    else:
        message = "Le téléservice INSi ne connaît pas cet INS : vérifiez l'identité du dossier local."
    return _Lookup.of(result, message, born)


def _ins_of(patient: Mapping[str, Any]) -> Ins | None:
    try:
        return ins_of(patient)
    except InvalidIns:
        return None


def _match(patient: Mapping[str, Any], facts: RelationFacts) -> dict[str, Any]:
    pid = str(patient.get("id"))
    state = _state(patient)
    parts: list[dict[str, Any] | None] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}},
        {"name": "identity", "resource": identity_projection(patient)},
        {"name": "active", "valueBoolean": patient.get("active") is not False},
    ]
    if state is not None:
        parts.append({"name": "identityStatus", "valueCoding": _status_coding(state.status)})
        parts.extend(
            {
                "name": "identityAttribute",
                "valueCoding": {"system": IDENTITY_ATTRIBUTE_SYSTEM, "code": a.value, "display": a.label},
            }
            for a in sorted(state.attributes)
        )
    parts.extend({"name": "relation", "valueCode": kind} for kind in facts.care)
    if facts.care_until_us is not None:
        parts.append({"name": "relationEnd", "valueInstant": res.instant(facts.care_until_us)})
    parts += [
        _value("breakGlass", facts.break_glass),
        _value("blocked", facts.blocked),
        _value("spaceClosed", facts.space_closed),
        _value("emergencyRefused", facts.emergency_refused),
    ]
    code, sentence = facts.access()
    parts += [{"name": "access", "valueCode": code}, _value("accessMessage", sentence)]
    return {"name": "match", "part": [p for p in parts if p]}


def _duplicate(duplicate: Duplicate) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{duplicate.patient}"}}
    ]
    if duplicate.other is not None:
        parts.append({"name": "sameInsAs", "valueReference": {"reference": f"Patient/{duplicate.other}"}})
    parts.append({"name": "score", "valueDecimal": duplicate.score})
    parts.append({"name": "certain", "valueBoolean": duplicate.certain})
    parts.extend({"name": "reason", "valueString": r} for r in duplicate.reasons)
    return {"name": "duplicate", "part": parts}


def _body(request: FhirRequest) -> dict[str, Any] | None:
    if request.resource is not None:
        return request.resource
    if not request.body:
        return None
    return res.parse_json(request.body)


# -- $identity-check -----------------------------------------------------------------------------


async def _refuse(
    service: FhirService, request: FhirRequest, stored: StoredResource, operation: str, reason: str
) -> NoReturn:
    """Refused: 403 when the caller may see the Patient anyway, 404 otherwise (like other refusals)."""
    target = target_of(stored)
    _record(request, stored.id, operation, reason, allowed=False)
    seen = AccessRequest(request.caller, "read", "Patient", stored.id, target.patient)
    if (await service.policy.decide(seen, target, request.relations)).allowed:
        raise Forbidden(f"access refused: {reason}")
    raise NotFound(f"Patient/{stored.id} is not known")


_TRAIT_PATHS: Final = {
    "missing-birth-name": "Patient.name",
    "missing-gender": "Patient.gender",
    "missing-birth-date": "Patient.birthDate",
}


async def identity_check(service: FhirService, request: FhirRequest, patient_id: str) -> FhirResponse:
    """``POST Patient/[id]/$identity-check``: a document check and/or an INSi re-verification."""
    services = _services(service)
    res.require_id(patient_id)
    operation = "$identity-check"
    stored = await service.store.read("Patient", patient_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    if request.caller.kind not in _IDENTIFIERS:
        await _refuse(
            service, request, stored, operation, "only professionals and operators check identities"
        )
    # the professional must be in a care relation with the patient (the rule of a read, then of
    # the update below): refused looks like absent
    await service.require(
        request, "operation", "Patient", patient_id, target=target_of(stored), detail=operation
    )
    expected = parse_if_match(request.header("if-match"))
    if expected is not None and expected != stored.version:
        raise PreconditionFailed(
            f"Patient/{patient_id} is at version {stored.version}, not {expected}", expression="If-Match"
        )
    params = parameter_values(_body(request))
    today = services.today()
    raw_mode = _text(params, "validationMode")
    with_insi = _flag(params, "insi")
    if raw_mode is None and not with_insi:
        raise InvalidRequest(
            "Indiquez la pièce d'identité vérifiée (validationMode) et/ou demandez une vérification INSi (insi).",
            code="required",
            expression=_at("validationMode"),
        )
    try:
        mode = ValidationMode(raw_mode) if raw_mode is not None else None
    except ValueError as exc:
        codes = ", ".join(m.value for m in ValidationMode)
        raise InvalidRequest(
            f"Mode de validation {raw_mode!r} inconnu (attendu : {codes}).",
            code="code-invalid",
            expression=_at("validationMode"),
        ) from exc
    raw_method = _text(params, "methodCollection") or CollectionMethod.SM.value
    try:
        method = CollectionMethod(raw_method)
    except ValueError as exc:
        codes = ", ".join(m.value for m in CollectionMethod)
        raise InvalidRequest(
            f"Mode de recueil {raw_method!r} inconnu (attendu : {codes}).",
            code="code-invalid",
            expression=_at("methodCollection"),
        ) from exc
    checked_on = _date(params, "validationDate", today=today) or today
    comment = _text(params, "comment")

    patient = orjson.loads(stored.content)
    state = _state(patient)
    if state is None:
        raise Unprocessable(
            "La fiabilité de l'identité enregistrée est illisible : corrigez-la avant toute vérification.",
            code="invalid",
            expression="Patient.extension",
        )
    try:
        traits = traits_of(patient)
    except IncompleteTraits as exc:
        raise Unprocessable(
            exc.message, code="required", expression=_TRAIT_PATHS.get(exc.code, "Patient")
        ) from exc
    before = state
    result: InsiResult | None = None
    try:
        if mode is not None:
            state = record_document_check(state, mode, checked_on, birth_date=traits.birth_date)
    except IdentityError as exc:
        raise Unprocessable(exc.message, code="business-rule", expression=_at("validationMode")) from exc
    if with_insi:
        try:
            ins = ins_of(patient)
        except InvalidIns as exc:
            raise Unprocessable(exc.message, code="invalid", expression="Patient.identifier") from exc
        insi = await _insi(services)
        try:
            result, state = query_insi(insi, state, traits, query_date=today, method=method, ins=ins)
        except InsiCallBlocked as exc:
            raise Unprocessable(exc.message, code="business-rule", expression=_at("insi")) from exc
    if comment is not None:
        state = with_comment(state, comment)
    found = result is not None and result.found and result.ins is not None and result.traits is not None
    changed: dict[str, Any] = patient
    if state != before or found:
        try:
            changed = with_identity_state(patient, state)
        except IdentityError as exc:
            raise Unprocessable(exc.message, code="business-rule", expression=_at("validationMode")) from exc
        if result is not None and result.ins is not None and result.traits is not None and found:
            changed = with_register_identity(changed, result.ins, result.traits)

    answer: list[dict[str, Any] | None] = [
        {"name": "previousStatus", "valueCoding": _status_coding(before.status)},
        {"name": "status", "valueCoding": _status_coding(state.status)},
    ]
    if result is not None:
        answer += [{"name": "insi", "valueCode": result.outcome.value}, _value("insiMessage", result.message)]
        answer += _insi_parts(result)
    if changed == patient:
        # nothing to record (an INSi failure on a provisional identity, say): no new version
        answer += [
            _value("changed", False),
            _value("message", f"Rien n'a changé : l'identité reste « {state.status.label} »."),
            {"name": "patient", "resource": patient},
        ]
        headers = {"ETag": res.etag(stored.version)}
        return FhirResponse(
            200, {"resourceType": "Parameters", "parameter": [p for p in answer if p]}, headers
        )
    inner = FhirRequest(
        "PUT",
        f"Patient/{patient_id}",
        headers={"if-match": res.etag(stored.version)},
        caller=request.caller,
        resource=changed,
        request_id=request.request_id,
        audit=request.audit,
        relations=request.relations,
    )
    written = await service.update(inner, "Patient", patient_id)
    new = orjson.loads(written.resource_bytes or b"{}")
    message = (
        f"{before.status.label.capitalize()} → {state.status.label}."
        if before.status is not state.status
        else f"Vérification enregistrée ; l'identité reste « {state.status.label} »."
    )
    answer += [_value("changed", True), _value("message", message), {"name": "patient", "resource": new}]
    headers = {k: v for k, v in written.headers.items() if k in ("ETag", "Last-Modified", "Location")}
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": [p for p in answer if p]}, headers)


# -- $declare-care -------------------------------------------------------------------------------


async def declare_care(service: FhirService, request: FhirRequest, patient_id: str) -> FhirResponse:
    """``POST Patient/[id]/$declare-care``: a professional enters the care relationship, attesting
    the patient's agreement (rules in the module docstring and ``docs/security.md``)."""
    services = _services(service)
    res.require_id(patient_id)
    operation = "$declare-care"
    caller = request.caller
    principal = caller.principal
    if caller.kind != "practitioner" or principal.subject is None:
        _record(
            request, None, operation, "only a health professional declares a care relationship", allowed=False
        )
        raise Forbidden("only a health professional declares a care relationship")
    stored = await service.store.read("Patient", patient_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    params = parameter_values(_body(request))
    attestation = _text(params, "attestation")
    if attestation is None:
        raise InvalidRequest(
            "Attestez l'accord du patient (attestation : patient-present ou patient-consent).",
            code="required",
            expression=_at("attestation"),
        )
    if attestation not in ATTESTATIONS:
        raise InvalidRequest(
            "attestation est patient-present (carte Vitale lue ou patient présent) ou patient-consent "
            "(accord recueilli à distance).",
            code="code-invalid",
            expression=_at("attestation"),
        )
    reason = _text(params, "reason") or ""
    if len(reason) < MIN_REASON_CHARS:
        raise InvalidRequest(
            f"Indiquez en une phrase le motif de la prise en charge ({MIN_REASON_CHARS} caractères au moins).",
            code="required",
            expression=_at("reason"),
        )
    teleconsultation = _flag(params, "teleconsultation")
    patient = orjson.loads(stored.content)
    facts = await _facts(service, caller, patient)
    detail = f"{operation} attestation={attestation}"

    def refused(why: str, message: str, status: int) -> NoReturn:
        _record(request, patient_id, detail, f"care declaration refused: {why}", allowed=False)
        if status == 403:
            raise Forbidden(message, expression=why)
        raise Unprocessable(message, code="business-rule", expression=why)

    if facts.space_closed:
        refused(
            "space-closed",
            "Le patient a fermé son espace santé : aucune relation de soins ne peut être déclarée.",
            403,
        )
    if facts.blocked:
        refused(
            "blocked",
            "Le patient s'oppose à votre accès, ou à celui de votre structure, à son dossier : "
            "la relation de soins ne peut pas être déclarée.",
            403,
        )
    if facts.identity_unusable:
        refused(
            "identity",
            "L'identité de ce patient est douteuse ou fictive : levez le doute (vérification de l'identité) "
            "avant de déclarer une relation de soins.",
            422,
        )
    if facts.care:
        until = f" jusqu'au {_french_date(facts.care_until_us)}" if facts.care_until_us else ""
        _record(request, patient_id, detail, "care relationship already live: nothing written")
        body = [
            _value("declared", False),
            _value("message", f"Une relation de soins est déjà en cours{until} : rien n'a été ajouté."),
            *({"name": "relation", "valueCode": kind} for kind in facts.care),
            {"name": "relationEnd", "valueInstant": res.instant(facts.care_until_us)}
            if facts.care_until_us
            else None,
        ]
        return FhirResponse(200, {"resourceType": "Parameters", "parameter": [p for p in body if p]})

    now = service.clock()
    encounter_id = res.new_id()
    encounter = care_encounter(
        patient_id,
        principal.subject,
        principal.organization,
        attestation=attestation,
        reason=reason,
        teleconsultation=teleconsultation,
        now_us=now,
    )
    service._prepare(encounter, "Encounter", encounter_id)
    op = service._write_op(encounter, "Encounter", encounter_id, 1, "POST", now)
    # the relation the Encounter opens ends ENCOUNTER_RELATION_DAYS after it (domain/relations.py)
    rows = op.index.relations if op.index is not None else []
    expiry = max((row[4] for row in rows if row[4] is not None), default=None)
    async with service.transaction(request) as tx:
        # the operation's own decision (the policy knows no relation yet), then the write it allows
        _record(
            request,
            patient_id,
            detail,
            f"care relationship declared by the professional ({ATTESTATIONS[attestation]}): {reason}",
        )
        created = AccessRequest(caller, "create", "Encounter", encounter_id, patient_id, detail)
        request.audit.decisions.append(Decision(created, True, f"declared care relationship ({attestation})"))
        await tx.write(op)
    if services.outbox is not None:
        # the patient, and the legal representatives who run their space, as they chose
        # (domain/ens/notifications.py: never the representative an adolescent keeps it from)
        from hygie.web.portal.door import Door  # noqa: PLC0415 - the door only wraps this service

        await tell(
            Door(service),
            services.outbox,
            patient_id,
            "care",
            encounter_id,
            now_us=service.clock(),
            majority_age=service.limits.majority_age,
            base_url=portal_base(service.base_url),
            until=_french_date(expiry) or None,
        )
    body = [
        _value("declared", True),
        {"name": "encounter", "valueReference": {"reference": f"Encounter/{encounter_id}"}},
        {"name": "relationEnd", "valueInstant": res.instant(expiry)} if expiry else None,
        _value(
            "message",
            "Relation de soins déclarée : le dossier vous est ouvert"
            + (f" jusqu'au {_french_date(expiry)}" if expiry else "")
            + ". Le patient en est informé.",
        ),
    ]
    headers = {"Location": f"{service.full_url('Encounter', encounter_id)}/_history/1"}
    return FhirResponse(201, {"resourceType": "Parameters", "parameter": [p for p in body if p]}, headers)


def _french_date(micros: int | None) -> str:
    if micros is None:
        return ""
    return datetime.fromtimestamp(micros / 1_000_000, UTC).astimezone(PARIS).strftime("%d/%m/%Y")
