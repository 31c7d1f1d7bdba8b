"""Properties of the request-body reader (``hygie.fhir.resources.parse_json``), with hypothesis.

* On any bytes, and on any JSON value, it returns a resource dict or raises a
  :class:`FhirError` subclass (a 400 OperationOutcome), never another exception.
* A JSON object with a string ``resourceType`` reads back equal to what was written, whatever
  else it holds (unicode, deep nesting, big integers, floats, odd keys).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hygie.fhir.outcome import FhirError, InvalidRequest
from hygie.fhir.resources import parse_json

# what orjson reads and writes without loss: 64-bit integers, finite floats, any unicode text
# except lone surrogates (not valid UTF-8)
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)
resource_types = st.sampled_from(["Patient", "Observation", "Bundle"]) | text


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = draw(st.dictionaries(text, json_values, max_size=8))
    body["resourceType"] = draw(resource_types)
    return body


def read(data: bytes) -> dict[str, Any] | None:
    """parse_json, with a FhirError (carrying its issues) turned into None."""
    try:
        resource = parse_json(data)
    except FhirError as exc:
        assert exc.status == 400
        assert exc.issues and exc.outcome()["resourceType"] == "OperationOutcome"
        return None
    assert isinstance(resource, dict)
    assert isinstance(resource["resourceType"], str)
    return resource


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xef\xbb\xbf{}")
@example(b'{"resourceType": "Patient"')
@example(b"[" * 5000)
@example(b'{"resourceType": 1e400}')
@example(b'{"resourceType": "Patient", "n": 18446744073709551616}')
@example(b'{"resourceType": "\\ud800"}')
@example(b'{"resourceType": "P\x00"}')
@example('{"resourceType": "Patient"}'.encode("utf-16"))
def test_any_bytes_give_a_resource_or_a_fhir_error(data: bytes) -> None:
    read(data)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_any_json_value_gives_a_resource_or_a_fhir_error(value: Any) -> None:
    resource = read(orjson.dumps(value))
    if resource is not None:
        assert resource == value
        assert isinstance(value, dict) and isinstance(value.get("resourceType"), str)
    else:
        assert not (isinstance(value, dict) and isinstance(value.get("resourceType"), str))


@settings(max_examples=500, deadline=None)
@given(resources(), st.sampled_from([0, orjson.OPT_INDENT_2, orjson.OPT_SORT_KEYS]))
def test_a_resource_round_trips(resource: dict[str, Any], option: int) -> None:
    assert parse_json(orjson.dumps(resource, option=option)) == resource


@settings(max_examples=200, deadline=None)
@given(resources(), st.integers(0, 200))
def test_a_truncated_resource_is_an_invalid_request(resource: dict[str, Any], cut: int) -> None:
    data = orjson.dumps(resource)
    cut = min(cut, len(data) - 1)
    with pytest.raises(InvalidRequest):
        parse_json(data[:cut])


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b"42", b'"Patient"', b"{}", b'{"resourceType": null}', b'{"resourceType": ["Patient"]}'],
)
def test_json_that_is_not_a_resource_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_json(body)
