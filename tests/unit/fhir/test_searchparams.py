"""The search-parameter registry built from the R4 SearchParameter definitions."""

from __future__ import annotations

import dataclasses

import pytest

from hygie.fhir import definitions
from hygie.fhir.searchparams import (
    HYGIE_SEARCH_PARAMETERS,
    SearchParam,
    all_search_params,
    search_param,
    search_param_by_url,
    search_params,
)

RESOURCE_LEVEL = {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"}


def test_resource_level_parameters_are_inherited() -> None:
    for resource_type in ("Patient", "Observation", "Binary", "Bundle"):
        codes = set(search_params(resource_type))
        assert codes >= RESOURCE_LEVEL, resource_type
    assert "_text" in search_params("Patient")  # DomainResource
    assert search_param("Patient", "_id") is not None
    assert search_param("Patient", "_id").type == "token"  # type: ignore[union-attr]
    assert search_param("Patient", "_lastUpdated").type == "date"  # type: ignore[union-attr]
    assert search_param("Patient", "_profile").type == "uri"  # type: ignore[union-attr]
    assert set(search_params("NotAType")) >= RESOURCE_LEVEL


def test_observation_parameters() -> None:
    params = search_params("Observation")
    expected = {
        "code": "token",
        "patient": "reference",
        "subject": "reference",
        "date": "date",
        "value-quantity": "quantity",
        "value-string": "string",
        "code-value-quantity": "composite",
        "component-code-value-quantity": "composite",
        "combo-code-value-concept": "composite",
    }
    for code, param_type in expected.items():
        assert params[code].type == param_type, code
    patient = params["patient"]
    assert patient.target == ("Patient",)
    assert "Observation" in patient.base and "AllergyIntolerance" in patient.base
    assert "identifier" in patient.modifiers and "Patient" in patient.modifiers
    assert set(params["date"].comparators) == {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
    assert params["code"].comparators == ()
    assert "text" in params["code"].modifiers and "of-type" in params["code"].modifiers
    assert params["value-string"].modifiers == ("missing", "exact", "contains")
    assert params["code"].multiple_or is True


def test_composite_components_resolve() -> None:
    composite = search_param("Observation", "component-code-value-quantity")
    assert composite is not None
    first, second = composite.components
    assert first.param is not None and first.param.type == "token"
    assert second.param is not None and second.param.type == "quantity"
    assert first.expression == "code"
    assert [b.type for b in second.compiled("Observation", "Observation.component")] == ["Quantity"]


def test_extractor_is_specialised_per_resource_type() -> None:
    patient = search_param("Observation", "patient")
    assert patient is not None
    assert len(patient.extractor("Observation")) == 1
    assert len(patient.extractor("AllergyIntolerance")) == 1
    assert patient.extractor("Observation") is patient.extractor("Observation")  # cached
    resource = {"resourceType": "Observation", "subject": {"reference": "Patient/1"}}
    (branch,) = patient.extractor("Observation")
    assert branch.evaluate([resource], resource) == [{"reference": "Patient/1"}]
    text = search_param("Patient", "_text")
    assert text is not None and text.expression is None and text.extractor("Patient") == ()


def test_registry_covers_every_definition() -> None:
    """Every official SearchParameter, and Hygie's own after them (no more, no fewer)."""
    official = [r for r in definitions.load_bundle_resources("search-parameters.json") if "code" in r]
    defined = [*official, *HYGIE_SEARCH_PARAMETERS]
    assert len(all_search_params()) == len({r["url"] for r in defined})
    for resource in defined:
        param = search_param_by_url(resource["url"])
        assert param is not None
        for base in resource["base"]:
            assert search_param(base, resource["code"]) is not None


def test_search_param_is_frozen() -> None:
    param = search_param("Patient", "name")
    assert isinstance(param, SearchParam)
    with pytest.raises(dataclasses.FrozenInstanceError):
        param.code = "other"  # type: ignore[misc]


def test_phonetic_and_special_usage() -> None:
    phonetic = search_param("Patient", "phonetic")
    assert phonetic is not None and phonetic.xpath_usage == "phonetic" and phonetic.type == "string"
    near = search_param("Location", "near")
    assert near is not None and near.type == "special"
