"""Search-index extraction from resources."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from hygie.fhir.index_model import DATE_MAX, DATE_MIN, IndexEntries
from hygie.fhir.indexing import extract_index, index_plan_size, parse_reference
from hygie.fhir.values import date_range, normalize_string, phonetic

EXAMPLES = Path("/work/shared/data/fhir-r4-examples")
SYNTHEA = Path("/work/shared/data/synthea-r4/bundles")
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="HL7 examples not available")
needs_synthea = pytest.mark.skipif(not SYNTHEA.is_dir(), reason="Synthea bundles not available")


def _example(folder: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((EXAMPLES / folder / f"{name}.json").read_bytes())
    return data


def _rows(entries: IndexEntries, kind: str, param: str) -> list[tuple[Any, ...]]:
    return [row[1:] for row in getattr(entries, kind) if row[0] == param]


def _resolve_bundle(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The bundle's resources with ``urn:uuid:`` references rewritten as a transaction would."""
    local = {
        entry["fullUrl"]: f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        for entry in bundle["entry"]
        if "fullUrl" in entry and "id" in entry["resource"]
    }

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (local.get(v, v) if k == "reference" and isinstance(v, str) else rewrite(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return [rewrite(entry["resource"]) for entry in bundle["entry"]]


# --- concrete values -------------------------------------------------------------------------


@needs_examples
def test_blood_pressure_composites() -> None:
    observation = _example("Observation", "observation-example-bloodpressure")
    entries = extract_index(observation)
    composites = _rows(entries, "composites", "component-code-value-quantity")
    systolic = ("http://loinc.org", "8480-6", "http://unitsofmeasure.org", "mm[Hg]", 107.0, None, None, None)
    diastolic = ("http://loinc.org", "8462-4", "http://unitsofmeasure.org", "mm[Hg]", 60.0, None, None, None)
    assert systolic in composites and diastolic in composites
    # Codes and values of different components are not crossed.
    assert (
        "http://loinc.org",
        "8480-6",
        "http://unitsofmeasure.org",
        "mm[Hg]",
        60.0,
        None,
        None,
        None,
    ) not in (composites)
    assert systolic in _rows(entries, "composites", "combo-code-value-quantity")
    quantities = _rows(entries, "quantities", "component-value-quantity")
    assert any(q[0] == 107.0 and q[2] == "mm[Hg]" and q[5] == "Pa" for q in quantities)
    assert ("http://loinc.org", "85354-9", "blood pressure panel with all children optional") in _rows(
        entries, "tokens", "code"
    )
    assert ("Patient", "example", None) in _rows(entries, "references", "subject")
    assert ("Patient", "example", None) in _rows(entries, "references", "patient")
    assert ("https://acme.org/identifiers", "1234", None) in _rows(entries, "tokens", "based-on:identifier")
    assert _rows(entries, "dates", "date") == [date_range(observation["effectiveDateTime"])]
    assert entries.compartments == ["example"]


@needs_examples
def test_patient_example() -> None:
    entries = extract_index(_example("Patient", "patient-example"))
    assert ("chalmers", "Chalmers") in _rows(entries, "strings", "family")
    assert ("peter", "Peter") in _rows(entries, "strings", "given")
    assert ("chalmers", "Chalmers") in _rows(entries, "strings", "name")
    assert ("jim", "Jim") in _rows(entries, "strings", "name")
    assert ("pleasantville", "PleasantVille") in _rows(entries, "strings", "address-city")
    assert ("pleasantville", "PleasantVille") in _rows(entries, "strings", "address")
    assert ("c456", "Chalmers") in _rows(entries, "strings", "phonetic")
    assert ("chalmers", "Chalmers") in _rows(entries, "strings", "phonetic")
    assert ("urn:oid:1.2.36.146.595.217.0.1", "12345", None) in _rows(entries, "tokens", "identifier")
    assert ("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "12345") in _rows(
        entries, "tokens", "identifier:of-type"
    )
    assert _rows(entries, "dates", "birthdate") == [date_range("1974-12-25")]
    assert (None, "male", None) in _rows(entries, "tokens", "gender")
    assert (None, "false", None) in _rows(entries, "tokens", "deceased")
    assert ("phone", "(03) 5555 6473", None) in _rows(entries, "tokens", "phone")
    assert (None, "example", None) in _rows(entries, "tokens", "_id")
    assert ("Organization", "1", None) in _rows(entries, "references", "organization")
    assert entries.compartments[0] == "example"


def test_patient_compartment_own_id_first_and_links() -> None:
    entries = extract_index(
        {
            "resourceType": "Patient",
            "id": "p1",
            "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
        }
    )
    assert entries.compartments == ["p1", "p2"]


def test_compartments_prefer_subject_and_skip_non_patients() -> None:
    entries = extract_index(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "performer": [{"reference": "Patient/performer"}, {"reference": "Practitioner/doc"}],
            "subject": {"reference": "Patient/subject"},
        }
    )
    assert entries.compartments == ["subject", "performer"]
    group = extract_index({"resourceType": "Observation", "subject": {"reference": "Group/g"}})
    assert group.compartments == []
    external = extract_index(
        {"resourceType": "Observation", "subject": {"reference": "https://elsewhere.org/fhir/Patient/x"}}
    )
    assert external.compartments == []
    assert ("Patient", "x", "https://elsewhere.org/fhir/Patient/x") in _rows(
        external, "references", "subject"
    )


def test_codeable_concept_text_and_coding_tokens() -> None:
    entries = extract_index(
        {
            "resourceType": "Condition",
            "code": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "39065001", "display": "Burn of ear"},
                    {"system": "http://x", "code": "b"},
                ],
                "text": "Brûlure de l'oreille",
            },
            "subject": {"reference": "Patient/1"},
        }
    )
    tokens = _rows(entries, "tokens", "code")
    assert ("http://snomed.info/sct", "39065001", "burn of ear") in tokens
    assert ("http://x", "b", "brulure de l'oreille") in tokens
    assert (None, None, "brulure de l'oreille") in tokens
    assert entries.compartments == ["1"]


