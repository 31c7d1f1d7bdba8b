"""Proof that the fast validator rejects whatever the full pydantic models reject.

Reference: ``fhir.resources`` 8.x. It has no R4 (4.0.1) models: the top-level package is R5, and
``fhir.resources.R4B`` (4.3.0) is the closest. R4B kept R4's data types and most resources unchanged
but dropped some resources (MedicinalProduct*, SubstanceSpecification, EffectEvidenceSynthesis...) and
changed a few elements. So the comparison is restricted to what is identical in both:

* bases are the official R4 examples (and the entries of the example Bundles, and the resources of
  one Synthea bundle) of resource types that exist in R4B and that the R4B models accept unmodified;
* a mutant is only compared when the element it touches has the same definition in R4 and in the R4B
  model (same JSON name, list or single, required or optional), checked by :func:`_same_in_r4b`
  against our compiled R4 tables; mutants touching an element that differs are discarded.

Mutations (hypothesis picks the example, the place and the mutation): delete an element, replace a
primitive with a value of another JSON type, insert an unknown element, replace a string with a
malformed one (broken date, id, code, uri... or arbitrary text), duplicate a single-valued element as
an array, unwrap an array to its first item, replace a code with garbage.

Asserted: whenever the R4B model rejects a mutant, :func:`validate_resource` returns issues.

Mutants pydantic accepts but we reject (we are stricter, which is intended):

* codes outside a ``required`` value set (pydantic does not check bindings);
* whitespace-only strings, empty objects ``{}`` and empty arrays ``[]``;
* JSON strings where a boolean or number is expected (pydantic's lax mode coerces ``"true"``,
  ``"72"``) and integral floats where an integer is expected (``1.0``);
* bad ``Reference.reference`` syntax or unknown resource type in a relative reference;
* an extension with both ``value[x]`` and ``extension``, or with neither; a ``Narrative.div`` not
  starting with ``<div``; a contained resource holding ``contained`` resources;
* a misplaced ``resourceType`` key in a data type.
"""

from __future__ import annotations

import copy
import csv
import functools
import gzip
import typing
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygie.fhir.validation import validate_resource
from hygie.fhir.validation.compiler import COMPLEX, PRIMITIVE, RESOURCE, Table, resource_table

r4b = pytest.importorskip("fhir.resources.R4B")

EXAMPLES = Path("/work/shared/data/fhir-r4-examples")
SYNTHEA = Path("/work/shared/data/synthea-r4/bundles")
_MAX_BASE_BYTES = 12_000

pytestmark = pytest.mark.skipif(not (EXAMPLES / "index.csv").is_file(), reason="no HL7 examples")


