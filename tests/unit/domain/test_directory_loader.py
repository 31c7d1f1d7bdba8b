"""Loading the RPPS open extraction and the ANS Annuaire Santé FHIR examples as FR Core resources."""

from __future__ import annotations

import io
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hygie.demo.directory import PS_LIBREACCES_HEADER as DEMO_HEADER
from hygie.demo.generator import generate_directory, write_rpps_extract
from hygie.domain.identity.directory import (
    FINESS_SYSTEM,
    IDNAT_PS_SYSTEM,
    PS_LIBREACCES_HEADER,
    RPPS_SYSTEM,
    SIRENE_SYSTEM,
    DirectoryRow,
    ExtractFormatError,
    RowProblem,
    load_ans_examples,
    parse_rpps_extract,
    rows_to_fhir,
)
from hygie.domain.identity.luhn import is_valid_rpps
from hygie.fhir.validation import validate_resource

SHARED_FR = Path("/work/shared/data/fr")
needs_shared = pytest.mark.skipif(not SHARED_FR.is_dir(), reason="shared French reference data not present")


@cache
def _extract_lines() -> tuple[str, ...]:
    out = io.StringIO()
    write_rpps_extract(generate_directory(0), out)
    return tuple(out.getvalue().splitlines(keepends=True))


def _lines() -> list[str]:
    return list(_extract_lines())


