"""Synthetic professional directory: structures, professionals and their activities.

For every region of the commune extract the generator picks a *hub* commune and creates there a
hospital (CHU or CH), a multi-professional practice, a single-doctor practice and two pharmacies, with
their staff: general practitioners, a cardiologist, a paediatrician, a midwife, nurses, a
physiotherapist and pharmacists. Each citizen is then followed by the hub of their region, so
that references stay geographically plausible (a patient living in Ajaccio sees a doctor in Corsica).
Every other commune of the extract gets its local care (:class:`LocalCare`): a doctor's practice,
a nurses' practice and a pharmacy — drawn from a random stream of their own, so that the hubs, and
the citizens who depend on them, do not change when the local care does.

Each structure has a FHIR ``Location`` (``loc-…``) whose ``position`` is its commune's centre
moved by at most :data:`_SPREAD_KM` in a direction drawn from the structure's id (the streets are
invented; so are their exact positions): the directory's geographic search (``Location?near=``)
then orders the practices of one town as well as the towns. ``PractitionerRole.location`` points
at it, and ``Location.managingOrganization`` at the structure. About one professional in three
carries the "professionnel numérique" label (:data:`~hygie.domain.directory_search.DIGITAL_LABEL_URL`).

Identifiers follow the national rules (``hygie.domain.identity``): RPPS with a Luhn key and the
IdNat_PS ``8`` + RPPS; FINESS (EG and EJ) with a Luhn key for hospitals and pharmacies; SIREN/SIRET
with Luhn keys for every structure (public hospitals get a ``26…`` SIREN like French public health
establishments). Resource ids are stable: ``org-<FINESS or SIRET>``, ``pra-<RPPS>``, ``prr-<RPPS>``.

The same directory can be written in the ANS open-extraction format ``PS_LibreAcces_Personne_activite``
(:func:`rpps_extract_lines`), one row per activity, ``|``-separated with the 53-column header.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hygie.demo import codes
from hygie.demo.codes import Profession
from hygie.demo.common import Street, ascii_slug, landline_phone, pick_street
from hygie.demo.reference import Commune, load_communes, load_first_names, load_surnames
from hygie.domain.directory_search import DIGITAL_LABEL_URL
from hygie.domain.ens.messaging import ACCEPTS_MESSAGES_URL
from hygie.domain.identity.directory import PS_LIBREACCES_HEADER
from hygie.domain.identity.luhn import finess_key, idnat_ps_from_rpps, luhn_key, rpps_key

__all__ = [
    "PS_LIBREACCES_HEADER",
    "Directory",
    "Hub",
    "LocalCare",
    "Professional",
    "Structure",
    "build_directory",
    "directory_bundle",
    "rpps_extract_lines",
]

StructureKind = Literal["hospital", "group_practice", "practice", "pharmacy"]

"""Header line of the ANS ``PS_LibreAcces_Personne_activite`` file: 52 names, each followed by ``|``,
so that splitting a line on ``|`` gives 53 fields (the last one empty), as in the published files."""

_SECTORS: Final = {
    "hospital": ("SA01", "Etablissement public de santé"),
    "group_practice": ("SA08", "Cabinet de groupe"),  # label as used in the directory, not verified
    "practice": ("SA07", "Cabinet individuel"),
    "pharmacy": ("SA33", "Pharmacie d'officine"),  # label not verified
}
_FINESS_CATEGORIES: Final = {
    "chu": ("101", "Centre Hospitalier Régional (C.H.R.)"),
    "ch": ("355", "Centre Hospitalier (C.H.)"),
    "pharmacy": ("620", "Pharmacie d'Officine"),
}
_PHARMACY_NAMES: Final = ("du Centre", "de la Gare", "des Halles", "du Marché", "de la Mairie", "du Parc")
_CHU_POPULATION: Final = 200_000
_CHU_CITIES: Final = frozenset({"Paris", "Lyon", "Marseille"})
_SPREAD_KM: Final = 1.2  # how far from its commune's centre a structure may sit
_DIGITAL_SHARE: Final = 0.35  # the professionals with the "professionnel numérique" label


def of_city(city: str) -> str:
    """French "de <city>" with elision and contraction: ``de Lille``, ``d'Ajaccio``, ``du Mans``."""
    if city.startswith("Le "):
        return "du " + city[3:]
    if city.startswith("Les "):
        return "des " + city[4:]
    if city[:1] in "AEIOUYÉÈÊÂÎÔ":
        return "d'" + city
    return "de " + city


