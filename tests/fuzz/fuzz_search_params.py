"""Fuzz target: ``hygie.fhir.search.parse_search`` on arbitrary query parameters.

Run it (atheris needed)::

    .venv/bin/python tests/fuzz/fuzz_search_params.py -atheris_runs=100000

The input bytes are decoded into a resource type and a list of ``(name, value)`` pairs, partly
from a vocabulary of real parameter names, modifiers, prefixes and value fragments so that the
fuzzer reaches the typed parsers quickly, partly as raw text. Contract under test: the parser
returns a :class:`SearchQuery` or raises a :class:`FhirError` subclass, never anything else,
and what it returns respects ``_count``'s cap.

Without atheris the module still imports, so ``tests/unit/test_fuzz_targets.py`` can feed
``TestOneInput`` a corpus from hypothesis.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

from hygie.fhir.outcome import FhirError
from hygie.fhir.search import SearchQuery, parse_search
from hygie.fhir.searchparams import search_params

try:  # optional: only the command-line fuzzer needs it (and it ships no type hints)
    atheris: Any = importlib.import_module("atheris")
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

MAX_COUNT = 200

RESOURCE_TYPES: tuple[str | None, ...] = (
    None,
    "Patient",
    "Observation",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "DiagnosticReport",
    "Practitioner",
    "Organization",
    "Immunization",
)
CONTROL_NAMES = (
    "_count",
    "_sort",
    "_summary",
    "_elements",
    "_total",
    "_include",
    "_revinclude",
    "_include:iterate",
    "_revinclude:iterate",
    "_cursor",
    "_id",
    "_lastUpdated",
    "_tag",
    "_profile",
    "_security",
    "_source",
    "_has:Observation:patient:code",
    "_has:Observation:subject:date",
    "_has",
    "_format",
    "_contained",
)
MODIFIERS = (
    "",
    "",
    "",
    ":missing",
    ":not",
    ":text",
    ":of-type",
    ":exact",
    ":contains",
    ":identifier",
    ":below",
    ":above",
    ":in",
    ":Patient",
    ":Practitioner",
    ":",
    ".name",
    ".identifier",
    ":Patient.birthdate",
    ".subject.name",
)
FRAGMENTS = (
    "eq",
    "ne",
    "lt",
    "gt",
    "le",
    "ge",
    "sa",
    "eb",
    "ap",
    "|",
    ",",
    "$",
    "\\",
    "\\,",
    "\\|",
    "\\$",
    ":",
    "/",
    "-",
    ".",
    "+",
    "e",
    "0",
    "1",
    "9",
    "2020",
    "-02",
    "-29",
    "T10",
    ":30",
    ":59",
    ".123",
    "Z",
    "+01:00",
    "-14:00",
    "1e3",
    "1e308",
    "5.40",
    "mg",
    "kg",
    "[degF]",
    "mmol/L",
    "http://loinc.org",
    "http://unitsofmeasure.org",
    "urn:oid:1.2.250",
    "Patient/123",
    "Observation/a/_history/2",
    "http://example.org/fhir/Patient/p1",
    "8867-4",
    "true",
    "false",
    "Patient:general-practitioner",
    "Observation:subject:Patient",
    "*",
    "Élodie",
    " ",
    "%",
    "_",
)


@functools.cache
def _names(resource_type: str | None) -> tuple[str, ...]:
    codes = sorted(search_params(resource_type)) if resource_type else []
    return (*CONTROL_NAMES, *codes)


class _Bytes:
    """Reads an input one piece at a time; every read succeeds (zeros past the end)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def text(self, limit: int = 64) -> str:
        n = self.byte() % (limit + 1)
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", "replace")


def _name(src: _Bytes, resource_type: str | None) -> str:
    kind = src.byte()
    if kind < 32:
        return src.text()
    names = _names(resource_type)
    name = names[src.byte() % len(names)] if kind < 200 else names[(kind + src.byte()) % len(names)]
    return name + MODIFIERS[src.byte() % len(MODIFIERS)]


def _value(src: _Bytes) -> str:
    kind = src.byte()
    if kind < 48:
        return src.text()
    pieces = [FRAGMENTS[src.byte() % len(FRAGMENTS)] for _ in range(1 + kind % 8)]
    return "".join(pieces)


def decode(data: bytes) -> tuple[str | None, list[tuple[str, str]], bool]:
    """The resource type, query parameters and strictness an input stands for."""
    src = _Bytes(data)
    head = src.byte()
    resource_type = RESOURCE_TYPES[head % len(RESOURCE_TYPES)]
    strict = bool(head & 0x80)
    params: list[tuple[str, str]] = []
    while src.more() and len(params) < 16:
        params.append((_name(src, resource_type), _value(src)))
    return resource_type, params, strict


def check(resource_type: str | None, params: list[tuple[str, str]], strict: bool) -> SearchQuery | None:
    """Parse; None when the parser refused the input with a FhirError (the allowed failure)."""
    try:
        query = parse_search(resource_type, params, max_count=MAX_COUNT, strict=strict)
    except FhirError:
        return None
    assert isinstance(query, SearchQuery)
    assert 0 <= query.count <= MAX_COUNT, query.count
    assert query.resource_type == resource_type
    for crit in query.criteria:
        assert crit.kind in {
            "token",
            "string",
            "date",
            "reference",
            "quantity",
            "number",
            "uri",
            "composite",
            "id",
            "lastUpdated",
            "has",
        }, crit
    return query


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    check(*decode(data))


def main(argv: list[str] | None = None) -> None:
    if atheris is None:
        sys.exit("atheris is not installed: .venv/bin/pip install atheris")
    atheris.instrument_all()
    atheris.Setup(argv or sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
