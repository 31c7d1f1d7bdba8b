"""The fast structural validator (``hygie.fhir.validation``).

* every official HL7 R4 example (``/work/shared/data/fhir-r4-examples``, 380 files) is valid, and so is
  each entry of the example Bundles validated on its own;
* hand-written invalid resources each give the expected issue code at the expected FHIRPath;
* every resource of three Synthea R4 transaction Bundles is valid.

No official example is invalid for this validator. (One, ``diagnosticreport-example-gingival-mass``,
holds a no-break space in a string: the spec regex ``[ \\r\\n\\t\\S]+`` is applied with ASCII ``\\s``
semantics, as in the Java/XML Schema reference, so it is rightly accepted.)
"""

from __future__ import annotations

import copy
import csv
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from hygie.fhir.outcome import Unprocessable
from hygie.fhir.validation import require_valid, validate_resource

EXAMPLES = Path("/work/shared/data/fhir-r4-examples")
SYNTHEA = Path("/work/shared/data/synthea-r4/bundles")

needs_examples = pytest.mark.skipif(not (EXAMPLES / "index.csv").is_file(), reason="no HL7 examples")
needs_synthea = pytest.mark.skipif(not SYNTHEA.is_dir(), reason="no Synthea bundles")


def _example_files() -> list[str]:
    if not (EXAMPLES / "index.csv").is_file():
        return []
    with (EXAMPLES / "index.csv").open(newline="") as handle:
        return [row["file"] for row in csv.DictReader(handle)]


def _describe(issues: list[Any]) -> list[tuple[str, str | None, str]]:
    return [(i.code, i.expression, i.diagnostics) for i in issues]


@needs_examples
def test_example_index_is_complete() -> None:
    assert len(_example_files()) == 380


@needs_examples
@pytest.mark.parametrize("name", _example_files())
def test_official_example_is_valid(name: str) -> None:
    resource = orjson.loads((EXAMPLES / name).read_bytes())
    assert _describe(validate_resource(resource)) == []
    if resource["resourceType"] == "Bundle":
        for index, entry in enumerate(resource.get("entry", [])):
            if "resource" in entry:
                issues = validate_resource(entry["resource"])
                assert _describe(issues) == [], f"entry[{index}]"


def _synthea_bundles() -> list[Path]:
    return sorted(SYNTHEA.glob("*.json.gz"))[:3] if SYNTHEA.is_dir() else []


@needs_synthea
@pytest.mark.parametrize("path", _synthea_bundles(), ids=lambda p: p.name.split("_")[0])
def test_synthea_bundle_is_valid(path: Path) -> None:
    bundle = orjson.loads(gzip.decompress(path.read_bytes()))
    assert bundle["type"] == "transaction"
    assert _describe(validate_resource(bundle)) == []
    entries = [entry["resource"] for entry in bundle["entry"]]
    assert len(entries) > 50
    for resource in entries:
        assert _describe(validate_resource(resource)) == [], resource["resourceType"]