@dataclass(frozen=True, slots=True)
class Structure:
    """A care structure (FHIR Organization). ``finess`` is the geographic entity (EG) number."""

    id: str
    kind: StructureKind
    name: str
    address: Street
    siret: str
    phone: str
    email: str
    finess: str | None = None
    finess_ej: str | None = None
    category: tuple[str, str] | None = None

    @property
    def siren(self) -> str:
        """The first 9 digits of the SIRET."""
        return self.siret[:9]

    @property
    def sector(self) -> tuple[str, str]:
        """TRE_R02 activity sector (code, label)."""
        return _SECTORS[self.kind]

    @property
    def idnat_struct(self) -> str:
        """IdNat_Struct (TRE_G07): ``1`` + FINESS when there is one, else ``3`` + SIRET."""
        return "1" + self.finess if self.finess else "3" + self.siret


@dataclass(frozen=True, slots=True)
class Professional:
    """A health professional (FHIR Practitioner) with one activity (PractitionerRole) in a structure."""

    id: str
    role_id: str
    rpps: str
    gender: Literal["male", "female"]
    family: str
    given: str
    profession: Profession
    structure: Structure
    practice_mode: Literal["L", "S"]
    email: str
    phone: str

    @property
    def idnat_ps(self) -> str:
        """``8`` + RPPS."""
        return idnat_ps_from_rpps(self.rpps)

    @property
    def display(self) -> str:
        """Name as printed on a letter: ``Dr Claire MARTIN`` (title only for doctors and pharmacists)."""
        title = "Dr " if self.profession.title_code else ""
        return f"{title}{self.given} {self.family}"


@dataclass(slots=True)
class Hub:
    """The structures and professionals of one region's hub commune."""

    region: str
    commune: Commune
    hospital: Structure
    group_practice: Structure
    practice: Structure
    pharmacies: list[Structure]
    gps: list[Professional] = field(default_factory=list)
    hospital_staff: dict[str, Professional] = field(default_factory=dict)
    nurses: list[Professional] = field(default_factory=list)
    others: list[Professional] = field(default_factory=list)


@dataclass(slots=True)
class LocalCare:
    """The local care of a commune that is not its region's hub: a doctor, nurses, a pharmacy."""

    commune: Commune
    structures: list[Structure]
    professionals: list[Professional]


@dataclass(slots=True)
class Directory:
    """The whole synthetic directory, indexed by region code, and the local care of the other communes."""

    hubs: dict[str, Hub]
    local: list[LocalCare] = field(default_factory=list)

    @property
    def structures(self) -> list[Structure]:
        """All structures, hub by hub, then commune by commune."""
        return [
            *(
                s
                for hub in self.hubs.values()
                for s in (hub.hospital, hub.group_practice, hub.practice, *hub.pharmacies)
            ),
            *(s for care in self.local for s in care.structures),
        ]

    @property
    def professionals(self) -> list[Professional]:
        """All professionals, hub by hub, then commune by commune."""
        return [
            *(
                p
                for hub in self.hubs.values()
                for p in (*hub.gps, *hub.hospital_staff.values(), *hub.nurses, *hub.others)
            ),
            *(p for care in self.local for p in care.professionals),
        ]

    def hub_for(self, commune: Commune) -> Hub:
        """The hub of the commune's region."""
        return self.hubs[commune.region]


