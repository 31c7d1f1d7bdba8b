"""The validation walk: one recursive pass over the resource's JSON, driven by compiled tables.

For each JSON object the walk looks every key up in the :class:`~.compiler.Table` of its type and
checks, in one pass: the key is defined (``_name`` siblings only for primitives), array-ness and
``max``, the JSON type and format of primitive values, the ``required`` binding codes, at most one
variant per choice group; then the ``min >= 1`` elements that are missing. Complex values recurse
into their table; resources (``contained``, ``Bundle.entry.resource``, ``Parameters...resource``)
recurse into the table of their own ``resourceType``. A few rules the cardinalities cannot express
are checked by type: ``Reference.reference`` syntax, ``Extension`` (value[x] xor nested extensions),
``Coding``/``CodeableConcept`` codes of a required-bound value set, no ``contained`` inside a
contained resource, no JSON ``null``, empty object or empty array.

FHIRPath invariants (``constraint`` in the StructureDefinitions: ``ele-1``, ``dom-3``, ``obs-6``...)
are NOT evaluated, apart from the few structural ones named above.

``fhir_comments`` (a JSON comment property of DSTU2/STU3, still emitted by some converters) is
tolerated at any level when it is a string or an array of strings, and otherwise ignored; R4 dropped
it from the JSON format but it carries no data, so refusing it would only break old clients.
"""

from __future__ import annotations

import re
from typing import Any

from hygie.fhir.outcome import Issue
from hygie.fhir.validation.compiler import (
    COMPLEX,
    PRIMITIVE,
    SPECIAL_EXTENSION,
    SPECIAL_REFERENCE,
    Elem,
    Table,
    datatype_table,
    known_resource_types,
    resource_table,
)

__all__ = ["validate_resource"]