# --- invalid resources -----------------------------------------------------------------------------

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "obs-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
    "subject": {"reference": "Patient/p-1"},
    "effectiveDateTime": "2024-03-01T10:00:00+01:00",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
}

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p-1",
    "meta": {"versionId": "1", "lastUpdated": "2024-03-01T10:00:00Z"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jeanne</div>'},
    "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "123"}],
    "name": [{"family": "Martin", "given": ["Jeanne", "Marie"]}],
    "gender": "female",
    "birthDate": "1980-02-29",
    "address": [{"city": "Lyon", "period": {"start": "2001"}}],
    "managingOrganization": {"reference": "Organization/org-1"},
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            del result[key]
        else:
            result[key] = value
    return result


def test_bases_are_valid() -> None:
    assert validate_resource(OBSERVATION) == []
    assert validate_resource(PATIENT) == []
    require_valid(PATIENT)


INVALID: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("unknown type", {"resourceType": "Patientt"}, "not-supported", "resourceType"),
    ("no resourceType", {"id": "x"}, "required", "resourceType"),
    ("unknown element", _with(PATIENT, nickname="Jo"), "structure", "Patient.nickname"),
    ("misspelt choice", _with(OBSERVATION, valueFoo="x"), "structure", "Observation.valueFoo"),
    (
        "two value[x]",
        _with(OBSERVATION, valueString="72"),
        "structure",
        "Observation.valueString",
    ),
    ("missing required", _with(OBSERVATION, status=None), "required", "Observation.status"),
    ("bad required code", _with(PATIENT, gender="homme"), "code-invalid", "Patient.gender"),
    ("bad status", _with(OBSERVATION, status="final2"), "code-invalid", "Observation.status"),
    ("bad date", _with(PATIENT, birthDate="1980-02-30"), "value", "Patient.birthDate"),
    ("bad date format", _with(PATIENT, birthDate="29/02/1980"), "value", "Patient.birthDate"),
    ("date as number", _with(PATIENT, birthDate=1980), "structure", "Patient.birthDate"),
    ("bad id", _with(PATIENT, id="p_1"), "value", "Patient.id"),
    ("id too long", _with(PATIENT, id="x" * 65), "value", "Patient.id"),
    ("boolean as string", _with(PATIENT, active="true"), "structure", "Patient.active"),
    (
        "integer as float",
        _with(PATIENT, multipleBirthInteger=2.5),
        "structure",
        "Patient.multipleBirthInteger",
    ),
    (
        "integer out of range",
        _with(PATIENT, multipleBirthInteger=2**31),
        "value",
        "Patient.multipleBirthInteger",
    ),
    ("array for max 1", _with(PATIENT, gender=["female"]), "structure", "Patient.gender"),
    ("single for array", _with(PATIENT, name={"family": "Martin"}), "structure", "Patient.name"),
    (
        "whitespace string",
        _with(PATIENT, name=[{"family": "Martin", "given": ["Jeanne", "  "]}]),
        "value",
        "Patient.name[0].given[1]",
    ),
    (
        "decimal as string",
        _with(OBSERVATION, valueQuantity={"value": "72"}),
        "structure",
        "Observation.valueQuantity.value",
    ),
    (
        "bad Quantity comparator",
        _with(OBSERVATION, valueQuantity={"value": 72, "comparator": "~"}),
        "code-invalid",
        "Observation.valueQuantity.comparator",
    ),
    (
        "bad reference type",
        _with(PATIENT, managingOrganization={"reference": "Organisation/org-1"}),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "bad reference syntax",
        _with(PATIENT, managingOrganization={"reference": "Organization/org 1"}),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "bad urn reference",
        _with(OBSERVATION, subject={"reference": "urn:uuid:not-a-uuid"}),
        "value",
        "Observation.subject.reference",
    ),
    (
        "narrative without div",
        _with(PATIENT, text={"status": "generated"}),
        "required",
        "Patient.text.div",
    ),
    (
        "narrative div not xhtml",
        _with(PATIENT, text={"status": "generated", "div": "Jeanne"}),
        "value",
        "Patient.text.div",
    ),
    (
        "extension without url",
        _with(PATIENT, extension=[{"valueString": "x"}]),
        "required",
        "Patient.extension[0].url",
    ),
    (
        "extension with value and extensions",
        _with(
            PATIENT,
            extension=[
                {"url": "http://e.x", "valueString": "x", "extension": [{"url": "a", "valueCode": "b"}]}
            ],
        ),
        "structure",
        "Patient.extension[0]",
    ),
    (
        "bad primitive extension",
        _with(PATIENT, _birthDate={"extension": [{"url": "http://e.x", "valueDate": "1980-13"}]}),
        "value",
        "Patient.birthDate.extension[0].valueDate",
    ),
    (
        "_element of a complex element",
        _with(PATIENT, _managingOrganization={"id": "x"}),
        "structure",
        "Patient._managingOrganization",
    ),
    (
        "contained invalid",
        _with(PATIENT, contained=[{"resourceType": "Organization", "id": "o", "active": "yes"}]),
        "structure",
        "Patient.contained[0].active",
    ),
    (
        "nested contained",
        _with(
            PATIENT,
            contained=[{"resourceType": "Organization", "id": "o", "contained": [{"resourceType": "Basic"}]}],
        ),
        "structure",
        "Patient.contained[0].contained",
    ),
    (
        "contained unknown type",
        _with(PATIENT, contained=[{"resourceType": "Organisation", "id": "o"}]),
        "not-supported",
        "Patient.contained[0]",
    ),
    (
        "backbone element",
        _with(PATIENT, contact=[{"gender": "female", "relationship": "mother"}]),
        "structure",
        "Patient.contact[0].relationship",
    ),
    (
        "null value",
        _with(PATIENT, birthDate=None, deceasedBoolean=False, active=False) | {"gender": None},
        "structure",
        "Patient.gender",
    ),
    ("empty array", _with(PATIENT, identifier=[]), "structure", "Patient.identifier"),
    (
        "bad meta.lastUpdated",
        _with(PATIENT, meta={"lastUpdated": "2024-03-01T10:00:00"}),
        "value",
        "Patient.meta.lastUpdated",
    ),
    (
        "bad coding in required CodeableConcept",
        {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": "Patient/p-1"},
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "on",
                    }
                ]
            },
        },
        "code-invalid",
        "AllergyIntolerance.clinicalStatus.coding[0].code",
    ),
    (
        "questionnaire item recursion",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "texte"}]}],
        },
        "code-invalid",
        "Questionnaire.item[0].item[0].type",
    ),
    (
        "questionnaire item missing linkId",
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [{"linkId": "1", "type": "group", "item": [{"type": "string"}]}],
        },
        "required",
        "Questionnaire.item[0].item[0].linkId",
    ),
    (
        "dosage timing",
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "paracetamol"},
            "subject": {"reference": "Patient/p-1"},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 0, "period": 1, "periodUnit": "d"}}}],
        },
        "value",
        "MedicationRequest.dosageInstruction[0].timing.repeat.frequency",
    ),
    (
        "bundle entry",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": copy.deepcopy(PATIENT), "request": {"method": "POST", "url": "Patient"}},
                {
                    "resource": _with(OBSERVATION, status="final2"),
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        },
        "code-invalid",
        "Bundle.entry[1].resource.status",
    ),
    (
        "bundle request method",
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "FETCH", "url": "Patient"}}],
        },
        "code-invalid",
        "Bundle.entry[0].request.method",
    ),
]