def _r4b_model(type_name: str) -> Any:
    try:
        return r4b.get_fhir_model_class(type_name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def _pydantic_rejects(resource: dict[str, Any]) -> str | None:
    """The R4B model's error for this resource, ``None`` if it accepts it."""
    model = _r4b_model(resource.get("resourceType", ""))
    if model is None:
        return "no R4B model"
    try:
        model.model_validate(resource)
    # fhir_core crashes (AttributeError) on some wrong types, e.g. MessageHeader.source.endpoint = 1:
    # the model refuses the resource all the same
    except (pydantic.ValidationError, ValueError, TypeError, LookupError, AttributeError) as error:
        return str(error)
    return None


@functools.cache
def _bases() -> tuple[dict[str, Any], ...]:
    """Small official examples (plus the first Synthea bundle's resources, for Claim, EOB...) of types
    R4B knows, accepted as they are by both validators."""
    candidates: list[dict[str, Any]] = []
    synthea = sorted(SYNTHEA.glob("*.json.gz"))[:1] if SYNTHEA.is_dir() else []
    for path in synthea:
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        candidates.extend(e["resource"] for e in bundle["entry"])
    with (EXAMPLES / "index.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            raw = (EXAMPLES / row["file"]).read_bytes()
            resource = orjson.loads(raw)
            if resource["resourceType"] == "Bundle":
                candidates.extend(e["resource"] for e in resource.get("entry", []) if "resource" in e)
            elif len(raw) <= _MAX_BASE_BYTES:
                candidates.append(resource)
    bases = [
        r
        for r in candidates
        if len(orjson.dumps(r)) <= _MAX_BASE_BYTES
        and _r4b_model(r["resourceType"]) is not None
        and _pydantic_rejects(r) is None
        and not validate_resource(r)
    ]
    return tuple(bases)


Path_ = tuple[str | int, ...]


# --- R4 vs R4B element comparison ------------------------------------------------------------------


@functools.cache
def _model_fields(model: Any) -> dict[str, tuple[bool, bool, Any]]:
    """JSON name -> (is a list, is required, nested R4B model or None) for one R4B model.

    Complex fields are annotated with ``abc.<Name>Type`` placeholders whose model is ``<Name>``;
    ``ResourceType`` stands for any resource (nested model ``"Resource"``).
    """
    result: dict[str, tuple[bool, bool, Any]] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        many = False
        nested: Any = None
        for arg in _flatten(info.annotation):
            if typing.get_origin(arg) is list:
                many = True
            type_name = getattr(arg, "__name__", "")
            if type_name.endswith("Type") and getattr(arg, "__module__", "") == "abc":
                base = type_name[: -len("Type")]
                nested = "Resource" if base == "Resource" else _r4b_model(base)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        required = info.is_required() or bool(extra.get("element_required"))
        result[alias] = (many, required, nested)
    return result


def _flatten(annotation: Any) -> list[Any]:
    out = [annotation]
    for arg in typing.get_args(annotation):
        out.extend(_flatten(arg))
    return out


def _same_in_r4b(resource: dict[str, Any], path: Path_) -> bool:
    """Whether every element along ``path`` has the same shape in R4 (ours) and in R4B.

    Same shape: both define the JSON name, both as list or both single, both required or both
    optional, both complex or both primitive. Unknown in both (an inserted name) also counts as same.
    """
    table: Table | None = resource_table(resource["resourceType"])
    model: Any = _r4b_model(resource["resourceType"])
    node: Any = resource
    for step in path:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
            continue
        if step in {"resourceType", "fhir_comments"}:
            return True
        if table is None or model is None:
            return False
        key = step[1:] if step.startswith("_") else step
        elem = table.elements.get(key)
        field = _model_fields(model).get(key)
        if elem is None or field is None:
            return elem is None and field is None
        many, required, nested = field
        if many != elem.many or required != (elem.min >= 1) or (nested is None) != (elem.kind == PRIMITIVE):
            return False
        node = node.get(step) if isinstance(node, dict) else None
        if step.startswith("_"):
            return True
        if elem.kind == RESOURCE:
            item = node[0] if isinstance(node, list) and node else node
            type_name = str(item.get("resourceType", "")) if isinstance(item, dict) else ""
            table, model = resource_table(type_name), _r4b_model(type_name)
        elif elem.kind == COMPLEX:
            table, model = elem.table, nested
        else:
            table, model = None, None
    return True


# --- mutations -------------------------------------------------------------------------------------


def _slots(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every addressable position (dict key or list index) below ``node``."""
    found: list[Path_] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*path, key))
            found.extend(_slots(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((*path, index))
            found.extend(_slots(value, (*path, index)))
    return found


def _objects(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every JSON object below (and including) ``node``."""
    found: list[Path_] = [path] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_objects(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_objects(value, (*path, index)))
    return found


def _get(node: Any, path: Path_) -> Any:
    for step in path:
        node = node[step]
    return node


def _keyed(path: Path_) -> Path_:
    """``path`` up to its last dict key (a list index addresses an item of that element)."""
    end = len(path)
    while end and isinstance(path[end - 1], int):
        end -= 1
    return path[:end]


BAD_STRINGS = st.one_of(
    st.sampled_from(
        [
            "",
            "not a date",
            "2020-13-45",
            "1980-02-30",
            "2024-03-01T25:00:00Z",
            "2024-03-01T10:00",
            "a_b c",
            "x" * 70,
            "urn:uuid:1234",
            "urn:oid:abc",
            "http://exa mple.org",
            "final2",
            "homme",
            "@@@",
            "Foo/1",
            "<p>x</p>",
        ]
    ),
    st.text(max_size=12),
)
WRONG_TYPES = st.sampled_from([1, -1, 2.5, True, False, "1", "true", [], {}, {"x": 1}, ["a"]])
UNKNOWN_NAMES = st.one_of(
    st.sampled_from(["foo", "valueFoo", "_foo", "Value", "statusx", "extensions", "resourcetype"]),
    st.from_regex(r"[a-z][A-Za-z]{0,10}", fullmatch=True),
)
# Weighted by repetition: deletions rarely hit a required element, so they get more draws.
MUTATIONS = [
    *["delete"] * 4,
    *["wrong-type"] * 2,
    *["bad-string"] * 2,
    "insert-unknown",
    "to-array",
    "unwrap-array",
    "garbage-code",
]


@st.composite
def mutants(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A mutant of a valid example, and a description of the mutation."""
    base = draw(st.sampled_from(_bases()))
    resource = copy.deepcopy(base)
    kind = draw(st.sampled_from(MUTATIONS))
    slots = [p for p in _slots(resource) if p != ("resourceType",)]
    if kind == "insert-unknown":
        where = draw(st.sampled_from(_objects(resource)))
        name = draw(UNKNOWN_NAMES)
        value = draw(st.one_of(st.just("x"), WRONG_TYPES))
        target = _get(resource, where)
        touched: Path_ = (*where, name)
        target[name] = value
        return resource, f"{kind} {touched} = {value!r}"
    if kind in ("bad-string", "garbage-code"):
        strings = [p for p in slots if isinstance(_get(resource, p), str)]
        if kind == "garbage-code":
            strings = [
                p for p in strings if str(p[-1]) in {"status", "code", "gender", "use", "type", "intent"}
            ]
        if not strings:
            return resource, "none"
        where = draw(st.sampled_from(strings))
        value = (
            draw(BAD_STRINGS)
            if kind == "bad-string"
            else draw(st.from_regex(r"[a-z]{3,8}[0-9]", fullmatch=True))
        )
    elif kind == "wrong-type":
        leaves = [p for p in slots if isinstance(_get(resource, p), str | int | float | bool)]
        where = draw(st.sampled_from(leaves))
        value = draw(WRONG_TYPES)
    elif kind == "delete":
        where = draw(st.sampled_from([p for p in slots if isinstance(p[-1], str)]))
        if not _same_in_r4b(resource, _keyed(where)):
            return base, "none"
        del _get(resource, where[:-1])[where[-1]]
        return resource, f"{kind} {where}"
    elif kind == "to-array":
        singles = [p for p in slots if isinstance(p[-1], str) and not isinstance(_get(resource, p), list)]
        where = draw(st.sampled_from(singles))
        current = _get(resource, where)
        value = [current, copy.deepcopy(current)]
    else:
        arrays = [p for p in slots if isinstance(p[-1], str) and isinstance(_get(resource, p), list)]
        if not arrays:
            return resource, "none"
        where = draw(st.sampled_from(arrays))
        value = _get(resource, where)[0]
    if not _same_in_r4b(resource, _keyed(where)):
        return base, "none"
    _get(resource, where[:-1])[where[-1]] = value
    return resource, f"{kind} {where} = {value!r}"


@settings(
    max_examples=4000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutants())
def test_fast_validator_rejects_what_pydantic_rejects(mutant: tuple[dict[str, Any], str]) -> None:
    resource, description = mutant
    if description == "none":
        return
    rejected = _pydantic_rejects(resource)
    if rejected is None:
        return
    issues = validate_resource(resource)
    assert issues, (
        f"pydantic rejects {description} on {resource['resourceType']}/{resource.get('id')}: {rejected}"
    )


def test_bases_cover_many_types() -> None:
    """The comparison rests on enough examples, of enough types, for the mutants to mean something."""
    bases = _bases()
    assert len(bases) >= 400
    assert len({b["resourceType"] for b in bases}) >= 40


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Patient", "foo": 1},
        {"resourceType": "Patient", "birthDate": "1980-02-30"},
        {"resourceType": "Patient", "name": {"family": "Martin"}},
        {"resourceType": "Observation", "code": {"text": "x"}},
        {"resourceType": "Patient", "contained": [{"resourceType": "Nope"}]},
    ],
)
def test_harness_sees_pydantic_rejections(resource: dict[str, Any]) -> None:
    """The oracle really rejects some mutants (else the property test would prove nothing)."""
    assert _pydantic_rejects(resource) is not None
    assert validate_resource(resource)
