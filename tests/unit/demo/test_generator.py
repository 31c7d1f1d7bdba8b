"""The synthetic population: determinism, identifiers, references, documents, vital signs, speed."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hygie.demo.directory import PS_LIBREACCES_HEADER
from hygie.demo.generator import (
    DEMO_CITIZENS,
    LARGE_PATIENT_RESOURCES,
    generate_directory,
    generate_population,
    iter_resources,
    write_rpps_extract,
)
from hygie.demo.reference import load_communes, load_first_names, load_surnames
from hygie.domain.identity import (
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_SYSTEM,
    is_valid_finess,
    is_valid_nir,
    is_valid_rpps,
    is_valid_siret,
    parse_nir,
)

FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
SHARED_HEADER = Path("/work/shared/data/fr/rpps/ps-libreacces-personne-activite-header.txt")
N_PATIENTS = 12


@pytest.fixture(scope="module")
def population() -> list[dict[str, Any]]:
    return generate_population(N_PATIENTS, seed=42, large_patient=True)


def _patients(population: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [bundle["entry"][0]["resource"] for bundle in population[1:]]


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_shape(population: list[dict[str, Any]]) -> None:
    assert len(population) == N_PATIENTS + 2
    directory = population[0]
    assert directory["type"] == "transaction"
    for entry in directory["entry"]:
        resource = entry["resource"]
        assert resource["resourceType"] in ("Organization", "Location", "Practitioner", "PractitionerRole")
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    for bundle in population[1:]:
        assert bundle["type"] == "transaction"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        for entry in bundle["entry"]:
            assert entry["fullUrl"].startswith("urn:uuid:")
            assert entry["request"] == {"method": "POST", "url": entry["resource"]["resourceType"]}
            assert "id" not in entry["resource"]
        urls = [e["fullUrl"] for e in bundle["entry"]]
        assert len(set(urls)) == len(urls)


def test_deterministic_for_a_seed() -> None:
    first = json.dumps(generate_population(4, seed=7), sort_keys=True)
    again = json.dumps(generate_population(4, seed=7), sort_keys=True)
    other = json.dumps(generate_population(4, seed=8), sort_keys=True)
    assert first == again
    assert first != other
    # More citizens only appends bundles.
    assert json.dumps(generate_population(6, seed=7)[:5], sort_keys=True) == first


def test_every_nir_is_valid_and_consistent(population: list[dict[str, Any]]) -> None:
    communes = {c.insee for c in load_communes()}
    for patient in _patients(population):
        (identifier,) = patient["identifier"]
        assert identifier["system"] in (INS_NIR_SYSTEM, INS_NIA_SYSTEM)
        assert identifier["type"]["coding"][0]["code"] == (
            "INS-NIR" if identifier["system"] == INS_NIR_SYSTEM else "INS-NIA"
        )
        nir = identifier["value"]
        assert is_valid_nir(nir)
        parts = parse_nir(nir)
        assert parts.sex == patient["gender"]
        assert f"{parts.birth_year}-{parts.birth_month_code}" == patient["birthDate"][2:7]
        birth_place = next(e for e in patient["extension"] if e["url"].endswith("patient-birthPlace"))
        address = birth_place["valueAddress"]
        if parts.born_abroad:
            assert parts.birth_place_code in address["text"]
        else:
            insee = address["extension"][0]["valueCoding"]["code"]
            assert insee == parts.birth_place_code
            assert insee in communes


def test_patient_follows_fr_core_ins(population: list[dict[str, Any]]) -> None:
    statuses: Counter[str] = Counter()
    for patient in _patients(population):
        assert patient["meta"]["profile"] == [FR_CORE + "fr-core-patient-ins"]
        reliability = next(
            e for e in patient["extension"] if e["url"] == FR_CORE + "fr-core-identity-reliability"
        )
        status = next(x for x in reliability["extension"] if x["url"] == "identityStatus")
        statuses[status["valueCoding"]["code"]] += 1
        official = next(n for n in patient["name"] if n["use"] == "official")
        assert len(official["given"]) == 1
        birth_list = official["extension"][0]["valueString"]
        assert birth_list.split(" ")[0] == official["given"][0]
        address = patient["address"][0]
        assert address["extension"][0]["valueCoding"]["code"] in {c.insee for c in load_communes()}
        if int(patient["birthDate"][:4]) <= 2009:  # adults and teenagers at the end of 2025
            assert {t["system"] for t in patient["telecom"]} == {"phone", "email"}
            assert next(t for t in patient["telecom"] if t["system"] == "email")["value"].endswith(".example")
        assert patient["generalPractitioner"][0]["reference"].startswith("Practitioner/pra-")
    assert set(statuses) <= {"PROV", "RECUP", "VALI", "QUAL"}
    assert statuses["QUAL"] >= 1


def test_demo_citizens_open_the_population(population: list[dict[str, Any]]) -> None:
    assert len(DEMO_CITIZENS) >= 3
    assert len({c.key for c in DEMO_CITIZENS}) == len(DEMO_CITIZENS)
    for citizen, bundle in zip(DEMO_CITIZENS, population[1:], strict=False):
        entry = bundle["entry"][0]
        assert entry["fullUrl"] == f"urn:uuid:{citizen.fhir_uuid}"
        patient = entry["resource"]
        assert patient["identifier"][0]["value"] == citizen.ins
        assert patient["identifier"][0]["system"] == citizen.ins_system
        assert patient["name"][0]["family"] == citizen.family
        assert patient["birthDate"] == citizen.birth_date.isoformat()
        assert is_valid_nir(citizen.ins)
    # Fixed identities, whatever the seed.
    other = generate_population(1, seed=99)[1]["entry"][0]
    assert other["fullUrl"] == f"urn:uuid:{DEMO_CITIZENS[0].fhir_uuid}"
    assert DEMO_CITIZENS[0].ins == "285044523412351"


def test_demo_ins_oid_option() -> None:
    bundle = generate_population(1, seed=1, ins="demo")[1]
    identifier = bundle["entry"][0]["resource"]["identifier"][0]
    assert identifier["system"] == INS_NIR_DEMO_SYSTEM
    assert identifier["type"]["coding"][0]["code"] == "INS-NIR-DEMO"


def test_directory_identifiers_are_valid(population: list[dict[str, Any]]) -> None:
    finess_count = 0
    for resource in iter_resources(population[:1]):
        for identifier in resource.get("identifier", []):
            code = identifier["type"]["coding"][0]["code"]
            value = identifier["value"]
            if code == "RPPS":
                assert is_valid_rpps(value)
            elif code == "IDNPS":
                assert value[0] == "8"
                assert is_valid_rpps(value[1:])
            elif code in ("FINEG", "FINEJ"):
                finess_count += 1
                assert is_valid_finess(value)
            elif code == "SIRET":
                assert is_valid_siret(value)
            elif code == "IDNST":
                assert (value[0] == "1" and is_valid_finess(value[1:])) or (
                    value[0] == "3" and is_valid_siret(value[1:])
                )
        if resource["resourceType"] == "Practitioner":
            mailbox = next(t for t in resource["telecom"] if t["system"] == "email")["value"]
            assert mailbox.endswith(".mssante.fr")
            if resource["qualification"][0]["code"]["coding"][0]["code"] == "10":
                assert mailbox.endswith("@medecin.mssante.fr")
    assert finess_count > 0
    departments = {
        r["address"][0]["extension"][0]["valueCoding"]["code"][:2]
        for r in iter_resources(population[:1])
        if r["resourceType"] == "Organization"
    }
    assert {"2A", "97"} <= departments or {"2B", "97"} <= departments


def test_every_reference_resolves(population: list[dict[str, Any]]) -> None:
    directory_ids = {f"{r['resourceType']}/{r['id']}" for r in iter_resources(population[:1])}
    for resource in iter_resources(population[:1]):
        for key, value in _walk(resource):
            if key == "reference":
                assert value in directory_ids
    for bundle in population[1:]:
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        references = 0
        for entry in bundle["entry"]:
            for key, value in _walk(entry["resource"]):
                local_url = key == "url" and isinstance(value, str) and value.startswith("urn:")
                if key == "reference" or local_url:
                    references += 1
                    assert value in full_urls or value in directory_ids, value
        assert references > 0


def test_documents_hold_real_pdfs(population: list[dict[str, Any]]) -> None:
    documents = 0
    types: Counter[str] = Counter()
    for bundle in population[1:]:
        by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
        for resource in by_url.values():
            if resource["resourceType"] != "DocumentReference":
                continue
            documents += 1
            types[resource["type"]["coding"][0]["code"]] += 1
            attachment = resource["content"][0]["attachment"]
            assert attachment["contentType"] == "application/pdf"
            binary = by_url[attachment["url"]]
            assert binary["resourceType"] == "Binary"
            assert binary["contentType"] == "application/pdf"
            data = base64.b64decode(binary["data"])
            assert data.startswith(b"%PDF")
            assert attachment["size"] == len(data)
            assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
            assert resource["author"][0]["reference"].startswith("Practitioner/")
            assert resource["custodian"]["reference"].startswith("Organization/")
            assert resource["securityLabel"][0]["coding"][0]["code"] in ("N", "R")
    assert documents > 0
    assert {"57833-6", "11488-4"} <= set(types)


PLAUSIBLE = {
    "29463-7": (2.0, 200.0),
    "8302-2": (40.0, 210.0),
    "8480-6": (80.0, 210.0),
    "8462-4": (40.0, 130.0),
    "8867-4": (40.0, 180.0),
    "8310-5": (35.0, 41.5),
    "59408-5": (85.0, 100.0),
    "2339-0": (50.0, 300.0),
    "41950-7": (0.0, 40000.0),
}
UNITS = {
    "29463-7": "kg",
    "8302-2": "cm",
    "8480-6": "mm[Hg]",
    "8462-4": "mm[Hg]",
    "8867-4": "/min",
    "8310-5": "Cel",
    "59408-5": "%",
    "2339-0": "mg/dL",
    "41950-7": "1/(24.h)",
}


def test_vital_signs_are_plausible(population: list[dict[str, Any]]) -> None:
    seen: Counter[str] = Counter()
    for resource in iter_resources(population[1:]):
        if resource["resourceType"] != "Observation":
            continue
        quantities = (
            [(resource["code"]["coding"][0]["code"], resource["valueQuantity"])]
            if "valueQuantity" in resource
            else [(c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in resource["component"]]
        )
        if "component" in resource:
            assert resource["code"]["coding"][0]["code"] == "85354-9"
        for code, quantity in quantities:
            low, high = PLAUSIBLE[code]
            assert low <= quantity["value"] <= high, (code, quantity)
            assert quantity["system"] == "http://unitsofmeasure.org"
            assert quantity["code"] == UNITS[code]
            seen[code] += 1
    assert set(seen) == set(PLAUSIBLE)


def test_adult_weight_series_is_smooth(population: list[dict[str, Any]]) -> None:
    """Successive adult weights change gradually (a time series, not independent draws)."""
    for bundle in population[1:]:
        patient = bundle["entry"][0]["resource"]
        born = int(patient["birthDate"][:4])
        weights = sorted(
            (r["effectiveDateTime"], r["valueQuantity"]["value"])
            for r in (e["resource"] for e in bundle["entry"])
            if r["resourceType"] == "Observation"
            and r["code"]["coding"][0]["code"] == "29463-7"
            and int(r["effectiveDateTime"][:4]) - born >= 20
        )
        for (_, before), (_, after) in itertools.pairwise(weights):
            assert abs(after - before) < 8


def test_large_patient(population: list[dict[str, Any]]) -> None:
    large = population[-1]
    assert abs(len(large["entry"]) - LARGE_PATIENT_RESOURCES) <= 5


def test_rpps_extract_has_53_columns() -> None:
    directory = generate_directory(3)
    out = io.StringIO()
    rows = write_rpps_extract(directory, out)
    lines = out.getvalue().splitlines()
    assert rows == len(lines) - 1 == len(directory.professionals)
    for line in lines:
        assert len(line.split("|")) == 53
    if SHARED_HEADER.exists():
        assert lines[0] == SHARED_HEADER.read_text(encoding="utf-8").rstrip("\r\n")
    assert lines[0] == PS_LIBREACCES_HEADER
    for row in csv.reader(lines[1:], delimiter="|"):
        assert is_valid_rpps(row[1])
        assert row[2] == "8" + row[1]


def test_rpps_extract_to_path(tmp_path: Path) -> None:
    target = tmp_path / "PS_LibreAcces_Personne_activite.txt"
    rows = write_rpps_extract(generate_directory(0), target)
    assert len(target.read_text(encoding="utf-8").splitlines()) == rows + 1


def test_reference_data() -> None:
    communes = load_communes()
    assert 90 <= len(communes) <= 130
    assert len({c.insee for c in communes}) == len(communes)
    departments = {c.department for c in communes}
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= departments
    assert len({c.region for c in communes}) == 18
    assert all(-22 < c.lat < 52 and -62 < c.lng < 56 for c in communes)
    first_line = (Path(__file__).parents[3] / "src/hygie/demo/data/communes.csv").read_text(encoding="utf-8")
    assert first_line.startswith("# Source: INSEE")
    assert "Licence Ouverte / Etalab 2.0" in first_line.splitlines()[0]
    assert len(load_first_names()) >= 80
    assert len(load_surnames()) >= 80


def test_resources_are_valid_fhir() -> None:
    """Every generated resource parses with the fhir.resources R4B models (same structure as R4 here)."""
    bundles = generate_population(6, seed=5)
    from fhir.resources.R4B.bundle import Bundle

    for bundle in bundles:
        Bundle.model_validate(bundle)
        for resource in iter_resources([bundle]):
            kind = resource["resourceType"]
            model = getattr(importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)
            model.model_validate(resource)


def test_fifty_patients_in_a_few_seconds() -> None:
    started = time.perf_counter()
    bundles = generate_population(50, seed=11)
    elapsed = time.perf_counter() - started
    assert len(bundles) == 51
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_clinical_rules(population: list[dict[str, Any]]) -> None:
    """No penicillin for the allergic; mental-health documents are restricted and masked."""
    for bundle in population[1:]:
        resources = [e["resource"] for e in bundle["entry"]]
        allergic = any(
            r["resourceType"] == "AllergyIntolerance" and r["code"]["coding"][0]["code"] == "764146007"
            for r in resources
        )
        prescribed = {
            coding["code"]
            for r in resources
            if r["resourceType"] == "MedicationRequest"
            for coding in r["medicationCodeableConcept"]["coding"]
        }
        if allergic:
            assert "J01CA04" not in prescribed
        for r in resources:
            if r["resourceType"] == "DocumentReference" and r["securityLabel"][0]["coding"][0]["code"] == "R":
                assert r["securityLabel"][1]["coding"][0]["code"] == "MASQUE_PS"


def test_demo_citizen_histories(population: list[dict[str, Any]]) -> None:
    """Paul ROSSI (second demo citizen) is penicillin-allergic and followed for his three conditions."""
    resources = [e["resource"] for e in population[2]["entry"]]
    conditions = {r["code"]["coding"][0]["code"] for r in resources if r["resourceType"] == "Condition"}
    assert {"38341003", "44054006", "49436004"} <= conditions
    assert any(r["resourceType"] == "AllergyIntolerance" for r in resources)
    nadia = [e["resource"] for e in population[5]["entry"]]
    labels = {
        c["code"]
        for r in nadia
        if r["resourceType"] == "DocumentReference"
        for label in r["securityLabel"]
        for c in label["coding"]
    }
    assert "MASQUE_PS" in labels
