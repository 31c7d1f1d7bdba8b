"""The medicines a prescription may name: a demo list kept as data (``medicines.json``).

Each entry is a presentation as a French pharmacy knows it: its name, its CIP13 code (BDPM), its
ATC class, its form and strength, the unit a dose is counted in (*comprimé*, *gélule*, *mL*,
*bouffée*…) with the smallest fraction of it a dose may have (a scored tablet halves), the
maximum daily dose in that unit (so that an impossible dose is refused before it is printed), and
the pack a pharmacist hands over (*boîte de 8 comprimés*, *flacon de 60 mL*).

The list is demonstration data, not a drug database: an operator replaces the file with an
extract of the BDPM (same fields). It is read once per process.

Code systems (digest §9.1): CIP13 and ATC are the SMT's; the CIP13 prefix ``34009`` is [P]
(digest §11.8), so :func:`is_cip13` checks it beside the EAN-13 key but the prefix is a constant
an operator may change.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

import orjson

__all__ = [
    "ATC_SYSTEM",
    "CIP13_PREFIX",
    "CIP13_SYSTEM",
    "UCD_SYSTEM",
    "Catalogue",
    "Medicine",
    "catalogue",
    "ean13_key",
    "is_cip13",
]

CIP13_SYSTEM: Final = "https://smt.esante.gouv.fr/terminologie-bdpm"
UCD_SYSTEM: Final = "https://smt.esante.gouv.fr/terminologie-cip_ucd"
ATC_SYSTEM: Final = "https://smt.esante.gouv.fr/terminologie-atc"
CIP13_PREFIX: Final = "34009"  # [P] digest §9.1 / §11.8


def ean13_key(body12: str) -> str:
    """The EAN-13 check digit of 12 digits (weights 1, 3, 1, 3… from the left)."""
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body12))
    return str((10 - total % 10) % 10)


def is_cip13(code: str, prefix: str = CIP13_PREFIX) -> bool:
    """13 digits, starting with ``prefix``, whose last digit is the EAN-13 key of the others."""
    return len(code) == 13 and code.isdigit() and code.startswith(prefix) and ean13_key(code[:12]) == code[12]


def _folded(text: str) -> str:
    """Case, accents and spacing left out: what a name lookup compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.split())


@dataclass(frozen=True, slots=True)
class Medicine:
    name: str  # "DOLIPRANE 1000 mg, comprimé"
    cip13: str
    atc: str
    inn: str  # the substance (DCI)
    form: str
    strength: str
    unit: str  # the unit of a dose: "comprimé", "mL", "sachet"…
    unit_plural: str
    dose_step: float  # a dose is a multiple of this (0.5: scored tablet)
    max_daily_dose: float  # in ``unit`` per day
    pack_size: float  # units of dose in one pack
    pack_unit: str  # what is handed over: "boîte", "flacon", "inhalateur"…
    max_treatment_days: int | None = None  # a regulatory maximum (benzodiazepines)

    def units(self, amount: float) -> str:
        """``amount`` of the dose unit in French: "1 comprimé", "1/2 comprimé", "2,5 mL"."""
        return f"{french_number(amount)} {self.unit_plural if amount >= 2 else self.unit}"

    def packs(self, count: int) -> str:
        """``count`` packs in French: "1 boîte", "3 flacons"."""
        return f"{count} {self.pack_unit}{'s' if count > 1 else ''}"

    def codeable_concept(self) -> dict[str, Any]:
        """``medicationCodeableConcept``: CIP13 and ATC codings, the name as text."""
        return {
            "coding": [
                {"system": CIP13_SYSTEM, "code": self.cip13, "display": self.name},
                {"system": ATC_SYSTEM, "code": self.atc, "display": self.inn},
            ],
            "text": self.name,
        }

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Medicine:
        maximum = item.get("max_treatment_days")
        return cls(
            name=str(item["name"]),
            cip13=str(item["cip13"]),
            atc=str(item["atc"]),
            inn=str(item["inn"]),
            form=str(item["form"]),
            strength=str(item["strength"]),
            unit=str(item["unit"]),
            unit_plural=str(item.get("unit_plural") or item["unit"]),
            dose_step=float(item.get("dose_step", 1)),
            max_daily_dose=float(item["max_daily_dose"]),
            pack_size=float(item["pack_size"]),
            pack_unit=str(item.get("pack_unit") or "boîte"),
            max_treatment_days=int(maximum) if maximum is not None else None,
        )


_FRACTIONS: Final = {0.25: "1/4", 0.5: "1/2", 0.75: "3/4"}


def french_number(value: float) -> str:
    """A dose as a French prescription writes it: "1", "1/2", "1,5"."""
    if value in _FRACTIONS:
        return _FRACTIONS[value]
    if float(value).is_integer():
        return str(int(value))
    return f"{value:g}".replace(".", ",")


class Catalogue:
    """The medicines by CIP13 and by name (case and accents ignored)."""

    def __init__(self, medicines: list[Medicine], *, prefix: str = CIP13_PREFIX) -> None:
        self.medicines = tuple(medicines)
        self._by_cip: dict[str, Medicine] = {}
        self._by_name: dict[str, Medicine] = {}
        for medicine in medicines:
            if not is_cip13(medicine.cip13, prefix):
                raise ValueError(f"{medicine.name}: {medicine.cip13!r} is not a CIP13 code")
            if medicine.cip13 in self._by_cip:
                raise ValueError(f"CIP13 {medicine.cip13} is listed twice")
            if medicine.max_daily_dose <= 0 or medicine.pack_size <= 0 or medicine.dose_step <= 0:
                raise ValueError(f"{medicine.name}: doses and pack size must be positive")
            self._by_cip[medicine.cip13] = medicine
            self._by_name[_folded(medicine.name)] = medicine

    def __len__(self) -> int:
        return len(self.medicines)

    def by_cip13(self, code: str) -> Medicine | None:
        return self._by_cip.get(code.strip())

    def by_name(self, name: str) -> Medicine | None:
        return self._by_name.get(_folded(name))

    def find(self, text: str) -> Medicine | None:
        """A CIP13 code or a medicine's full name."""
        text = text.strip()
        if text.isdigit():
            return self.by_cip13(text)
        return self.by_name(text)

    @classmethod
    def from_json(cls, data: bytes) -> Catalogue:
        """``{"medicines": [{"name": …, "cip13": …, …}, …]}`` (see ``medicines.json``)."""
        loaded = orjson.loads(data)
        items = loaded.get("medicines") if isinstance(loaded, dict) else None
        if not isinstance(items, list):
            raise ValueError('a medicine list is {"medicines": [...]}')  # noqa: TRY004 - configuration error
        return cls([Medicine.from_json(item) for item in items])


@functools.cache
def catalogue() -> Catalogue:
    """The list shipped beside this module, read once."""
    return Catalogue.from_json(files("hygie.domain.eprescription").joinpath("medicines.json").read_bytes())
