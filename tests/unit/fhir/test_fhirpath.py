"""The FHIRPath subset compiler used for search-parameter expressions."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from hygie.fhir import definitions
from hygie.fhir.fhirpath import (
    FHIRPathError,
    compile_expression,
    compile_typed,
    element_types,
    evaluate_typed,
    reference_type,
)

REFERENCE_DEFINITIONS = Path("/work/shared/data/fhir-r4-definitions/search-parameters.json")
EXAMPLES = Path("/work/shared/data/fhir-r4-examples")


def _definition_sets() -> list[tuple[str, list[dict[str, Any]]]]:
    sets = [("medplum", definitions.load_bundle_resources("search-parameters.json"))]
    if REFERENCE_DEFINITIONS.is_file():
        bundle = orjson.loads(REFERENCE_DEFINITIONS.read_bytes())
        sets.append(("hl7-reference", [entry["resource"] for entry in bundle["entry"]]))
    return sets


@pytest.mark.parametrize(
    ("label", "params"), _definition_sets(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_search_parameter_expression_compiles(label: str, params: list[dict[str, Any]]) -> None:
    failures: list[str] = []
    untyped: list[str] = []
    compiled = 0
    for param in params:
        expressions = [param.get("expression")]
        for base in param.get("base", []):
            for expression in expressions:
                if not expression:
                    continue  # _text, _content, _query: no expression by definition
                try:
                    branches = compile_typed(expression, base)
                    compile_expression(expression)  # untyped (no resource type) too
                except FHIRPathError as exc:
                    failures.append(f"{param['code']} on {base}: {exc}")
                    continue
                compiled += 1
                untyped += [f"{param['code']} on {base}" for b in branches if b.type is None]
                if base not in ("Resource", "DomainResource") and not branches:
                    failures.append(f"{param['code']} on {base}: no branch for its own base")
            for component in param.get("component", []):
                for context in compile_typed(expression or base, base):
                    compile_typed(component["expression"], base, context.type)
    assert not failures, failures
    assert not untyped, untyped
    assert compiled > 1300


def test_multi_base_expression_keeps_only_the_resource_types_branch() -> None:
    expression = (
        "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | "
        "Observation.subject.where(resolve() is Patient)"
    )
    assert len(compile_typed(expression, "Observation")) == 1
    assert len(compile_typed(expression, "AllergyIntolerance")) == 1
    assert compile_typed(expression, "Patient") == ()
    observation = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}, "patient": "x"}
    assert compile_expression(expression, "Observation")(observation) == [{"reference": "Patient/p1"}]
    # Untyped compilation checks the root type at run time and gives the same answer.
    assert compile_expression(expression)(observation) == [{"reference": "Patient/p1"}]


def test_choice_elements_and_type_filters() -> None:
    observation = {
        "resourceType": "Observation",
        "valueQuantity": {"value": 5, "unit": "mg"},
        "component": [
            {"code": {"text": "a"}, "valueString": "x"},
            {"code": {"text": "b"}, "valueQuantity": {"value": 7}},
        ],
    }
    assert compile_expression("Observation.value.ofType(Quantity)", "Observation")(observation) == [
        {"value": 5, "unit": "mg"}
    ]
    assert compile_expression("(Observation.value as Quantity)", "Observation")(observation) == [
        {"value": 5, "unit": "mg"}
    ]
    assert compile_expression("Observation.value.as(Quantity).unit", "Observation")(observation) == ["mg"]
    assert compile_expression("Observation.value.ofType(string)", "Observation")(observation) == []
    assert compile_expression("Observation.component.value.ofType(string)", "Observation")(observation) == [
        "x"
    ]
    # A bare choice element reads every value[x], each branch keeping its static type.
    branches = compile_typed("Observation.component.value", "Observation")
    values = evaluate_typed(branches, observation, observation)
    assert ("x", "string") in values
    assert ({"value": 7}, "Quantity") in values
    # Type names are matched as the definitions spell them (DateTime -> dateTime).
    dated = {"resourceType": "Observation", "valueDateTime": "2020-01-01"}
    assert compile_expression("Observation.value.ofType(DateTime)", "Observation")(dated) == ["2020-01-01"]


def test_untyped_choice_resolution_without_resource_type() -> None:
    condition = {"resourceType": "Condition", "onsetAge": {"value": 3, "unit": "a"}}
    assert compile_expression("onset.ofType(Age)")(condition) == [{"value": 3, "unit": "a"}]
    assert compile_expression("onset")(condition) == [{"value": 3, "unit": "a"}]


def test_where_resolve_is_type() -> None:
    resource = {
        "resourceType": "Provenance",
        "contained": [{"resourceType": "Patient", "id": "c1"}],
        "target": [
            {"reference": "Patient/1"},
            {"reference": "https://example.org/fhir/Patient/2/_history/3"},
            {"reference": "Group/3"},
            {"reference": "#c1"},
            {"type": "Patient", "identifier": {"value": "x"}},
            {"reference": "urn:uuid:1234"},
        ],
    }
    found = compile_expression("Provenance.target.where(resolve() is Patient)", "Provenance")(resource)
    assert [r.get("reference") for r in found] == [
        "Patient/1",
        "https://example.org/fhir/Patient/2/_history/3",
        "#c1",
        None,
    ]
    # The generic (non fast-path) form agrees.
    generic = "Provenance.target.where(resolve().ofType(Patient).exists())"
    assert compile_expression(generic, "Provenance")(resource) == found
    assert reference_type({"reference": "Observation/abc"}) == "Observation"
    assert reference_type({"reference": "urn:uuid:1234"}) is None


def test_predicates_functions_and_logic() -> None:
    patient = {
        "resourceType": "Patient",
        "deceasedBoolean": False,
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
        "name": [{"use": "official", "given": ["Ann", "Marie"]}, {"given": ["Nan"]}],
        "extension": [
            {"url": "http://x/race", "valueString": "r"},
            {"url": "http://x/other", "valueCode": "o"},
        ],
    }
    deceased = "Patient.deceased.exists() and Patient.deceased != false"
    assert compile_expression(deceased, "Patient")(patient) == [False]
    assert compile_expression(deceased, "Patient")({**patient, "deceasedBoolean": True}) == [True]
    assert compile_expression(deceased, "Patient")(
        {"resourceType": "Patient", "deceasedDateTime": "2020"}
    ) == [True]
    assert compile_expression(deceased, "Patient")({"resourceType": "Patient"}) == [False]
    assert compile_expression("Patient.telecom.where(system='email')", "Patient")(patient) == [
        {"system": "email", "value": "a@b"}
    ]
    assert compile_expression("Patient.name.where(use = 'official').given.first()", "Patient")(patient) == [
        "Ann"
    ]
    assert compile_expression("Patient.name.given.last()", "Patient")(patient) == ["Nan"]
    assert compile_expression("Patient.name.given.count()", "Patient")(patient) == [3]
    assert compile_expression("Patient.name[1].given", "Patient")(patient) == ["Nan"]
    assert compile_expression("Patient.extension('http://x/race').value", "Patient")(patient) == ["r"]
    assert compile_expression(
        "Patient.extension.where(url = 'http://x/other').value.ofType(code)", "Patient"
    )(patient) == ["o"]
    assert compile_expression("Patient.gender.empty()", "Patient")(patient) == [True]
    assert compile_expression("Patient.gender.exists().not()", "Patient")(patient) == [True]
    assert compile_expression("Patient.name.where(given = 'Nan').exists()", "Patient")(patient) == [True]


def test_environment_variables_indexers_and_keyword_members() -> None:
    sequence = {
        "resourceType": "MolecularSequence",
        "referenceSeq": {"chromosome": {"text": "1"}},
        "variant": [{}],
    }
    for context in compile_typed("MolecularSequence.variant", "MolecularSequence"):
        for node in context.evaluate([sequence], sequence):
            branches = compile_typed("%resource.referenceSeq.chromosome", "MolecularSequence", context.type)
            assert evaluate_typed(branches, node, sequence) == [({"text": "1"}, "CodeableConcept")]
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}, {}],
    }
    assert compile_expression("Bundle.entry[0].resource", "Bundle")(bundle) == [
        {"resourceType": "Composition", "id": "c"}
    ]
    value_set = {"resourceType": "ValueSet", "expansion": {"contains": [{"code": "a"}, {"code": "b"}]}}
    assert compile_expression("ValueSet.expansion.contains.code", "ValueSet")(value_set) == ["a", "b"]


def test_branches_declare_the_key_they_require() -> None:
    (quantity,) = compile_typed("Observation.value.ofType(Quantity).value", "Observation")
    assert quantity.requires == "valueQuantity"
    (patient,) = compile_typed("Observation.subject.where(resolve() is Patient)", "Observation")
    assert patient.requires == "subject"
    (bundle,) = compile_typed("Bundle.entry[0].resource", "Bundle")
    assert bundle.requires == "entry"
    (deceased,) = compile_typed("Patient.deceased.exists() and Patient.deceased != false", "Patient")
    assert deceased.requires is None  # gives [False] on a resource without the element
    (sequence,) = compile_typed(
        "%resource.referenceSeq.chromosome", "MolecularSequence", "MolecularSequence.variant"
    )
    assert sequence.requires is None


def test_element_types_come_from_the_definitions() -> None:
    assert ("valueQuantity", "Quantity") in element_types("Observation", "value")
    assert element_types("Observation", "component") == (("component", "Observation.component"),)
    assert element_types("Questionnaire.item", "item") == (("item", "Questionnaire.item"),)
    assert element_types("Patient", "nothing") == ()


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.",
        "Patient.name.where(",
        "Patient.name.frobnicate()",
        "Patient..name",
        "'unterminated",
        "§",
    ],
)
def test_invalid_or_unsupported_expressions_raise(expression: str) -> None:
    with pytest.raises(FHIRPathError):
        compile_typed(expression, "Patient")


def _oracle_normal(values: list[Any]) -> set[bytes]:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(type(value))

    return {orjson.dumps(v, option=orjson.OPT_SORT_KEYS, default=default) for v in values}


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="HL7 examples not available")
def test_matches_fhirpathpy_on_hl7_examples() -> None:
    """fhirpathpy (test-only oracle) selects the same nodes, up to union deduplication."""
    fhirpathpy = pytest.importorskip("fhirpathpy")
    from fhirpathpy.models import models

    by_base: dict[str, list[dict[str, Any]]] = {}
    for param in definitions.load_bundle_resources("search-parameters.json"):
        expression = param.get("expression")
        if expression and "resolve()" not in expression:  # fhirpathpy cannot resolve references
            for base in param["base"]:
                by_base.setdefault(base, []).append(param)
    checked = 0
    for folder in ("Observation", "Patient", "Condition", "MedicationRequest", "Encounter", "Questionnaire"):
        for path in sorted((EXAMPLES / folder).glob("*.json"))[:8]:
            resource = orjson.loads(path.read_bytes())
            resource_type = resource["resourceType"]
            for param in by_base.get(resource_type, []):
                mine = compile_expression(param["expression"], resource_type)(resource)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    theirs = fhirpathpy.evaluate(resource, param["expression"], {}, model=models["r4"])
                assert _oracle_normal(mine) == _oracle_normal(theirs), (path.name, param["code"])
                checked += 1
    assert checked > 200
