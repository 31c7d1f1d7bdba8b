"""The health directory search: professionals and structures by name, profession, specialty and place.

Shared by the citizen's portal (``/ens/annuaire``) and the professionals' one: both hand a
:class:`DirectoryQuery` and a caller to :meth:`DirectorySearch.search` and show the
:class:`Entry` values it returns. Every read is a FHIR search through the caller's door
(:class:`DirectoryReads`, implemented by ``web/portal/door.py``), so the access policy and the
audit trail see it as any other read; the directory is outside every patient record, so any
signed-in person may read it.

**What is searched.** A professional is one activity: a ``PractitionerRole`` with its
``Practitioner`` (name, the "professionnel numérique" label), its ``Organization`` (the
structure) and its ``Location`` (address, position). A structure is an ``Organization`` with its
``Location``. What a person types in *qui* is read, in this order, as:

* a profession of TRE_G15 (:data:`PROFESSIONS`, with the words people use: ``infirmière``,
  ``kiné``, ``dentiste``…) → ``PractitionerRole?role=<TRE_G15>|<code>``;
* otherwise a name (each word must start a part of the professional's name:
  ``practitioner.name=…``, or appear in the structure's name: ``name:contains=…``) **or** a
  specialty (TRE_R38 displays, ``specialty:text=…``, after turning the person's word into the
  discipline's: ``cardiologue`` → ``cardiologie``, ``pédiatre`` → ``pédiatrie``, ``généraliste``
  → ``médecine générale``) — the union of both searches.

*Où* goes through the gazetteer (``domain/geo.py``): the place's centre and the radius become
``location.near=lat|lng|km|km`` on PractitionerRole and ``_has:Location:organization:near=…`` on
Organization, so the database keeps what is within the radius; the distance shown is computed
from each Location's ``position`` (:func:`~hygie.domain.geo.haversine_km`) and orders the
results nearest first. An unknown place is an error that keeps what was typed.

**What is shown.** Address and phone (the activity's, else the structure's); the MSSanté
mailboxes (telecom e-mails typed ``MSSANTE`` by FR Core's extension, or on an ``mssante.fr``
domain) — professionals' portals show them, the citizen's portal does not; whether patients may
write to them (``accepts-patient-messages``, ``domain/ens/messaging.py``); and the
"professionnel numérique" label: an extension on the ``Practitioner`` whose URL Hygie defines
(:data:`DIGITAL_LABEL_URL`) and which a deployment may replace (``HYGIE_DIGITAL_LABEL_URL``) by
the one its directory uses — the national directory publishes no such field today.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from hygie.domain.access import Caller
from hygie.domain.ens.messaging import accepts_messages
from hygie.domain.geo import Gazetteer, Place, haversine_km, normalize_place
from hygie.domain.identity.nos import (
    FR_CORE_SD,
    TRE_G15_PROFESSION,
    TRE_R02_SECTOR,
    TRE_R38_SPECIALTY,
    TRE_R66_CATEGORY,
    TRE_R256_MAIL_TYPE,
)

__all__ = [
    "DIGITAL_LABEL_URL",
    "PROFESSIONS",
    "RADII_KM",
    "DirectoryQuery",
    "DirectoryReads",
    "DirectoryResult",
    "DirectorySearch",
    "Entry",
    "has_digital_label",
    "mssante_addresses",
    "parse_query",
    "profession_code",
    "specialty_words",
]

HYGIE_FHIR: Final = "https://hygie.example/fhir"
DIGITAL_LABEL_URL: Final = f"{HYGIE_FHIR}/StructureDefinition/professionnel-numerique"
"""Hygie's extension for the "professionnel numérique" label (``valueBoolean`` true, on a Practitioner)."""

EMAIL_TYPE_URL: Final = FR_CORE_SD + "fr-core-contact-point-email-type"

