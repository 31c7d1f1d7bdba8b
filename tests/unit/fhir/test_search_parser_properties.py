"""Properties of the search parser (``hygie.fhir.search.parse_search``), checked with hypothesis.

* On any parameter names and values it returns a :class:`SearchQuery` or raises a
  :class:`FhirError` subclass (an OperationOutcome for the client), never another exception.
* Values written in valid FHIR syntax (tokens, dates, numbers, quantities, references,
  composites, with prefixes and modifiers) come out as the AST fields they stand for; the
  expected fields are computed here independently of the parser.
* ``_count`` never exceeds the cap; ``\\,`` ``\\|`` ``\\$`` escape the separators.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hygie.fhir import values as fvalues
from hygie.fhir.outcome import FhirError, InvalidRequest
from hygie.fhir.search import (
    PREFIXES,
    CompositeValue,
    DateValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    UriValue,
    parse_search,
)
from hygie.fhir.searchparams import search_params

MAX_COUNT = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)

RESOURCE_TYPES = [None, "Patient", "Observation", "Encounter", "Condition", "ValueSet", "RiskAssessment"]
MODIFIERS = [
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
    ".name",
    ":Patient.birthdate",
]
CONTROL = [
    "_count",
    "_sort",
    "_summary",
    "_elements",
    "_total",
    "_include",
    "_revinclude",
    "_id",
    "_lastUpdated",
]


def esc(text: str) -> str:
    """Escape a literal for a search value (R4 search §3.1.1.1.4)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def only(query: SearchQuery) -> Any:
    """The single value of the single criterion of ``query``."""
    assert len(query.criteria) == 1, query.criteria
    (value,) = query.criteria[0].values
    return value


def prefix_of(text: str) -> Prefix:
    """The prefix a value written with ``text`` in front has (``eq`` when none)."""
    assert text in ("", *PREFIXES)
    return cast(Prefix, text or "eq")


def is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def micros(dt: datetime) -> int:
    return (dt - EPOCH) // MICRO


# -- strategies --------------------------------------------------------------------------------


@st.composite
def param_names(draw: st.DrawFn, resource_type: str | None) -> str:
    codes = sorted(search_params(resource_type)) if resource_type else []
    base = draw(st.sampled_from([*CONTROL, *codes]) | st.text(max_size=20))
    return base + draw(st.sampled_from(MODIFIERS))


# decimals with a bounded exponent (huge exponents are refused: see the test at the end of this file)
decimals = st.builds(
    lambda sign, digits, exponent: f"{sign}{digits}e{exponent}" if exponent else f"{sign}{digits}",
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,6})?", fullmatch=True),
    st.integers(-20, 20),
)
prefixes = st.sampled_from(PREFIXES)
safe_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="|$\\"), min_size=1, max_size=20
)


@st.composite
def fhir_dates(draw: st.DrawFn) -> tuple[str, int, int]:
    """A FHIR date/dateTime string with the microsecond range it covers (computed here)."""
    year = draw(st.integers(1800, 2200))
    precision = draw(st.sampled_from(["year", "month", "day", "minute", "second", "fraction"]))
    if precision == "year":
        low = datetime(year, 1, 1, tzinfo=UTC)
        return f"{year:04d}", micros(low), micros(datetime(year + 1, 1, 1, tzinfo=UTC)) - 1
    month = draw(st.integers(1, 12))
    if precision == "month":
        low = datetime(year, month, 1, tzinfo=UTC)
        nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        return f"{year:04d}-{month:02d}", micros(low), micros(nxt) - 1
    day = draw(st.integers(1, 28 if month == 2 else 30))
    if precision == "day":
        low = datetime(year, month, day, tzinfo=UTC)
        return f"{year:04d}-{month:02d}-{day:02d}", micros(low), micros(low + timedelta(days=1)) - 1
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    zone_minutes = draw(st.integers(-14 * 60, 14 * 60))
    zone = draw(st.sampled_from(["", "Z", "offset"]))
    if zone == "offset":
        sign = "-" if zone_minutes < 0 else "+"
        zone = f"{sign}{abs(zone_minutes) // 60:02d}:{abs(zone_minutes) % 60:02d}"
    else:
        zone_minutes = 0
    start = datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(minutes=zone_minutes)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
    if precision == "minute":
        return text + zone, micros(start), micros(start + timedelta(minutes=1)) - 1
    second = draw(st.integers(0, 59))
    start += timedelta(seconds=second)
    text += f":{second:02d}"
    if precision == "second":
        return text + zone, micros(start), micros(start + timedelta(seconds=1)) - 1
    digits = draw(st.integers(1, 6))
    fraction = draw(st.integers(0, 10**digits - 1))
    width = 10 ** (6 - digits)
    start += timedelta(microseconds=fraction * width)
    return f"{text}.{fraction:0{digits}d}{zone}", micros(start), micros(start) + width - 1


