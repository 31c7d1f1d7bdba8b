"""The pure parts of the identity operations (``fhir/operations/identity.py``): parameters,
identity projections, the register's identity written onto a record, duplicate warnings, the
caller's relation facts, the declared Encounter, and the register file."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hygie.domain.identity.fr_core import Ins, InsTraits, ins_of, patient_from_traits, traits_of
from hygie.domain.identity.insi import RegisterEntry, RegisterFormatError, RegisterInsiService
from hygie.domain.identity.nir import INS_NIA_SYSTEM, INS_NIR_SYSTEM, build_nir
from hygie.domain.identity.status import IdentityState
from hygie.domain.relations import ENCOUNTER_RELATION_DAYS, relations_from
from hygie.fhir.operations.identity import (
    RegisterFile,
    RelationFacts,
    care_encounter,
    duplicate_warnings,
    identification_query,
    identity_projection,
    parameter_values,
    with_register_identity,
)
from hygie.fhir.outcome import InvalidRequest, Unprocessable
from hygie.fhir.values import date_range

TODAY = date(2026, 11, 23)
LEA = InsTraits("DURAND", ("Léa", "Marie"), "female", date(1985, 4, 12), "45234")
LEA_INS = Ins(build_nir("female", 1985, 4, "45234", 123))


def params(**values: Any) -> dict[str, list[Any]]:
    return {name: value if isinstance(value, list) else [value] for name, value in values.items()}


# -- parameters ----------------------------------------------------------------------------------


def test_parameter_values_keep_every_value_in_order() -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "given", "valueString": "Léa"},
            {"name": "given", "valueString": "Marie"},
            {"name": "insi", "valueBoolean": True},
            {"name": "empty"},
            {"noname": 1},
        ],
    }
    assert parameter_values(body) == {"given": ["Léa", "Marie"], "insi": [True], "empty": [None]}
    assert parameter_values(None) == {}
    with pytest.raises(InvalidRequest):
        parameter_values({"resourceType": "Patient"})


def test_identification_by_traits_needs_the_four_traits() -> None:
    query = identification_query(
        params(
            family="Durand", given="Léa Marie", birthDate="1985-04-12", gender="female", birthPlace="45234"
        ),
        today=TODAY,
    )
    assert query.mode == "traits"
    assert query.traits == InsTraits("Durand", ("Léa", "Marie"), "female", date(1985, 4, 12), "45234")
    for missing in ("family", "given", "gender", "birthDate"):
        given = params(family="Durand", given="Léa", birthDate="1985-04-12", gender="female")
        del given[missing]
        with pytest.raises(InvalidRequest) as error:
            identification_query(given, today=TODAY)
        assert error.value.issues[0].expression == f"Parameters.parameter[{missing}]"


@pytest.mark.parametrize(
    ("name", "raw", "error"),
    [
        ("birthDate", "1985-04", InvalidRequest),
        ("birthDate", "2027-01-01", Unprocessable),
        ("gender", "F", InvalidRequest),
        ("birthPlace", "Orléans", InvalidRequest),
    ],
)
def test_identification_refuses_malformed_traits(name: str, raw: str, error: type[Exception]) -> None:
    given = params(family="Durand", given="Léa", birthDate="1985-04-12", gender="female")
    given[name] = [raw]
    with pytest.raises(error):
        identification_query(given, today=TODAY)


def test_identification_by_ins_needs_the_birth_date() -> None:
    ins = {"system": INS_NIR_SYSTEM, "value": LEA_INS.matricule}
    with pytest.raises(InvalidRequest) as error:
        identification_query(params(ins=ins), today=TODAY)
    assert error.value.issues[0].expression == "Parameters.parameter[birthDate]"
    query = identification_query(params(ins=ins, birthDate="1985-04-12"), today=TODAY)
    assert query.mode == "ins" and query.ins == LEA_INS and query.ins_kind_known and query.traits is None
    bare = identification_query(params(ins=LEA_INS.matricule, birthDate="1985-04-12"), today=TODAY)
    assert bare.ins == LEA_INS and not bare.ins_kind_known
    # traits to verify come all together
    with pytest.raises(InvalidRequest):
        identification_query(params(ins=ins, birthDate="1985-04-12", family="Durand"), today=TODAY)
    with pytest.raises(Unprocessable):  # wrong key
        identification_query(params(ins=LEA_INS.matricule[:-2] + "00", birthDate="1985-04-12"), today=TODAY)
    with pytest.raises(InvalidRequest):  # not an INS system
        identification_query(
            params(ins={"system": "urn:oid:1.2.3", "value": "1"}, birthDate="1985-04-12"), today=TODAY
        )


# -- projections ---------------------------------------------------------------------------------


def test_identity_projection_keeps_identity_only() -> None:
    patient = {
        **patient_from_traits(LEA, LEA_INS, IdentityState(), patient_id="lea"),
        "telecom": [{"system": "email", "value": "lea@example.fr"}],
        "address": [{"city": "Orléans"}],
        "generalPractitioner": [{"reference": "Practitioner/gp"}],
        "active": True,
    }
    patient["identifier"].append({"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-1"})
    projection = identity_projection(patient)
    assert set(projection) == {"resourceType", "id", "active", "identifier", "name", "gender", "birthDate"}
    assert [i["value"] for i in projection["identifier"]] == [LEA_INS.matricule]
    assert projection["name"][0]["family"] == "DURAND"


def test_the_register_identity_replaces_the_local_traits_and_keeps_the_rest() -> None:
    nia = Ins(build_nir("female", 1985, 4, "45234", 124), "NIA")
    local = patient_from_traits(
        InsTraits("Durant", ("Lea",), "female", date(1985, 4, 12), used_name="MARTIN"),
        nia,
        IdentityState(),
        patient_id="lea",
    )
    local["telecom"] = [{"system": "phone", "value": "0600000000"}]
    changed = with_register_identity(local, LEA_INS, LEA)
    assert ins_of(changed) == LEA_INS
    old = [i for i in changed["identifier"] if i["system"] == INS_NIA_SYSTEM]
    assert old and old[0]["use"] == "old"  # the NIA is kept, deactivated
    traits = traits_of(changed)
    assert (traits.birth_name, traits.birth_given_names, traits.birth_place_code) == (
        "DURAND",
        ("Léa", "Marie"),
        "45234",
    )
    assert traits.used_name == "MARTIN"  # the used name is not the register's business
    assert changed["telecom"] == local["telecom"]
    assert local["name"][0]["family"] == "Durant"  # the input is untouched


def test_duplicate_warnings_name_close_records_and_second_records_of_one_ins() -> None:
    first = patient_from_traits(LEA, LEA_INS, IdentityState(), patient_id="lea")
    second = patient_from_traits(LEA, LEA_INS, IdentityState(), patient_id="lea-2")
    typo = patient_from_traits(
        InsTraits("DURANT", ("Léa",), "female", date(1985, 4, 12)), None, IdentityState(), patient_id="typo"
    )
    stranger = patient_from_traits(
        InsTraits("BERNARD", ("Anne",), "female", date(1985, 4, 12)), None, IdentityState(), patient_id="anne"
    )
    warnings = duplicate_warnings(LEA, LEA_INS, [first, second], [first, typo, stranger])
    by_patient = {w.patient: w for w in warnings}
    assert set(by_patient) == {"typo", "lea-2"}
    assert by_patient["lea-2"].certain and by_patient["lea-2"].other == "lea"
    assert not by_patient["typo"].certain and by_patient["typo"].other is None
    assert any("noms très proches" in r for r in by_patient["typo"].reasons)


# -- relations -----------------------------------------------------------------------------------


def test_relation_facts_follow_the_policys_order() -> None:
    care = ("care_team", None, None)
    assert RelationFacts.of([care]).access()[0] == "care-relation"
    assert RelationFacts.of([care, ("block", None, None)]).access()[0] == "refused"
    assert RelationFacts.of([care, ("space_closed", None, None)]).access()[0] == "refused"
    assert RelationFacts.of([], break_glass=True).access()[0] == "break-glass"
    refused = RelationFacts.of([("emergency_refusal", None, None)], break_glass=True)
    assert refused.access()[0] == "declare-care" and "refusé l'accès en urgence" in refused.access()[1]
    assert RelationFacts.of([], identity_unusable=True).access()[0] == "identity-unusable"
    assert RelationFacts.of([], trusted=True).access()[0] == "trusted"
    # the end of the care relation: the latest of them, none when one is open-ended
    facts = RelationFacts.of([("encounter", None, 10), ("grant", "11", 20), ("block", None, 5)])
    assert facts.care == ("encounter", "grant") and facts.care_until_us == 20
    assert RelationFacts.of([("encounter", None, 10), ("care_team", None, None)]).care_until_us is None


def test_the_declared_encounter_opens_the_encounter_relation() -> None:
    now = date_range("2026-11-23T10:00:00Z")[0]
    encounter = care_encounter(
        "lea",
        "Practitioner/p1",
        "Organization/o1",
        attestation="patient-consent",
        reason="Suivi après hospitalisation",
        teleconsultation=False,
        now_us=now,
    )
    encounter["id"] = "e1"
    assert encounter["class"]["code"] == "AMB" and encounter["meta"]["tag"][0]["code"] == "patient-consent"
    rows = relations_from(encounter)
    assert {(r.kind, r.actor) for r in rows} == {
        ("encounter", "Practitioner/p1"),
        ("encounter", "Organization/o1"),
    }
    day = 86_400 * 1_000_000
    assert all(
        r.expires_us is not None and r.expires_us > now + (ENCOUNTER_RELATION_DAYS - 1) * day for r in rows
    )


# -- the register file ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_register_file_is_read_when_it_appears_and_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "insi-register.json"
    source = RegisterFile(path)

    async def search() -> str:
        service = await source.service()
        return service.search(LEA).outcome.value

    assert await search() == "not-found"  # no file: an empty register
    RegisterInsiService.from_entries([RegisterEntry(LEA_INS, LEA)]).save(path)
    assert await search() == "found"
    RegisterInsiService.from_entries([]).save(path)
    os.utime(path, ns=(1, 1))  # a different stamp even within the clock's resolution
    assert await search() == "not-found"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(RegisterFormatError):
        await search()
