"""The INSi identity service behind a port, and an in-process reference register that implements it.

**The seam.** :class:`InsiService` is the port: two questions asked of the national identity
teleservice (CNAM *INSi*, backed by the RNIV/SNGI register):

* :meth:`InsiService.search` — "which INS has a person with these traits?": found (the INS and the
  register's traits, which are authoritative and must replace the local ones), not found, or ambiguous
  (several people match; the teleservice then answers nothing usable and the traits must be refined);
* :meth:`InsiService.verify` — "does this INS still belong to a person with these traits?": verified,
  unknown INS, or mismatch (with the name of each trait that differs, never the register's value).

:class:`RegisterInsiService` is the in-process implementation used in development, tests and demos: a
register of :class:`RegisterEntry` (INS + traits) seeded from the demo generator
(:meth:`RegisterInsiService.from_population`) and kept as a JSON file in the data folder
(:meth:`~RegisterInsiService.load` / :meth:`~RegisterInsiService.save`; this file access is the
adapter part of the class; the matching itself is pure). The real teleservice
(a CNAM web service reached through approved identity software, authenticated with a CPS/e-CPS or
establishment certificate; transport details not verified here) would be another class
with the same two methods, picked by ``bootstrap.py``; callers never see which one answers.

Matching rules (modelled on the teleservice; its exact tolerances are not verified): exact birth
date and sex; birth name and first birth first name equal after
:func:`~hygie.domain.identity.fr_core.normalize_name` (accents, case, hyphens, apostrophes, repeated
spaces); birth place code equal when the query gives one.

:func:`query_insi` ties the port to the trust state: it refuses the call for ``DOUT``/``FICT``
identities (EXI SI 09) and records the outcome with
:func:`~hygie.domain.identity.status.record_insi_result`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from hygie.domain.identity.fr_core import (
    IncompleteTraits,
    Ins,
    InsTraits,
    InvalidIns,
    ins_of,
    normalize_name,
    traits_of,
)
from hygie.domain.identity.status import (
    CollectionMethod,
    IdentityError,
    IdentityState,
    record_insi_result,
    require_insi_allowed,
)

__all__ = [
    "REGISTER_FORMAT",
    "InsiOutcome",
    "InsiResult",
    "InsiService",
    "RegisterEntry",
    "RegisterFormatError",
    "RegisterInsiService",
    "TraitName",
    "query_insi",
]

REGISTER_FORMAT: Final = "hygie-insi-register"
_REGISTER_VERSION: Final = 1


class InsiOutcome(StrEnum):
    """What the teleservice answered."""

    FOUND = "found"
    """``search``: one person matches; ``verify``: the INS belongs to a person with these traits."""
    NOT_FOUND = "not-found"
    """``search``: nobody matches; ``verify``: the INS is unknown."""
    AMBIGUOUS = "ambiguous"
    """``search`` only: several people match the traits."""
    MISMATCH = "mismatch"
    """``verify`` only: the INS exists but some traits differ."""


class TraitName(StrEnum):
    """The traits INSi compares, with their French names for messages."""

    BIRTH_NAME = "birth_name"
    FIRST_GIVEN_NAME = "first_given_name"
    GENDER = "gender"
    BIRTH_DATE = "birth_date"
    BIRTH_PLACE = "birth_place_code"
    INS_KIND = "ins_kind"

    @property
    def label(self) -> str:
        """French label."""
        return _TRAIT_LABELS[self]


_TRAIT_LABELS: Final = {
    TraitName.BIRTH_NAME: "nom de naissance",
    TraitName.FIRST_GIVEN_NAME: "premier prénom de naissance",
    TraitName.GENDER: "sexe",
    TraitName.BIRTH_DATE: "date de naissance",
    TraitName.BIRTH_PLACE: "lieu de naissance",
    TraitName.INS_KIND: "type d'INS (OID)",
}


@dataclass(frozen=True, slots=True)
class InsiResult:
    """The answer to a search or a verification.

    ``ins`` and ``traits`` are set only when ``outcome`` is FOUND: they come from the register and
    replace the local traits. ``differences`` lists the traits that differ on a MISMATCH, ``matches``
    the number of people matching a search (2+ for AMBIGUOUS). ``message`` is French, for professionals.
    """

    outcome: InsiOutcome
    ins: Ins | None = None
    traits: InsTraits | None = None
    differences: tuple[TraitName, ...] = ()
    matches: int = 0

    @property
    def found(self) -> bool:
        """True when the teleservice confirmed one identity (a success for the trust status)."""
        return self.outcome is InsiOutcome.FOUND

    @property
    def message(self) -> str:
        """A plain French sentence describing the answer."""
        if self.outcome is InsiOutcome.FOUND:
            return "Identité retrouvée : les traits du téléservice remplacent les traits saisis."
        if self.outcome is InsiOutcome.NOT_FOUND:
            return "Aucune identité ne correspond dans le référentiel national."
        if self.outcome is InsiOutcome.AMBIGUOUS:
            return (
                f"{self.matches} identités correspondent : précisez les traits "
                "(tous les prénoms, lieu de naissance)."
            )
        labels = ", ".join(d.label for d in self.differences)
        return f"L'INS ne correspond pas aux traits saisis : {labels} différent(s)."


class InsiService(Protocol):
    """The port to the national identity teleservice (see the module docstring for the seam)."""

    def search(self, traits: InsTraits) -> InsiResult:
        """Look up the INS of the person with these traits."""
        ...

    def verify(self, ins: Ins, traits: InsTraits) -> InsiResult:
        """Check that ``ins`` belongs to a person with these traits."""
        ...


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """One person of the reference register: the INS and the authoritative traits (no used names)."""

    ins: Ins
    traits: InsTraits


class RegisterFormatError(IdentityError):
    """A register file that is not in the expected JSON form."""

    code = "bad-register-file"


def _differences(register: InsTraits, query: InsTraits) -> tuple[TraitName, ...]:
    found: list[TraitName] = []
    if normalize_name(register.birth_name) != normalize_name(query.birth_name):
        found.append(TraitName.BIRTH_NAME)
    if normalize_name(register.first_given_name) != normalize_name(query.first_given_name):
        found.append(TraitName.FIRST_GIVEN_NAME)
    if register.gender != query.gender:
        found.append(TraitName.GENDER)
    if register.birth_date != query.birth_date:
        found.append(TraitName.BIRTH_DATE)
    if query.birth_place_code and (register.birth_place_code or "").upper() != query.birth_place_code.upper():
        found.append(TraitName.BIRTH_PLACE)
    return tuple(found)


class RegisterInsiService:
    """:class:`InsiService` answered from an in-process register (the RNIV stand-in).

    ``register`` maps each matricule to its entry. Searches use an index on (birth date, sex), so a
    search costs a handful of comparisons whatever the register's size.
    """

    def __init__(self, register: Mapping[str, RegisterEntry]) -> None:
        self._register = dict(register)
        self._by_birth: dict[tuple[date, str], list[RegisterEntry]] = {}
        for entry in self._register.values():
            self._by_birth.setdefault((entry.traits.birth_date, entry.traits.gender), []).append(entry)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_entries(cls, entries: Iterable[RegisterEntry]) -> RegisterInsiService:
        """A service over these entries; the first entry wins when a matricule repeats."""
        register: dict[str, RegisterEntry] = {}
        for entry in entries:
            register.setdefault(entry.ins.matricule, entry)
        return cls(register)

    @classmethod
    def from_population(cls, bundles: Iterable[Mapping[str, Any]]) -> RegisterInsiService:
        """A register of every Patient with an INS in these Bundles (the demo generator's output).

        The register holds everyone with a NIR or NIA, whatever the local trust status; used names
        are dropped (the register does not know them). Patients without an INS, with an invalid INS
        or incomplete traits are skipped.
        """

        def entries() -> Iterator[RegisterEntry]:
            for bundle in bundles:
                for item in bundle.get("entry", ()):
                    resource = item.get("resource", {})
                    if resource.get("resourceType") != "Patient":
                        continue
                    try:
                        ins = ins_of(resource)
                        traits = traits_of(resource)
                    except (InvalidIns, IncompleteTraits):
                        continue
                    if ins is not None:
                        yield RegisterEntry(ins, replace(traits, used_name=None, used_first_name=None))

        return cls.from_entries(entries())

    def __len__(self) -> int:
        return len(self._register)

    def __iter__(self) -> Iterator[RegisterEntry]:
        return iter(self._register.values())

    # ------------------------------------------------------------------ the port
    def search(self, traits: InsTraits) -> InsiResult:
        """Find the one person with these traits (rules in the module docstring)."""
        candidates = [
            entry
            for entry in self._by_birth.get((traits.birth_date, traits.gender), ())
            if not _differences(entry.traits, traits)
        ]
        if not candidates:
            return InsiResult(InsiOutcome.NOT_FOUND)
        if len(candidates) > 1:
            return InsiResult(InsiOutcome.AMBIGUOUS, matches=len(candidates))
        entry = candidates[0]
        return InsiResult(InsiOutcome.FOUND, ins=entry.ins, traits=entry.traits, matches=1)

    def verify(self, ins: Ins, traits: InsTraits) -> InsiResult:
        """Check ``ins`` against the register; on a mismatch, name every differing trait."""
        entry = self._register.get(ins.matricule)
        if entry is None:
            return InsiResult(InsiOutcome.NOT_FOUND)
        differences = _differences(entry.traits, traits)
        if entry.ins.kind != ins.kind:
            differences = (*differences, TraitName.INS_KIND)
        if differences:
            return InsiResult(InsiOutcome.MISMATCH, differences=differences)
        return InsiResult(InsiOutcome.FOUND, ins=entry.ins, traits=entry.traits, matches=1)

    # ------------------------------------------------------------------ JSON form
    def to_json(self) -> dict[str, Any]:
        """The register as a JSON-ready dict, entries sorted by matricule (stable files)."""
        return {
            "format": REGISTER_FORMAT,
            "version": _REGISTER_VERSION,
            "entries": [_entry_json(self._register[key]) for key in sorted(self._register)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegisterInsiService:
        """Rebuild a register from :meth:`to_json`; raises :class:`RegisterFormatError` if malformed."""
        if data.get("format") != REGISTER_FORMAT or data.get("version") != _REGISTER_VERSION:
            raise RegisterFormatError(
                f"Fichier de référentiel INSi non reconnu (format attendu : {REGISTER_FORMAT} "
                f"version {_REGISTER_VERSION})."
            )
        entries: list[RegisterEntry] = []
        for position, item in enumerate(data.get("entries", ()), start=1):
            try:
                entries.append(_entry_from_json(item))
            except (KeyError, TypeError, ValueError) as error:
                raise RegisterFormatError(
                    f"Entrée n° {position} du référentiel INSi illisible ({error})."
                ) from error
        return cls.from_entries(entries)

    def save(self, path: Path) -> None:
        """Write the register to ``path`` as UTF-8 JSON, atomically (temporary file then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.to_json(), out, ensure_ascii=False, indent=1)
                out.write("\n")
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> RegisterInsiService:
        """Read a register written by :meth:`save`."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RegisterFormatError(f"Fichier de référentiel INSi illisible : {error}.") from error
        if not isinstance(data, dict):
            raise RegisterFormatError("Fichier de référentiel INSi illisible : objet JSON attendu.")
        return cls.from_json(data)


def _entry_json(entry: RegisterEntry) -> dict[str, Any]:
    traits = entry.traits
    return {
        "matricule": entry.ins.matricule,
        "kind": entry.ins.kind,
        "birth_name": traits.birth_name,
        "birth_given_names": list(traits.birth_given_names),
        "gender": traits.gender,
        "birth_date": traits.birth_date.isoformat(),
        "birth_place_code": traits.birth_place_code,
    }


def _entry_from_json(item: Mapping[str, Any]) -> RegisterEntry:
    kind = item["kind"]
    if kind not in ("NIR", "NIA", "test", "demo"):
        raise ValueError(f"unknown INS kind {kind!r}")
    gender = item["gender"]
    if gender not in ("male", "female", "other", "unknown"):
        raise ValueError(f"unknown gender {gender!r}")
    ins = Ins(str(item["matricule"]), kind)
    traits = InsTraits(
        birth_name=str(item["birth_name"]),
        birth_given_names=tuple(str(g) for g in item["birth_given_names"]),
        gender=gender,
        birth_date=date.fromisoformat(item["birth_date"]),
        birth_place_code=item.get("birth_place_code"),
    )
    return RegisterEntry(ins, traits)


def query_insi(
    service: InsiService,
    state: IdentityState,
    traits: InsTraits,
    *,
    query_date: date,
    method: CollectionMethod,
    ins: Ins | None = None,
) -> tuple[InsiResult, IdentityState]:
    """Ask INSi (verify when ``ins`` is known, else search) and record the outcome on the trust state.

    Raises :class:`~hygie.domain.identity.status.InsiCallBlocked` before any call when the identity is
    ``DOUT`` or ``FICT``. Success moves ``PROV``→``RECUP`` / ``VALI``→``QUAL``; any other outcome withdraws
    INSi evidence. The caller must then store the register's traits and INS from the result.
    """
    require_insi_allowed(state)
    result = service.search(traits) if ins is None else service.verify(ins, traits)
    return result, record_insi_result(state, result.found, query_date, method)