@pytest.mark.parametrize(
    ("resource", "code", "expression"),
    [pytest.param(r, c, e, id=name) for name, r, c, e in INVALID],
)
def test_invalid_resource(resource: dict[str, Any], code: str, expression: str | None) -> None:
    issues = validate_resource(resource)
    assert (code, expression) in [(i.code, i.expression) for i in issues], _describe(issues)
    with pytest.raises(Unprocessable) as raised:
        require_valid(resource)
    assert raised.value.status == 422
    assert raised.value.issues == issues


def test_primitive_array_with_extensions() -> None:
    """A null in a primitive array is fine when ``_name`` holds its extension, and only then."""
    name = {
        "given": ["Jeanne", None],
        "_given": [None, {"extension": [{"url": "http://e.x", "valueCode": "masked"}]}],
    }
    assert validate_resource(_with(PATIENT, name=[name])) == []
    name["_given"] = [None, None]
    issues = validate_resource(_with(PATIENT, name=[name]))
    assert ("structure", "Patient.name[0].given[1]") in [(i.code, i.expression) for i in issues]


def test_required_primitive_satisfied_by_extension() -> None:
    """``_status`` alone (e.g. a data-absent-reason) satisfies a required primitive."""
    resource = _with(OBSERVATION, status=None)
    resource["_status"] = {"extension": [{"url": "http://e.x", "valueCode": "unknown"}]}
    assert validate_resource(resource) == []


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p-1",
        "Patient/p-1/_history/2",
        "https://fhir.example.org/r4/Patient/p-1",
        "#p1",
        "urn:uuid:5f1c2e4a-9d6b-4b0e-8b7e-2b8f3c1d9a77",
        "urn:oid:1.2.250.1.71",
        "Patient?identifier=http://x|1",
    ],
)
def test_reference_forms_accepted(reference: str) -> None:
    assert validate_resource(_with(OBSERVATION, subject={"reference": reference})) == []


def test_fhir_comments_tolerated() -> None:
    assert validate_resource(_with(PATIENT, fhir_comments=["legacy comment"])) == []
    issues = validate_resource(_with(PATIENT, fhir_comments=3))
    assert [(i.code, i.expression) for i in issues] == [("structure", "Patient.fhir_comments")]


def test_base64_is_linear_and_exact() -> None:
    """base64Binary: groups of 4, whitespace only between groups; no regex backtracking blow-up."""
    binary = {"resourceType": "Binary", "contentType": "text/plain"}
    assert validate_resource(binary | {"data": "QUJD\nREVG"}) == []
    assert validate_resource(binary | {"data": "QUJ DREVG"})[0].expression == "Binary.data"
    assert validate_resource(binary | {"data": "QUJD!"})[0].code == "value"
    huge_invalid = "QUJD\n" * 200_000 + "!"  # exponential for the spec regex in a backtracking engine
    assert validate_resource(binary | {"data": huge_invalid})[0].expression == "Binary.data"


def test_unicode_whitespace() -> None:
    """A no-break space is fine in a string (French text), not inside a code."""
    assert validate_resource(_with(PATIENT, name=[{"family": "Le\u00a0Goff"}])) == []
    issues = validate_resource(_with(PATIENT, language="\u00a0fr"))  # leading whitespace
    assert [(i.code, i.expression) for i in issues] == [("value", "Patient.language")]
