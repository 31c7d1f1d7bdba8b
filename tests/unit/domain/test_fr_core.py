"""Reading and writing the FR Core ``fr-core-patient-ins`` representation of a Patient."""

from __future__ import annotations

import copy
from datetime import date
from functools import cache
from typing import Any

import pytest

from hygie.demo.generator import generate_population
from hygie.domain.identity.fr_core import (
    EXT_BIRTH_LIST_GIVEN_NAME,
    EXT_BIRTH_PLACE,
    EXT_IDENTITY_RELIABILITY,
    EXT_INSEE_CODE,
    IDENTITY_ATTRIBUTE_SYSTEM,
    IDENTITY_STATUS_SYSTEM,
    METHOD_COLLECTION_SYSTEM,
    PROFILE_PATIENT_INS,
    VALIDATION_MODE_SYSTEM,
    IncompleteTraits,
    Ins,
    InsTraits,
    InvalidIns,
    identity_state_of,
    ins_of,
    normalize_name,
    patient_from_traits,
    traits_of,
    with_identity_state,
)
from hygie.domain.identity.nir import build_nir
from hygie.domain.identity.status import (
    CollectionMethod,
    IdentityAttribute,
    IdentityError,
    IdentityState,
    IdentityStatus,
    ValidationMode,
    check_state,
    create,
    record_document_check,
    record_insi_result,
    set_attribute,
)
from hygie.fhir.validation import validate_resource

DIGEST_EXAMPLE: dict[str, Any] = {
    "resourceType": "Patient",
    "meta": {"profile": [PROFILE_PATIENT_INS]},
    "extension": [
        {
            "url": EXT_IDENTITY_RELIABILITY,
            "extension": [
                {"url": "identityStatus", "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": "QUAL"}},
                {"url": "validationMode", "valueCoding": {"system": VALIDATION_MODE_SYSTEM, "code": "CN"}},
            ],
        },
        {
            "url": EXT_BIRTH_PLACE,
            "valueAddress": {
                "city": "Orléans",
                "extension": [
                    {
                        "url": EXT_INSEE_CODE,
                        "valueCoding": {
                            "system": "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM",
                            "code": "45234",
                        },
                    }
                ],
            },
        },
    ],
    "identifier": [
        {
            "use": "official",
            "type": {
                "coding": [
                    {"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR"}
                ]
            },
            "system": "urn:oid:1.2.250.1.213.1.4.8",
            "value": "285044523412351",
        }
    ],
    "name": [
        {
            "use": "official",
            "family": "MARTIN",
            "given": ["Claire"],
            "extension": [{"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": "Claire Louise Anne"}],
        },
        {"use": "usual", "family": "DUPONT", "given": ["Claire"]},
    ],
    "gender": "female",
    "birthDate": "1985-04-12",
}


@cache
def _population_patients() -> tuple[dict[str, Any], ...]:
    bundles = generate_population(5, seed=1)
    return tuple(
        entry["resource"]
        for bundle in bundles[1:]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Patient"
    )


def _patients() -> list[dict[str, Any]]:
    return [copy.deepcopy(p) for p in _population_patients()]


def test_digest_example_is_read_into_ins_traits_and_state() -> None:
    ins = ins_of(DIGEST_EXAMPLE)
    assert ins == Ins("285044523412351", "NIR")
    assert (ins.oid, ins.type_code, ins.use) == ("1.2.250.1.213.1.4.8", "INS-NIR", "official")
    traits = traits_of(DIGEST_EXAMPLE)
    assert traits == InsTraits(
        birth_name="MARTIN",
        birth_given_names=("Claire", "Louise", "Anne"),
        gender="female",
        birth_date=date(1985, 4, 12),
        birth_place_code="45234",
        used_name="DUPONT",
        used_first_name="Claire",
    )
    assert traits.first_given_name == "Claire"
    state = identity_state_of(DIGEST_EXAMPLE)
    assert state.status is IdentityStatus.QUAL
    assert state.validation_mode is ValidationMode.CN
    # The digest's short example omits the INSi date that a QUAL status requires.
    with pytest.raises(IdentityError) as inconsistent:
        check_state(state)
    assert inconsistent.value.code == "missing-insi-date"