# -- never another exception -------------------------------------------------------------------


@st.composite
def any_params(draw: st.DrawFn) -> tuple[str | None, list[tuple[str, str]]]:
    resource_type = draw(st.sampled_from(RESOURCE_TYPES))
    structured = st.one_of(
        decimals,
        st.builds(lambda p, d: p + d, prefixes, decimals),
        fhir_dates().map(lambda t: t[0]),
        st.builds(lambda p, d: p + d[0], prefixes, fhir_dates()),
        st.builds(lambda s, c: f"{s}|{c}", safe_text, safe_text),
        st.builds(lambda n, s, c: f"{n}|{s}|{c}", decimals, safe_text, safe_text),
        st.builds(lambda c, n: f"{c}${n}", safe_text, decimals),
        st.sampled_from(
            ["true", "false", "Patient/1", "http://x.org/Patient/2", "Observation:subject", "-date"]
        ),
    )
    values = st.one_of(st.text(max_size=40), structured, st.lists(structured, max_size=3).map(",".join))
    params = draw(st.lists(st.tuples(param_names(resource_type), values), max_size=6))
    return resource_type, params


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_params(), st.booleans())
@example((None, [("_lastUpdated", "")]), False)
@example(("Patient", [("_count", "１２")]), True)
@example(("Observation", [("code", "a|b|c")]), False)
@example(("Observation", [("value-quantity", "1e999999")]), False)
@example(("Observation", [("subject:Patient.name:missing", "x")]), True)
@example(("Observation", [("_has:Observation:patient:code", "x")]), False)
def test_any_parameters_give_a_query_or_a_fhir_error(
    case: tuple[str | None, list[tuple[str, str]]], strict: bool
) -> None:
    resource_type, params = case
    try:
        query = parse_search(resource_type, params, max_count=MAX_COUNT, strict=strict)
    except FhirError as exc:
        assert exc.issues, "a FhirError must carry at least one issue"
        return
    assert isinstance(query, SearchQuery)
    assert query.resource_type == resource_type
    assert 0 <= query.count <= MAX_COUNT
    if strict:
        assert not query.warnings


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(RESOURCE_TYPES), st.text(max_size=30), st.text(max_size=60))
def test_raw_text_name_and_value_give_a_query_or_a_fhir_error(
    resource_type: str | None, name: str, value: str
) -> None:
    with contextlib.suppress(FhirError):
        parse_search(resource_type, [(name, value)], max_count=MAX_COUNT)


# -- _count ------------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(0, 10**12), st.integers(1, 5000))
def test_count_is_capped_in_lenient_mode(count: int, cap: int) -> None:
    query = parse_search("Patient", [("_count", str(count))], max_count=cap)
    assert query.count == min(count, cap)
    assert bool(query.warnings) == (count > cap)
    assert ("_count", str(query.count)) in query.used


@settings(deadline=None)
@given(st.integers(0, 10**12), st.integers(1, 5000))
def test_count_over_the_cap_is_refused_in_strict_mode(count: int, cap: int) -> None:
    if count > cap:
        with pytest.raises(InvalidRequest):
            parse_search("Patient", [("_count", str(count))], max_count=cap, strict=True)
    else:
        assert parse_search("Patient", [("_count", str(count))], max_count=cap, strict=True).count == count


@settings(deadline=None)
@given(st.integers(max_value=-1) | st.text().filter(lambda t: not is_int(t)))
def test_a_negative_or_non_integer_count_is_invalid(raw: int | str) -> None:
    with pytest.raises(InvalidRequest):
        parse_search("Patient", [("_count", str(raw))], max_count=MAX_COUNT)


# -- round trips -------------------------------------------------------------------------------