class _Numbers:
    """Draws unique identifiers (RPPS, FINESS, SIRET) and unique e-mail local parts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _unique(self, make: Any) -> str:
        while True:
            value: str = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def digits(self, n: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def rpps(self) -> str:
        """``10`` + 8 digits + Luhn key, like current RPPS numbers."""
        return self._unique(lambda: (body := "10" + self.digits(8)) + rpps_key(body))

    def finess(self, department: str) -> str:
        """Department (2 chars; ``97``/``98`` overseas) + ``0`` + 5 digits + Luhn key."""
        if len(department) == 3:
            prefix = "98" if department == "976" else "97"
            body_start = prefix + "0" + department[2]
            return self._unique(lambda: (body := body_start + self.digits(4)) + finess_key(body))
        return self._unique(lambda: (body := department + "0" + self.digits(5)) + finess_key(body))

    def siret(self, public: bool) -> str:
        """A SIREN (``26`` + 6 digits for public health establishments) + NIC, both Luhn-valid."""

        def make() -> str:
            siren_body = ("26" + self.digits(6)) if public else (str(self.rng.randint(3, 9)) + self.digits(7))
            siren = siren_body + luhn_key(siren_body)
            nic_body = siren + "0" + self.digits(3)
            return nic_body + luhn_key(nic_body)

        return self._unique(make)

    def mailbox(self, local: str, domain: str) -> str:
        """``local@domain``, with a digit suffix when the address is already taken."""
        candidate, n = local, 1
        while f"{candidate}@{domain}" in self.used:
            n += 1
            candidate = f"{local}{n}"
        address = f"{candidate}@{domain}"
        self.used.add(address)
        return address


def _person_name(rng: random.Random, gender: Literal["male", "female"]) -> tuple[str, str]:
    """(family, given) for a working-age professional."""
    sex = "M" if gender == "male" else "F"
    given = rng.choice(
        [n.name for n in load_first_names() if n.sex == sex and n.generation in ("old", "mid")]
    )
    return rng.choice(load_surnames()), given


def _structure_mailbox(numbers: _Numbers, name: str, city: str) -> str:
    """An organisational MSSanté mailbox: ``secretariat@<structure-city>.mssante.fr``."""
    return numbers.mailbox(
        "secretariat", f"{ascii_slug(name, '')[:20]}-{ascii_slug(city, '')[:15]}.mssante.fr"
    )


def _make_hub(rng: random.Random, numbers: _Numbers, region: str, communes: list[Commune]) -> Hub:
    commune = rng.choices(communes, weights=[c.population**0.5 for c in communes])[0]
    city = commune.city
    chu = commune.population >= _CHU_POPULATION or city in _CHU_CITIES

    hospital_name = f"{'CHU' if chu else 'CH'} {of_city(city)}"
    finess_ej = numbers.finess(commune.department)
    hospital_finess = numbers.finess(commune.department)
    hospital = Structure(
        id=f"org-{hospital_finess}",
        kind="hospital",
        name=hospital_name,
        address=pick_street(rng, commune),
        siret=numbers.siret(public=True),
        phone=landline_phone(rng, commune),
        email=_structure_mailbox(numbers, hospital_name, city),
        finess=hospital_finess,
        finess_ej=finess_ej,
        category=_FINESS_CATEGORIES["chu" if chu else "ch"],
    )
    msp_name = f"Maison de santé pluriprofessionnelle {of_city(city)}"
    group_siret = numbers.siret(public=False)
    group_practice = Structure(
        id=f"org-{group_siret}",
        kind="group_practice",
        name=msp_name,
        address=pick_street(rng, commune),
        siret=group_siret,
        phone=landline_phone(rng, commune),
        email=_structure_mailbox(numbers, "msp", city),
    )
    pharmacies: list[Structure] = []
    for suffix in rng.sample(_PHARMACY_NAMES, 2):
        name = f"Pharmacie {suffix}"
        finess = numbers.finess(commune.department)
        pharmacies.append(
            Structure(
                id=f"org-{finess}",
                kind="pharmacy",
                name=name,
                address=pick_street(rng, commune),
                siret=numbers.siret(public=False),
                phone=landline_phone(rng, commune),
                email=_structure_mailbox(numbers, name, city),
                finess=finess,
                finess_ej=numbers.finess(commune.department),
                category=_FINESS_CATEGORIES["pharmacy"],
            )
        )

    def professional(profession: Profession, structure: Structure, mode: Literal["L", "S"]) -> Professional:
        return _professional(rng, numbers, profession, structure, mode)

    # The single-doctor practice is named after its doctor, so create the doctor first.
    solo_siret = numbers.siret(public=False)
    solo_street = pick_street(rng, commune)
    solo_phone = landline_phone(rng, commune)
    solo_doctor_gender: Literal["male", "female"] = rng.choice(("male", "female"))
    solo_family, solo_given = _person_name(rng, solo_doctor_gender)
    practice_name = f"Cabinet du Dr {solo_given} {solo_family}"
    practice = Structure(
        id=f"org-{solo_siret}",
        kind="practice",
        name=practice_name,
        address=solo_street,
        siret=solo_siret,
        phone=solo_phone,
        email=_structure_mailbox(numbers, f"cabinet {solo_family}", city),
    )
    solo_rpps = numbers.rpps()
    solo_doctor = Professional(
        id=f"pra-{solo_rpps}",
        role_id=f"prr-{solo_rpps}",
        rpps=solo_rpps,
        gender=solo_doctor_gender,
        family=solo_family,
        given=solo_given,
        profession=codes.GP,
        structure=practice,
        practice_mode="L",
        email=numbers.mailbox(f"{ascii_slug(solo_given)}.{ascii_slug(solo_family)}", codes.GP.mail_domain),
        phone=solo_phone,
    )

    hub = Hub(region, commune, hospital, group_practice, practice, pharmacies)
    hub.gps = [
        professional(codes.GP, group_practice, "L"),
        professional(codes.GP, group_practice, "L"),
        solo_doctor,
    ]
    hub.hospital_staff = {
        "cardiologist": professional(codes.CARDIOLOGIST, hospital, "S"),
        "pediatrician": professional(codes.PEDIATRICIAN, hospital, "S"),
        "emergency": professional(codes.GP, hospital, "S"),
        "midwife": professional(codes.MIDWIFE, hospital, "S"),
    }
    hub.nurses = [professional(codes.NURSE, group_practice, "L"), professional(codes.NURSE, hospital, "S")]
    hub.others = [
        professional(codes.PHYSIOTHERAPIST, group_practice, "L"),
        *(professional(codes.PHARMACIST, pharmacy, "L") for pharmacy in pharmacies),
    ]
    return hub


def _professional(
    rng: random.Random,
    numbers: _Numbers,
    profession: Profession,
    structure: Structure,
    mode: Literal["L", "S"],
    name: tuple[Literal["male", "female"], str, str] | None = None,
) -> Professional:
    """A professional of ``structure`` (a new name unless ``name`` = (gender, family, given))."""
    if name is None:
        gender: Literal["male", "female"] = rng.choice(("male", "female"))
        family, given = _person_name(rng, gender)
    else:
        gender, family, given = name
    rpps = numbers.rpps()
    return Professional(
        id=f"pra-{rpps}",
        role_id=f"prr-{rpps}",
        rpps=rpps,
        gender=gender,
        family=family,
        given=given,
        profession=profession,
        structure=structure,
        practice_mode=mode,
        email=numbers.mailbox(f"{ascii_slug(given)}.{ascii_slug(family)}", profession.mail_domain),
        phone=structure.phone,
    )


def _make_local(rng: random.Random, numbers: _Numbers, commune: Commune) -> LocalCare:
    """A commune's doctor (in a practice named after them), two nurses and a pharmacy."""
    city = commune.city
    gender: Literal["male", "female"] = rng.choice(("male", "female"))
    family, given = _person_name(rng, gender)
    practice_name = f"Cabinet du Dr {given} {family}"
    siret = numbers.siret(public=False)
    practice = Structure(
        id=f"org-{siret}",
        kind="practice",
        name=practice_name,
        address=pick_street(rng, commune),
        siret=siret,
        phone=landline_phone(rng, commune),
        email=_structure_mailbox(numbers, f"cabinet {family}", city),
    )
    nurses_name = f"Cabinet infirmier {of_city(city)}"
    nurses_siret = numbers.siret(public=False)
    nurses = Structure(
        id=f"org-{nurses_siret}",
        kind="group_practice",
        name=nurses_name,
        address=pick_street(rng, commune),
        siret=nurses_siret,
        phone=landline_phone(rng, commune),
        email=_structure_mailbox(numbers, "infirmiers", city),
    )
    pharmacy_name = f"Pharmacie {rng.choice(_PHARMACY_NAMES)}"
    finess = numbers.finess(commune.department)
    pharmacy = Structure(
        id=f"org-{finess}",
        kind="pharmacy",
        name=pharmacy_name,
        address=pick_street(rng, commune),
        siret=numbers.siret(public=False),
        phone=landline_phone(rng, commune),
        email=_structure_mailbox(numbers, pharmacy_name, city),
        finess=finess,
        finess_ej=numbers.finess(commune.department),
        category=_FINESS_CATEGORIES["pharmacy"],
    )
    return LocalCare(
        commune,
        [practice, nurses, pharmacy],
        [
            _professional(rng, numbers, codes.GP, practice, "L", (gender, family, given)),
            _professional(rng, numbers, codes.NURSE, nurses, "L"),
            _professional(rng, numbers, codes.NURSE, nurses, "L"),
            _professional(rng, numbers, codes.PHARMACIST, pharmacy, "L"),
        ],
    )


