"""The INSi port and its in-process reference register (the RNIV stand-in)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hygie.demo.generator import DEMO_CITIZENS, generate_population
from hygie.domain.identity.fr_core import Ins, InsTraits, ins_of, traits_of
from hygie.domain.identity.insi import (
    InsiOutcome,
    InsiResult,
    InsiService,
    RegisterEntry,
    RegisterFormatError,
    RegisterInsiService,
    TraitName,
    query_insi,
)
from hygie.domain.identity.nir import build_nir
from hygie.domain.identity.status import (
    CollectionMethod,
    IdentityAttribute,
    IdentityStatus,
    InsiCallBlocked,
    ValidationMode,
    create,
    record_document_check,
    record_insi_result,
    set_attribute,
)

TODAY = date(2025, 5, 5)


@cache
def _bundles() -> tuple[dict[str, Any], ...]:
    return tuple(generate_population(8, seed=1))


def _patients() -> list[dict[str, Any]]:
    return [
        e["resource"]
        for b in _bundles()[1:]
        for e in b["entry"]
        if e["resource"]["resourceType"] == "Patient"
    ]


def _service() -> RegisterInsiService:
    return RegisterInsiService.from_population(_bundles())


def _claire() -> InsTraits:
    return InsTraits("MARTIN", ("Claire", "Louise", "Anne"), "female", date(1985, 4, 12), "45234")


def test_register_is_seeded_with_every_generated_patient_without_used_names() -> None:
    service = _service()
    assert len(service) == len(_patients()) == 8
    for entry in service:
        assert entry.traits.used_name is None
        assert entry.traits.used_first_name is None
    matricules = {entry.ins.matricule for entry in service}
    assert DEMO_CITIZENS[0].ins in matricules


def test_search_finds_the_ins_and_returns_the_register_traits() -> None:
    service: InsiService = _service()
    typed = InsTraits("martin", ("claire",), "female", date(1985, 4, 12), used_name="DUPONT")
    result = service.search(typed)
    assert result.outcome is InsiOutcome.FOUND
    assert result.found
    assert result.ins == Ins(DEMO_CITIZENS[0].ins, "NIR")
    assert result.traits == _claire()  # authoritative: full given-name list, upper-case name
    assert "retrouvée" in result.message


@pytest.mark.parametrize(
    "typed",
    [
        InsTraits("Martin ", ("Cláire",), "female", date(1985, 4, 12)),
        InsTraits("MARTIN", ("CLAIRE",), "female", date(1985, 4, 12), "45234"),
    ],
)
def test_search_tolerates_case_accents_and_spaces(typed: InsTraits) -> None:
    assert _service().search(typed).found


@pytest.mark.parametrize(
    "typed",
    [
        InsTraits("MARTIN", ("Louise",), "female", date(1985, 4, 12)),  # not the first given name
        InsTraits("MARTIN", ("Claire",), "male", date(1985, 4, 12)),
        InsTraits("MARTIN", ("Claire",), "female", date(1985, 4, 13)),
        InsTraits("MARTIN", ("Claire",), "female", date(1985, 4, 12), "75056"),
        InsTraits("MARTINE", ("Claire",), "female", date(1985, 4, 12)),
    ],
)
def test_search_requires_exact_traits(typed: InsTraits) -> None:
    result = _service().search(typed)
    assert result.outcome is InsiOutcome.NOT_FOUND
    assert result.ins is None and result.traits is None


def test_hyphens_and_apostrophes_compare_as_spaces() -> None:
    traits = InsTraits("D'ALMEIDA-SANTOS", ("Jean-Luc",), "male", date(1970, 1, 2), "75056")
    ins = Ins(build_nir("male", 1970, 1, "75056", 12))
    service = RegisterInsiService.from_entries([RegisterEntry(ins, traits)])
    typed = InsTraits("d almeida  santos", ("JEAN LUC",), "male", date(1970, 1, 2))
    assert service.search(typed).ins == ins


def test_two_people_with_the_same_traits_make_an_ambiguous_search() -> None:
    traits = InsTraits("DUPOND", ("Marc",), "male", date(1960, 7, 1), "75056")
    first = Ins(build_nir("male", 1960, 7, "75056", 1))
    second = Ins(build_nir("male", 1960, 7, "75056", 2))
    service = RegisterInsiService.from_entries([RegisterEntry(first, traits), RegisterEntry(second, traits)])
    result = service.search(replace(traits, birth_place_code=None))
    assert result.outcome is InsiOutcome.AMBIGUOUS
    assert result.matches == 2
    assert result.ins is None
    assert "2 identités" in result.message


def test_verify_confirms_or_names_the_differing_traits() -> None:
    service = _service()
    ins = Ins(DEMO_CITIZENS[0].ins, "NIR")
    assert service.verify(ins, _claire()).found
    wrong = replace(_claire(), birth_name="MARTINEZ", birth_date=date(1985, 4, 21))
    result = service.verify(ins, wrong)
    assert result.outcome is InsiOutcome.MISMATCH
    assert result.differences == (TraitName.BIRTH_NAME, TraitName.BIRTH_DATE)
    assert "nom de naissance" in result.message and "date de naissance" in result.message
    assert "MARTIN" not in result.message  # the register's values are not disclosed
    assert service.verify(Ins(ins.matricule, "demo"), _claire()).differences == (TraitName.INS_KIND,)
    unknown = Ins(build_nir("female", 1985, 4, "45234", 999))
    assert service.verify(unknown, _claire()).outcome is InsiOutcome.NOT_FOUND


def test_every_generated_patient_is_found_by_its_own_traits() -> None:
    service = _service()
    for patient in _patients():
        result = service.search(traits_of(patient))
        assert result.found, traits_of(patient)
        assert result.ins == ins_of(patient)


def test_register_survives_a_save_and_load(tmp_path: Path) -> None:
    service = _service()
    path = tmp_path / "data" / "insi-register.json"
    service.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "hygie-insi-register"
    assert [e["matricule"] for e in data["entries"]] == sorted(e["matricule"] for e in data["entries"])
    loaded = RegisterInsiService.load(path)
    assert sorted(loaded, key=lambda e: e.ins.matricule) == sorted(service, key=lambda e: e.ins.matricule)
    assert loaded.search(_claire()).found
    assert list(tmp_path.joinpath("data").iterdir()) == [path]  # no temporary file left behind


def test_unreadable_register_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(RegisterFormatError):
        RegisterInsiService.load(path)
    path.write_text(json.dumps({"format": "other", "version": 1}), encoding="utf-8")
    with pytest.raises(RegisterFormatError) as wrong_format:
        RegisterInsiService.load(path)
    assert wrong_format.value.code == "bad-register-file"
    broken = _service().to_json()
    broken["entries"][0]["birth_date"] = "12/04/1985"
    with pytest.raises(RegisterFormatError) as bad_entry:
        RegisterInsiService.from_json(broken)
    assert "n° 1" in str(bad_entry.value)


class _SpyService:
    """An InsiService that records calls, to show that blocked identities never reach the teleservice."""

    def __init__(self, answer: InsiResult) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def search(self, traits: InsTraits) -> InsiResult:
        self.calls.append("search")
        return self.answer

    def verify(self, ins: Ins, traits: InsTraits) -> InsiResult:
        self.calls.append("verify")
        return self.answer


def test_query_insi_refuses_doubtful_identities_before_calling_the_service() -> None:
    spy = _SpyService(InsiResult(InsiOutcome.FOUND))
    doubtful = set_attribute(create(), IdentityAttribute.DOUT)
    with pytest.raises(InsiCallBlocked):
        query_insi(spy, doubtful, _claire(), query_date=TODAY, method=CollectionMethod.CV)
    assert spy.calls == []


def test_query_insi_records_success_and_failure_on_the_trust_state() -> None:
    service = _service()
    result, state = query_insi(service, create(), _claire(), query_date=TODAY, method=CollectionMethod.CV)
    assert result.found
    assert state.status is IdentityStatus.RECUP
    assert state.insi_query_date == TODAY
    qualified = record_document_check(state, ValidationMode.CN, TODAY)
    wrong = replace(_claire(), birth_given_names=("Claudine",))
    assert result.ins is not None
    result, after = query_insi(
        service, qualified, wrong, query_date=TODAY, method=CollectionMethod.SM, ins=result.ins
    )
    assert result.outcome is InsiOutcome.MISMATCH
    assert after.status is IdentityStatus.VALI
    assert record_insi_result(after, True, TODAY, CollectionMethod.INSI).status is IdentityStatus.QUAL


def test_register_skips_unusable_patients_and_reports_every_outcome_in_french() -> None:
    patients = _patients()
    broken = dict(patients[0], identifier=[dict(patients[0]["identifier"][0], value="285044523412399")])
    no_birth = {k: v for k, v in patients[1].items() if k != "birthDate"}
    bundle = {"entry": [{"resource": broken}, {"resource": no_birth}, {"resource": patients[2]}]}
    service = RegisterInsiService.from_population([bundle])
    assert len(service) == 1
    assert "Aucune identité" in service.search(_claire()).message
    entry = next(iter(service))
    other_sex = replace(entry.traits, gender="female" if entry.traits.gender == "male" else "male")
    assert service.verify(entry.ins, other_sex).differences == (TraitName.GENDER,)


def test_register_json_with_bad_kinds_or_genders_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(RegisterFormatError):
        RegisterInsiService.load(path)
    for field, value in (("kind", "NSS"), ("gender", "F")):
        data = _service().to_json()
        data["entries"][0][field] = value
        with pytest.raises(RegisterFormatError):
            RegisterInsiService.from_json(data)