_RELATIVE_REFERENCE = re.compile(
    r"(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?"
)
_CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?\S*")
_ABSOLUTE_REFERENCE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_LOCAL_REFERENCE = re.compile(r"#[A-Za-z0-9\-.]{0,64}")
_UUID_REFERENCE = re.compile(
    r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_OID_REFERENCE = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")


def validate_resource(resource: dict[str, Any]) -> list[Issue]:
    """Every structural error of one resource (empty when valid); paths start at its type."""
    issues: list[Issue] = []
    document: object = resource
    if type(document) is not dict:
        issues.append(Issue("structure", "A resource must be a JSON object"))
        return issues
    type_name = resource.get("resourceType")
    if type(type_name) is not str:
        issues.append(Issue("required", "resourceType is missing or not a string", "resourceType"))
        return issues
    table = resource_table(type_name)
    if table is None:
        issues.append(Issue("not-supported", f"Unknown R4 resource type {type_name!r}", "resourceType"))
        return issues
    _walk(resource, table, type_name, issues, False)
    return issues


def _resource(value: Any, path: str, issues: list[Issue], contained: bool, expected: str) -> None:
    """A nested resource (``contained``, ``Bundle.entry.resource``...), typed by its resourceType."""
    if type(value) is not dict:
        issues.append(Issue("structure", "A resource must be a JSON object", path))
        return
    type_name = value.get("resourceType")
    if type(type_name) is not str:
        issues.append(Issue("required", "resourceType is missing or not a string", path))
        return
    table = resource_table(type_name)
    if table is None:
        issues.append(Issue("not-supported", f"Unknown R4 resource type {type_name!r}", path))
        return
    if expected not in ("Resource", type_name):
        issues.append(Issue("structure", f"Expected a {expected} resource, found {type_name}", path))
        return
    if contained and "contained" in value:
        issues.append(
            Issue("structure", "A contained resource must not contain resources", f"{path}.contained")
        )
    _walk(value, table, path, issues, contained)


def _walk(obj: dict[str, Any], table: Table, path: str, issues: list[Issue], in_contained: bool) -> None:
    """Validate the JSON object ``obj`` against ``table``; ``path`` is its FHIRPath.

    The hot loop: one dict lookup per key, primitives checked inline, recursion for objects.
    """
    if not obj:
        issues.append(Issue("structure", "Empty objects are not allowed", path))
        return
    elements = table.elements
    seen_choices: set[str] | None = None
    for key, value in obj.items():
        elem = elements.get(key)
        if elem is None:
            _other_key(obj, key, table, path, issues)
            continue
        choice = elem.choice
        if choice is not None:
            if seen_choices is None:
                seen_choices = {choice}
            elif choice in seen_choices:
                issues.append(Issue("structure", f"Only one {choice}[x] variant is allowed", f"{path}.{key}"))
            else:
                seen_choices.add(choice)
        kind = elem.kind
        if elem.many:
            if type(value) is not list:
                issues.append(Issue("structure", f"{key} must be a JSON array", f"{path}.{key}"))
                continue
            if not value:
                issues.append(Issue("structure", "Empty arrays are not allowed", f"{path}.{key}"))
                continue
            if elem.max_n is not None and len(value) > elem.max_n:
                message = f"At most {elem.max_n} {key} allowed, got {len(value)}"
                issues.append(Issue("structure", message, f"{path}.{key}"))
            if kind == PRIMITIVE:
                check = elem.check
                codes = elem.codes
                for index, item in enumerate(value):
                    if item is None:
                        if not _has_extension(obj.get("_" + key), index):
                            issues.append(Issue("structure", "null is not allowed", f"{path}.{key}[{index}]"))
                        continue
                    error = check(item)  # type: ignore[misc]
                    if error is not None:
                        issues.append(Issue(error[0], error[1], f"{path}.{key}[{index}]"))
                    elif codes is not None and item not in codes:
                        issues.append(_bad_code(elem, item, f"{path}.{key}[{index}]"))
            elif kind == COMPLEX:
                for index, item in enumerate(value):
                    _complex(elem, item, f"{path}.{key}[{index}]", issues, in_contained)
            else:
                contained = in_contained or key == "contained"
                for index, item in enumerate(value):
                    _resource(item, f"{path}.{key}[{index}]", issues, contained, elem.type_name)
        elif type(value) is list:
            issues.append(
                Issue("structure", f"{key} has max 1: a single value, not an array", f"{path}.{key}")
            )
        elif kind == PRIMITIVE:
            error = elem.check(value)  # type: ignore[misc]
            if error is not None:
                issues.append(Issue(error[0], error[1], f"{path}.{key}"))
            elif elem.codes is not None and value not in elem.codes:
                issues.append(_bad_code(elem, value, f"{path}.{key}"))
        elif kind == COMPLEX:
            _complex(elem, value, f"{path}.{key}", issues, in_contained)
        else:
            _resource(value, f"{path}.{key}", issues, in_contained, elem.type_name)
    for keys, name in table.required:
        for key in keys:
            if key in obj:
                break
        else:
            issues.append(Issue("required", f"Missing required element {name}", f"{path}.{name}"))
    special = table.special
    if special == SPECIAL_REFERENCE:
        _reference(obj, path, issues)
    elif special == SPECIAL_EXTENSION:
        _extension(obj, path, issues)


def _has_extension(extensions: Any, index: int) -> bool:
    """Whether item ``index`` of a primitive array's ``_name`` sibling holds an Element."""
    return type(extensions) is list and index < len(extensions) and extensions[index] is not None


def _bad_code(elem: Elem, value: Any, path: str) -> Issue:
    return Issue("code-invalid", f"{value!r} is not in the required value set {elem.value_set}", path)


def _other_key(obj: dict[str, Any], key: str, table: Table, path: str, issues: list[Issue]) -> None:
    """Keys that are not elements: ``resourceType``, ``_primitive`` siblings, ``fhir_comments``."""
    if key == "resourceType" and table.is_resource:
        return
    value = obj[key]
    if key == "fhir_comments":
        if not (type(value) is str or (type(value) is list and all(type(v) is str for v in value))):
            issues.append(Issue("structure", "fhir_comments must be a string or strings", f"{path}.{key}"))
        return
    if key.startswith("_"):
        base = table.elements.get(key[1:])
        if base is not None and base.kind == PRIMITIVE:
            _primitive_element(base, obj.get(key[1:]), value, f"{path}.{key[1:]}", issues)
            return
    issues.append(Issue("structure", f"Unknown element {key!r} in {table.name}", f"{path}.{key}"))


def _primitive_element(elem: Elem, values: Any, value: Any, path: str, issues: list[Issue]) -> None:
    """The ``_name`` sibling of a primitive: an Element (id, extension), or an array of them.

    ``path`` is the primitive's own path: in FHIRPath its extensions are ``name.extension``.
    """
    if elem.many:
        if type(value) is not list:
            issues.append(Issue("structure", f"_{elem.name} must be an array", path))
            return
        if type(values) is list and len(values) != len(value):
            issues.append(Issue("structure", f"_{elem.name} and {elem.name} differ in length", path))
        for index, item in enumerate(value):
            if item is not None:
                _element_ext(item, f"{path}[{index}]", issues)
    elif type(value) is list:
        issues.append(Issue("structure", f"_{elem.name} has max 1: not an array", path))
    else:
        _element_ext(value, path, issues)


def _element_ext(value: Any, path: str, issues: list[Issue]) -> None:
    """The Element (``id``, ``extension``) carried by a ``_name`` primitive sibling."""
    if type(value) is not dict:
        issues.append(Issue("structure", "A primitive's extension element must be a JSON object", path))
        return
    _walk(value, datatype_table("Element"), path, issues, False)


def _complex(elem: Elem, value: Any, path: str, issues: list[Issue], in_contained: bool) -> None:
    if type(value) is not dict:
        issues.append(Issue("structure", f"{elem.type_name} must be a JSON object", path))
        return
    _walk(value, elem.table, path, issues, in_contained)  # type: ignore[arg-type]
    if elem.coding_codes is not None:
        _coding_binding(elem, value, path, issues)


def _coding_binding(elem: Elem, value: dict[str, Any], path: str, issues: list[Issue]) -> None:
    """Required binding on Coding / CodeableConcept: codings of the bound systems must be in it.

    A coding from another system is left alone (a CodeableConcept may carry translations).
    """
    by_system = elem.coding_codes or {}
    if elem.type_name == "Coding":
        codings: list[tuple[Any, str]] = [(value, path)]
    else:
        raw = value.get("coding")
        if type(raw) is not list:
            return
        codings = [(c, f"{path}.coding[{i}]") for i, c in enumerate(raw)]
    for coding, coding_path in codings:
        if type(coding) is not dict:
            continue
        system = coding.get("system")
        code = coding.get("code")
        if type(system) is not str or type(code) is not str:
            continue  # a wrong JSON type was already reported by the walk
        allowed = by_system.get(system)
        if allowed is not None and code not in allowed:
            issues.append(_bad_code(elem, code, f"{coding_path}.code"))


def _reference(obj: dict[str, Any], path: str, issues: list[Issue]) -> None:
    reference = obj.get("reference")
    if type(reference) is str and reference:
        error = _reference_error(reference)
        if error is not None:
            issues.append(Issue("value", error, f"{path}.reference"))


def _extension(obj: dict[str, Any], path: str, issues: list[Issue]) -> None:
    """ext-1, checked because it is structural: an extension has value[x] xor nested extensions."""
    has_value = any(key.startswith(("value", "_value")) for key in obj)
    has_extension = "extension" in obj
    if has_value and has_extension:
        issues.append(Issue("structure", "An extension has either value[x] or extensions, not both", path))
    elif not has_value and not has_extension:
        issues.append(Issue("required", "An extension needs a value[x] or nested extensions", path))


def _reference_error(reference: str) -> str | None:
    """Why ``Reference.reference`` is not a literal reference FHIR allows, or ``None``.

    Allowed: ``Type/id``, ``Type/id/_history/vid`` and, for transactions, ``Type?query`` (``Type`` a
    concrete R4 resource type); an absolute URL (any scheme://, its type not checked: it may point
    outside FHIR); ``#id`` (``#`` alone is the container); ``urn:uuid:`` and ``urn:oid:``.
    """
    if reference[0] == "#":
        return None if _LOCAL_REFERENCE.fullmatch(reference) else f"Bad local reference {reference!r}"
    if reference.startswith("urn:"):
        if _UUID_REFERENCE.fullmatch(reference) or _OID_REFERENCE.fullmatch(reference):
            return None
        return f"Bad urn reference {reference!r} (urn:uuid: or urn:oid: expected)"
    match = _RELATIVE_REFERENCE.fullmatch(reference) or _CONDITIONAL_REFERENCE.fullmatch(reference)
    if match is not None:
        if match.group("type") in known_resource_types():
            return None
        return f"Unknown resource type {match.group('type')!r} in reference {reference!r}"
    if _ABSOLUTE_REFERENCE.fullmatch(reference):
        return None
    return f"Bad reference {reference!r} (Type/id, absolute URL, #id, urn:uuid: or urn:oid: expected)"