def test_generated_patients_round_trip_through_traits_ins_and_state() -> None:
    patients = _patients()
    assert len(patients) == 5
    statuses = set()
    for patient in patients:
        traits, ins, state = traits_of(patient), ins_of(patient), identity_state_of(patient)
        check_state(state)
        statuses.add(state.status)
        rebuilt = patient_from_traits(traits, ins, state)
        assert validate_resource(rebuilt) == []
        assert traits_of(rebuilt) == traits
        assert ins_of(rebuilt) == ins
        assert identity_state_of(rebuilt) == state
        rewritten = with_identity_state(patient, state)
        assert identity_state_of(rewritten) == state
        assert validate_resource(rewritten) == []
        assert {k: v for k, v in rewritten.items() if k != "extension"} == {
            k: v for k, v in patient.items() if k != "extension"
        }
        assert [e["url"] for e in rewritten["extension"]] == [e["url"] for e in patient["extension"]]
    assert statuses == set(IdentityStatus)  # the demo citizens cover every status


def test_nia_and_birth_abroad_from_the_generator_are_read() -> None:
    nadia = next(p for p in _patients() if traits_of(p).birth_name == "BENALI")
    ins = ins_of(nadia)
    assert ins is not None
    assert (ins.kind, ins.use, ins.system) == ("NIA", "temp", "urn:oid:1.2.250.1.213.1.4.9")
    traits = traits_of(nadia)
    assert traits.birth_place_code == "99350"
    assert traits.born_abroad
    rebuilt = patient_from_traits(traits, ins, identity_state_of(nadia))
    assert rebuilt["extension"][1]["valueAddress"] == {"country": "99350"}
    assert rebuilt["identifier"][0]["use"] == "temp"


def test_with_identity_state_writes_the_digest_sub_extensions_and_attribute_tags() -> None:
    state = record_document_check(
        record_insi_result(create(), True, date(2024, 1, 2), CollectionMethod.CV),
        ValidationMode.PA,
        date(2024, 2, 3),
    )
    state = set_attribute(state, IdentityAttribute.HOMD)
    original = copy.deepcopy(DIGEST_EXAMPLE)
    written = with_identity_state(DIGEST_EXAMPLE, state)
    assert original == DIGEST_EXAMPLE  # input untouched
    reliability = written["extension"][0]
    assert reliability["url"] == EXT_IDENTITY_RELIABILITY
    assert reliability["extension"] == [
        {"url": "identityStatus", "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": "QUAL"}},
        {"url": "methodCollection", "valueCoding": {"system": METHOD_COLLECTION_SYSTEM, "code": "CV"}},
        {"url": "dateInterrogationINSi", "valueDate": "2024-01-02"},
        {"url": "validationDate", "valueDate": "2024-02-03"},
        {"url": "validationMode", "valueCoding": {"system": VALIDATION_MODE_SYSTEM, "code": "PA"}},
    ]
    assert written["extension"][1]["url"] == EXT_BIRTH_PLACE  # position kept
    assert written["meta"]["tag"] == [
        {"system": IDENTITY_ATTRIBUTE_SYSTEM, "code": "HOMD", "display": "homonymie détectée"}
    ]
    assert identity_state_of(written) == state
    assert validate_resource(written) == []
    doubtful = with_identity_state(written, set_attribute(state, IdentityAttribute.DOUT))
    assert identity_state_of(doubtful).status is IdentityStatus.PROV
    assert [t["code"] for t in doubtful["meta"]["tag"]] == ["DOUT", "HOMD"]
    cleaned = with_identity_state(doubtful, create(comment="Doute levé"))
    assert "tag" not in cleaned["meta"]
    assert cleaned["extension"][0]["extension"][-1] == {"url": "comment", "valueString": "Doute levé"}


def test_inconsistent_states_are_never_written() -> None:
    with pytest.raises(IdentityError):
        with_identity_state(DIGEST_EXAMPLE, IdentityState(status=IdentityStatus.QUAL))


def test_patient_from_traits_builds_a_valid_fr_core_patient() -> None:
    traits = InsTraits(
        birth_name="DE LA FONTAINE",
        birth_given_names=("Jean-Marie", "Pierre"),
        gender="male",
        birth_date=date(1948, 3, 2),
        birth_place_code="2a004",
        used_first_name="Jean",
    )
    nir = build_nir("male", 1948, 3, "2A004", 4)
    ins = Ins.parse(" ".join((nir[:1], nir[1:7], nir[7:])).lower(), "urn:oid:1.2.250.1.213.1.4.11")
    assert ins.matricule == nir
    patient = patient_from_traits(traits, ins, create())
    assert validate_resource(patient) == []
    assert patient["meta"]["profile"] == [PROFILE_PATIENT_INS]
    assert patient["name"][0] == {
        "use": "official",
        "family": "DE LA FONTAINE",
        "given": ["Jean-Marie"],
        "extension": [{"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": "Jean-Marie Pierre"}],
    }
    assert patient["name"][1] == {"use": "usual", "family": "DE LA FONTAINE", "given": ["Jean"]}
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "INS-NIR-DEMO"
    assert traits_of(patient).birth_place_code == "2A004"
    assert ins.kind == "demo"