def test_dates_periods_and_timing() -> None:
    entries = extract_index(
        {
            "resourceType": "Encounter",
            "period": {"start": "2020-03-01T10:00:00Z"},
            "meta": {"lastUpdated": "2024-01-02T03:04:05.678Z"},
        }
    )
    assert _rows(entries, "dates", "date") == [(date_range("2020-03-01T10:00:00Z")[0], DATE_MAX)]
    assert _rows(entries, "dates", "_lastUpdated") == [date_range("2024-01-02T03:04:05.678Z")]
    ended = extract_index({"resourceType": "Encounter", "period": {"end": "2020"}})
    assert _rows(ended, "dates", "date") == [(DATE_MIN, date_range("2020")[1])]
    invalid = extract_index({"resourceType": "Encounter", "period": {"start": "not a date"}})
    assert _rows(invalid, "dates", "date") == []
    timed = extract_index(
        {
            "resourceType": "MedicationRequest",
            "dosageInstruction": [{"timing": {"event": ["2021-05-01", "2021-05-02"]}}],
        }
    )
    assert _rows(timed, "dates", "date") == [date_range("2021-05-01"), date_range("2021-05-02")]


def test_quantities_money_numbers_and_uris() -> None:
    observation = extract_index(
        {
            "resourceType": "Observation",
            "valueQuantity": {"value": 5.4, "system": "http://unitsofmeasure.org", "code": "mg"},
        }
    )
    (row,) = _rows(observation, "quantities", "value-quantity")
    assert row[:4] == (5.4, "http://unitsofmeasure.org", "mg", None)
    assert row[4] == pytest.approx(0.0054) and row[5] == "g"
    no_ucum = extract_index({"resourceType": "Observation", "valueQuantity": {"value": 2, "unit": "tablets"}})
    assert _rows(no_ucum, "quantities", "value-quantity") == [(2.0, None, None, "tablets", None, None)]
    invoice = extract_index({"resourceType": "Invoice", "totalGross": {"value": 99, "currency": "EUR"}})
    assert _rows(invoice, "quantities", "totalgross") == [
        (99.0, "urn:iso:std:iso:4217", "EUR", None, None, None)
    ]
    risk = extract_index({"resourceType": "RiskAssessment", "prediction": [{"probabilityDecimal": 0.25}]})
    assert _rows(risk, "numbers", "probability") == [(0.25,)]
    profiled = extract_index(
        {
            "resourceType": "Patient",
            "id": "p",
            "meta": {"profile": ["http://example.org/p"], "source": "#src"},
        }
    )
    assert _rows(profiled, "uris", "_profile") == [("http://example.org/p",)]
    assert _rows(profiled, "uris", "_source") == [("#src",)]


