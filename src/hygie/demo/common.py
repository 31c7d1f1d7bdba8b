"""Helpers shared by the directory and citizen generators: ids, times, addresses, phone numbers.

Everything takes an explicit :class:`random.Random` so that a seed reproduces the same output.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from hygie.demo.codes import EXT_INSEE_CODE, TRE_R13_COMMUNE
from hygie.demo.reference import Commune
from hygie.domain.french import FRENCH_MONTHS

__all__ = [
    "FRENCH_MONTHS",
    "Street",
    "ascii_slug",
    "fhir_datetime",
    "fr_date",
    "landline_phone",
    "mobile_phone",
    "pick_street",
    "random_uuid",
    "utc_offset",
]


# Overseas departments keep a fixed offset all year (no daylight saving time).
_OVERSEAS_OFFSETS: Final = {"971": -4, "972": -4, "973": -3, "974": 4, "976": 3}
# Landline prefixes: metropolitan zones by region, overseas by department.
_LANDLINE_BY_REGION: Final = {
    "11": "01",
    "24": "02",
    "28": "02",
    "52": "02",
    "53": "02",
    "27": "03",
    "32": "03",
    "44": "03",
    "84": "04",
    "93": "04",
    "94": "04",
    "75": "05",
    "76": "05",
}
_OVERSEAS_LANDLINE: Final = {"971": "0590", "972": "0596", "973": "0594", "974": "0262", "976": "0269"}
_OVERSEAS_MOBILE: Final = {"971": "0690", "972": "0696", "973": "0694", "974": "0692", "976": "0639"}


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (reproducible, unlike :func:`uuid.uuid4`)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ascii_slug(text: str, sep: str = "-") -> str:
    """Lower-case ASCII form of a name for e-mail addresses and ids (``Hélène Dupré`` → ``helene-dupre``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = (
        "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode()
    )
    words = "".join(c if c.isalnum() else " " for c in ascii_text.lower()).split()
    return sep.join(words)


def _last_sunday(year: int, month: int) -> date:
    """The last Sunday of a month (EU daylight-saving switch days)."""
    day = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def utc_offset(local: datetime, department: str) -> int:
    """Hours ahead of UTC for a local time in ``department``: Paris time (CET/CEST) or overseas."""
    if department in _OVERSEAS_OFFSETS:
        return _OVERSEAS_OFFSETS[department]
    start, end = _last_sunday(local.year, 3), _last_sunday(local.year, 10)
    return 2 if start <= local.date() < end else 1


def fhir_datetime(local: datetime, department: str) -> str:
    """A FHIR dateTime/instant with the local offset, e.g. ``2023-04-12T09:30:00+02:00``."""
    offset = utc_offset(local, department)
    sign = "+" if offset >= 0 else "-"
    return f"{local.strftime('%Y-%m-%dT%H:%M:%S')}{sign}{abs(offset):02d}:00"


def fr_date(day: date | datetime, *, long: bool = False) -> str:
    """French date: ``12/04/2023`` or, with ``long``, ``12 avril 2023``."""
    if long:
        return f"{day.day} {FRENCH_MONTHS[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")


def landline_phone(rng: random.Random, commune: Commune) -> str:
    """A plausible French landline number for the commune's zone (10 digits, no spaces)."""
    prefix = _OVERSEAS_LANDLINE.get(commune.department) or _LANDLINE_BY_REGION.get(commune.region, "09")
    return prefix + "".join(str(rng.randrange(10)) for _ in range(10 - len(prefix)))


def mobile_phone(rng: random.Random, commune: Commune) -> str:
    """A plausible French mobile number (06/07, or the overseas mobile prefix)."""
    prefix = _OVERSEAS_MOBILE.get(commune.department) or rng.choice(("06", "07"))
    return prefix + "".join(str(rng.randrange(10)) for _ in range(10 - len(prefix)))


@dataclass(frozen=True, slots=True)
class Street:
    """A street address in a commune, with the RPPS extraction's street type code."""

    number: int
    type_code: str
    type_label: str
    name: str
    commune: Commune

    @property
    def line(self) -> str:
        """The address line as written on a letter: ``12 rue de la République``."""
        return f"{self.number} {self.type_label.lower()} {self.name}"

    def fhir(self, use: str = "work") -> dict[str, Any]:
        """FHIR Address with the INSEE commune code in FR Core's extension."""
        return {
            "extension": [
                {
                    "url": EXT_INSEE_CODE,
                    "valueCoding": {"system": TRE_R13_COMMUNE, "code": self.commune.insee},
                }
            ],
            "use": use,
            "type": "both",
            "line": [self.line],
            "city": self.commune.city,
            "district": self.commune.department_name,
            "postalCode": self.commune.postal_code,
            "country": "FR",
        }


_STREETS: Final = (
    ("R", "Rue", "de la République"),
    ("R", "Rue", "Victor Hugo"),
    ("R", "Rue", "Pasteur"),
    ("R", "Rue", "du Moulin"),
    ("R", "Rue", "de l'Église"),
    ("R", "Rue", "des Écoles"),
    ("R", "Rue", "Jean Moulin"),
    ("R", "Rue", "de la Gare"),
    ("AV", "Avenue", "Jean Jaurès"),
    ("AV", "Avenue", "du Général de Gaulle"),
    ("AV", "Avenue", "de la Libération"),
    ("BD", "Boulevard", "Gambetta"),
    ("BD", "Boulevard", "Voltaire"),
    ("PL", "Place", "de la Mairie"),
    ("PL", "Place", "du Marché"),
    ("CHE", "Chemin", "des Vignes"),
    ("ALL", "Allée", "des Tilleuls"),
    ("IMP", "Impasse", "des Lilas"),
    ("QUAI", "Quai", "des Bateliers"),
    ("RTE", "Route", "de la Forêt"),
)


def pick_street(rng: random.Random, commune: Commune) -> Street:
    """A random street address in ``commune``."""
    type_code, type_label, name = rng.choice(_STREETS)
    return Street(rng.randint(1, 120), type_code, type_label, name, commune)