def test_patient_without_ins_is_a_provisional_identity() -> None:
    traits = InsTraits("DURAND", ("Léo",), "male", date(2020, 5, 6))
    patient = patient_from_traits(traits, None, create())
    assert validate_resource(patient) == []
    assert ins_of(patient) is None
    assert "identifier" not in patient
    assert identity_state_of({"resourceType": "Patient"}) == create()


def test_bad_inputs_raise_identity_errors_with_codes() -> None:
    wrong_key = copy.deepcopy(DIGEST_EXAMPLE)
    wrong_key["identifier"][0]["value"] = "285044523412399"
    with pytest.raises(InvalidIns) as invalid:
        ins_of(wrong_key)
    assert "clé de contrôle" in str(invalid.value)
    with pytest.raises(InvalidIns) as short:
        Ins.parse("2850445", "urn:oid:1.2.250.1.213.1.4.8")
    assert "15 caractères" in str(short.value)
    old = copy.deepcopy(wrong_key)
    old["identifier"][0]["use"] = "old"
    assert ins_of(old) is None
    with pytest.raises(InvalidIns):
        Ins.parse("285044523412351", "urn:oid:1.2.3")
    no_birth = {k: v for k, v in DIGEST_EXAMPLE.items() if k != "birthDate"}
    with pytest.raises(IncompleteTraits) as incomplete:
        traits_of(no_birth)
    assert incomplete.value.code == "missing-birth-date"
    with pytest.raises(IncompleteTraits):
        traits_of({"resourceType": "Patient", "gender": "male", "birthDate": "2000-01-01"})
    unknown = copy.deepcopy(DIGEST_EXAMPLE)
    unknown["extension"][0]["extension"][0]["valueCoding"]["code"] = "GOLD"
    with pytest.raises(IdentityError) as unknown_code:
        identity_state_of(unknown)
    assert unknown_code.value.code == "unknown-code"
    with pytest.raises(IncompleteTraits) as bad_place:
        patient_from_traits(InsTraits("X", ("Y",), "male", date(2000, 1, 1), "7500"), None, create())
    assert bad_place.value.code == "bad-birth-place"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Jean-François", "JEAN FRANCOIS"),
        ("d'Arc", "D ARC"),
        ("  Lætitia   Œuvray ", "LAETITIA OEUVRAY"),
        ("N’GUYEN", "N GUYEN"),
        ("Hélène", "HELENE"),
    ],
)
def test_normalize_name_removes_accents_case_separators_and_spaces(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized


def test_lenient_reading_of_older_or_partial_patients() -> None:
    patient = copy.deepcopy(DIGEST_EXAMPLE)
    official = patient["name"][0]
    del official["extension"]
    official["given"] = ["Claire", "Louise"]
    del patient["extension"][1]  # no birth place
    patient["extension"][0]["extension"].append({"url": "comment", "valueString": "Vu CNI"})
    patient["extension"][0]["extension"].append(
        {"url": "validationDate", "valueDateTime": "2024-02-03T10:00:00+01:00"}
    )
    traits = traits_of(patient)
    assert traits.birth_given_names == ("Claire", "Louise")
    assert traits.birth_place_code is None
    state = identity_state_of(patient)
    assert state.comment == "Vu CNI"
    assert state.validation_date == date(2024, 2, 3)
    patient["extension"][0]["extension"][-1] = {"url": "validationDate", "valueDate": "03/02/2024"}
    with pytest.raises(IdentityError) as bad_date:
        identity_state_of(patient)
    assert bad_date.value.code == "bad-date"
    no_gender = {k: v for k, v in DIGEST_EXAMPLE.items() if k != "gender"}
    with pytest.raises(IncompleteTraits) as missing_gender:
        traits_of(no_gender)
    assert missing_gender.value.code == "missing-gender"
    with pytest.raises(InvalidIns) as malformed:
        Ins.parse("2850445234123XY", "urn:oid:1.2.250.1.213.1.4.8")
    assert "format non conforme" in str(malformed.value)
    with pytest.raises(IncompleteTraits):
        patient_from_traits(InsTraits(" ", ("Y",), "male", date(2000, 1, 1)), None, create())