def test_composite_value_kinds() -> None:
    code = {"coding": [{"system": "http://loinc.org", "code": "1-1"}]}
    dated = extract_index({"resourceType": "Observation", "code": code, "valueDateTime": "2020-02"})
    assert _rows(dated, "composites", "code-value-date") == [
        ("http://loinc.org", "1-1", None, None, None, *date_range("2020-02"), None)
    ]
    text = extract_index({"resourceType": "Observation", "code": code, "valueString": "Très Bien"})
    assert _rows(text, "composites", "code-value-string") == [
        ("http://loinc.org", "1-1", None, None, None, None, None, "tres bien")
    ]
    concept = extract_index(
        {
            "resourceType": "Observation",
            "code": code,
            "valueCodeableConcept": {"coding": [{"system": "s", "code": "c"}]},
        }
    )
    assert _rows(concept, "composites", "code-value-concept") == [
        ("http://loinc.org", "1-1", "s", "c", None, None, None, None)
    ]
    assert ("http://loinc.org", "1-1", "s", "c", None, None, None, None) in _rows(
        concept, "composites", "combo-code-value-concept"
    )


def test_references_identifier_and_canonical() -> None:
    entries = extract_index(
        {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "http://example.org/Questionnaire/q|1.0",
            "subject": {"identifier": {"system": "urn:ins", "value": "123"}},
            "author": {"reference": "urn:uuid:abc"},
        }
    )
    assert _rows(entries, "references", "questionnaire") == [
        (None, None, "http://example.org/Questionnaire/q|1.0")
    ]
    assert _rows(entries, "tokens", "subject:identifier") == [("urn:ins", "123", None)]
    assert _rows(entries, "references", "author") == [(None, None, "urn:uuid:abc")]


def test_parse_reference() -> None:
    assert parse_reference("Patient/123") == ("Patient", "123", None)
    assert parse_reference("Patient/123/_history/4") == ("Patient", "123", None)
    assert parse_reference("https://x.org/fhir/Patient/1") == ("Patient", "1", "https://x.org/fhir/Patient/1")
    assert parse_reference("urn:uuid:1") == (None, None, "urn:uuid:1")
    assert parse_reference("#contained") == (None, None, None)


def test_rows_are_deduplicated() -> None:
    entries = extract_index(
        {
            "resourceType": "Patient",
            "name": [{"family": "Dupont", "given": ["Jean"]}, {"family": "Dupont", "given": ["Jean"]}],
        }
    )
    assert _rows(entries, "strings", "family") == [("dupont", "Dupont")]
    for kind in ("tokens", "strings", "dates", "references", "quantities", "numbers", "uris", "composites"):
        rows = getattr(entries, kind)
        assert len(rows) == len(set(rows)), kind


def test_resource_type_is_required() -> None:
    with pytest.raises(ValueError, match="resourceType"):
        extract_index({"id": "x"})
    # Types the definitions do not know have no typed element to read (validation rejects them).
    assert extract_index({"resourceType": "NotAType", "id": "x"}) == IndexEntries()
    assert index_plan_size("Observation") > 30


# --- whole data sets -------------------------------------------------------------------------


@needs_examples
def test_every_hl7_example_indexes() -> None:
    paths = sorted(EXAMPLES.glob("*/*.json"))
    assert paths
    for path in paths:
        resource = orjson.loads(path.read_bytes())
        entries = extract_index(resource)
        assert (None, resource.get("id"), None) in _rows(entries, "tokens", "_id") or "id" not in resource
        for _, norm, exact in entries.strings:
            assert norm in (normalize_string(exact), phonetic(exact))


@needs_synthea
def test_synthea_observation_compartment_is_its_patient() -> None:
    path = sorted(SYNTHEA.glob("*.json.gz"))[0]
    bundle = orjson.loads(gzip.decompress(path.read_bytes()))
    resources = _resolve_bundle(bundle)
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    assert observations
    for observation in observations:
        entries = extract_index(observation)
        assert entries.compartments == [patient["id"]]
        assert ("Patient", patient["id"], None) in _rows(entries, "references", "patient")
    assert extract_index(patient).compartments == [patient["id"]]


@needs_synthea
@pytest.mark.slow
def test_every_synthea_resource_indexes() -> None:
    for path in sorted(SYNTHEA.glob("*.json.gz")):
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        for resource in _resolve_bundle(bundle):
            extract_index(resource)


def test_a_binary_is_filed_in_the_record_its_security_context_names() -> None:
    binary = {"resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0="}
    assert extract_index({**binary, "securityContext": {"reference": "Patient/p1"}}).compartments == ["p1"]
    # no context, another kind of context, or an absolute URL: outside every record, as in R4
    assert extract_index(binary).compartments == []
    assert extract_index({**binary, "securityContext": {"reference": "Practitioner/d"}}).compartments == []
    other = {**binary, "securityContext": {"reference": "https://elsewhere.org/fhir/Patient/x"}}
    assert extract_index(other).compartments == []