def _by_type(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        grouped.setdefault(resource["resourceType"], []).append(resource)
    return grouped


def _with_fields(line: str, **changes: str) -> str:
    """The extract line with some columns replaced (by DirectoryRow field name)."""
    names = list(DirectoryRow.__dataclass_fields__)[1:]
    values = line.rstrip("\n").split("|")
    for name, value in changes.items():
        values[names.index(name)] = value
    return "|".join(values) + "\n"


@needs_shared
def test_header_is_exactly_the_shared_open_extraction_header() -> None:
    shared = (SHARED_FR / "rpps" / "ps-libreacces-personne-activite-header.txt").read_text(encoding="utf-8")
    assert shared.rstrip("\r\n") == PS_LIBREACCES_HEADER
    assert PS_LIBREACCES_HEADER == DEMO_HEADER
    assert len(PS_LIBREACCES_HEADER.split("|")) == 53


def test_synthetic_extract_loads_into_valid_deduplicated_resources() -> None:
    directory = generate_directory(0)
    problems: list[RowProblem] = []
    rows = list(parse_rpps_extract(_lines(), problems))
    resources = rows_to_fhir(rows, problems)
    assert problems == []
    assert len(rows) == len(directory.professionals)
    grouped = _by_type(resources)
    assert len(grouped["Practitioner"]) == len({p.rpps for p in directory.professionals})
    assert len(grouped["Organization"]) == len({p.structure.id for p in directory.professionals})
    assert len(grouped["PractitionerRole"]) == len(directory.professionals)
    assert [r["resourceType"] for r in resources] == sorted(
        (r["resourceType"] for r in resources), key=["Organization", "Practitioner", "PractitionerRole"].index
    )
    for resource in resources:
        assert validate_resource(resource) == [], resource["id"]
    ids = Counter((r["resourceType"], r["id"]) for r in resources)
    assert max(ids.values()) == 1
    # The ids agree with the generator's FHIR directory, so both loads address the same resources.
    assert {o["id"] for o in grouped["Organization"]} == {p.structure.id for p in directory.professionals}
    assert {p["id"] for p in grouped["Practitioner"]} == {p.id for p in directory.professionals}


def test_practitioner_role_and_organization_carry_fr_core_identifiers_and_codes() -> None:
    directory = generate_directory(0)
    hospital_doctor = next(
        p for p in directory.professionals if p.structure.finess and p.profession.specialty_code
    )
    resources = rows_to_fhir(parse_rpps_extract(_lines()))
    practitioner = next(r for r in resources if r["id"] == hospital_doctor.id)
    identifiers = {
        (i["system"], i["type"]["coding"][0]["code"]): i["value"] for i in practitioner["identifier"]
    }
    assert identifiers == {
        (IDNAT_PS_SYSTEM, "IDNPS"): "8" + hospital_doctor.rpps,
        (RPPS_SYSTEM, "RPPS"): hospital_doctor.rpps,
    }
    professions = [q["code"]["coding"][0]["code"] for q in practitioner["qualification"]]
    assert professions == [hospital_doctor.profession.code, hospital_doctor.profession.specialty_code]
    assert practitioner["name"][0]["family"] == hospital_doctor.family

    role = next(
        r
        for r in resources
        if r["resourceType"] == "PractitionerRole"
        and r["practitioner"]["reference"].endswith(hospital_doctor.id)
    )
    assert role["organization"]["reference"] == f"Organization/{hospital_doctor.structure.id}"
    assert role["specialty"][0]["coding"][0]["code"] == hospital_doctor.profession.specialty_code
    mail = next(t for t in role["telecom"] if t["system"] == "email")
    assert mail["extension"][0]["valueCoding"]["code"] == "MSSANTE"

    organization = next(r for r in resources if r["id"] == hospital_doctor.structure.id)
    org_ids = {(i["system"], i["type"]["coding"][0]["code"]): i["value"] for i in organization["identifier"]}
    assert org_ids[(FINESS_SYSTEM, "FINEG")] == hospital_doctor.structure.finess
    assert org_ids[(FINESS_SYSTEM, "FINEJ")] == hospital_doctor.structure.finess_ej
    assert org_ids[(SIRENE_SYSTEM, "SIRET")] == hospital_doctor.structure.siret
    address = organization["address"][0]
    assert address["extension"][0]["valueCoding"]["code"] == hospital_doctor.structure.address.commune.insee
    assert address["postalCode"] == hospital_doctor.structure.address.commune.postal_code


def test_one_practitioner_with_several_activities_gets_one_resource_and_several_roles() -> None:
    lines = _lines()
    first = lines[1]
    other_structure_line = next(
        line for line in lines[2:] if line.split("|")[23] != first.split("|")[23]
    )  # column 24 = structure technical id
    names = list(DirectoryRow.__dataclass_fields__)[1:]
    values = other_structure_line.split("|")
    second_activity = _with_fields(
        first,
        **{name: values[names.index(name)] for name in names[19:]},  # structure columns of the other line
    )
    problems: list[RowProblem] = []
    resources = rows_to_fhir(
        parse_rpps_extract([lines[0], first, second_activity, first], problems), problems
    )
    grouped = _by_type(resources)
    assert problems == []
    assert len(grouped["Practitioner"]) == 1
    assert len(grouped["PractitionerRole"]) == 2  # the repeated first line adds nothing
    assert len(grouped["Organization"]) == 2
    assert {r["organization"]["reference"] for r in grouped["PractitionerRole"]} == {
        f"Organization/{o['id']}" for o in grouped["Organization"]
    }
    for resource in resources:
        assert validate_resource(resource) == []


def test_malformed_rows_are_reported_with_line_numbers_and_skipped() -> None:
    lines = _lines()
    good = lines[1]
    broken = [
        lines[0],
        good,
        "8|123|\n",  # line 3: too few fields
        "\n",  # line 4: blank, ignored
        _with_fields(good, id_type="5"),  # line 5
        _with_fields(good, identifier=""),  # line 6
        _with_fields(good, family=""),  # line 7
        good.rstrip("\n").removesuffix("|") + "\n",  # line 8: no trailing separator, still fine
    ]
    problems: list[RowProblem] = []
    rows = list(parse_rpps_extract(broken, problems))
    assert [row.line for row in rows] == [2, 8]
    assert [(p.line, p.code) for p in problems] == [
        (3, "field-count"),
        (5, "id-type"),
        (6, "missing-identifier"),
        (7, "missing-name"),
    ]
    assert "53 champs attendus, 3 trouvés" in problems[0].reason


def test_invalid_rpps_and_finess_keys_are_reported_not_loaded() -> None:
    lines = _lines()
    hospital_line = next(line for line in lines[1:] if line.split("|")[21])
    rpps = hospital_line.split("|")[1]
    bad_rpps = rpps[:-1] + str((int(rpps[-1]) + 1) % 10)
    assert not is_valid_rpps(bad_rpps)
    finess = hospital_line.split("|")[21]
    bad_finess = finess[:-1] + str((int(finess[-1]) + 1) % 10)
    rows = [
        lines[0],
        _with_fields(hospital_line, identifier=bad_rpps, idnat_ps="8" + bad_rpps),
        _with_fields(hospital_line, finess_site=bad_finess),
        _with_fields(hospital_line, idnat_ps="8" + bad_rpps),
    ]
    problems: list[RowProblem] = []
    resources = rows_to_fhir(parse_rpps_extract(rows, problems), problems)
    assert [(p.line, p.code) for p in problems] == [(2, "bad-rpps"), (3, "bad-finess"), (4, "bad-idnat-ps")]
    assert "clé de Luhn" in problems[0].reason
    grouped = _by_type(resources)
    assert [p["id"] for p in grouped["Practitioner"]] == [f"pra-{rpps}"]
    [organization] = grouped["Organization"]
    assert all(i["value"] != bad_finess for i in organization["identifier"])
    assert organization["id"].startswith("org-") and bad_finess not in organization["id"]
    assert validate_resource(organization) == []


def test_adeli_rows_become_adeli_practitioners() -> None:
    line = _with_fields(_lines()[1], id_type="0", identifier="751234567", idnat_ps="0751234567")
    [_org, practitioner, _role] = rows_to_fhir(parse_rpps_extract([_lines()[0], line]))
    assert practitioner["id"] == "pra-adeli-751234567"
    assert {i["type"]["coding"][0]["code"] for i in practitioner["identifier"]} == {"IDNPS", "ADELI"}
    assert validate_resource(practitioner) == []


def test_wrong_header_is_a_format_error_and_bom_is_tolerated() -> None:
    with pytest.raises(ExtractFormatError) as wrong:
        list(parse_rpps_extract(["nom;prenom\n", "a;b\n"]))
    assert wrong.value.code == "bad-extract-header"
    with pytest.raises(ExtractFormatError):
        list(parse_rpps_extract([]))
    lines = _lines()
    assert len(list(parse_rpps_extract(["\ufeff" + lines[0].replace("\n", "\r\n"), lines[1]]))) == 1


@needs_shared
def test_ans_examples_load_as_a_transaction_of_valid_puts() -> None:
    bundle = load_ans_examples(SHARED_FR / "annuaire-sante-fhir")
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert Counter(types) == {"Organization": 8, "Practitioner": 4, "PractitionerRole": 6}
    assert types == sorted(types, key=["Organization", "Practitioner", "PractitionerRole"].index)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        assert validate_resource(resource) == []
    assert validate_resource(bundle) == []


def test_optional_columns_and_conflicting_names_are_handled() -> None:
    lines = _lines()
    practice_line = next(line for line in lines[1:] if not line.split("|")[21])  # no FINESS
    siret = practice_line.split("|")[19]
    enriched = _with_fields(
        practice_line,
        fax="0102030405",
        structure_brand="Centre Pasteur",
        finess_legal="750712185",
        profession_code="",
        skill_code="",
    )
    renamed = _with_fields(practice_line, family="AUTRE-NOM")
    bad_siret = _with_fields(practice_line, siret=siret[:-1] + str((int(siret[-1]) + 1) % 10))
    problems: list[RowProblem] = []
    resources = rows_to_fhir(parse_rpps_extract([lines[0], enriched, renamed, bad_siret], problems), problems)
    assert [(p.line, p.code) for p in problems] == [(2, "bad-finess"), (3, "name-conflict"), (4, "bad-siret")]
    organization = _by_type(resources)["Organization"][0]
    assert organization["alias"] == ["Centre Pasteur"]
    assert {"system": "fax", "value": "0102030405", "use": "work"} in organization["telecom"]
    for resource in resources:
        assert validate_resource(resource) == []
    [practitioner] = rows_to_fhir(parse_rpps_extract([lines[0], enriched]))[1:2]
    assert "qualification" not in practitioner