@settings(deadline=None)
@given(safe_text, safe_text)
def test_system_and_code_round_trip(system: str, code: str) -> None:
    assert only(parse_search("Observation", [("code", f"{esc(system)}|{esc(code)}")])) == TokenValue(
        system, code
    )
    assert only(parse_search("Observation", [("code", f"|{esc(code)}")])) == TokenValue(
        None, code, no_system=True
    )
    assert only(parse_search("Observation", [("code", f"{esc(system)}|")])) == TokenValue(system, None)


@settings(deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="|"), min_size=1, max_size=30))
def test_a_lone_code_round_trips_with_escaped_commas_backslashes_and_dollars(code: str) -> None:
    assert only(parse_search("Observation", [("code", esc(code))])) == TokenValue(None, code)


@settings(deadline=None)
@given(st.lists(safe_text, min_size=1, max_size=5))
def test_escaped_commas_stay_inside_values_and_bare_commas_separate_them(codes: list[str]) -> None:
    query = parse_search("Observation", [("code", ",".join(esc(c) for c in codes))])
    assert query.criteria[0].values == [TokenValue(None, c) for c in codes]


@settings(deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda t: "\\" not in t and "," not in t))
def test_strings_keep_their_text_and_normal_form(text: str) -> None:
    for modifier in ("", ":exact", ":contains"):
        query = parse_search("Patient", [("name" + modifier, text)])
        assert only(query) == StringValue(fvalues.normalize_string(text), text)
        assert query.criteria[0].modifier == (modifier[1:] or None)


@settings(deadline=None)
@given(st.sampled_from(["", *PREFIXES]), fhir_dates())
def test_dates_round_trip_with_their_precision_range(prefix: str, case: tuple[str, int, int]) -> None:
    text, low, high = case
    expected = DateValue(prefix_of(prefix), low, high)
    assert only(parse_search("Patient", [("birthdate", prefix + text)])) == expected
    assert only(parse_search("Patient", [("_lastUpdated", prefix + text)])) == expected


def half_unit(text: str) -> tuple[float, float]:
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    return float(value - half), float(value + half)


@settings(deadline=None)
@given(st.sampled_from(["", *PREFIXES]), decimals)
def test_numbers_round_trip_with_their_implicit_range(prefix: str, number: str) -> None:
    low, high = half_unit(number)
    got = only(parse_search("RiskAssessment", [("probability", prefix + number)]))
    assert got == NumberValue(prefix_of(prefix), float(number), low, high)
    assert got.low <= got.value <= got.high


@settings(deadline=None)
@given(st.sampled_from(["", *PREFIXES]), decimals, st.none() | safe_text, st.none() | safe_text)
def test_quantities_round_trip(prefix: str, number: str, system: str | None, code: str | None) -> None:
    raw = prefix + number
    if system is not None or code is not None:
        raw += f"|{esc(system or '')}|{esc(code or '')}"
    got = only(parse_search("Observation", [("value-quantity", raw)]))
    assert isinstance(got, QuantityValue)
    low, high = half_unit(number)
    assert (got.prefix, got.value, got.low, got.high) == (prefix or "eq", float(number), low, high)
    assert (got.system, got.code) == (system, code)
    assert (got.canonical is not None) == (code is not None and fvalues.ucum_canonical(1.0, code) is not None)


@settings(deadline=None)
@given(decimals, st.sampled_from(["mg", "g", "kg", "mmol/L", "[degF]", "/min", "cm"]))
def test_convertible_units_get_a_canonical_range(number: str, unit: str) -> None:
    got = only(
        parse_search("Observation", [("value-quantity", f"{number}|http://unitsofmeasure.org|{unit}")])
    )
    assert got.canonical is not None
    clo, chi, ccode = got.canonical
    low, high = fvalues.ucum_canonical(got.low, unit), fvalues.ucum_canonical(got.high, unit)
    assert low is not None and high is not None
    assert (clo, chi, ccode) == (min(low[0], high[0]), max(low[0], high[0]), low[1])


ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
types = st.sampled_from(["Patient", "Group", "Device", "Location"])


@settings(deadline=None)
@given(types, ids)
def test_references_round_trip(target_type: str, id: str) -> None:
    relative = parse_search("Observation", [("subject", f"{target_type}/{id}")])
    assert only(relative) == ReferenceValue(target_type, id, None)
    versioned = parse_search("Observation", [("subject", f"{target_type}/{id}/_history/3")])
    assert only(versioned) == ReferenceValue(target_type, id, None)
    url = f"https://fhir.example.org/r4/{target_type}/{id}"
    assert only(parse_search("Observation", [("subject", url)])) == ReferenceValue(target_type, id, url)
    typed = parse_search("Observation", [(f"subject:{target_type}", id)])
    assert only(typed) == ReferenceValue(target_type, id, None)
    # a bare id takes the only target type of the parameter, or none when there are several
    assert only(parse_search("Observation", [("patient", id)])) == ReferenceValue("Patient", id, None)
    assert only(parse_search("Observation", [("subject", id)])) == ReferenceValue(None, id, None)