RADII_KM: Final = (2, 5, 10, 20, 50, 100)
DEFAULT_RADIUS_KM: Final = 20
MAX_RADIUS_KM: Final = 200
MAX_TEXT: Final = 100  # characters of "qui" and "où"
_FETCH: Final = 300  # matches read per FHIR search before merging

Kind = Literal["tous", "professionnels", "structures"]

# TRE_G15 professions (the codes of shared/spec/french-ehealth-digest.md §9), with the words
# people type for them, normalised (normalize_place: no accents, lower case, hyphens as spaces)
PROFESSIONS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "10": ("Médecin", ("medecin", "medecins", "docteur", "docteurs")),
    "21": ("Pharmacien", ("pharmacien", "pharmacienne", "pharmaciens", "pharmaciennes")),
    "40": ("Chirurgien-dentiste", ("chirurgien dentiste", "dentiste", "dentistes")),
    "50": ("Sage-femme", ("sage femme", "sages femmes", "maieuticien", "maieuticienne")),
    "60": ("Infirmier", ("infirmier", "infirmiere", "infirmiers", "infirmieres")),
    "70": (
        "Masseur-kinésithérapeute",
        ("masseur kinesitherapeute", "kinesitherapeute", "kinesitherapeutes", "kine", "kines"),
    ),
    "80": ("Pédicure-podologue", ("pedicure podologue", "podologue", "podologues", "pedicure")),
}
_PROFESSION_BY_WORD: Final = {word: code for code, (_, words) in PROFESSIONS.items() for word in words}

# the person's word for a discipline, when no suffix rule finds it
_SPECIALTY_WORDS: Final = {
    "generaliste": "medecine generale",
    "medecin generaliste": "medecine generale",
    "medecin traitant": "medecine generale",
    "gyneco": "gynecologie",
    "ophtalmo": "ophtalmologie",
    "dermato": "dermatologie",
    "cardio": "cardiologie",
    "psy": "psychiatrie",
    "orl": "laryngologie",
}
_SUFFIXES: Final = (("logue", "logie"), ("iatre", "iatrie"), ("logues", "logie"), ("iatres", "iatrie"))
_STRUCTURE_WORDS: Final = {
    "hopital": "hospitalier",
    "hopitaux": "hospitalier",
    "chu": "hospitalier",
    "clinique": "clinique",
    "pharmacie": "pharmacie",
    "pharmacies": "pharmacie",
}


def profession_code(text: str) -> str | None:
    """The TRE_G15 code of a profession as people write it (``Infirmière``, ``kiné``), or None."""
    return _PROFESSION_BY_WORD.get(normalize_place(text))


def specialty_words(text: str) -> str | None:
    """The words a TRE_R38 specialty display holds for what a person typed, or None.

    ``cardiologue`` → ``cardiologie``, ``Pédiatre`` → ``pediatrie``, ``généraliste`` →
    ``medecine generale``; a discipline typed as such is kept (``pédiatrie``)."""
    key = normalize_place(text)
    if key in _SPECIALTY_WORDS:
        return _SPECIALTY_WORDS[key]
    for person, discipline in _SUFFIXES:
        if key.endswith(person) and len(key) > len(person) + 2:
            return key[: -len(person)] + discipline
    if key.endswith(("logie", "iatrie")):
        return key
    return None


def has_digital_label(practitioner: Mapping[str, Any] | None, url: str = DIGITAL_LABEL_URL) -> bool:
    """Does this Practitioner carry the "professionnel numérique" label (``valueBoolean`` true)?"""
    for ext in (practitioner or {}).get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == url and ext.get("valueBoolean") is True:
            return True
    return False


