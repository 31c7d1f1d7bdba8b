"""FHIR R4 search: from query parameters to a store-independent :class:`SearchQuery`.

The parser is driven by the SearchParameter registry (``fhir/searchparams.py``). It never sees
SQL: stores translate the query (``stores/sql.py`` for SQLite and PostgreSQL, ``stores/memory.py``
in Python). The semantics of each parameter type, prefix and modifier are those of
http://hl7.org/fhir/R4/search.html; what is not supported is rejected with a clear
OperationOutcome, or ignored and reported (``handling=lenient``, the default).

Shapes:

* a :class:`Criterion` is one ``name[:modifier]=v1,v2`` occurrence: its values are ORed, and
  criteria are ANDed;
* a chained criterion (``subject:Patient.name=x``) carries the target type and a nested
  criterion evaluated on the referenced resources; ``_has`` is its reverse;
* :class:`SearchQuery` also carries the result controls (``_count``, ``_sort``, ``_include``…);
* ``Location?near=lat|lng|distance|units`` (R4's one ``special`` parameter) is a geographic
  criterion (:class:`NearValue`): the locations whose ``position`` is within the distance, and,
  unless ``_sort`` says otherwise, ordered nearest first (a sort key on the distance, last
  after an explicit ``_sort``). Units are UCUM ``km`` (the default), ``m`` or ``[mi_i]``;
  without a distance, :data:`NEAR_DEFAULT_KM`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from hygie.domain.geo import Box, bounding_box, chord2_for_km, unit_vector
from hygie.fhir import values as fvalues
from hygie.fhir.definitions import resource_types
from hygie.fhir.index_model import DATE_MAX, DATE_MIN
from hygie.fhir.outcome import InvalidRequest, Issue
from hygie.fhir.searchparams import SearchParam, search_param, search_param_by_url

if TYPE_CHECKING:
    from hygie.domain.policy import SearchRestriction

__all__ = [
    "CompositeValue",
    "Criterion",
    "DateValue",
    "Include",
    "NearValue",
    "NumberValue",
    "QuantityValue",
    "ReferenceValue",
    "SearchQuery",
    "SortKey",
    "StringValue",
    "TokenValue",
    "UriValue",
    "parse_search",
]

Prefix = Literal["eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"]
PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")

# Parameters that control the result rather than filter it.
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_summary",
        "_elements",
        "_total",
        "_include",
        "_revinclude",
        "_contained",
        "_containedType",
        "_format",
        "_pretty",
        "_cursor",
        "_snapshot",
        "_dir",
    }
)

MODIFIERS_BY_TYPE: dict[str, frozenset[str]] = {
    "token": frozenset({"missing", "not", "text", "of-type"}),
    "string": frozenset({"missing", "exact", "contains"}),
    "date": frozenset({"missing"}),
    "reference": frozenset({"missing", "identifier"}),
    "quantity": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "uri": frozenset({"missing", "below", "above"}),
    "composite": frozenset({"missing"}),
    "special": frozenset({"missing"}),
}

NEAR_DEFAULT_KM = 50.0  # "near" without a distance: the server's discretion (R4)
# UCUM units of the distance in "near", in kilometres
NEAR_UNITS: dict[str, float] = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344}


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None  # None: any system
    code: str | None  # None: any code in the system
    no_system: bool = False  # "|code": the code must have no system
    text: str | None = None  # for :text (normalised) and the identifier value of :of-type


@dataclass(frozen=True, slots=True)
class StringValue:
    norm: str
    exact: str


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: Prefix
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    target_type: str | None
    target_id: str | None
    url: str | None  # absolute or canonical URL when the reference is not a local one


@dataclass(frozen=True, slots=True)
class NumberValue:
    prefix: Prefix
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    prefix: Prefix
    value: float
    low: float
    high: float
    system: str | None
    code: str | None
    canonical: tuple[float, float, str] | None = None  # (low, high, code) in the canonical unit


@dataclass(frozen=True, slots=True)
class UriValue:
    value: str


@dataclass(frozen=True, slots=True)
class NearValue:
    """A point and a radius: the box an index narrows, then the exact squared-chord test."""

    lat: float
    lng: float
    km: float
    box: Box
    point: tuple[float, float, float]  # the point on the unit sphere (domain/geo.unit_vector)
    max_chord2: float  # within ``km`` iff the squared chord to ``point`` is at most this


@dataclass(frozen=True, slots=True)
class CompositeValue:
    first: TokenValue
    second: TokenValue | QuantityValue | DateValue | StringValue


Value = (
    TokenValue
    | StringValue
    | DateValue
    | ReferenceValue
    | NumberValue
    | QuantityValue
    | UriValue
    | CompositeValue
    | NearValue
)

# Columns of the resource row that some criteria filter directly.
ColumnName = Literal["id", "lastUpdated"]


@dataclass(slots=True)
class Criterion:
    """One search parameter occurrence; ``values`` are ORed."""

    resource_type: str
    param: str  # code as indexed (e.g. "code", "subject:identifier", "identifier:of-type")
    kind: str  # token | string | date | reference | quantity | number | uri | composite | id | lastUpdated
    modifier: str | None = None
    values: list[Value] = field(default_factory=list)
    missing: bool | None = None  # for :missing
    negate: bool = False  # :not
    # chained search: the reference param restricted to target type, with a criterion on the target
    chain: Criterion | None = None
    chain_target: str | None = None
    # _has: resources of has_type whose has_param references us and match has_criterion
    has_type: str | None = None
    has_param: str | None = None


@dataclass(frozen=True, slots=True)
class SortKey:
    resource_type: str
    param: str
    kind: str  # index kind, or "id" / "lastUpdated"
    descending: bool
    near: NearValue | None = None  # kind "geo": the distance to this point


@dataclass(frozen=True, slots=True)
class Include:
    source_type: str  # the type holding the reference
    param: str
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(slots=True)
class SearchQuery:
    resource_type: str | None  # None: system-level search
    criteria: list[Criterion] = field(default_factory=list)
    count: int = 20
    sort: list[SortKey] = field(default_factory=list)
    summary: str | None = None  # true | count | data | text | false
    elements: list[str] = field(default_factory=list)
    total: str | None = None  # none | estimate | accurate
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    # parameters that were understood, to echo in the self link
    used: list[tuple[str, str]] = field(default_factory=list)
    # warnings for parameters ignored under lenient handling
    warnings: list[Issue] = field(default_factory=list)
    # paging: an opaque cursor produced by a previous page
    cursor: str | None = None
    # what the access policy lets the caller see (ADR 0007); None: not restricted
    restriction: SearchRestriction | None = None


_PREFIX_RE = re.compile(r"^(eq|ne|lt|gt|le|ge|sa|eb|ap)(?=[-+0-9.])")


def _split_escaped(value: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not escaped by a backslash; escapes stay for the next level.

    FHIR escapes ``\\,`` ``\\|`` ``\\$`` and ``\\\\`` in search values: a value is split on
    commas (OR), then a token on ``|`` and a composite on ``$``; each level must leave the other
    escapes alone, and only the leaves are unescaped (:func:`_unescape`).
    """
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            cur.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _split_or(value: str) -> list[str]:
    """OR values of one parameter (escapes kept: each value is parsed, then unescaped)."""
    return _split_escaped(value, ",")


