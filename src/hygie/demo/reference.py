"""Reference data shipped with the demo generator: communes, first names and family names.

The files live in ``hygie/demo/data`` (package data, so the generator never reads outside the
installed package):

* ``communes.csv``: a curated extract of about a hundred INSEE communes (the chef-lieu of every
  department, overseas and Corsica included, plus a few large cities; Paris, Lyon and Marseille by
  arrondissement, as INSEE codes them in a NIR) with postal code, department, region, WGS84
  centre and population. Source: INSEE Code officiel géographique, Licence Ouverte / Etalab 2.0
  (see the attribution line at the top of the file).
* ``first_names.csv`` and ``surnames.txt``: common French names, written for this project.

Lines starting with ``#`` are comments (the attribution headers).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, cast

__all__ = ["Commune", "FirstName", "load_communes", "load_first_names", "load_surnames"]

Generation = Literal["old", "mid", "young"]


@dataclass(frozen=True, slots=True)
class Commune:
    """One commune of the curated extract.

    ``insee`` is the 5-character INSEE code (``2A004``, ``97105``, ``75114``) that goes into a NIR and
    into FR Core's ``fr-core-address-insee-code``; ``name`` is the official name (``Paris 14e
    Arrondissement``) and ``city`` the name used in postal addresses (``Paris``).
    """

    insee: str
    name: str
    city: str
    postal_code: str
    department: str
    department_name: str
    region: str
    region_name: str
    lat: float
    lng: float
    population: int

    @property
    def overseas(self) -> bool:
        """True for the overseas departments (971–976), whose departments have 3 characters."""
        return len(self.department) == 3


@dataclass(frozen=True, slots=True)
class FirstName:
    """A given name with the sex it is mostly given to and the generation it is typical of."""

    name: str
    sex: Literal["F", "M"]
    generation: Generation


def _data_lines(name: str) -> list[str]:
    """The non-comment lines of a data file of this package."""
    text = resources.files("hygie.demo").joinpath("data", name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@cache
def load_communes() -> tuple[Commune, ...]:
    """All communes of ``communes.csv``, in file order (sorted by INSEE code)."""
    rows = csv.DictReader(io.StringIO("\n".join(_data_lines("communes.csv"))))
    return tuple(
        Commune(
            insee=r["insee"],
            name=r["name"],
            city=r["city"],
            postal_code=r["postal_code"],
            department=r["department"],
            department_name=r["department_name"],
            region=r["region"],
            region_name=r["region_name"],
            lat=float(r["lat"]),
            lng=float(r["lng"]),
            population=int(r["population"]),
        )
        for r in rows
    )


@cache
def load_first_names() -> tuple[FirstName, ...]:
    """All given names of ``first_names.csv``."""
    rows = csv.DictReader(io.StringIO("\n".join(_data_lines("first_names.csv"))))
    names: list[FirstName] = []
    for r in rows:
        sex = r["sex"]
        generation = r["generation"]
        if sex not in ("F", "M") or generation not in ("old", "mid", "young"):
            raise ValueError(f"bad row in first_names.csv: {r}")
        names.append(FirstName(r["name"], cast("Literal['F', 'M']", sex), cast("Generation", generation)))
    return tuple(names)


@cache
def load_surnames() -> tuple[str, ...]:
    """All family names of ``surnames.txt`` (upper case, as French registries write them)."""
    return tuple(_data_lines("surnames.txt"))
