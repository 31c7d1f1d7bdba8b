"""Duplicate detection for patients (INS, near-identical traits) and professionals (RPPS, name+structure)."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import date
from typing import Any, Literal

import pytest

from hygie.demo.citizens import Identity, draw_identity
from hygie.demo.directory import directory_bundle
from hygie.demo.generator import generate_directory
from hygie.domain.identity.fr_core import Ins, InsKind, InsTraits, patient_from_traits
from hygie.domain.identity.matching import (
    DuplicateCandidate,
    compare_traits,
    edit_distance,
    find_patient_duplicates,
    find_practitioner_duplicates,
)
from hygie.domain.identity.nir import build_nir
from hygie.domain.identity.status import create

BIRTH = date(1975, 9, 3)


def _patient(pid: str, traits: InsTraits, order: int | None = None) -> dict[str, Any]:
    ins = None
    if order is not None:
        place = traits.birth_place_code or "75056"
        gender: Literal["male", "female"] = "male" if traits.gender == "male" else "female"
        ins = Ins(build_nir(gender, traits.birth_date.year, traits.birth_date.month, place, order))
    return patient_from_traits(traits, ins, create(), patient_id=pid)


def _traits(family: str, given: str, **changes: Any) -> InsTraits:
    traits = InsTraits(family, (given,), "female", BIRTH, "69123")
    return replace(traits, **changes)


def _pair(candidates: list[DuplicateCandidate], first: str, second: str) -> DuplicateCandidate | None:
    return next((c for c in candidates if (c.first, c.second) == (first, second)), None)


def _found(candidates: list[DuplicateCandidate], first: str, second: str) -> DuplicateCandidate:
    candidate = _pair(candidates, first, second)
    assert candidate is not None, (first, second)
    return candidate


def test_same_ins_is_a_certain_duplicate_even_with_different_traits() -> None:
    patients = [
        _patient("a", _traits("MOREAU", "Julie"), order=10),
        _patient("b", _traits("LEROY", "Anne", birth_date=date(1975, 9, 20)), order=10),
    ]
    [candidate] = find_patient_duplicates(patients)
    assert (candidate.first, candidate.second, candidate.certain, candidate.score) == ("a", "b", True, 1.0)
    assert candidate.reasons[0].startswith("même matricule INS")


@pytest.mark.parametrize(
    ("second", "minimum", "reason"),
    [
        (_traits("Moreau", "julie"), 0.95, "mêmes nom de naissance et premier prénom"),
        (_traits("MOREAUX", "Julie"), 0.8, "noms très proches"),
        (_traits("MOREAU", "Jullie"), 0.8, "noms très proches"),
        (_traits("JULIE", "Moreau"), 0.85, "inversés"),
        (_traits("MOREAU", "Julie", birth_place_code="13055"), 0.8, "lieux de naissance différents"),
    ],
)
def test_near_identical_traits_are_candidates_with_reasons(
    second: InsTraits, minimum: float, reason: str
) -> None:
    candidates = find_patient_duplicates([_patient("p1", _traits("MOREAU", "Julie")), _patient("p2", second)])
    candidate = _pair(candidates, "p1", "p2")
    assert candidate is not None
    assert not candidate.certain
    assert minimum <= candidate.score < 1.0
    assert any(reason in r for r in candidate.reasons)


def test_used_name_typed_as_birth_name_is_a_candidate() -> None:
    married = _traits("MOREAU", "Julie", used_name="BERTRAND")
    typed_with_used_name = _traits("BERTRAND", "Julie")
    candidate = _pair(
        find_patient_duplicates([_patient("p1", married), _patient("p2", typed_with_used_name)]), "p1", "p2"
    )
    assert candidate is not None
    assert "nom d'usage" in " ".join(candidate.reasons)


def test_different_people_are_not_candidates() -> None:
    patients = [
        _patient("p1", _traits("MOREAU", "Julie")),
        _patient("p2", _traits("MOREAU", "Julie", birth_date=date(1975, 9, 4))),  # other block
        _patient("p3", _traits("MOREAU", "Julie", gender="male")),
        _patient("p4", _traits("GARNIER", "Julie")),
        _patient("p5", _traits("MOREAU", "Sophie")),
    ]
    assert find_patient_duplicates(patients) == []


def test_different_ins_lower_the_score_of_identical_traits() -> None:
    same_ins = find_patient_duplicates(
        [_patient("p1", _traits("MOREAU", "Julie")), _patient("p2", _traits("MOREAU", "Julie"))]
    )
    twins = find_patient_duplicates(
        [
            _patient("p1", _traits("MOREAU", "Julie"), order=1),
            _patient("p2", _traits("MOREAU", "Julie"), order=2),
        ]
    )
    assert twins[0].score < same_ins[0].score
    assert "matricules INS différents" in twins[0].reasons[-1]
    assert (
        find_patient_duplicates(
            [
                _patient("p1", _traits("MOREAU", "Julie"), order=1),
                _patient("p2", _traits("MOREAUX", "Julie"), order=2),
            ],
            min_score=0.7,
        )
        == []
    )


def test_patients_without_traits_are_still_matched_on_ins() -> None:
    full = _patient("p1", _traits("MOREAU", "Julie"), order=5)
    bare = {"resourceType": "Patient", "id": "p2", "identifier": full["identifier"]}
    [candidate] = find_patient_duplicates([full, bare])
    assert candidate.certain


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("abc", "abc", 0),
        ("abc", "abd", 1),
        ("MOREAU", "MOREAUX", 1),
        ("kitten", "sitting", 3),
        ("", "abc", 3),
    ],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance
    assert edit_distance(a, b, limit=1) == min(distance, 2)


def _identity_patient(identity: Identity) -> dict[str, Any]:
    place = identity.birth_commune.insee if identity.birth_commune else None
    traits = InsTraits(
        identity.family, identity.given, identity.gender, identity.birth_date, place, identity.used_family
    )
    kind: InsKind = "NIA" if identity.nia else "NIR"
    return patient_from_traits(traits, Ins(identity.matricule, kind), create(), patient_id=identity.key)


def test_ten_thousand_generated_patients_are_scanned_in_a_few_seconds() -> None:
    rng = random.Random(7)
    identities = [draw_identity(rng, f"c{i}", on=date(2025, 12, 31)) for i in range(10_000)]
    patients = [_identity_patient(identity) for identity in identities]
    # Plant duplicates: a re-keyed INS copy, a typo without INS, and a swapped name without INS.
    planted = []
    for index, change in ((11, "copy"), (222, "typo"), (3333, "swap")):
        source = dict(patients[index])
        source["id"] = f"dup-{index}"
        if change != "copy":
            del source["identifier"]
            official = dict(source["name"][0])
            if change == "typo":
                official["family"] = official["family"] + "E"
            else:
                official["family"], official["given"] = official["given"][0], [official["family"]]
                official.pop("extension")
            source["name"] = [official]
        patients.append(source)
        planted.append(tuple(sorted((identities[index].key, f"dup-{index}"))))

    started = time.perf_counter()
    candidates = find_patient_duplicates(patients)
    elapsed = time.perf_counter() - started

    assert elapsed < 5.0
    found = {(c.first, c.second) for c in candidates}
    for pair in planted:
        assert pair in found
    assert _found(candidates, *planted[0]).certain
    assert len(candidates) < 50  # chance near-matches stay rare among distinct people


# --------------------------------------------------------------------------- professionals
def _practitioner(
    pid: str, family: str, given: str, rpps: str | None = None, idnat: str | None = None
) -> dict[str, Any]:
    identifiers = []
    if rpps:
        identifiers.append({"system": "https://rpps.esante.gouv.fr", "value": rpps})
    if idnat:
        identifiers.append({"system": "urn:oid:1.2.250.1.71.4.2.1", "value": idnat})
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": identifiers,
        "name": [{"family": family, "given": [given]}],
    }


def _role(practitioner: str, organization: str, profession: str = "10") -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": f"Practitioner/{practitioner}"},
        "organization": {"reference": f"Organization/{organization}"},
        "code": [
            {
                "coding": [
                    {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante",
                        "code": profession,
                    }
                ]
            }
        ],
    }


def test_same_rpps_through_rpps_or_idnat_ps_is_a_certain_duplicate() -> None:
    practitioners = [
        _practitioner("a", "DURAND", "Paul", rpps="10001234565"),
        _practitioner("b", "DURANT", "Paul", idnat="810001234565"),
        _practitioner("c", "DURAND", "Paul", idnat="012345678"),
        _practitioner("d", "MARTIN", "Luc", idnat="012345678"),
    ]
    candidates = find_practitioner_duplicates(practitioners)
    assert {(c.first, c.second) for c in candidates} == {("a", "b"), ("c", "d")}
    assert all(c.certain for c in candidates)
    assert "même RPPS" in _found(candidates, "a", "b").reasons[0]
    assert "IdNat_PS" in _found(candidates, "c", "d").reasons[0]


def test_same_name_profession_and_structure_is_a_candidate() -> None:
    practitioners = [
        _practitioner("a", "Lefèvre", "Anne", rpps="10001234565"),
        _practitioner("b", "LEFEVRE", "anne"),
        _practitioner("c", "LEFEVRE", "Anne"),
        _practitioner("d", "LEFEVRE", "Anne"),
    ]
    roles = [
        _role("a", "org-1"),
        _role("a", "org-2"),
        _role("b", "org-2"),
        _role("c", "org-3"),
        _role("d", "org-1", "60"),
    ]
    [candidate] = find_practitioner_duplicates(practitioners, roles)
    assert (candidate.first, candidate.second, candidate.certain) == ("a", "b", False)
    assert any("org-2" in r for r in candidate.reasons)


def test_generated_directory_has_no_duplicate_professional() -> None:
    resources = [e["resource"] for e in directory_bundle(generate_directory(0))["entry"]]
    practitioners = [r for r in resources if r["resourceType"] == "Practitioner"]
    roles = [r for r in resources if r["resourceType"] == "PractitionerRole"]
    assert not [c for c in find_practitioner_duplicates(practitioners, roles) if c.certain]
    doubled = [*practitioners, dict(practitioners[0], id="copy")]
    certain = [c for c in find_practitioner_duplicates(doubled, roles) if c.certain]
    assert [(c.first, c.second) for c in certain] == [tuple(sorted((practitioners[0]["id"], "copy")))]


def test_unusable_records_are_tolerated() -> None:
    wrong_ins = _patient("p1", _traits("MOREAU", "Julie"), order=5)
    wrong_ins["identifier"][0]["value"] = wrong_ins["identifier"][0]["value"][:-2] + "00"
    nameless = {"resourceType": "Patient", "id": "p3", "identifier": wrong_ins["identifier"]}
    candidates = find_patient_duplicates([wrong_ins, _patient("p2", _traits("MOREAU", "Julie")), nameless])
    assert [(c.first, c.second) for c in candidates] == [("p1", "p2")]
    assert compare_traits(_traits("A", "B"), _traits("A", "B", birth_date=date(2000, 1, 1))) is None


def test_practitioner_roles_may_point_by_identifier_or_to_unknown_practitioners() -> None:
    practitioners = [
        _practitioner("a", "ROUX", "Léa"),
        _practitioner("b", "ROUX", "Lea"),
        {"resourceType": "Practitioner", "id": "c"},
    ]
    by_identifier = {"identifier": {"system": "https://finess.esante.gouv.fr", "value": "750712184"}}
    roles = [
        dict(_role("a", "x"), organization=by_identifier),
        dict(_role("b", "x"), organization=by_identifier),
        _role("zzz", "x"),
        {"resourceType": "PractitionerRole", "practitioner": {"reference": "Practitioner/c"}},
    ]
    [candidate] = find_practitioner_duplicates(practitioners, roles)
    assert "https://finess.esante.gouv.fr|750712184" in candidate.reasons[-1]