def build_directory(seed: int = 0) -> Directory:
    """The directory for ``seed``: one hub per region of the commune extract (18 regions), and
    the local care of every other commune of the extract."""
    rng = random.Random(f"hygie-directory:{seed}")
    numbers = _Numbers(rng)
    by_region: dict[str, list[Commune]] = {}
    for commune in load_communes():
        by_region.setdefault(commune.region, []).append(commune)
    directory = Directory(
        {region: _make_hub(rng, numbers, region, communes) for region, communes in sorted(by_region.items())}
    )
    # the local care draws from its own stream (the hubs above stay what they were) but shares
    # the identifiers already taken
    local_numbers = _Numbers(random.Random(f"hygie-directory-local:{seed}"))
    local_numbers.used = numbers.used
    hubs = {hub.commune.insee for hub in directory.hubs.values()}
    directory.local = [
        _make_local(local_numbers.rng, local_numbers, commune)
        for commune in load_communes()
        if commune.insee not in hubs
    ]
    return directory


# --------------------------------------------------------------------------- FHIR
def _identifier(type_code: str, system: str, value: str) -> dict[str, Any]:
    return {
        "use": "official",
        "type": {"coding": [{"system": codes.IDENTIFIER_TYPE_FR, "code": type_code}]},
        "system": system,
        "value": value,
    }