def mssante_addresses(*resources: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The MSSanté mailboxes among the resources' telecoms, each once, in order."""
    out: list[str] = []
    for resource in resources:
        for telecom in (resource or {}).get("telecom", []) or []:
            if not isinstance(telecom, dict) or telecom.get("system") != "email":
                continue
            value = telecom.get("value")
            if not isinstance(value, str) or value in out:
                continue
            typed = any(
                isinstance(ext, dict)
                and ext.get("url") == EMAIL_TYPE_URL
                and (ext.get("valueCoding") or {}).get("code") == "MSSANTE"
                and (ext.get("valueCoding") or {}).get("system") in (None, TRE_R256_MAIL_TYPE)
                for ext in telecom.get("extension", []) or []
            )
            if typed or value.lower().endswith(".mssante.fr"):
                out.append(value)
    return tuple(out)


def _phone(*resources: Mapping[str, Any] | None) -> str | None:
    for resource in resources:
        for telecom in (resource or {}).get("telecom", []) or []:
            if isinstance(telecom, dict) and telecom.get("system") == "phone" and telecom.get("value"):
                return str(telecom["value"])
    return None


def phone_display(number: str | None) -> str:
    """``0472123456`` → ``04 72 12 34 56``; other forms as written."""
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    if len(digits) == 10 and digits.startswith("0"):
        return " ".join(digits[i : i + 2] for i in range(0, 10, 2))
    return number


def _address(*resources: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The first address of the resources as printed lines: street lines, then ``69003 Lyon``."""
    for resource in resources:
        found = (resource or {}).get("address")
        address = found[0] if isinstance(found, list) and found else found
        if isinstance(address, dict) and (address.get("line") or address.get("city")):
            lines = [str(line) for line in address.get("line", []) or [] if line]
            town = " ".join(str(p) for p in (address.get("postalCode"), address.get("city")) if p)
            return (*lines, town) if town else tuple(lines)
    return ()


def _person_name(practitioner: Mapping[str, Any] | None) -> str:
    """``Dr Claire MARTIN`` (the usual name, else the first)."""
    names = (practitioner or {}).get("name") or [{}]
    chosen = next((n for n in names if isinstance(n, dict) and n.get("use") == "usual"), None) or names[0]
    prefix = " ".join(chosen.get("prefix", []) or [])
    given = " ".join((chosen.get("given") or [])[:1])
    family = str(chosen.get("family", "")).upper()
    return " ".join(p for p in (prefix, given, family) if p) or str(chosen.get("text", ""))


def _displays(concepts: Iterable[Any], system: str) -> tuple[str, ...]:
    out: list[str] = []
    for concept in concepts:
        for coding in (concept or {}).get("coding", []) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("system") == system:
                label = str(coding.get("display") or coding.get("code") or "")
                if label and label not in out:
                    out.append(label)
    return tuple(out)


def _position(location: Mapping[str, Any] | None) -> tuple[float, float] | None:
    position = (location or {}).get("position")
    if not isinstance(position, dict):
        return None
    lat, lng = position.get("latitude"), position.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lng, int | float):
        return None
    if isinstance(lat, bool) or isinstance(lng, bool):
        return None
    return float(lat), float(lng)


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        ref: str = value["reference"]
        if ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
            return ref
    return None


# --------------------------------------------------------------------------------------------
# Query and result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectoryQuery:
    """What a person asks the directory (as typed: errors show it back)."""

    who: str = ""  # a name, a profession or a specialty
    where: str = ""  # a commune, a postal code or an INSEE code
    radius_km: float = DEFAULT_RADIUS_KM
    accepts_messages: bool = False
    kind: Kind = "tous"
    profession: str | None = None  # a TRE_G15 code chosen in a list (the professionals' portal)
    specialty: str | None = None  # a TRE_R38 code chosen in a list
    limit: int = 50

    @property
    def empty(self) -> bool:
        return not (self.who or self.where or self.profession or self.specialty)


def parse_query(values: Mapping[str, str]) -> tuple[DirectoryQuery, dict[str, str]]:
    """A query from form fields (``qui``, ``ou``, ``rayon``, ``messages``, ``type``,
    ``profession``, ``specialite``), and the fields' errors in French."""
    errors: dict[str, str] = {}
    who = " ".join((values.get("qui") or "").split())
    where = " ".join((values.get("ou") or "").split())
    if len(who) > MAX_TEXT:
        errors["qui"] = f"Écrivez au plus {MAX_TEXT} caractères."
    if len(where) > MAX_TEXT:
        errors["ou"] = f"Écrivez au plus {MAX_TEXT} caractères."
    radius_text = (values.get("rayon") or "").strip().replace(",", ".")
    radius: float = DEFAULT_RADIUS_KM
    if radius_text:
        try:
            radius = float(radius_text)
        except ValueError:
            radius = math.nan
        if not (0 < radius <= MAX_RADIUS_KM):
            errors["rayon"] = f"Choisissez un rayon entre 1 et {MAX_RADIUS_KM} km."
            radius = DEFAULT_RADIUS_KM
    kind = values.get("type") or "tous"
    if kind not in ("tous", "professionnels", "structures"):
        errors["type"] = "Choisissez professionnels, structures ou les deux."
        kind = "tous"
    profession = (values.get("profession") or "").strip() or None
    if profession is not None and profession not in PROFESSIONS:
        errors["profession"] = "Choisissez une profession de la liste."
        profession = None
    specialty = (values.get("specialite") or "").strip() or None
    if specialty is not None and not re.fullmatch(r"[A-Za-z0-9]{1,12}", specialty):
        errors["specialite"] = "Choisissez une spécialité de la liste."
        specialty = None
    query = DirectoryQuery(
        who=who[:MAX_TEXT],
        where=where[:MAX_TEXT],
        radius_km=radius,
        accepts_messages=(values.get("messages") or "") in ("1", "oui", "on", "true"),
        kind=kind,  # type: ignore[arg-type]
        profession=profession,
        specialty=specialty,
    )
    return query, errors


@dataclass(frozen=True, slots=True)
class Entry:
    """One result: a professional's activity or a structure."""

    kind: Literal["professionnel", "structure"]
    reference: str  # PractitionerRole/… or Organization/…
    name: str  # "Dr Claire MARTIN" or the structure's name
    practitioner: str | None  # Practitioner/…, for a professional
    organization: str | None  # Organization/…
    profession: str  # "Médecin", or the structure's type ("Pharmacie d'Officine")
    specialties: tuple[str, ...]
    structure: str  # the structure a professional works in
    address: tuple[str, ...]
    phone: str | None
    mssante: tuple[str, ...]
    accepts_messages: bool
    digital: bool  # the "professionnel numérique" label
    distance_km: float | None

    @property
    def phone_display(self) -> str:
        return phone_display(self.phone)

    @property
    def distance_text(self) -> str:
        """``800 m``, ``1,2 km``, ``35 km`` (French decimals)."""
        if self.distance_km is None:
            return ""
        if self.distance_km < 1:
            return f"{max(round(self.distance_km * 1000, -1), 10):.0f} m"
        if self.distance_km < 10:
            return f"{self.distance_km:.1f} km".replace(".", ",")
        return f"{self.distance_km:.0f} km"


@dataclass(frozen=True, slots=True)
class DirectoryResult:
    query: DirectoryQuery
    entries: tuple[Entry, ...] = ()
    centre: Place | None = None
    alternatives: tuple[Place, ...] = ()  # other places the text may name
    errors: dict[str, str] = field(default_factory=dict)
    truncated: bool = False
    searched: bool = False  # False: nothing was asked yet (an empty form)


class DirectoryReads(Protocol):
    """The searches the directory needs, as a named caller (``web/portal/door.Door``)."""

    async def search_with_includes(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]: ...


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """The words of a name as the FHIR string search matches them: split on spaces only (a
    hyphenated ``Jean-Pierre`` is one name part in the index)."""
    return text.split()


class DirectorySearch:
    """Searches the directory as a caller (see the module docstring for the rules)."""

    def __init__(
        self,
        reads: DirectoryReads,
        gazetteer: Callable[[], Gazetteer],
        *,
        digital_label_url: str = DIGITAL_LABEL_URL,
    ) -> None:
        self.reads = reads
        self.gazetteer = gazetteer  # loaded on first use (the full commune list takes a moment)
        self.digital_label_url = digital_label_url

    async def search(self, caller: Caller, query: DirectoryQuery) -> DirectoryResult:
        if query.empty:
            return DirectoryResult(query)
        centre: Place | None = None
        alternatives: tuple[Place, ...] = ()
        if query.where:
            places = self.gazetteer().find(query.where)
            if not places:
                message = (
                    f"Commune inconnue : « {query.where} ». Indiquez le nom d’une commune, "
                    "son code postal ou son code INSEE."
                )
                return DirectoryResult(query, errors={"ou": message}, searched=True)
            centre, alternatives = places[0], tuple(places[1:6])
        near = f"{centre.lat:.6f}|{centre.lng:.6f}|{query.radius_km:g}|km" if centre else None
        entries: list[Entry] = []
        if query.kind != "structures":
            entries.extend(await self._professionals(caller, query, near, centre))
        if query.kind != "professionnels" and not (query.profession or query.specialty):
            entries.extend(await self._structures(caller, query, near, centre))
        if query.accepts_messages:
            entries = [e for e in entries if e.accepts_messages]
        entries.sort(key=lambda e: (e.distance_km if e.distance_km is not None else math.inf, e.name))
        truncated = len(entries) > query.limit
        return DirectoryResult(
            query,
            tuple(entries[: query.limit]),
            centre,
            alternatives,
            truncated=truncated,
            searched=True,
        )

    # -- professionals -------------------------------------------------------------------------

    async def _professionals(
        self, caller: Caller, query: DirectoryQuery, near: str | None, centre: Place | None
    ) -> list[Entry]:
        # inactive activities are left out here rather than by "active=true": the place (or the
        # name) is what narrows the search; every activity would match "active"
        base: list[tuple[str, str]] = [
            ("_include", "PractitionerRole:practitioner"),
            ("_include", "PractitionerRole:organization"),
            ("_include", "PractitionerRole:location"),
            ("_count", "100"),
        ]
        if near:
            base.append(("location.near", near))
        if query.profession:
            base.append(("role", f"{TRE_G15_PROFESSION}|{query.profession}"))
        if query.specialty:
            base.append(("specialty", f"{TRE_R38_SPECIALTY}|{query.specialty}"))
        searches: list[list[tuple[str, str]]] = []
        code = profession_code(query.who) if query.who else None
        if not query.who:
            searches.append(base)
        elif code is not None:
            searches.append([*base, ("role", f"{TRE_G15_PROFESSION}|{code}")])
        else:
            searches.append([*base, *(("practitioner.name", w) for w in _words(query.who))])
            discipline = specialty_words(query.who)
            if discipline:
                searches.append([*base, ("specialty:text", discipline)])
        roles: dict[str, dict[str, Any]] = {}
        included: dict[str, dict[str, Any]] = {}
        for params in searches:
            found, more = await self.reads.search_with_includes(
                caller, "PractitionerRole", params, limit=_FETCH
            )
            for role in found:
                roles.setdefault(str(role.get("id")), role)
            included.update(more)
        return [
            self._professional(role, included, centre)
            for role in roles.values()
            if role.get("active") is not False
        ]

    def _professional(
        self, role: dict[str, Any], included: Mapping[str, dict[str, Any]], centre: Place | None
    ) -> Entry:
        practitioner_ref = _ref(role.get("practitioner"))
        organization_ref = _ref(role.get("organization"))
        practitioner = included.get(practitioner_ref or "")
        organization = included.get(organization_ref or "")
        locations = [included.get(r) for r in (_ref(x) for x in role.get("location", []) or []) if r]
        places = [loc for loc in locations if loc is not None]
        distance = _distance(places, centre)
        located = _nearest(places, centre)
        professions = _displays(role.get("code", []) or [], TRE_G15_PROFESSION) or _displays(
            [
                q.get("code")
                for q in (practitioner or {}).get("qualification", []) or []
                if isinstance(q, dict)
            ],
            TRE_G15_PROFESSION,
        )
        return Entry(
            kind="professionnel",
            reference=f"PractitionerRole/{role.get('id')}",
            name=_person_name(practitioner) or str((role.get("practitioner") or {}).get("display") or ""),
            practitioner=practitioner_ref,
            organization=organization_ref,
            profession=professions[0] if professions else "",
            specialties=_displays(role.get("specialty", []) or [], TRE_R38_SPECIALTY),
            structure=str(
                (organization or {}).get("name") or (role.get("organization") or {}).get("display") or ""
            ),
            address=_address(located, organization),
            phone=_phone(role, located, organization),
            mssante=mssante_addresses(role, practitioner),
            accepts_messages=accepts_messages(role),
            digital=has_digital_label(practitioner, self.digital_label_url),
            distance_km=distance,
        )

    # -- structures ----------------------------------------------------------------------------

    async def _structures(
        self, caller: Caller, query: DirectoryQuery, near: str | None, centre: Place | None
    ) -> list[Entry]:
        base: list[tuple[str, str]] = [
            ("_revinclude", "Location:organization"),
            ("_count", "100"),
        ]
        if near:
            base.append(("_has:Location:organization:near", near))
        searches: list[list[tuple[str, str]]] = []
        if not query.who:
            searches.append(base)
        else:
            words = _words(query.who)
            searches.append([*base, *(("name:contains", w) for w in words)])
            kind = _STRUCTURE_WORDS.get(normalize_place(query.who))
            if kind:
                searches.append([*base, ("type:text", kind)])
        found: dict[str, dict[str, Any]] = {}
        places_of: dict[str, list[dict[str, Any]]] = {}
        for params in searches:
            matches, included = await self.reads.search_with_includes(
                caller, "Organization", params, limit=_FETCH
            )
            for organization in matches:
                found.setdefault(str(organization.get("id")), organization)
            for key, resource in included.items():
                if not key.startswith("Location/"):
                    continue
                owner = _ref(resource.get("managingOrganization"))
                if owner and resource not in places_of.setdefault(owner, []):
                    places_of[owner].append(resource)
        out: list[Entry] = []
        for id, organization in found.items():
            if organization.get("active") is False:
                continue
            places = [
                loc
                for loc in places_of.get(f"Organization/{id}", [])
                if loc.get("status") not in ("inactive", "suspended")
            ]
            located = _nearest(places, centre)
            types = _displays(organization.get("type", []) or [], TRE_R66_CATEGORY) or _displays(
                organization.get("type", []) or [], TRE_R02_SECTOR
            )
            out.append(
                Entry(
                    kind="structure",
                    reference=f"Organization/{id}",
                    name=str(organization.get("name") or ""),
                    practitioner=None,
                    organization=f"Organization/{id}",
                    profession=types[0] if types else "",
                    specialties=(),
                    structure=str(organization.get("name") or ""),
                    address=_address(organization, located),
                    phone=_phone(organization, located),
                    mssante=mssante_addresses(organization),
                    accepts_messages=accepts_messages(organization),
                    digital=False,
                    distance_km=_distance(places, centre),
                )
            )
        return out


def _nearest(locations: Sequence[dict[str, Any]], centre: Place | None) -> dict[str, Any] | None:
    """The location nearest the centre (the first one when there is no centre)."""
    if centre is None or len(locations) < 2:
        return locations[0] if locations else None

    def km(location: dict[str, Any]) -> float:
        found = _distance([location], centre)
        return math.inf if found is None else found

    return min(locations, key=km)


def _distance(locations: Iterable[Mapping[str, Any] | None], centre: Place | None) -> float | None:
    """The distance from the centre to the nearest of the locations with a position."""
    if centre is None:
        return None
    distances = [
        haversine_km(centre.lat, centre.lng, *position)
        for position in (_position(loc) for loc in locations)
        if position is not None
    ]
    return min(distances) if distances else None
