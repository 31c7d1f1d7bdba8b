"""Compile the FHIR R4 StructureDefinitions into compact tables for the fast validator.

What is compiled
----------------
Every StructureDefinition snapshot (``profiles-resources.json`` for resources,
``profiles-types.json`` for data types) becomes a :class:`Table`: a dict from JSON property name to
an :class:`Elem` holding everything the walk in :mod:`hygie.fhir.validation.validator` needs, already
resolved, so that validating is a dictionary lookup per JSON key:

* cardinality (``min``, ``many`` for arrays, ``max_n``);
* the kind of value (primitive, complex data type, backbone element, resource) and, for primitives,
  a checker function built from the spec regex found in ``profiles-types.json``;
* for a choice element ``value[x]`` one entry per allowed type (``valueQuantity``, ``valueString``...)
  sharing the same ``choice`` group, so a misspelt suffix is simply an unknown key;
* BackboneElements (and ``Element``-typed elements with children, e.g. ``Timing.repeat``) get their
  own nested table; a ``contentReference`` (``#Questionnaire.item``) points at the table of the
  referenced path, which makes the recursion free;
* codes bound with ``required`` strength to a value set that can be enumerated (see
  :class:`Terminology`) carry the set of allowed codes.

Tables are compiled once per process: all data types together on first use (they reference one
another and are few), resources lazily, one type at a time, the first time a resource of that type is
validated. Measured on the reference machine: the first resource costs ~0.3 s (parsing the 35 MB
``profiles-resources.json``, the data types and the value sets), each further type well under a
millisecond, all 147 resource types 0.4-0.6 s. So there is no on-disk cache: it would save a few
tenths of a second once per process, not worth a cache to invalidate.

Terminology
-----------
A required binding is enforced only when its value set can be enumerated from ``valuesets.json`` /
``v3-codesystems.json``: every ``compose.include`` must be either an explicit concept list, a whole
code system whose ``content`` is ``complete`` and that is present in those files, or an imported
value set that is itself enumerable. Value sets using ``filter`` or external terminologies (BCP-13
mime types, BCP-47 languages, ISO 4217 currencies, UCUM, SNOMED CT, LOINC...) are skipped: the code
is then only checked against the ``code`` syntax. :func:`skipped_value_sets` lists those met so far;
for R4 4.0.1 (227 value sets bound ``required``; 339 code elements and 10 Coding/CodeableConcept
elements enforced) the required-bound ones that are skipped are::

    http://hl7.org/fhir/ValueSet/currencies              ISO 4217, external code system
    http://hl7.org/fhir/ValueSet/mimetypes               BCP-13, external code system
    http://hl7.org/fhir/ValueSet/ucum-units              UCUM, external (CodeableConcept)
    http://hl7.org/fhir/ValueSet/characteristic-combination     not in valuesets.json
    http://hl7.org/fhir/ValueSet/subscription-notification-type not in valuesets.json
    http://loinc.org/vs/LL379-9                          LOINC answer list, not in valuesets.json

(:func:`compile_all` then :func:`skipped_value_sets` reproduces this list.) Every required binding of
R4 core is on a ``code``, ``Coding`` or ``CodeableConcept``. On a Coding or CodeableConcept only the
codings whose ``system`` belongs to the value set are checked (others may be translations).
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hygie.fhir.definitions import load_bundle_resources, resource_types

__all__ = [
    "COMPLEX",
    "PRIMITIVE",
    "RESOURCE",
    "SPECIAL_EXTENSION",
    "SPECIAL_NONE",
    "SPECIAL_REFERENCE",
    "Elem",
    "PrimitiveCheck",
    "Table",
    "Terminology",
    "compile_all",
    "datatype_table",
    "known_resource_types",
    "primitive_checks",
    "resource_table",
    "skipped_value_sets",
    "terminology",
]

PrimitiveCheck = Callable[[Any], "tuple[str, str] | None"]
"""Checks one JSON primitive value; returns ``(issue code, diagnostics)`` or ``None`` when valid.