def _mssante(address: str) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": codes.EXT_EMAIL_TYPE,
                "valueCoding": {"system": codes.TRE_R256_MAIL_TYPE, "code": "MSSANTE"},
            }
        ],
        "system": "email",
        "value": address,
    }


def location_id(s: Structure) -> str:
    """``loc-<FINESS or SIRET>``: the structure's Location beside its ``org-…`` Organization."""
    return "loc-" + s.id.removeprefix("org-")


def structure_position(s: Structure) -> tuple[float, float]:
    """(latitude, longitude): the commune's centre moved by up to :data:`_SPREAD_KM`, the same
    for the same structure at every run."""
    rng = random.Random(f"hygie-position:{s.id}")
    distance, bearing = _SPREAD_KM * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    commune = s.address.commune
    dlat = math.degrees(distance * math.cos(bearing) / 6371.0088)
    dlng = math.degrees(distance * math.sin(bearing) / 6371.0088) / math.cos(math.radians(commune.lat))
    return round(commune.lat + dlat, 6), round(commune.lng + dlng, 6)


def location_resource(s: Structure) -> dict[str, Any]:
    """The structure's place: its address, phone and position, managed by its Organization."""
    lat, lng = structure_position(s)
    return {
        "resourceType": "Location",
        "id": location_id(s),
        "status": "active",
        "name": s.name,
        "mode": "instance",
        "telecom": [{"system": "phone", "value": s.phone, "use": "work"}],
        "address": s.address.fhir(),
        "position": {"longitude": lng, "latitude": lat},
        "managingOrganization": {"reference": f"Organization/{s.id}", "display": s.name},
    }