@settings(deadline=None)
@given(st.from_regex(r"urn:uuid:[0-9a-f]{8}|https?://[a-z]{1,10}\.org/[a-z]{0,10}", fullmatch=True))
def test_uris_and_canonical_references_keep_their_text(url: str) -> None:
    for modifier in ("", ":below", ":above"):
        query = parse_search("ValueSet", [("url" + modifier, url)])
        assert only(query) == UriValue(url)
        assert query.criteria[0].modifier == (modifier[1:] or None)
    assert only(parse_search("Observation", [("subject", url)])) == ReferenceValue(None, None, url)


@settings(deadline=None)
@given(safe_text, safe_text, st.sampled_from(["", *PREFIXES]), decimals)
def test_composite_values_split_on_the_dollar(system: str, code: str, prefix: str, number: str) -> None:
    raw = f"{esc(system)}|{esc(code)}${prefix}{number}"
    got = only(parse_search("Observation", [("code-value-quantity", raw)]))
    assert isinstance(got, CompositeValue)
    assert got.first == TokenValue(system, code)
    assert isinstance(got.second, QuantityValue)
    assert (got.second.prefix, got.second.value) == (prefix or "eq", float(number))


@settings(deadline=None)
@given(safe_text, fhir_dates())
def test_composite_with_a_date_component(code: str, case: tuple[str, int, int]) -> None:
    text, low, high = case
    got = only(parse_search("Observation", [("code-value-date", f"{esc(code)}$ge{text}")]))
    assert got == CompositeValue(TokenValue(None, code), DateValue("ge", low, high))


@settings(deadline=None)
@given(st.sampled_from(["code", "value-quantity", "date", "subject", "code-value-quantity"]), st.booleans())
def test_missing_takes_true_or_false_only(code: str, missing: bool) -> None:
    query = parse_search("Observation", [(f"{code}:missing", str(missing).lower())])
    (crit,) = query.criteria
    assert (crit.param, crit.modifier, crit.missing, crit.values) == (code, "missing", missing, [])
    with pytest.raises(InvalidRequest):
        parse_search("Observation", [(f"{code}:missing", "maybe")])


@settings(deadline=None)
@given(safe_text, safe_text)
def test_token_modifiers(system: str, code: str) -> None:
    negated = parse_search("Observation", [("code:not", f"{esc(system)}|{esc(code)}")]).criteria[0]
    assert negated.negate and negated.values == [TokenValue(system, code)]
    text = only(parse_search("Observation", [("code:text", esc(code))]))
    assert text == TokenValue(None, None, text=fvalues.normalize_string(code))
    identifier = parse_search("Observation", [("subject:identifier", f"{esc(system)}|{esc(code)}")]).criteria[
        0
    ]
    assert (identifier.param, identifier.kind) == ("subject:identifier", "token")
    assert identifier.values == [TokenValue(system, code)]


# -- escapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "system", "code"),
    [
        ("http://x.org|a\\|b", "http://x.org", "a|b"),
        ("sys\\|tem|code", "sys|tem", "code"),
        ("back\\\\|code", "back\\", "code"),
    ],
    ids=["bar-in-code", "bar-in-system", "backslash-ends-system"],
)
def test_an_escaped_bar_stays_in_the_token(raw: str, system: str, code: str) -> None:
    assert only(parse_search("Observation", [("code", raw)])) == TokenValue(system, code)


def test_an_escaped_dollar_stays_in_the_composite_component() -> None:
    got = only(parse_search("Observation", [("code-value-string", "http://x.org|a\\$b$text")]))
    assert got == CompositeValue(TokenValue("http://x.org", "a$b"), StringValue("text", "text"))


@pytest.mark.parametrize("number", ["1e1000000", "5e-99999999999", "1e999999"])
def test_a_number_with_a_huge_exponent_is_an_invalid_request(number: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_search("Observation", [("value-quantity", number)])
