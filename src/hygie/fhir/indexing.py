"""Search-index extraction: every index row of a resource, for every search parameter of its type.

``extract_index(resource)`` evaluates the compiled expression of each search parameter of the
resource's type (see :mod:`hygie.fhir.searchparams`) and turns the selected nodes into the typed
rows of :mod:`hygie.fhir.index_model`. It runs on every write, so all the work that does not
depend on the resource is done once per resource type: expressions are compiled to typed
closures, and the row builder for each (parameter type, FHIR type) is chosen at plan time; only
nodes whose type is not known statically are dispatched on their JSON shape.

String rows of the ``phonetic`` parameters hold, per name part, both its phonetic key
(:func:`hygie.fhir.values.phonetic`) and its plain normalised form.

``Location.near`` (the one ``special`` parameter of R4) is indexed as geographic rows: the
position's latitude and longitude and its point on the unit sphere (``index_model``).

Not indexed: ``_text`` / ``_content`` / ``_query`` (no expression), Range and SampledData values
of quantity parameters, and composites with more than two components or whose second component
is a reference (the row format has no place for them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hygie.domain.geo import unit_vector
from hygie.fhir import definitions
from hygie.fhir.fhirpath import Evaluator, TypedBranch
from hygie.fhir.index_model import DATE_MAX, DATE_MIN, CompositeRow, IndexEntries
from hygie.fhir.searchparams import SearchParam, search_params
from hygie.fhir.values import UCUM_SYSTEM, date_range, normalize_string, phonetic, ucum_canonical

__all__ = ["extract_index", "index_plan_size", "parse_reference"]

Handler = Callable[[str, Any, IndexEntries], None]
TokenValue = tuple[str | None, str | None, str | None]  # (system, code, text)

_QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}
)
_DATE_PRIMITIVES = frozenset({"date", "dateTime", "instant"})
_STRING_PRIMITIVES = frozenset(
    {"string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid", "base64Binary", "xhtml"}
)
_NUMBER_PRIMITIVES = frozenset({"decimal", "integer", "positiveInt", "unsignedInt"})
_ISO_4217 = "urn:iso:std:iso:4217"


# Displays, codes and dates repeat a lot across resources: memoise their normalisation.
_normalize = functools.lru_cache(maxsize=16384)(normalize_string)
_date_range = functools.lru_cache(maxsize=16384)(date_range)


def _norm(text: Any) -> str | None:
    """Normalised text of an optional display, ``None`` when absent or empty."""
    return _normalize(text) if type(text) is str and text else None


# --------------------------------------------------------------------------------------------
# Shape-based typing, for nodes the compiler could not type statically
# --------------------------------------------------------------------------------------------


def _guess_type(node: Any) -> str | None:
    """Best-effort FHIR type of a JSON node from its shape."""
    kind = type(node)
    if kind is str:
        return "string"
    if kind is bool:
        return "boolean"
    if kind is int or kind is float:
        return "decimal"
    if kind is not dict:
        return None
    if "resourceType" in node:
        return "Resource"
    if "coding" in node:
        return "CodeableConcept"
    if "reference" in node or ("identifier" in node and "value" not in node):
        return "Reference"
    if "family" in node or "given" in node:
        return "HumanName"
    if "line" in node or "city" in node or "postalCode" in node or "country" in node:
        return "Address"
    if "start" in node or "end" in node:
        return "Period"
    if "event" in node or "repeat" in node:
        return "Timing"
    if "value" in node and ("unit" in node or "comparator" in node or ("code" in node and "system" in node)):
        return "Quantity" if "currency" not in node else "Money"
    if "currency" in node:
        return "Money"
    if "code" in node:
        return "Coding"
    if "value" in node:
        return "Identifier"
    if "text" in node:
        return "CodeableConcept"
    return None


# --------------------------------------------------------------------------------------------
# Token values
# --------------------------------------------------------------------------------------------


def _tok_coding(node: Any) -> list[TokenValue]:
    """Coding -> (system, code, normalised display)."""
    if type(node) is not dict:
        return []
    system, code = node.get("system"), node.get("code")
    if system is None and code is None:
        return []
    return [(system, code, _norm(node.get("display")))]


def _tok_codeable(node: Any) -> list[TokenValue]:
    """CodeableConcept -> one value per coding (text: its display, else the concept's text).

    A text-only value is added when ``text`` is not one of the displays, for ``:text``.
    """
    if type(node) is not dict:
        return []
    text = _norm(node.get("text"))
    out: list[TokenValue] = []
    text_covered = text is None
    for coding in node.get("coding", ()):
        if type(coding) is not dict:
            continue
        system, code = coding.get("system"), coding.get("code")
        display = _norm(coding.get("display"))
        if display == text:
            text_covered = True
        if system is not None or code is not None:
            out.append((system, code, display or text))
    if not text_covered:
        out.append((None, None, text))
    return out


def _tok_identifier(node: Any) -> list[TokenValue]:
    """Identifier -> (system, value, normalised type.text)."""
    if type(node) is not dict:
        return []
    system, value = node.get("system"), node.get("value")
    if system is None and value is None:
        return []
    id_type = node.get("type")
    text = _norm(id_type.get("text")) if type(id_type) is dict else None
    return [(system, value, text)]


def _tok_contact_point(node: Any) -> list[TokenValue]:
    """ContactPoint -> (its system, e.g. ``phone``, value)."""
    if type(node) is not dict or type(node.get("value")) is not str:
        return []
    return [(node.get("system"), node["value"], None)]


def _tok_primitive(node: Any) -> list[TokenValue]:
    """code / string / uri / boolean / number primitives -> (None, value as text)."""
    if type(node) is str:
        return [(None, node, None)]
    if type(node) is bool:
        return [(None, "true" if node else "false", None)]
    if type(node) is int or type(node) is float:
        return [(None, str(node), None)]
    return []


def _tok_quantity(node: Any) -> list[TokenValue]:
    """A Quantity under a token parameter matches on its unit."""
    if type(node) is not dict or (node.get("system") is None and node.get("code") is None):
        return []
    return [(node.get("system"), node.get("code"), _norm(node.get("unit")))]


def _tok_reference(node: Any) -> list[TokenValue]:
    """A Reference under a token parameter matches on its identifier."""
    if type(node) is not dict:
        return []
    identifier = node.get("identifier")
    return _tok_identifier(identifier) if identifier is not None else []


_TOKEN_EXTRACTORS: dict[str, Callable[[Any], list[TokenValue]]] = {
    "Coding": _tok_coding,
    "CodeableConcept": _tok_codeable,
    "Identifier": _tok_identifier,
    "ContactPoint": _tok_contact_point,
    "Reference": _tok_reference,
    **dict.fromkeys(_QUANTITY_TYPES, _tok_quantity),
    **dict.fromkeys(_STRING_PRIMITIVES | _NUMBER_PRIMITIVES | {"boolean"}, _tok_primitive),
}


def _token_values(node: Any, fhir_type: str | None) -> list[TokenValue]:
    """Token values of a node, by static type or else by shape."""
    extractor = _TOKEN_EXTRACTORS.get(fhir_type or "") or _TOKEN_EXTRACTORS.get(_guess_type(node) or "")
    return extractor(node) if extractor is not None else []


def _token_handler(fhir_type: str | None) -> Handler | None:
    """The token row builder for a static node type (Identifier adds the ``:of-type`` rows)."""
    if fhir_type == "Identifier":

        def identifier(code: str, node: Any, out: IndexEntries) -> None:
            for system, value, text in _tok_identifier(node):
                out.tokens.append((code, system, value, text))
                id_type = node.get("type")
                if type(id_type) is dict and value is not None:
                    for coding in id_type.get("coding", ()):
                        if type(coding) is dict:
                            out.tokens.append(
                                (code + ":of-type", coding.get("system"), coding.get("code"), value)
                            )

        return identifier
    if fhir_type is None:

        def guessed(code: str, node: Any, out: IndexEntries) -> None:
            guess = _guess_type(node)
            handler = _token_handler(guess) if guess is not None and guess != "Reference" else None
            if handler is not None:
                handler(code, node, out)

        return guessed
    extractor = _TOKEN_EXTRACTORS.get(fhir_type)
    if extractor is None:
        return None
    fixed = extractor

    def token(code: str, node: Any, out: IndexEntries) -> None:
        for system, value, text in fixed(node):
            out.tokens.append((code, system, value, text))

    return token


# --------------------------------------------------------------------------------------------
# Strings
# --------------------------------------------------------------------------------------------

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _string_parts(node: Any, fhir_type: str | None) -> list[str]:
    """The strings a parameter matches in a node: itself, or the parts of a HumanName / Address."""
    if type(node) is str:
        return [node]
    if type(node) is not dict:
        return []
    kind = fhir_type if fhir_type in ("HumanName", "Address") else _guess_type(node)
    parts = _NAME_PARTS if kind == "HumanName" else _ADDRESS_PARTS if kind == "Address" else ()
    out: list[str] = []
    for part in parts:
        value = node.get(part)
        if type(value) is str:
            out.append(value)
        elif type(value) is list:
            out.extend(v for v in value if type(v) is str)
    return out


def _string_handler(fhir_type: str | None, phonetic_param: bool) -> Handler:
    """The string row builder for a static node type (phonetic parameters add phonetic keys)."""
    if phonetic_param:

        def phonetic_rows(code: str, node: Any, out: IndexEntries) -> None:
            # Each name part twice: its phonetic key (values.phonetic) for sound-alike matching,
            # and its plain normalised form so that a plain string match on the parameter works.
            parts = (
                [node.get("family"), *node.get("given", ())]
                if type(node) is dict and (fhir_type == "HumanName" or "family" in node or "given" in node)
                else _string_parts(node, fhir_type)
            )
            for part in parts:
                if type(part) is str and part:
                    key = phonetic(part)
                    if key:
                        out.strings.append((code, key, part))
                    out.strings.append((code, _normalize(part), part))

        return phonetic_rows
    if fhir_type in _STRING_PRIMITIVES:

        def primitive(code: str, node: Any, out: IndexEntries) -> None:
            if type(node) is str:
                out.strings.append((code, _normalize(node), node))

        return primitive

    def structured(code: str, node: Any, out: IndexEntries) -> None:
        for part in _string_parts(node, fhir_type):
            out.strings.append((code, _normalize(part), part))

    return structured


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------


def _safe_range(text: Any) -> tuple[int, int] | None:
    """``date_range`` of a value, ``None`` when it is not a valid date (never fails indexing)."""
    if type(text) is not str:
        return None
    try:
        return _date_range(text)
    except ValueError:
        return None


def _date_values(node: Any, fhir_type: str | None) -> list[tuple[int, int]]:
    """Ranges of a date primitive, Period (open ends at DATE_MIN / DATE_MAX) or Timing (events, bounds)."""
    if type(node) is str:
        found = _safe_range(node)
        return [found] if found is not None else []
    if type(node) is not dict:
        return []
    kind = fhir_type if fhir_type in ("Period", "Timing") else _guess_type(node)
    if kind == "Period":
        start = _safe_range(node.get("start"))
        end = _safe_range(node.get("end"))
        if start is None and end is None:
            return []
        return [(start[0] if start else DATE_MIN, end[1] if end else DATE_MAX)]
    if kind == "Timing":
        out: list[tuple[int, int]] = []
        for event in node.get("event", ()):
            found = _safe_range(event)
            if found is not None:
                out.append(found)
        repeat = node.get("repeat")
        if type(repeat) is dict and type(repeat.get("boundsPeriod")) is dict:
            out.extend(_date_values(repeat["boundsPeriod"], "Period"))
        return out
    return []


def _date_handler(fhir_type: str | None) -> Handler:
    """The date row builder for a static node type."""
    if fhir_type in _DATE_PRIMITIVES:

        def primitive(code: str, node: Any, out: IndexEntries) -> None:
            found = _safe_range(node)
            if found is not None:
                out.dates.append((code, found[0], found[1]))

        return primitive

    def structured(code: str, node: Any, out: IndexEntries) -> None:
        for low, high in _date_values(node, fhir_type):
            out.dates.append((code, low, high))

    return structured


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------


def parse_reference(reference: str) -> tuple[str | None, str | None, str | None]:
    """``(type, id, absolute url)`` of a literal reference; non-FHIR URLs fill only the url."""
    if reference.startswith("#"):
        return None, None, None
    path = reference.split("/_history/", 1)[0]
    parts = path.rsplit("/", 2)
    absolute = "://" in reference or reference.startswith("urn:")
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalnum() and parts[-1]:
        if absolute:
            return (parts[-2], parts[-1], reference) if "://" in reference else (None, None, reference)
        if len(parts) == 2 or not parts[0]:
            return parts[-2], parts[-1], None
    return None, None, reference


def _reference_handler(fhir_type: str | None) -> Handler:
    """Reference rows (literal, canonical or resource node) and ``<param>:identifier`` token rows."""

    def reference(code: str, node: Any, out: IndexEntries) -> None:
        if type(node) is str:
            out.references.append((code, None, None, node))
            return
        if type(node) is not dict:
            return
        if "resourceType" in node:
            if type(node.get("id")) is str:
                out.references.append((code, node["resourceType"], node["id"], None))
            return
        literal = node.get("reference")
        if type(literal) is str:
            target_type, target_id, url = parse_reference(literal)
            if target_type is not None or url is not None:
                out.references.append((code, target_type, target_id, url))
        identifier = node.get("identifier")
        if type(identifier) is dict:
            for system, value, text in _tok_identifier(identifier):
                out.tokens.append((code + ":identifier", system, value, text))

    return reference


# --------------------------------------------------------------------------------------------
# Quantities, numbers, uris
# --------------------------------------------------------------------------------------------


def _quantity_values(
    node: Any, fhir_type: str | None
) -> list[tuple[float, str | None, str | None, str | None]]:
    """``(value, system, code, unit)`` of a Quantity-like or Money node."""
    if type(node) is not dict:
        return []
    value = node.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return []
    kind = fhir_type if fhir_type is not None else _guess_type(node)
    if kind == "Money":
        return [(float(value), _ISO_4217, node.get("currency"), None)]
    if kind in _QUANTITY_TYPES or kind is None:
        return [(float(value), node.get("system"), node.get("code"), node.get("unit"))]
    return []


def _quantity_handler(fhir_type: str | None) -> Handler | None:
    """Quantity rows, with the UCUM canonical form when convertible.

    ``None`` (nothing indexed) for Range, SampledData and Ratio.
    """
    if fhir_type in ("Range", "SampledData", "Ratio"):
        return None

    def quantity(code: str, node: Any, out: IndexEntries) -> None:
        for value, system, unit_code, unit in _quantity_values(node, fhir_type):
            canonical = (
                ucum_canonical(value, unit_code) if system == UCUM_SYSTEM and type(unit_code) is str else None
            )
            out.quantities.append(
                (
                    code,
                    value,
                    system,
                    unit_code,
                    unit,
                    canonical[0] if canonical else None,
                    canonical[1] if canonical else None,
                )
            )

    return quantity


def _number_handler(fhir_type: str | None) -> Handler:
    """Number rows for decimal and integer primitives."""

    def number(code: str, node: Any, out: IndexEntries) -> None:
        if type(node) in (int, float):
            out.numbers.append((code, float(node)))

    return number


def _uri_handler(fhir_type: str | None) -> Handler:
    """Uri rows for uri / url / canonical primitives."""

    def uri(code: str, node: Any, out: IndexEntries) -> None:
        if type(node) is str:
            out.uris.append((code, node))

    return uri


def _coordinate(value: Any, limit: float) -> float | None:
    """A latitude or longitude in degrees, ``None`` when it is not a number within ``±limit``."""
    if type(value) not in (int, float) or not -limit <= value <= limit:
        return None
    return float(value)


def _geo_handler(fhir_type: str | None) -> Handler:
    """Geographic rows of a ``Location.position`` (a position out of range is not indexed)."""

    def position(code: str, node: Any, out: IndexEntries) -> None:
        if type(node) is not dict:
            return
        lat, lng = _coordinate(node.get("latitude"), 90.0), _coordinate(node.get("longitude"), 180.0)
        if lat is None or lng is None:
            return
        out.geo.append((code, lat, lng, *unit_vector(lat, lng)))

    return position


def _handler(param: SearchParam, fhir_type: str | None) -> Handler | None:
    """The row builder for one parameter and one static node type (``None``: nothing to index)."""
    kind = param.type
    if kind == "token":
        return _token_handler(fhir_type)
    if kind == "string":
        return _string_handler(fhir_type, param.xpath_usage == "phonetic")
    if kind == "date":
        return _date_handler(fhir_type)
    if kind == "reference":
        return _reference_handler(fhir_type)
    if kind == "quantity":
        return _quantity_handler(fhir_type)
    if kind == "number":
        return _number_handler(fhir_type)
    if kind == "uri":
        return _uri_handler(fhir_type)
    if kind == "special" and param.code == "near":
        return _geo_handler(fhir_type)
    return None


# --------------------------------------------------------------------------------------------
# Composites
# --------------------------------------------------------------------------------------------

# Second-component values in CompositeRow order: (system2, code2, number2, low2, high2, string2).
Second = tuple[str | None, str | None, float | None, int | None, int | None, str | None]


def _second_values(kind: str, node: Any, fhir_type: str | None) -> list[Second]:
    """Values of a composite's second component, in CompositeRow column order."""
    if kind == "token":
        return [(s, c, None, None, None, None) for s, c, _ in _token_values(node, fhir_type)]
    if kind == "quantity":
        if fhir_type in ("Range", "SampledData"):
            return []
        return [(s, c, v, None, None, None) for v, s, c, _ in _quantity_values(node, fhir_type)]
    if kind == "date":
        return [(None, None, None, low, high, None) for low, high in _date_values(node, fhir_type)]
    if kind == "string":
        return [(None, None, None, None, None, _normalize(p)) for p in _string_parts(node, fhir_type)]
    if kind == "number" and type(node) in (int, float):
        return [(None, None, float(node), None, None, None)]
    return []


@dataclass(frozen=True, slots=True)
class _CompositePlan:
    """A composite parameter compiled for one resource type and one context branch."""

    code: str
    context: Evaluator
    requires: str | None  # key the resource must hold for the context to select anything
    first: tuple[TypedBranch, ...]
    second: tuple[TypedBranch, ...]
    second_kind: str

    def run(self, resource: dict[str, Any], out: IndexEntries) -> None:
        """Add the composite rows: for each context node, every first x second value pair."""
        for focus in self.context([resource], resource):
            if type(focus) is not dict:
                continue
            seconds: list[Second] = []
            for branch in self.second:
                if branch.requires is None or branch.requires in focus:
                    for node in branch.evaluate([focus], resource):
                        seconds.extend(_second_values(self.second_kind, node, branch.type))
            if not seconds:
                continue
            firsts: list[tuple[str | None, str | None]] = []
            for branch in self.first:
                for node in branch.evaluate([focus], resource):
                    firsts.extend((s, c) for s, c, _ in _token_values(node, branch.type))
            for system1, code1 in firsts:
                for second in seconds:
                    row: CompositeRow = (self.code, system1, code1, *second)
                    out.composites.append(row)


def _composite_plans(resource_type: str, param: SearchParam) -> list[_CompositePlan]:
    """Plans for a composite parameter, or none when its shape does not fit CompositeRow."""
    if len(param.components) != 2:
        return []
    first_def, second_def = (c.param for c in param.components)
    if first_def is None or second_def is None or first_def.type != "token":
        return []
    if second_def.type not in ("token", "quantity", "date", "string", "number"):
        return []
    return [
        _CompositePlan(
            code=param.code,
            context=context.evaluate,
            requires=context.requires,
            first=param.components[0].compiled(resource_type, context.type),
            second=param.components[1].compiled(resource_type, context.type),
            second_kind=second_def.type,
        )
        for context in param.extractor(resource_type)
    ]


# --------------------------------------------------------------------------------------------
# Plans and extraction
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything needed to index one resource type, compiled once."""

    tasks: tuple[tuple[str, Evaluator, Handler, str | None], ...]  # (code, select, build, requires)
    composites: tuple[_CompositePlan, ...]
    compartment_params: tuple[str, ...]  # preferred first: subject, patient


_PREFERRED_COMPARTMENT_PARAMS = ("subject", "patient")


@functools.cache
def _plan(resource_type: str) -> _Plan:
    """Compile the extraction plan of a resource type (cached for the process)."""
    tasks: list[tuple[str, Evaluator, Handler, str | None]] = []
    composites: list[_CompositePlan] = []
    for code, param in search_params(resource_type).items():
        if param.expression is None:
            continue
        if param.type == "composite":
            composites.extend(_composite_plans(resource_type, param))
            continue
        for branch in param.extractor(resource_type):
            handler = _handler(param, branch.type)
            if handler is not None:
                tasks.append((code, branch.evaluate, handler, branch.requires))
    compartment = definitions.compartment_definition().get(resource_type, ())
    ordered = [p for p in _PREFERRED_COMPARTMENT_PARAMS if p in compartment]
    ordered += [p for p in compartment if p not in ordered]
    return _Plan(tuple(tasks), tuple(composites), tuple(ordered))


def index_plan_size(resource_type: str) -> int:
    """Number of compiled extraction tasks for a resource type (for diagnostics and tests)."""
    plan = _plan(resource_type)
    return len(plan.tasks) + len(plan.composites)


def _dedupe(rows: list[Any]) -> list[Any]:
    """Drop repeated rows, keeping the first occurrence order."""
    return list(dict.fromkeys(rows)) if len(rows) > 1 else rows


def extract_index(resource: dict[str, Any]) -> IndexEntries:
    """All search-index rows of one resource (deduplicated), plus its patient compartments.

    ``compartments`` lists the ids of the Patients the resource belongs to through the Patient
    CompartmentDefinition parameters of its type (relative references only), ``subject`` and
    ``patient`` first; a Patient is first in its own compartment.
    """
    resource_type = resource.get("resourceType")
    if type(resource_type) is not str:
        raise ValueError("a resource needs a resourceType")
    plan = _plan(resource_type)
    out = IndexEntries()
    root = [resource]
    for code, evaluate, handler, requires in plan.tasks:
        if requires is None or requires in resource:
            for node in evaluate(root, resource):
                handler(code, node, out)
    for composite in plan.composites:
        if composite.requires is None or composite.requires in resource:
            composite.run(resource, out)

    out.tokens = _dedupe(out.tokens)
    out.strings = _dedupe(out.strings)
    out.dates = _dedupe(out.dates)
    out.references = _dedupe(out.references)
    out.quantities = _dedupe(out.quantities)
    out.numbers = _dedupe(out.numbers)
    out.uris = _dedupe(out.uris)
    out.composites = _dedupe(out.composites)
    out.geo = _dedupe(out.geo)

    compartments: list[str] = []
    if resource_type == "Patient" and type(resource.get("id")) is str:
        compartments.append(resource["id"])
    if plan.compartment_params:
        for param in plan.compartment_params:
            for code, target_type, target_id, url in out.references:
                if (
                    code == param
                    and target_type == "Patient"
                    and url is None
                    and target_id is not None
                    and target_id not in compartments
                ):
                    compartments.append(target_id)
    if resource_type == "Binary" and not compartments:
        # R4 puts no Binary in the Patient compartment, but its securityContext says whose data
        # it is (a document's content): file it in that record, so the same access rules guard it
        context = resource.get("securityContext")
        ref = context.get("reference") if isinstance(context, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1 and len(ref) > 8:
            compartments.append(ref[8:])
    out.compartments = compartments
    return out