def has_digital_label(p: Professional) -> bool:
    """Whether the demo gives this professional the "professionnel numérique" label (about a third)."""
    return random.Random(f"hygie-digital:{p.rpps}").random() < _DIGITAL_SHARE


def organization_resource(s: Structure) -> dict[str, Any]:
    """The FR Core Organization of a structure."""
    identifiers = [_identifier("IDNST", codes.IDNAT_STRUCT_SYSTEM, s.idnat_struct)]
    if s.finess:
        identifiers.append(_identifier("FINEG", codes.FINESS_SYSTEM, s.finess))
    if s.finess_ej:
        identifiers.append(_identifier("FINEJ", codes.FINESS_SYSTEM, s.finess_ej))
    identifiers.append(_identifier("SIRET", codes.SIRENE_SYSTEM, s.siret))
    types: list[dict[str, Any]] = [
        {"coding": [{"system": codes.TRE_R02_SECTOR, "code": s.sector[0], "display": s.sector[1]}]}
    ]
    if s.category:
        types.append(
            {"coding": [{"system": codes.TRE_R66_CATEGORY, "code": s.category[0], "display": s.category[1]}]}
        )
    return {
        "resourceType": "Organization",
        "id": s.id,
        "meta": {"profile": [codes.PROFILE_ORGANIZATION]},
        "identifier": identifiers,
        "active": True,
        "type": types,
        "name": s.name,
        "telecom": [{"system": "phone", "value": s.phone, "use": "work"}, _mssante(s.email)],
        "address": [s.address.fhir()],
    }


def practitioner_resource(p: Professional) -> dict[str, Any]:
    """The FR Core Practitioner: IdNat_PS and RPPS identifiers, MSSanté mailbox, G15/R38 qualifications."""
    name: dict[str, Any] = {"use": "usual", "family": p.family, "given": [p.given]}
    if p.profession.title_code:
        name["prefix"] = ["Dr"]
    qualifications: list[dict[str, Any]] = [
        {
            "code": {
                "coding": [
                    {
                        "system": codes.TRE_G15_PROFESSION,
                        "code": p.profession.code,
                        "display": p.profession.label,
                    },
                    {"system": codes.TRE_R09_CATEGORY, "code": "C", "display": "Civil"},
                ]
            }
        }
    ]
    if p.profession.specialty_code:
        qualifications.append(
            {
                "code": {
                    "coding": [
                        {
                            "system": codes.TRE_R38_SPECIALTY,
                            "code": p.profession.specialty_code,
                            "display": p.profession.specialty_label,
                        }
                    ]
                }
            }
        )
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": p.id,
        "meta": {"profile": [codes.PROFILE_PRACTITIONER]},
        "identifier": [
            _identifier("IDNPS", codes.IDNAT_PS_SYSTEM, p.idnat_ps),
            _identifier("RPPS", codes.RPPS_SYSTEM, p.rpps),
        ],
        "active": True,
        "name": [name],
        "telecom": [_mssante(p.email)],
        "gender": p.gender,
        "qualification": qualifications,
    }
    if has_digital_label(p):
        practitioner["extension"] = [{"url": DIGITAL_LABEL_URL, "valueBoolean": True}]
    return practitioner