The code is ``structure`` for a wrong JSON type, ``value`` for a bad format or range."""

# Elem.kind
PRIMITIVE = 0
COMPLEX = 1
RESOURCE = 2

# Table.special: checks the generic walk cannot express from cardinalities alone.
SPECIAL_NONE = 0
SPECIAL_REFERENCE = 1
SPECIAL_EXTENSION = 2

_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
_SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_STRING_MAX = 1024 * 1024
_VALID_CACHE_SIZE = 20_000
_VALID_CACHE_MAX_LENGTH = 200


@dataclass(slots=True, eq=False)
class Table:
    """The compiled definition of one complex type, resource, or backbone element.

    ``elements`` maps each allowed JSON key to its :class:`Elem`; ``required`` lists, for each
    element with ``min >= 1``, the keys that satisfy it (all choice variants, and the ``_name``
    sibling of a primitive, which may carry only extensions) and the name used in the issue.
    """

    name: str
    is_resource: bool = False
    special: int = SPECIAL_NONE
    elements: dict[str, Elem] = field(default_factory=dict)
    required: tuple[tuple[tuple[str, ...], str], ...] = ()


@dataclass(slots=True, eq=False)
class Elem:
    """One JSON property of a :class:`Table` (one variant of a choice element)."""

    name: str
    min: int
    many: bool
    max_n: int | None
    kind: int
    type_name: str
    check: PrimitiveCheck | None = None
    table: Table | None = None
    choice: str | None = None
    codes: frozenset[str] | None = None
    value_set: str | None = None
    coding_codes: dict[str, frozenset[str]] | None = None


# --- primitives ------------------------------------------------------------------------------------


def _spec_regexes() -> dict[str, str]:
    """Primitive type name -> the regex of its ``.value`` element in profiles-types.json."""
    result: dict[str, str] = {}
    for sd in load_bundle_resources("profiles-types.json"):
        if sd.get("kind") != "primitive-type":
            continue
        for element in sd["snapshot"]["element"]:
            if element["path"] != f"{sd['type']}.value":
                continue
            for type_ in element.get("type", []):
                for ext in type_.get("extension", []):
                    if ext["url"] == _REGEX_EXT:
                        result[sd["type"]] = ext["valueString"]
    return result


def _valid_calendar_date(value: str) -> bool:
    """The spec regexes accept 2023-02-31; "dates SHALL be valid dates"."""
    if len(value) < 10:
        return True
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    return day <= calendar.monthrange(year, month)[1]


def _string_check(
    type_name: str,
    pattern: str | None,
    *,
    dates: bool = False,
    ascii_space: bool = False,
    max_length: int | None = None,
) -> PrimitiveCheck:
    """A checker for a primitive carried as a JSON string, matching the whole value to ``pattern``.

    ``\\s`` is Unicode whitespace (a no-break space is not allowed in a code, id or uri) except with
    ``ascii_space``, used for ``string`` and ``markdown``, whose ``[ \\r\\n\\t\\S]+`` is meant as the
    Java/XML Schema reference reads it: any character but the ASCII control whitespace (so French
    text with no-break spaces is valid).

    Values found valid are remembered (up to ``_VALID_CACHE_SIZE`` per type, then forgotten at
    once): codes, systems, URLs and dates repeat a lot across resources, and a set lookup is several
    times cheaper than the regex.
    """
    flags = re.ASCII if ascii_space else 0
    matcher = re.compile(pattern, flags).fullmatch if pattern else None
    valid: set[str] = set()

    def check(value: Any) -> tuple[str, str] | None:
        if type(value) is not str:
            return ("structure", f"{type_name} value must be a JSON string, not {_json_type(value)}")
        if value in valid:
            return None
        if not value or value.isspace():
            return ("value", f"{type_name} value must not be empty or whitespace only")
        if matcher is not None and matcher(value) is None:
            return ("value", f"{value[:80]!r} is not a valid {type_name}")
        if dates and not _valid_calendar_date(value):
            return ("value", f"{value!r} is not a valid {type_name}: no such day")
        if max_length is not None and len(value) > max_length:
            return ("value", f"{type_name} value exceeds {max_length} characters")
        if len(value) <= _VALID_CACHE_MAX_LENGTH:
            if len(valid) >= _VALID_CACHE_SIZE:
                valid.clear()
            valid.add(value)
        return None

    return check


_BASE64_CHUNK = re.compile(r"[0-9a-zA-Z+/=]*").fullmatch
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _base64_check(value: Any) -> tuple[str, str] | None:
    """base64Binary, linear-time equivalent of the spec regex ``(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+``.

    The regex itself backtracks exponentially on a long, line-wrapped, invalid value (a denial of
    service on a 1 MB attachment). Equivalent reading: whitespace may only separate groups of four
    base64 characters, i.e. every whitespace-separated chunk is base64 characters, a multiple of 4.
    """
    if type(value) is not str:
        return ("structure", f"base64Binary value must be a JSON string, not {_json_type(value)}")
    chunks = _ASCII_SPACE.split(value.strip(" \t\n\r\f\v"))
    for chunk in chunks:
        if not chunk or len(chunk) % 4 or _BASE64_CHUNK(chunk) is None:
            return ("value", "Not a valid base64Binary (groups of 4 base64 characters expected)")
    return None


def _xhtml_check(value: Any) -> tuple[str, str] | None:
    if type(value) is not str:
        return ("structure", f"xhtml value must be a JSON string, not {_json_type(value)}")
    if not value.lstrip().startswith("<div"):
        return ("value", "Narrative div must be XHTML starting with <div")
    return None


def _boolean_check(value: Any) -> tuple[str, str] | None:
    if type(value) is not bool:
        return ("structure", f"boolean value must be JSON true or false, not {_json_type(value)}")
    return None


def _integer_check(type_name: str, lowest: int) -> PrimitiveCheck:
    def check(value: Any) -> tuple[str, str] | None:
        if type(value) is not int:
            return ("structure", f"{type_name} value must be a JSON integer, not {_json_type(value)}")
        if value < lowest or value > _INT32_MAX:
            return ("value", f"{value} is out of range for {type_name} ({lowest}..{_INT32_MAX})")
        return None

    return check


def _decimal_check(value: Any) -> tuple[str, str] | None:
    kind = type(value)
    if kind is int:
        return None
    if kind is not float:
        return ("structure", f"decimal value must be a JSON number, not {_json_type(value)}")
    if not math.isfinite(value):
        return ("value", "decimal value must be finite")
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@functools.cache
def primitive_checks() -> dict[str, PrimitiveCheck]:
    """One checker per R4 primitive type, built from the spec regexes (plus JSON typing rules)."""
    regexes = _spec_regexes()
    checks: dict[str, PrimitiveCheck] = {
        "boolean": _boolean_check,
        "integer": _integer_check("integer", _INT32_MIN),
        "positiveInt": _integer_check("positiveInt", 1),
        "unsignedInt": _integer_check("unsignedInt", 0),
        "decimal": _decimal_check,
        "xhtml": _xhtml_check,
        "base64Binary": _base64_check,
        "string": _string_check("string", regexes["string"], ascii_space=True, max_length=_STRING_MAX),
    }
    for name in ("date", "dateTime", "instant"):
        checks[name] = _string_check(name, regexes[name], dates=True)
    checks["markdown"] = _string_check("markdown", regexes["markdown"], ascii_space=True)
    for name, pattern in regexes.items():
        checks.setdefault(name, _string_check(name, pattern))
    return checks


# --- terminology -----------------------------------------------------------------------------------


class Terminology:
    """Enumerates value sets from the R4 definition bundles; ``None`` when it cannot."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.code_systems: dict[str, dict[str, Any]] = {}
        self.value_sets: dict[str, dict[str, Any]] = {}
        for resource in resources:
            if resource.get("resourceType") == "CodeSystem":
                self.code_systems.setdefault(resource["url"], resource)
            elif resource.get("resourceType") == "ValueSet":
                self.value_sets.setdefault(resource["url"], resource)
        self.skipped: set[str] = set()
        self._cache: dict[str, frozenset[tuple[str, str]] | None] = {}

    def expand(self, url: str) -> frozenset[tuple[str, str]] | None:
        """(system, code) pairs of a value set, or ``None`` if it is not enumerable here."""
        url = url.split("|", 1)[0]
        if url not in self._cache:
            self._cache[url] = None  # guards against import cycles
            result = self._expand(url)
            self._cache[url] = result
            if result is None:
                self.skipped.add(url)
        return self._cache[url]

    def _expand(self, url: str) -> frozenset[tuple[str, str]] | None:
        value_set = self.value_sets.get(url)
        if value_set is None:
            return None
        compose = value_set.get("compose")
        if compose is None:
            return None
        result: set[tuple[str, str]] = set()
        for include in compose.get("include", []):
            part = self._include(include)
            if part is None:
                return None
            result |= part
        for exclude in compose.get("exclude", []):
            part = self._include(exclude)
            if part is not None:
                result -= part
        return frozenset(result)

    def _include(self, include: dict[str, Any]) -> set[tuple[str, str]] | None:
        if include.get("filter"):
            return None
        system = include.get("system")
        part: set[tuple[str, str]] | None = None
        if system is not None:
            if "concept" in include:
                part = {(system, concept["code"]) for concept in include["concept"]}
            else:
                code_system = self.code_systems.get(system)
                if code_system is None or code_system.get("content") != "complete":
                    return None
                part = {(system, code) for code in _all_codes(code_system.get("concept", []))}
        for imported in include.get("valueSet", []):
            sub = self.expand(imported)
            if sub is None:
                return None
            part = set(sub) if part is None else part & sub
        return part


def _all_codes(concepts: list[dict[str, Any]]) -> Iterable[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _all_codes(concept.get("concept", []))


@functools.cache
def terminology() -> Terminology:
    """The process-wide :class:`Terminology` (loaded on first required binding)."""
    return Terminology(
        [*load_bundle_resources("valuesets.json"), *load_bundle_resources("v3-codesystems.json")]
    )


def skipped_value_sets() -> list[str]:
    """Value sets met in required bindings so far that could not be enumerated (so not enforced)."""
    return sorted(terminology().skipped)


# --- structure definitions -------------------------------------------------------------------------


class _Definition:
    """One StructureDefinition snapshot, indexed by parent path."""

    def __init__(self, sd: dict[str, Any]) -> None:
        self.type_name: str = sd["type"]
        self.children: dict[str, list[dict[str, Any]]] = {}
        for element in sd["snapshot"]["element"]:
            path: str = element["path"]
            if "." in path:
                parent = path.rsplit(".", 1)[0]
                self.children.setdefault(parent, []).append(element)
        self.tables: dict[str, Table] = {}


class _Compiler:
    """Builds :class:`Table` objects; data types eagerly, resources per type on demand."""

    def __init__(self) -> None:
        self.checks = primitive_checks()
        self.primitive_types = set(self.checks)
        self.resource_types = resource_types()
        self.datatypes: dict[str, Table] = {}
        self.resources: dict[str, Table] = {}
        self._resource_defs: dict[str, dict[str, Any]] | None = None
        type_defs = {
            sd["type"]: sd
            for sd in load_bundle_resources("profiles-types.json")
            if sd.get("kind") == "complex-type" and sd.get("derivation") != "constraint"
        }
        specials = {
            "Reference": SPECIAL_REFERENCE,
            "Extension": SPECIAL_EXTENSION,
        }
        definitions = {name: _Definition(sd) for name, sd in type_defs.items()}
        for name in definitions:
            self.datatypes[name] = Table(name=name, special=specials.get(name, SPECIAL_NONE))
        for name, definition in definitions.items():
            self._fill(definition, name, self.datatypes[name])

    def resource(self, type_name: str) -> Table | None:
        table = self.resources.get(type_name)
        if table is not None:
            return table
        if type_name not in self.resource_types:
            return None
        with _LOCK:  # a table is published only once complete: other threads never see a partial one
            table = self.resources.get(type_name)
            if table is not None:
                return table
            if self._resource_defs is None:
                self._resource_defs = {
                    sd["type"]: sd
                    for sd in load_bundle_resources("profiles-resources.json")
                    if sd.get("resourceType") == "StructureDefinition" and sd.get("kind") == "resource"
                }
            definition = _Definition(self._resource_defs[type_name])
            table = Table(name=type_name, is_resource=True)
            self._fill(definition, type_name, table)
            self.resources[type_name] = table
            return table

    def _fill(self, definition: _Definition, path: str, table: Table) -> None:
        definition.tables[path] = table
        required: list[tuple[tuple[str, ...], str]] = []
        for element in definition.children.get(path, []):
            max_ = element["max"]
            if max_ == "0":
                continue
            name: str = element["path"].rsplit(".", 1)[1]
            min_: int = element["min"]
            many = max_ != "1"
            max_n = None if max_ == "*" else int(max_)
            elems = self._variants(definition, element, name=name, min_=min_, many=many, max_n=max_n)
            for elem in elems:
                table.elements[elem.name] = elem
            if min_ >= 1:
                keys = [e.name for e in elems] + [f"_{e.name}" for e in elems if e.kind == PRIMITIVE]
                required.append((tuple(keys), name))
        table.required = tuple(required)

    def _variants(
        self,
        definition: _Definition,
        element: dict[str, Any],
        *,
        name: str,
        min_: int,
        many: bool,
        max_n: int | None,
    ) -> list[Elem]:
        element_path: str = element["path"]
        reference = element.get("contentReference")
        if reference is not None:
            target_path = reference.lstrip("#")
            target = definition.tables.get(target_path)
            if target is None:
                raise RuntimeError(f"contentReference {reference} of {element_path} not compiled yet")
            return [Elem(name, min_, many, max_n, COMPLEX, "BackboneElement", table=target)]
        codes = [self._type_code(t) for t in element.get("type", [])]
        if (
            element_path.count(".") == 1
            and name == "id"
            and definition.tables[definition.type_name].is_resource
        ):
            codes = ["id"]  # the snapshot says System.String, the spec says Resource.id is an id
        choice = name[:-3] if name.endswith("[x]") else None
        binding = element.get("binding")
        required_vs: str | None = None
        if binding and binding.get("strength") == "required" and binding.get("valueSet"):
            required_vs = binding["valueSet"].split("|", 1)[0]
        result: list[Elem] = []
        for code in codes:
            json_name = choice + code[0].upper() + code[1:] if choice is not None else name
            elem = Elem(json_name, min_, many, max_n, PRIMITIVE, code, choice=choice)
            if code in self.primitive_types:
                elem.check = self.checks[code]
            elif code in ("BackboneElement", "Element"):
                elem.kind = COMPLEX
                nested = Table(name=f"{element_path}")
                self._fill(definition, element_path, nested)
                elem.table = nested
            elif code == "Resource" or code in self.resource_types:
                elem.kind = RESOURCE
            elif code in self.datatypes:
                elem.kind = COMPLEX
                elem.table = self.datatypes[code]
            else:
                raise RuntimeError(f"{element_path}: unsupported type {code}")
            if required_vs is not None:
                self._bind(elem, required_vs)
            result.append(elem)
        return result

    @staticmethod
    def _type_code(type_: dict[str, Any]) -> str:
        code: str = type_["code"]
        for ext in type_.get("extension", []):
            if ext["url"] == _FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return _SYSTEM_TYPES.get(code, code)

    @staticmethod
    def _bind(elem: Elem, value_set: str) -> None:
        if elem.type_name not in ("code", "Coding", "CodeableConcept"):
            return
        expansion = terminology().expand(value_set)
        if expansion is None:
            return
        elem.value_set = value_set
        if elem.type_name == "code":
            elem.codes = frozenset(code for _, code in expansion)
        else:
            by_system: dict[str, set[str]] = {}
            for system, code in expansion:
                by_system.setdefault(system, set()).add(code)
            elem.coding_codes = {system: frozenset(codes) for system, codes in by_system.items()}


_LOCK = threading.RLock()
_COMPILER: list[_Compiler] = []


def _compiler() -> _Compiler:
    """The process-wide compiler, built (data types included) by the first caller, under a lock."""
    if not _COMPILER:
        with _LOCK:
            if not _COMPILER:
                _COMPILER.append(_Compiler())
    return _COMPILER[0]


def datatype_table(type_name: str) -> Table:
    """The compiled table of a complex data type (``HumanName``, ``Extension``...)."""
    return _compiler().datatypes[type_name]


def resource_table(type_name: str) -> Table | None:
    """The compiled table of a concrete R4 resource type, ``None`` for an unknown type."""
    return _compiler().resource(type_name)


def known_resource_types() -> frozenset[str]:
    """Concrete R4 resource types (what ``resourceType`` and relative references may name)."""
    return _compiler().resource_types


def compile_all() -> None:
    """Compile every resource type now (warm-up, timing, listing skipped value sets)."""
    compiler = _compiler()
    for type_name in sorted(compiler.resource_types):
        compiler.resource(type_name)
