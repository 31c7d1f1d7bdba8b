"""The atheris fuzz targets of ``tests/fuzz/``, run on a hypothesis corpus inside the suite.

The targets import without atheris; here each ``TestOneInput`` gets a few hundred generated
inputs (raw bytes, and bytes shaped to reach the parsers), plus the inputs the fuzzers found.
"""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hygie_fuzz_{name}", FUZZ / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


search_target = load("fuzz_search_params")
json_target = load("fuzz_json_reader")

CORPUS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- parse_search ------------------------------------------------------------------------------


@st.composite
def shaped_search_input(draw: st.DrawFn) -> bytes:
    """Bytes that the target decodes to vocabulary names, modifiers and value fragments."""
    out = bytearray([draw(st.integers(0, 255))])
    for _ in range(draw(st.integers(1, 6))):
        out += bytes([draw(st.integers(32, 199)), draw(st.integers(0, 255)), draw(st.integers(0, 255))])
        out.append(draw(st.integers(48, 255)))
        out += draw(st.binary(min_size=8, max_size=8))
    return bytes(out)


@CORPUS
@given(st.binary(max_size=256))
def test_search_target_survives_raw_bytes(data: bytes) -> None:
    search_target.TestOneInput(data)


@CORPUS
@given(shaped_search_input())
def test_search_target_survives_shaped_inputs(data: bytes) -> None:
    search_target.TestOneInput(data)


def test_search_target_decodes_to_parameters_the_parser_understands() -> None:
    # type 2 (Observation); name: vocabulary entry "code" with no modifier; value: fragments
    names = search_target._names("Observation")
    data = bytes([2, 100, names.index("code"), 0, 48 + 1, 42, 9])
    resource_type, params, strict = search_target.decode(data)
    assert (resource_type, params, strict) == ("Observation", [("code", "http://loinc.org|")], False)
    query = search_target.check(resource_type, params, strict)
    assert query is not None and query.criteria[0].param == "code"


def test_search_target_rejects_what_breaks_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("not a FhirError")

    monkeypatch.setattr(search_target, "parse_search", broken)
    with pytest.raises(KeyError):
        search_target.TestOneInput(b"\x02\x64\x00\x00\x31\x2a\x09")


# inputs the fuzzer reported (base64, as libFuzzer prints them)
FOUND_SEARCH = {
    # Observation?component-value-quantity=1e3082020: decimal.InvalidOperation in values.number_range
    "huge-exponent": "8kDdyZgZQDDdyZgZ",
}


@pytest.mark.parametrize("encoded", FOUND_SEARCH.values(), ids=FOUND_SEARCH.keys())
def test_search_target_regressions(encoded: str) -> None:
    # each input once crashed the parser; it must now be refused cleanly (FhirError) or parsed
    search_target.TestOneInput(base64.b64decode(encoded))


# -- parse_json --------------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text()
)
json_docs = st.recursive(
    json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4), max_leaves=20
)


@CORPUS
@given(st.binary(max_size=256))
def test_json_target_survives_raw_bytes(data: bytes) -> None:
    json_target.TestOneInput(data)


@CORPUS
@given(
    st.dictionaries(st.text(), json_docs, max_size=5).map(lambda d: {**d, "resourceType": "Patient"})
    | json_docs,
    st.integers(0, 10),
    st.binary(max_size=4),
)
def test_json_target_survives_mutated_documents(doc: Any, cut: int, junk: bytes) -> None:
    try:
        data = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):  # infinities and surrogates do not serialise
        return
    json_target.TestOneInput(data)
    json_target.TestOneInput(data[: len(data) - cut] + junk)


def test_json_target_checks_the_round_trip() -> None:
    assert json_target.check(b'{"resourceType": "Patient", "a": [1, 2.5, null, "\\u00e9"]}') == {
        "resourceType": "Patient",
        "a": [1, 2.5, None, "é"],
    }
    assert json_target.check(b"not json") is None