def practitioner_role_resource(p: Professional) -> dict[str, Any]:
    """The FR Core PractitionerRole linking a professional to their structure."""
    mode_label = "Libéral" if p.practice_mode == "L" else "Salarié"
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": p.role_id,
        "meta": {"profile": [codes.PROFILE_PRACTITIONER_ROLE]},
        "active": True,
        "practitioner": {"reference": f"Practitioner/{p.id}", "display": p.display},
        "organization": {"reference": f"Organization/{p.structure.id}", "display": p.structure.name},
        "location": [{"reference": f"Location/{location_id(p.structure)}", "display": p.structure.name}],
        "code": [
            {
                "coding": [
                    {
                        "system": codes.TRE_R22_ACTIVITY_KIND,
                        "code": "GENR01",
                        "display": "Activité de soin et de pharmacie",
                    }
                ]
            },
            {
                "coding": [
                    {"system": codes.TRE_R23_PRACTICE_MODE, "code": p.practice_mode, "display": mode_label}
                ]
            },
            {
                "coding": [
                    {
                        "system": codes.TRE_G15_PROFESSION,
                        "code": p.profession.code,
                        "display": p.profession.label,
                    }
                ]
            },
        ],
        "telecom": [{"system": "phone", "value": p.phone, "use": "work"}, _mssante(p.email)],
        # whether patients may write to this professional from their health space (ENS messaging;
        # domain/ens/messaging.py): the demo's practices say yes, hospitals and pharmacies no
        "extension": [
            {
                "url": ACCEPTS_MESSAGES_URL,
                "valueBoolean": p.structure.kind in ("practice", "group_practice"),
            }
        ],
    }
    if p.profession.specialty_code:
        role["specialty"] = [
            {
                "coding": [
                    {
                        "system": codes.TRE_R38_SPECIALTY,
                        "code": p.profession.specialty_code,
                        "display": p.profession.specialty_label,
                    }
                ]
            }
        ]
    return role


def directory_bundle(directory: Directory) -> dict[str, Any]:
    """Transaction Bundle of the directory, with PUT entries on the stable ids (idempotent load)."""
    resources: list[dict[str, Any]] = [organization_resource(s) for s in directory.structures]
    resources.extend(location_resource(s) for s in directory.structures)
    resources.extend(practitioner_resource(p) for p in directory.professionals)
    resources.extend(practitioner_role_resource(p) for p in directory.professionals)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


# --------------------------------------------------------------------------- RPPS extraction
def _clean(value: str) -> str:
    """A field value with no separator or line break in it."""
    return value.replace("|", " ").replace("\n", " ").replace("\r", " ")


def rpps_extract_row(p: Professional) -> str:
    """One ``PS_LibreAcces_Personne_activite`` line (53 ``|``-separated fields) for a professional."""
    s = p.structure
    street = s.address
    commune = street.commune
    doctor = p.profession.title_code is not None
    pharmacist = p.profession is codes.PHARMACIST
    fields = [
        "8",
        p.rpps,
        p.idnat_ps,
        p.profession.title_code or "",
        "Docteur" if doctor else "",
        "M" if p.gender == "male" else "MME",
        "Monsieur" if p.gender == "male" else "Madame",
        p.family,
        p.given,
        p.profession.code,
        p.profession.label,
        "C",
        "Civil",
        "S" if p.profession.specialty_code else "",
        "Spécialité ordinale" if p.profession.specialty_code else "",
        p.profession.specialty_code or "",
        p.profession.specialty_label or "",
        p.practice_mode,
        "Libéral" if p.practice_mode == "L" else "Salarié",
        s.siret,
        s.siren,
        s.finess or "",
        s.finess_ej or "",
        s.id,
        s.name,
        "",
        "",
        "",
        str(street.number),
        "",
        street.type_code,
        street.type_label,
        street.name,
        "",
        f"{commune.postal_code} {commune.city.upper()}",
        commune.postal_code,
        commune.insee,
        commune.city,
        "",
        "",
        s.phone,
        "",
        "",
        s.email,
        commune.department,
        commune.department_name,
        "",
        p.profession.registrar,
        s.sector[0],
        s.sector[1],
        "A" if pharmacist else "",
        "Pharmaciens titulaires d'officine" if pharmacist else "",
    ]
    return "|".join(_clean(f) for f in fields) + "|"


def rpps_extract_lines(professionals: Iterable[Professional]) -> list[str]:
    """The header and one line per professional activity, without line terminators."""
    return [PS_LIBREACCES_HEADER, *(rpps_extract_row(p) for p in professionals)]
