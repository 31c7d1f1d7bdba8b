"""Fuzz target: ``hygie.fhir.resources.parse_json``, the reader of every request body.

Run it (atheris needed)::

    .venv/bin/python tests/fuzz/fuzz_json_reader.py -atheris_runs=100000

Contract under test: on any bytes the reader returns a dict whose ``resourceType`` is a string,
or raises a :class:`FhirError` subclass, never anything else; what it returns serialises back
to JSON that reads the same.

Without atheris the module still imports, so ``tests/unit/test_fuzz_targets.py`` can feed
``TestOneInput`` a corpus from hypothesis.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import orjson

from hygie.fhir.outcome import FhirError
from hygie.fhir.resources import parse_json

try:  # optional: only the command-line fuzzer needs it (and it ships no type hints)
    atheris: Any = importlib.import_module("atheris")
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None


def check(data: bytes) -> dict[str, Any] | None:
    """Read ``data``; None when the reader refused it with a FhirError (the allowed failure)."""
    try:
        resource = parse_json(data)
    except FhirError:
        return None
    assert isinstance(resource, dict)
    assert isinstance(resource.get("resourceType"), str)
    # what was read can be written back: dumps never fails on it (no NaN, no huge ints), and the
    # result reads the same
    again = parse_json(orjson.dumps(resource))
    assert again == resource
    return resource


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    check(data)


def main(argv: list[str] | None = None) -> None:
    if atheris is None:
        sys.exit("atheris is not installed: .venv/bin/pip install atheris")
    atheris.instrument_all()
    atheris.Setup(argv or sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
