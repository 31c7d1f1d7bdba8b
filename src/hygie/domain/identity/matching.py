"""Duplicate detection for patients and professionals (identity vigilance, *identitovigilance*).

Two records of the same person split their history: a document filed under one is missing from the
other, and a professional may act on half the facts. This module finds candidate pairs for an
identity-vigilance team to review; it never merges anything itself.

**Patients** (:func:`find_patient_duplicates`):

* the same INS matricule on two records is a *certain* duplicate (score 1.0);
* otherwise, within the same birth date and sex (the blocking key, which keeps the work linear: only
  records born the same day with the same sex are compared), a pair is a candidate when, after
  :func:`~hygie.domain.identity.fr_core.normalize_name`:

  - birth name and first given name are equal (score 0.95),
  - they are within a small edit distance (``max_distance`` edits in total, default 2; score
    0.9 − 0.1 per edit),
  - they are swapped (family name typed as first name; score 0.85),
  - the used name of one is the birth name of the other (score 0.8);

  a different known birth place lowers the score by 0.15, and two different INS by 0.3 (twins or a
  wrong INS: a human must look). Pairs below ``min_score`` are dropped. Typos in the birth date itself
  are not caught by design of the blocking key.

**Professionals** (:func:`find_practitioner_duplicates`): the same RPPS or IdNat_PS (``8`` + RPPS) is
certain; otherwise the same normalised name and profession (TRE_G15) with at least one structure in
common (through their PractitionerRoles) is a candidate (score 0.8).

Reasons are French sentences for the reviewers. Everything is pure and works on FHIR dicts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hygie.domain.identity.fr_core import (
    IncompleteTraits,
    InsTraits,
    InvalidIns,
    ins_of,
    normalize_name,
    traits_of,
)

__all__ = [
    "DuplicateCandidate",
    "compare_traits",
    "edit_distance",
    "find_patient_duplicates",
    "find_practitioner_duplicates",
]

IDNAT_PS_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.1"
RPPS_SYSTEM: Final = "https://rpps.esante.gouv.fr"
TRE_G15_PROFESSION: Final = (
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
)

KeyFunction = Callable[[Mapping[str, Any], int], str]


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """Two records that may describe the same person.

    ``first``/``second`` are the records' keys (resource ids by default, ``first < second``),
    ``score`` in ]0, 1], ``certain`` for a shared national identifier, ``reasons`` in French.
    """

    first: str
    second: str
    score: float
    certain: bool
    reasons: tuple[str, ...]


def default_key(resource: Mapping[str, Any], position: int) -> str:
    """The resource id, or ``#<position>`` in the input when it has none."""
    return str(resource.get("id") or f"#{position}")


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance between ``a`` and ``b``; stops early and returns ``limit + 1`` past ``limit``."""
    if a == b:
        return 0
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        if limit is not None and min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


@dataclass(frozen=True, slots=True)
class _PatientView:
    key: str
    matricule: str | None
    traits: InsTraits
    birth_name: str
    first_given: str
    used_name: str


def _patient_view(patient: Mapping[str, Any], key: str) -> _PatientView | None:
    try:
        traits = traits_of(patient)
    except IncompleteTraits:
        return None
    try:
        ins = ins_of(patient)
    except InvalidIns:
        ins = None
    return _PatientView(
        key=key,
        matricule=ins.matricule if ins else None,
        traits=traits,
        birth_name=normalize_name(traits.birth_name),
        first_given=normalize_name(traits.first_given_name),
        used_name=normalize_name(traits.used_name or ""),
    )


def compare_traits(
    a: InsTraits, b: InsTraits, *, max_distance: int = 2
) -> tuple[float, tuple[str, ...]] | None:
    """Score two sets of traits of people born the same day with the same sex, or None if unrelated.

    Returns ``(score, reasons)`` before any INS consideration (see the module docstring for the
    rules). Raises nothing; traits with a different birth date or sex are unrelated.
    """
    if a.birth_date != b.birth_date or a.gender != b.gender:
        return None
    name_a, name_b = normalize_name(a.birth_name), normalize_name(b.birth_name)
    first_a, first_b = normalize_name(a.first_given_name), normalize_name(b.first_given_name)
    reasons = ["même date de naissance et même sexe"]
    if name_a == name_b and first_a == first_b:
        score = 0.95
        reasons.append("mêmes nom de naissance et premier prénom")
    elif name_a == first_b and first_a == name_b:
        score = 0.85
        reasons.append(
            f"nom et prénom inversés ({a.birth_name} {a.first_given_name} / {b.birth_name} {b.first_given_name})"
        )
    else:
        distance = edit_distance(name_a, name_b, max_distance)
        distance += edit_distance(first_a, first_b, max_distance)
        used_a, used_b = normalize_name(a.used_name or ""), normalize_name(b.used_name or "")
        if distance <= max_distance:
            score = 0.9 - 0.1 * distance
            reasons.append(
                f"noms très proches ({a.birth_name} {a.first_given_name} / {b.birth_name} {b.first_given_name}, "
                f"{distance} différence{'s' if distance > 1 else ''})"
            )
        elif first_a == first_b and ((used_a and used_a == name_b) or (used_b and used_b == name_a)):
            score = 0.8
            reasons.append("le nom d'usage de l'un est le nom de naissance de l'autre")
        else:
            return None
    place_a, place_b = a.birth_place_code, b.birth_place_code
    if place_a and place_b and place_a.upper() != place_b.upper():
        score -= 0.15
        reasons.append(f"lieux de naissance différents ({place_a} / {place_b})")
    return score, tuple(reasons)


def find_patient_duplicates(
    patients: Iterable[Mapping[str, Any]],
    *,
    max_distance: int = 2,
    min_score: float = 0.5,
    key: KeyFunction = default_key,
) -> list[DuplicateCandidate]:
    """Candidate duplicate pairs among Patients, best first (rules in the module docstring).

    Patients without a birth name, sex or birth date cannot be compared on traits and are matched on
    their INS only. Each pair appears once. Cost: linear in the number of patients plus the pairs
    inside each (birth date, sex) block.
    """
    by_ins: dict[str, list[str]] = {}
    blocks: dict[tuple[Any, str], list[_PatientView]] = {}
    for position, patient in enumerate(patients):
        record_key = key(patient, position)
        view = _patient_view(patient, record_key)
        if view is None:
            try:
                ins = ins_of(patient)
            except InvalidIns:
                ins = None
            if ins is not None:
                by_ins.setdefault(ins.matricule, []).append(record_key)
            continue
        if view.matricule:
            by_ins.setdefault(view.matricule, []).append(record_key)
        blocks.setdefault((view.traits.birth_date, view.traits.gender), []).append(view)

    found: dict[tuple[str, str], DuplicateCandidate] = {}
    for matricule, keys in by_ins.items():
        for first, second in itertools.combinations(sorted(set(keys)), 2):
            found[(first, second)] = DuplicateCandidate(
                first, second, 1.0, True, (f"même matricule INS ({matricule})",)
            )
    for block in blocks.values():
        for left, right in itertools.combinations(block, 2):
            pair = (min(left.key, right.key), max(left.key, right.key))
            if pair in found or left.key == right.key:
                continue
            compared = compare_traits(left.traits, right.traits, max_distance=max_distance)
            if compared is None:
                continue
            score, reasons = compared
            if left.matricule and right.matricule and left.matricule != right.matricule:
                score -= 0.3
                reasons = (*reasons, "matricules INS différents (jumeaux ou INS erroné ?)")
            if score >= min_score:
                found[pair] = DuplicateCandidate(pair[0], pair[1], round(score, 2), False, reasons)
    return sorted(found.values(), key=lambda c: (-c.score, c.first, c.second))


# --------------------------------------------------------------------------- professionals
def _national_ids(practitioner: Mapping[str, Any]) -> set[str]:
    """``rpps:<11 digits>`` for an RPPS or an ``8``-prefixed IdNat_PS, ``idnps:<value>`` for other IdNat_PS."""
    ids: set[str] = set()
    for identifier in practitioner.get("identifier", ()):
        system, value = identifier.get("system"), str(identifier.get("value") or "").strip()
        if not value:
            continue
        if system == RPPS_SYSTEM:
            ids.add(f"rpps:{value}")
        elif system == IDNAT_PS_SYSTEM:
            if value.startswith("8") and len(value) == 12:
                ids.add(f"rpps:{value[1:]}")
            else:
                ids.add(f"idnps:{value}")
    return ids


def _professions(resource: Mapping[str, Any], element: str) -> set[str]:
    codes: set[str] = set()
    for item in resource.get(element, ()):
        concept = item.get("code", item) if element == "qualification" else item
        for coding in concept.get("coding", ()):
            if coding.get("system") == TRE_G15_PROFESSION and coding.get("code"):
                codes.add(str(coding["code"]))
    return codes


def _name_key(practitioner: Mapping[str, Any]) -> str | None:
    for name in practitioner.get("name", ()):
        family = name.get("family")
        given = (name.get("given") or [""])[0]
        if family:
            return f"{normalize_name(family)}|{normalize_name(given)}"
    return None


def _reference_id(reference: Mapping[str, Any] | None, resource_type: str) -> str | None:
    if not reference:
        return None
    ref = str(reference.get("reference") or "")
    prefix = f"{resource_type}/"
    if ref.startswith(prefix):
        return ref[len(prefix) :]
    identifier = reference.get("identifier")
    if identifier and identifier.get("value"):
        return f"{identifier.get('system', '')}|{identifier['value']}"
    return ref or None


def find_practitioner_duplicates(
    practitioners: Sequence[Mapping[str, Any]],
    roles: Iterable[Mapping[str, Any]] = (),
    *,
    key: KeyFunction = default_key,
) -> list[DuplicateCandidate]:
    """Candidate duplicate pairs among Practitioners, best first.

    ``roles`` are the PractitionerRoles that link practitioners (``practitioner.reference``
    ``Practitioner/<id>``) to structures (``organization``); their TRE_G15 codes count as the
    practitioner's profession too. Pairs sharing an RPPS/IdNat_PS are certain; pairs with the same
    normalised name and profession and a structure in common score 0.8.
    """
    keys = [key(p, position) for position, p in enumerate(practitioners)]
    by_id = {str(p["id"]): k for p, k in zip(practitioners, keys, strict=True) if p.get("id")}
    structures: dict[str, set[str]] = {k: set() for k in keys}
    professions: dict[str, set[str]] = {
        k: _professions(p, "qualification") for p, k in zip(practitioners, keys, strict=True)
    }
    for role in roles:
        owner = by_id.get(_reference_id(role.get("practitioner"), "Practitioner") or "")
        if owner is None:
            continue
        organization = _reference_id(role.get("organization"), "Organization")
        if organization:
            structures[owner].add(organization)
        professions[owner] |= _professions(role, "code")

    found: dict[tuple[str, str], DuplicateCandidate] = {}
    by_national: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = {}
    for practitioner, record_key in zip(practitioners, keys, strict=True):
        for national in _national_ids(practitioner):
            by_national.setdefault(national, []).append(record_key)
        name = _name_key(practitioner)
        if name:
            by_name.setdefault(name, []).append(record_key)
    for national, group in by_national.items():
        label = "même RPPS" if national.startswith("rpps:") else "même identifiant national (IdNat_PS)"
        for first, second in itertools.combinations(sorted(set(group)), 2):
            found[(first, second)] = DuplicateCandidate(
                first, second, 1.0, True, (f"{label} ({national.split(':', 1)[1]})",)
            )
    for name, group in by_name.items():
        for first, second in itertools.combinations(sorted(set(group)), 2):
            if (first, second) in found:
                continue
            shared_professions = professions[first] & professions[second]
            shared_structures = structures[first] & structures[second]
            if shared_professions and shared_structures:
                found[(first, second)] = DuplicateCandidate(
                    first,
                    second,
                    0.8,
                    False,
                    (
                        f"même nom ({name.replace('|', ' ')})",
                        f"même profession ({', '.join(sorted(shared_professions))})",
                        f"structure commune ({', '.join(sorted(shared_structures))})",
                    ),
                )
    return sorted(found.values(), key=lambda c: (-c.score, c.first, c.second))