def _split_unescaped(value: str, sep: str) -> list[str]:
    """Split on unescaped ``sep`` and unescape the parts (the leaves of a value)."""
    return [_unescape(part) for part in _split_escaped(value, sep)]


def _prefix(raw: str) -> tuple[Prefix, str]:
    m = _PREFIX_RE.match(raw)
    if m:
        return m.group(1), raw[2:]  # type: ignore[return-value]
    return "eq", raw


def _bad(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid", expression=name)


def _token(raw: str, name: str, modifier: str | None) -> TokenValue:
    if modifier == "text":
        return TokenValue(None, None, text=fvalues.normalize_string(_unescape(raw)))
    if modifier == "of-type":
        parts = _split_unescaped(raw, "|")
        if len(parts) != 3 or not all(parts):
            raise _bad(name, f"{name}:of-type needs system|code|value, got {raw!r}")
        return TokenValue(parts[0], parts[1], text=parts[2])
    parts = _split_unescaped(raw, "|")
    if len(parts) == 1:
        if not parts[0]:
            raise _bad(name, f"empty value for {name}")
        return TokenValue(None, parts[0])
    if len(parts) == 2:
        system, code = parts
        if not system and not code:
            raise _bad(name, f"empty token for {name}")
        if not system:
            return TokenValue(None, code, no_system=True)
        return TokenValue(system, code or None)
    # codes may themselves contain '|' only when escaped; extra bars are an error
    raise _bad(name, f"token value for {name} has too many '|': {raw!r}")


def _date(raw: str, name: str) -> DateValue:
    prefix, text = _prefix(raw)
    try:
        low, high = fvalues.date_range(text)
    except ValueError as exc:
        raise _bad(name, f"invalid date for {name}: {raw!r} ({exc})") from exc
    return DateValue(prefix, low, high)


def _number(raw: str, name: str) -> NumberValue:
    prefix, text = _prefix(raw)
    try:
        value = float(text)
        low, high = fvalues.number_range(text)
    except ValueError as exc:
        raise _bad(name, f"invalid number for {name}: {raw!r}") from exc
    return NumberValue(prefix, value, low, high)


def _quantity(raw: str, name: str) -> QuantityValue:
    parts = _split_unescaped(raw, "|")
    if len(parts) not in (1, 3):
        raise _bad(name, f"quantity for {name} must be [prefix]number[|system|code], got {raw!r}")
    num = _number(parts[0], name)
    system = parts[1] or None if len(parts) == 3 else None
    code = parts[2] or None if len(parts) == 3 else None
    canonical: tuple[float, float, str] | None = None
    if code:
        lo = fvalues.ucum_canonical(num.low, code)
        hi = fvalues.ucum_canonical(num.high, code)
        if lo is not None and hi is not None:
            canonical = (min(lo[0], hi[0]), max(lo[0], hi[0]), lo[1])
    return QuantityValue(num.prefix, num.value, num.low, num.high, system, code, canonical)


def _reference(raw: str, name: str, sp: SearchParam, type_modifier: str | None) -> ReferenceValue:
    if not raw:
        raise _bad(name, f"empty reference for {name}")
    targets = sp.target
    if "://" in raw or raw.startswith("urn:"):
        # absolute: may still be a reference to this server's resources (Type/id at the end)
        m = re.match(r"^.*/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$", raw)
        if m and m.group(1) in resource_types():
            return ReferenceValue(m.group(1), m.group(2), raw)
        return ReferenceValue(None, None, raw)
    if "/" in raw:
        rtype, _, rid = raw.partition("/")
        rid = rid.split("/_history/")[0]
        if rtype not in resource_types():
            raise _bad(name, f"unknown resource type in reference {raw!r}")
        if type_modifier and type_modifier != rtype:
            raise _bad(name, f"reference {raw!r} contradicts the :{type_modifier} modifier")
        return ReferenceValue(rtype, rid, None)
    if type_modifier:
        return ReferenceValue(type_modifier, raw, None)
    if len(targets) == 1:
        return ReferenceValue(next(iter(targets)), raw, None)
    return ReferenceValue(None, raw, None)


def _string(raw: str) -> StringValue:
    text = _unescape(raw)
    return StringValue(fvalues.normalize_string(text), text)


def _near(raw: str, name: str) -> NearValue:
    """``lat|lng[|distance[|units]]`` (WGS84 degrees; distance in UCUM km, m or [mi_i])."""
    parts = _split_unescaped(raw, "|")
    if not 2 <= len(parts) <= 4:
        raise _bad(name, f"{name} must be latitude|longitude|distance|units, got {raw!r}")

    def number(text: str, what: str) -> float:
        try:
            value = float(text)
        except ValueError as exc:
            raise _bad(name, f"{name}: the {what} must be a number, got {text!r}") from exc
        if not math.isfinite(value):
            raise _bad(name, f"{name}: the {what} must be a finite number, got {text!r}")
        return value

    lat, lng = number(parts[0], "latitude"), number(parts[1], "longitude")
    if not -90 <= lat <= 90:
        raise _bad(name, f"{name}: the latitude must be between -90 and 90, got {parts[0]!r}")
    if not -180 <= lng <= 180:
        raise _bad(name, f"{name}: the longitude must be between -180 and 180, got {parts[1]!r}")
    distance = number(parts[2], "distance") if len(parts) > 2 and parts[2] else None
    unit = parts[3] if len(parts) > 3 and parts[3] else "km"
    if unit not in NEAR_UNITS:
        raise _bad(name, f"{name}: the unit must be km, m or [mi_i] (UCUM), got {unit!r}")
    if distance is not None and distance < 0:
        raise _bad(name, f"{name}: the distance must not be negative, got {parts[2]!r}")
    km = NEAR_DEFAULT_KM if distance is None else distance * NEAR_UNITS[unit]
    return NearValue(lat, lng, km, bounding_box(lat, lng, km), unit_vector(lat, lng), chord2_for_km(km))


def _component_value(
    sp: SearchParam, raw: str, name: str
) -> TokenValue | QuantityValue | DateValue | StringValue:
    kind = sp.type
    if kind == "token":
        return _token(raw, name, None)
    if kind == "quantity":
        return _quantity(raw, name)
    if kind == "date":
        return _date(raw, name)
    if kind == "string":
        return _string(raw)
    raise _bad(name, f"composite component of type {kind} is not supported")


def _component_params(sp: SearchParam) -> list[SearchParam]:
    out = []
    for comp in sp.components:
        found = search_param_by_url(comp.definition)
        if found is None:
            raise InvalidRequest(
                f"composite {sp.code}: component {comp.definition} is unknown", code="not-supported"
            )
        out.append(found)
    return out


def _values_for(
    sp: SearchParam, raw_values: list[str], name: str, modifier: str | None, type_modifier: str | None
) -> list[Value]:
    out: list[Value] = []
    for raw in raw_values:
        if sp.type == "token":
            out.append(_token(raw, name, modifier))
        elif sp.type == "string":
            if sp.xpath_usage == "phonetic" and modifier is None:
                # sound-alike: the index holds each name part's phonetic key beside its plain form
                key = fvalues.phonetic(_unescape(raw))
                out.append(StringValue(key, _unescape(raw)))
            else:
                out.append(_string(raw))
        elif sp.type == "date":
            out.append(_date(raw, name))
        elif sp.type == "reference":
            out.append(_reference(_unescape(raw), name, sp, type_modifier))
        elif sp.type == "number":
            out.append(_number(raw, name))
        elif sp.type == "quantity":
            out.append(_quantity(raw, name))
        elif sp.type == "uri":
            out.append(UriValue(_unescape(raw)))
        elif sp.type == "composite":
            pieces = _split_escaped(raw, "$")
            comps = _component_params(sp)
            if len(pieces) != 2 or len(comps) != 2:
                raise _bad(name, f"composite {name} needs two components separated by '$', got {raw!r}")
            first = _component_value(comps[0], pieces[0], name)
            if not isinstance(first, TokenValue):
                raise _bad(name, f"composite {name}: first component must be a token")
            out.append(CompositeValue(first, _component_value(comps[1], pieces[1], name)))
        else:
            raise NotImplementedError(sp.type)
    return out


class _Lenient:
    """Collects problems that lenient handling ignores and strict handling raises."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.warnings: list[Issue] = []

    def ignore(self, name: str, message: str) -> None:
        if self.strict:
            raise InvalidRequest(message, code="not-supported", expression=name)
        self.warnings.append(
            Issue(code="not-supported", diagnostics=message, expression=name, severity="warning")
        )


def _criterion(
    resource_type: str, name: str, raw: str, lenient: _Lenient, depth: int = 0
) -> Criterion | None:
    """Parse ``name=raw`` for ``resource_type`` (``name`` may carry modifiers and a chain)."""
    if name.startswith("_has:"):
        return _has_criterion(resource_type, name, raw, lenient, depth)
    base, dot, rest = name.partition(".")
    code, colon, modifier_text = base.partition(":")
    modifier: str | None = modifier_text if colon else None
    if code == "_id":
        if modifier == "missing" or modifier:
            lenient.ignore(name, f"modifier :{modifier} is not supported on _id")
            return None
        ids = [_unescape(v) for v in _split_or(raw) if v]
        if not ids:
            raise _bad(name, "empty _id")
        return Criterion(resource_type, "_id", "id", values=[TokenValue(None, v) for v in ids])
    sp = search_param(resource_type, code)
    if sp is None:
        lenient.ignore(name, f"unknown search parameter {code!r} for {resource_type}")
        return None
    if sp.type == "special":
        if code != "near":
            lenient.ignore(name, f"search parameter {code!r} (special) is not supported")
            return None
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise _bad(name, f"{name} must be true or false")
            return Criterion(resource_type, code, "geo", modifier="missing", missing=raw == "true")
        if modifier:
            raise InvalidRequest(
                f"modifier :{modifier} is not supported for {code!r}", code="not-supported", expression=name
            )
        raw_values = _split_or(raw)
        if len(raw_values) != 1:
            raise _bad(name, f"{name} takes one position, got {len(raw_values)}")
        return Criterion(resource_type, code, "geo", values=[_near(raw_values[0], name)])
    if code == "_lastUpdated":
        if modifier:
            lenient.ignore(name, f"modifier :{modifier} is not supported on _lastUpdated")
            return None
        return Criterion(
            resource_type, "_lastUpdated", "lastUpdated", values=[_date(v, name) for v in _split_or(raw)]
        )
    type_modifier: str | None = None
    if modifier and sp.type == "reference" and modifier in resource_types():
        type_modifier, modifier = modifier, None
    if modifier and modifier not in MODIFIERS_BY_TYPE.get(sp.type, frozenset()):
        # :in, :below on tokens, :above... are not implemented
        raise InvalidRequest(
            f"modifier :{modifier} is not supported for {sp.type} parameter {code!r}",
            code="not-supported",
            expression=name,
        )
    if dot:
        if sp.type != "reference":
            raise _bad(name, f"{code!r} is not a reference parameter and cannot be chained")
        if depth >= 1:
            raise InvalidRequest(
                "chains deeper than one level are not supported", code="not-supported", expression=name
            )
        target = type_modifier
        if target is None:
            if len(sp.target) != 1:
                # pick the only target type on which the chained parameter exists
                chained_code = rest.split(":")[0].split(".")[0]
                candidates = sorted(t for t in sp.target if search_param(t, chained_code) is not None)
                if len(candidates) != 1:
                    raise _bad(
                        name, f"ambiguous chain {name!r}: qualify the target type ({code}:Type.{rest})"
                    )
                target = candidates[0]
            else:
                target = next(iter(sp.target))
        inner = _criterion(target, rest, raw, lenient, depth + 1)
        if inner is None:
            return None
        return Criterion(resource_type, code, "reference", chain=inner, chain_target=target)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise _bad(name, f"{name} must be true or false")
        kind = sp.type
        param = code
        return Criterion(resource_type, param, kind, modifier="missing", missing=raw == "true")
    raw_values = _split_or(raw)
    if any(v == "" for v in raw_values):
        raise _bad(name, f"empty value in {name}={raw!r}")
    if modifier == "identifier":
        return Criterion(
            resource_type,
            f"{code}:identifier",
            "token",
            values=[_token(v, name, None) for v in raw_values],
        )
    if modifier == "of-type":
        return Criterion(
            resource_type,
            f"{code}:of-type",
            "token",
            modifier="of-type",
            values=[_token(v, name, "of-type") for v in raw_values],
        )
    values = _values_for(sp, raw_values, name, modifier, type_modifier)
    return Criterion(
        resource_type,
        code,
        sp.type,
        modifier=modifier,
        values=values,
        negate=modifier == "not",
    )


def _has_criterion(
    resource_type: str, name: str, raw: str, lenient: _Lenient, depth: int
) -> Criterion | None:
    # _has:Observation:patient:code=1234 (one level)
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise _bad(name, f"_has must be _has:Type:reference:parameter, got {name!r}")
    _, has_type, has_param, inner_name = parts
    if inner_name.startswith("_has"):
        raise InvalidRequest("nested _has is not supported", code="not-supported", expression=name)
    if has_type not in resource_types():
        raise _bad(name, f"unknown resource type {has_type!r} in _has")
    ref = search_param(has_type, has_param)
    if ref is None or ref.type != "reference":
        raise _bad(name, f"{has_param!r} is not a reference parameter of {has_type}")
    inner = _criterion(has_type, inner_name, raw, lenient, depth + 1)
    if inner is None:
        return None
    return Criterion(resource_type, "_has", "has", chain=inner, has_type=has_type, has_param=has_param)


def _sort_keys(resource_type: str | None, raw: str, lenient: _Lenient) -> list[SortKey]:
    keys: list[SortKey] = []
    for raw_item in raw.split(","):
        item = raw_item.strip()
        if not item:
            continue
        desc = item.startswith("-")
        code = item[1:] if desc else item
        if code == "_id":
            keys.append(SortKey(resource_type or "Resource", "_id", "id", desc))
            continue
        if code == "_lastUpdated":
            keys.append(SortKey(resource_type or "Resource", "_lastUpdated", "lastUpdated", desc))
            continue
        if resource_type is None:
            lenient.ignore("_sort", f"cannot sort a system search by {code!r}")
            continue
        sp = search_param(resource_type, code)
        if sp is None or sp.type in ("composite", "special"):
            lenient.ignore("_sort", f"cannot sort {resource_type} by {code!r}")
            continue
        keys.append(SortKey(resource_type, code, sp.type, desc))
    return keys


def _include(raw: str, reverse: bool, iterate: bool, resource_type: str | None, name: str) -> Include:
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise _bad(name, f"{name} must be Type:param[:targetType], got {raw!r}")
    source, param = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in resource_types():
        raise _bad(name, f"unknown resource type {source!r} in {name}")
    if param == "*":
        raise InvalidRequest(
            f"{name}={raw} (wildcard) is not supported", code="not-supported", expression=name
        )
    sp = search_param(source, param)
    if sp is None or sp.type != "reference":
        raise _bad(name, f"{param!r} is not a reference parameter of {source}")
    if target is not None and target not in resource_types():
        raise _bad(name, f"unknown target type {target!r} in {name}")
    if not reverse and not iterate and resource_type is not None and source != resource_type:
        raise _bad(name, f"{name}={raw}: the source type must be {resource_type}")
    return Include(source, param, target, iterate, reverse)


def parse_search(
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    default_count: int = 20,
    max_count: int = 1000,
    strict: bool = False,
) -> SearchQuery:
    """Parse query parameters (in order, repeated names allowed) into a :class:`SearchQuery`."""
    lenient = _Lenient(strict)
    query = SearchQuery(resource_type, count=default_count)
    for name, raw in params:
        if name in ("_format", "_pretty"):
            continue
        if name == "_count":
            try:
                count = int(raw)
            except ValueError as exc:
                raise _bad(name, f"_count must be an integer, got {raw!r}") from exc
            if count < 0:
                raise _bad(name, "_count must not be negative")
            if count > max_count:
                if strict:
                    raise _bad(name, f"_count={count} exceeds the maximum of {max_count}")
                query.warnings.append(
                    Issue("too-costly", f"_count={count} was capped at {max_count}", "_count", "warning")
                )
                count = max_count
            query.count = count
            query.used.append((name, str(count)))
            continue
        if name == "_sort":
            query.sort = _sort_keys(resource_type, raw, lenient)
            query.used.append((name, raw))
            continue
        if name == "_summary":
            if raw not in ("true", "false", "count", "data", "text"):
                raise _bad(name, f"_summary must be true, false, count, data or text, got {raw!r}")
            query.summary = raw
            query.used.append((name, raw))
            continue
        if name == "_elements":
            query.elements = [e.strip() for e in raw.split(",") if e.strip()]
            query.used.append((name, raw))
            continue
        if name == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise _bad(name, f"_total must be none, estimate or accurate, got {raw!r}")
            query.total = raw
            query.used.append((name, raw))
            continue
        if name in (
            "_include",
            "_revinclude",
            "_include:iterate",
            "_revinclude:iterate",
            "_include:recurse",
            "_revinclude:recurse",
        ):
            reverse = name.startswith("_revinclude")
            iterate = ":" in name
            inc = _include(raw, reverse, iterate, resource_type, name)
            (query.revincludes if reverse else query.includes).append(inc)
            query.used.append((name, raw))
            continue
        if name == "_cursor":
            query.cursor = raw
            continue
        if name in RESULT_PARAMS:
            lenient.ignore(name, f"{name} is not supported")
            continue
        if resource_type is None:
            # system search: only the Resource-level parameters apply
            crit = _system_criterion(name, raw, lenient)
        else:
            crit = _criterion(resource_type, name, raw, lenient)
        if crit is not None:
            query.criteria.append(crit)
            query.used.append((name, raw))
    near = [c for c in query.criteria if c.kind == "geo" and c.values and c.chain is None]
    if len(near) > 1:
        raise _bad("near", "near may be given once")
    if near and isinstance(near[0].values[0], NearValue):
        # nearest first; after an explicit _sort, the distance breaks its ties
        query.sort.append(SortKey(near[0].resource_type, near[0].param, "geo", False, near[0].values[0]))
    query.warnings.extend(lenient.warnings)
    return query


def _system_criterion(name: str, raw: str, lenient: _Lenient) -> Criterion | None:
    code = name.split(":", maxsplit=1)[0]
    if code not in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
        lenient.ignore(name, f"parameter {code!r} cannot be used in a search across all types")
        return None
    return _criterion("Resource", name, raw, lenient)


def date_matches(prefix: Prefix, qlo: int, qhi: int, tlo: int, thi: int, now_us: int) -> bool:
    """Reference semantics of a date comparison (used by the memory store and in tests)."""
    if prefix == "eq":
        return tlo >= qlo and thi <= qhi
    if prefix == "ne":
        return not (tlo >= qlo and thi <= qhi)
    if prefix == "gt":
        return thi > qhi
    if prefix == "lt":
        return tlo < qlo
    if prefix == "ge":
        return thi > qhi or (tlo >= qlo and thi <= qhi)
    if prefix == "le":
        return tlo < qlo or (tlo >= qlo and thi <= qhi)
    if prefix == "sa":
        return tlo > qhi
    if prefix == "eb":
        return thi < qlo
    # ap: overlap with the search range widened by 10 % of its distance to now
    gap = abs(now_us - (qlo + qhi) // 2) // 10
    return tlo <= min(qhi + gap, DATE_MAX) and thi >= max(qlo - gap, DATE_MIN)
