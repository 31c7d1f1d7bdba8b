"""Value normalisation shared by the indexer and the query side."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygie.fhir.index_model import DATE_MAX, DATE_MIN
from hygie.fhir.values import (
    date_range,
    instant_micros,
    normalize_string,
    number_range,
    phonetic,
    ucum_canonical,
)


def _micros(*parts: int) -> int:
    """Microseconds since the epoch of a UTC date and time given as (year, month, day[, h, m, s])."""
    year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# --- strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Chalmers", "chalmers"),
        ("  Élodie\tMARTIN  ", "elodie martin"),
        ("Straße", "strasse"),
        ("Ærøskøbing", "ærøskøbing"),
        ("ﬁne", "fine"),  # NFKD compatibility ligature
        ("São  Paulo\n", "sao paulo"),
        ("", ""),
    ],
)
def test_normalize_string(raw: str, expected: str) -> None:
    assert normalize_string(raw) == expected


@given(st.text())
def test_normalize_string_properties(text: str) -> None:
    normalized = normalize_string(text)
    assert normalize_string(normalized) == normalized
    assert normalized == normalized.strip()
    assert "  " not in normalized
    assert normalized == normalized.casefold() or normalize_string(normalized.casefold()) == normalized


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_normalize_string_ascii_is_lower_and_collapsed(text: str) -> None:
    assert normalize_string(text) == " ".join(text.lower().split())


def test_phonetic() -> None:
    assert phonetic("Chalmers") == phonetic("chalmurs") == "c456"
    assert phonetic("Robert Rupert") == "r163 r163"
    assert phonetic("Smith") == phonetic("Smyth") == "s530"
    assert normalize_string(phonetic("Ashcraft Tymczak")) == phonetic("Ashcraft Tymczak")
    assert phonetic("Élodie") == phonetic("Elodie")
    assert phonetic("") == ""


# --- dates -----------------------------------------------------------------------------------


def test_date_range_precisions() -> None:
    assert date_range("2020") == (_micros(2020, 1, 1), _micros(2021, 1, 1) - 1)
    assert date_range("2020-02") == (_micros(2020, 2, 1), _micros(2020, 3, 1) - 1)
    assert date_range("2021-02") == (_micros(2021, 2, 1), _micros(2021, 3, 1) - 1)
    assert date_range("2020-12") == (_micros(2020, 12, 1), _micros(2021, 1, 1) - 1)
    assert date_range("1974-12-25") == (_micros(1974, 12, 25), _micros(1974, 12, 26) - 1)
    assert date_range("2020-03-01T10:15") == (_micros(2020, 3, 1, 10, 15), _micros(2020, 3, 1, 10, 16) - 1)
    assert date_range("2020-03-01T10:15:30Z") == (
        _micros(2020, 3, 1, 10, 15, 30),
        _micros(2020, 3, 1, 10, 15, 31) - 1,
    )
    low = _micros(2020, 3, 1, 10, 15, 30)
    assert date_range("2020-03-01T10:15:30.5Z") == (low + 500_000, low + 599_999)
    assert date_range("2020-03-01T10:15:30.123456Z") == (low + 123_456, low + 123_456)
    assert date_range("2020-03-01T10:15:30.1234567Z") == (low + 123_456, low + 123_456)


def test_date_range_zones() -> None:
    utc = date_range("2020-03-01T10:15:30Z")
    assert date_range("2020-03-01T10:15:30") == utc  # no zone: UTC
    assert date_range("2020-03-01T10:15:30+00:00") == utc
    hour = 3_600_000_000
    assert date_range("2020-03-01T12:15:30+02:00") == utc
    assert date_range("2020-03-01T05:45:30-04:30") == utc
    assert date_range("2020-03-01T10:15:30+01:00")[0] == utc[0] - hour


def test_date_range_extremes_are_clamped() -> None:
    assert date_range("0001-01-01T00:00:00+14:00")[0] == DATE_MIN
    assert date_range("9999-12-31T23:59:59-14:00")[1] == DATE_MAX
    assert date_range("9999") == (_micros(9999, 1, 1), DATE_MAX)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "20",
        "2020-13",
        "2020-00",
        "2020-02-30",
        "2021-02-29",
        "2020-01-01T25:00",
        "2020-01-01T10:60",
        "2020-01-01T10:00:61",
        "2020-01-01T10",
        "2020-01-01 10:00",
        "0000",
        "2020-01-01T10:00:00+15:00",
        "2020-01-01T10:00:00.Z",
        "yesterday",
        "2020-1-1",
    ],
)
def test_date_range_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        date_range(text)


def test_instant_micros() -> None:
    assert instant_micros("1970-01-01T00:00:00Z") == 0
    assert instant_micros("2020-03-01T10:15:30.250+01:00") == _micros(2020, 3, 1, 9, 15, 30) + 250_000
    assert instant_micros("2020") == _micros(2020, 1, 1)


_dates = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


def _refinements(moment: datetime) -> list[str]:
    """The same moment written at increasing precisions (no zone)."""
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return [
        f"{moment.year:04d}",
        f"{moment.year:04d}-{moment.month:02d}",
        day,
        f"{day}T{moment:%H:%M}",
        f"{day}T{moment:%H:%M:%S}",
        f"{day}T{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}Z",
        f"{day}T{moment:%H:%M:%S}.{moment.microsecond:06d}+00:00",
    ]


@given(_dates)
def test_date_range_refinements_nest(moment: datetime) -> None:
    ranges = [date_range(text) for text in _refinements(moment)]
    for low, high in ranges:
        assert low <= high
    for (outer_low, outer_high), (inner_low, inner_high) in itertools.pairwise(ranges):
        assert outer_low <= inner_low <= inner_high <= outer_high
    exact = (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert ranges[-1] == (exact, exact)


@given(_dates, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_date_range_zone_shift(moment: datetime, offset_minutes: int) -> None:
    sign = "+" if offset_minutes >= 0 else "-"
    zone = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    low, high = date_range(text + zone)
    utc_low, _ = date_range(text)
    assert low <= high
    if low > DATE_MIN and high < DATE_MAX:
        assert low == utc_low - offset_minutes * 60_000_000


# --- numbers ---------------------------------------------------------------------------------


def test_number_range() -> None:
    low, high = number_range("5.4")
    assert math.isclose(low, 5.35) and math.isclose(high, 5.45)
    assert number_range("100") == (99.5, 100.5)
    assert number_range("-2") == (-2.5, -1.5)
    low, high = number_range("0.001")
    assert math.isclose(low, 0.0005) and math.isclose(high, 0.0015)
    assert number_range("1e2") == (50.0, 150.0)
    with pytest.raises(ValueError, match="invalid number"):
        number_range("abc")
    with pytest.raises(ValueError, match="invalid number"):
        number_range("NaN")


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-1e6, max_value=1e6))
def test_number_range_contains_value(value: object) -> None:
    low, high = number_range(str(value))
    assert low <= float(str(value)) <= high
    assert low < high


# --- UCUM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "expected_value", "expected_code"),
    [
        (5.0, "mg", 0.005, "g"),
        (2.0, "kg", 2000.0, "g"),
        (250.0, "ug", 0.00025, "g"),
        (1.0, "[lb_av]", 453.59237, "g"),
        (176.0, "cm", 1.76, "m"),
        (10.0, "[in_i]", 0.254, "m"),
        (5.0, "dL", 0.5, "L"),
        (250.0, "mL", 0.25, "L"),
        (90.0, "min", 5400.0, "s"),
        (2.0, "h", 7200.0, "s"),
        (1.0, "d", 86400.0, "s"),
        (1.0, "wk", 604800.0, "s"),
        (1.0, "a", 31557600.0, "s"),
        (100.0, "mm[Hg]", 13332.2387415, "Pa"),
        (37.0, "Cel", 310.15, "K"),
        (98.6, "[degF]", 310.15, "K"),
        (50.0, "%", 0.5, "1"),
        (1.0, "mg/dL", 0.01, "g/L"),
        (5.5, "mmol/L", 0.0055, "mol/L"),
        (72.0, "/min", 1.2, "/s"),
        (72.0, "{beats}/min", 1.2, "/s"),
        (25.0, "kg/m2", 25000.0, "g/m2"),
        (3.0, "1", 3.0, "1"),
    ],
)
def test_ucum_canonical(value: float, code: str, expected_value: float, expected_code: str) -> None:
    result = ucum_canonical(value, code)
    assert result is not None
    assert math.isclose(result[0], expected_value, rel_tol=1e-9)
    assert result[1] == expected_code


def test_ucum_not_convertible() -> None:
    assert ucum_canonical(1.0, "mmol/L")[1] != ucum_canonical(1.0, "mg/dL")[1]  # type: ignore[index]
    assert ucum_canonical(1.0, "furlong") is None
    assert ucum_canonical(1.0, "mg/dL/h") is None
    assert ucum_canonical(1.0, "10*3/uL") is None


@given(st.floats(min_value=-1e6, max_value=1e6), st.sampled_from(["mg", "kg", "g", "ug"]))
def test_ucum_mass_units_share_a_canonical(value: float, code: str) -> None:
    grams = ucum_canonical(value, code)
    assert grams is not None
    assert grams[1] == "g"
    back = ucum_canonical(grams[0], "g")
    assert back is not None
    assert math.isclose(back[0], grams[0])
