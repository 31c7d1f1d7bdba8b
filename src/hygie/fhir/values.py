"""Value normalisation shared by the search indexer and the search query side.

Both sides must turn a FHIR value into the same comparable form (see ``index_model``): strings
are normalised, dates become precision-widened microsecond ranges, decimals get their implicit
precision range and UCUM quantities a canonical (base unit) form. Keeping the functions here
guarantees that a value written and a value searched for are normalised identically.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from datetime import date
from decimal import Decimal

from hygie.fhir.index_model import DATE_MAX, DATE_MIN

__all__ = [
    "UCUM_SYSTEM",
    "date_range",
    "instant_micros",
    "normalize_string",
    "number_range",
    "phonetic",
    "ucum_canonical",
]

UCUM_SYSTEM = "http://unitsofmeasure.org"

_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MINUTE = 60 * _MICROS_PER_SECOND
_MICROS_PER_HOUR = 60 * _MICROS_PER_MINUTE
_MICROS_PER_DAY = 24 * _MICROS_PER_HOUR
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


# --------------------------------------------------------------------------------------------
# Strings
# --------------------------------------------------------------------------------------------


def normalize_string(s: str) -> str:
    """Accent-, case- and whitespace-insensitive form of a string (``norm`` in index rows).

    NFKD decomposition, combining marks removed, case folded, runs of whitespace collapsed to one
    space and trimmed: ``"  Élodie\\tMARTIN "`` -> ``"elodie martin"``.
    """
    if s.isascii():
        return " ".join(s.lower().split())
    text = unicodedata.normalize("NFKD", s.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    # Case folding can produce characters that decompose again (and vice versa): settle it.
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


_SOUNDEX_CODES = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


def _soundex(word: str) -> str:
    """American Soundex code of one lower-case ASCII word."""
    first = word[0]
    out = [first]
    last = _SOUNDEX_CODES.get(first, "")
    for c in word[1:]:
        code = _SOUNDEX_CODES.get(c, "")
        if code and code != last:
            out.append(code)
            if len(out) == 4:
                break
        if c not in "hw":
            last = code
    return "".join(out).ljust(4, "0")


def phonetic(s: str) -> str:
    """Phonetic key of a name for the ``phonetic`` search parameters (Soundex of each word).

    ``"Chalmers"`` and ``"Chalmurs"`` both give ``"c456"`` (lower case, so that it is its own
    ``normalize_string``); several words give space-separated keys. The indexer stores it in the
    ``norm`` column of the phonetic parameters' string rows; the query side matches
    ``phonetic(searched value)`` against it.
    """
    words = re.findall(r"[a-z]+", normalize_string(s))
    return " ".join(_soundex(w) for w in words)


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _days_in_month(year: int, month: int) -> int:
    """Number of days in a month of a (proleptic Gregorian) year."""
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def date_range(text: str) -> tuple[int, int]:
    """The inclusive microsecond range ``[low, high]`` a FHIR date / dateTime / instant covers.

    Precision-aware: ``"2020"`` covers the whole year, ``"2020-03"`` the month, ``"2020-03-01"``
    the day, ``"2020-03-01T10:00"`` the minute, ``"...:05"`` the second, ``"...:05.1"`` a tenth of
    a second. A value without zone is read as UTC. Results are clamped to
    [DATE_MIN, DATE_MAX]. Raises ``ValueError`` on anything else.
    """
    match = _DATE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid date: {text!r}")
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction_s, zone = match.groups()
    year = int(year_s)
    if year == 0:
        raise ValueError(f"invalid date: {text!r}")
    if month_s is None:
        low_date, days = date(year, 1, 1), 366 if _is_leap(year) else 365
        low = (low_date.toordinal() - _EPOCH_ORDINAL) * _MICROS_PER_DAY
        return _clamp(low, low + days * _MICROS_PER_DAY - 1)
    month = int(month_s)
    if not 1 <= month <= 12:
        raise ValueError(f"invalid month in date: {text!r}")
    if day_s is None:
        low = (date(year, month, 1).toordinal() - _EPOCH_ORDINAL) * _MICROS_PER_DAY
        return _clamp(low, low + _days_in_month(year, month) * _MICROS_PER_DAY - 1)
    try:
        day_ordinal = date(year, month, int(day_s)).toordinal()
    except ValueError as exc:
        raise ValueError(f"invalid date: {text!r}") from exc
    low = (day_ordinal - _EPOCH_ORDINAL) * _MICROS_PER_DAY
    if hour_s is None:
        return _clamp(low, low + _MICROS_PER_DAY - 1)
    hour, minute = int(hour_s), int(minute_s)
    if hour > 23 or minute > 59:
        raise ValueError(f"invalid time in date: {text!r}")
    low += hour * _MICROS_PER_HOUR + minute * _MICROS_PER_MINUTE
    if zone is not None and zone != "Z":
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_hours > 14 or zone_minutes > 59:
            raise ValueError(f"invalid zone in date: {text!r}")
        offset = zone_hours * _MICROS_PER_HOUR + zone_minutes * _MICROS_PER_MINUTE
        low -= offset if zone[0] == "+" else -offset
    if second_s is None:
        return _clamp(low, low + _MICROS_PER_MINUTE - 1)
    second = int(second_s)
    if second > 59:
        raise ValueError(f"invalid seconds in date: {text!r}")
    low += second * _MICROS_PER_SECOND
    if fraction_s is None:
        return _clamp(low, low + _MICROS_PER_SECOND - 1)
    digits = fraction_s[:6]
    width = 10 ** (6 - len(digits))
    low += int(digits) * width
    return _clamp(low, low + width - 1)


def _is_leap(year: int) -> bool:
    """Gregorian leap year."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _clamp(low: int, high: int) -> tuple[int, int]:
    """Keep a range inside the representable [DATE_MIN, DATE_MAX]."""
    return max(low, DATE_MIN), min(high, DATE_MAX)


def instant_micros(text: str) -> int:
    """Microseconds since the epoch of the start of a date / dateTime / instant (UTC if no zone)."""
    return date_range(text)[0]


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def number_range(text: str) -> tuple[float, float]:
    """The implicit precision range ``[low, high)`` of a decimal as written.

    ``"5.4"`` -> ``(5.35, 5.45)``, ``"100"`` -> ``(99.5, 100.5)``, ``"1e2"`` -> ``(50.0, 150.0)``.
    Raises ``ValueError`` when ``text`` is not a finite decimal.
    """
    try:
        value = Decimal(text.strip())
        exponent = value.as_tuple().exponent
        finite = value.is_finite() and isinstance(exponent, int)
        if finite:
            assert isinstance(exponent, int)
            half = Decimal(5).scaleb(exponent - 1)
            low, high = float(value - half), float(value + half)
    except ArithmeticError as exc:  # InvalidOperation, Overflow… on absurd exponents
        raise ValueError(f"invalid number: {text!r}") from exc
    if not finite:
        raise ValueError(f"invalid number: {text!r}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"number out of range: {text!r}")
    return low, high


# --------------------------------------------------------------------------------------------
# UCUM quantities
# --------------------------------------------------------------------------------------------

# Simple units: code -> (factor to the base unit, base unit code).
_UCUM_UNITS: dict[str, tuple[float, str]] = {
    # mass
    "g": (1.0, "g"),
    "kg": (1e3, "g"),
    "mg": (1e-3, "g"),
    "ug": (1e-6, "g"),
    "ng": (1e-9, "g"),
    "pg": (1e-12, "g"),
    "[lb_av]": (453.59237, "g"),
    "[oz_av]": (28.349523125, "g"),
    # length
    "m": (1.0, "m"),
    "km": (1e3, "m"),
    "cm": (1e-2, "m"),
    "mm": (1e-3, "m"),
    "um": (1e-6, "m"),
    "nm": (1e-9, "m"),
    "[in_i]": (0.0254, "m"),
    "[ft_i]": (0.3048, "m"),
    # volume
    "L": (1.0, "L"),
    "l": (1.0, "L"),
    "dL": (1e-1, "L"),
    "cL": (1e-2, "L"),
    "mL": (1e-3, "L"),
    "uL": (1e-6, "L"),
    "fL": (1e-15, "L"),
    # time
    "s": (1.0, "s"),
    "ms": (1e-3, "s"),
    "min": (60.0, "s"),
    "h": (3600.0, "s"),
    "d": (86400.0, "s"),
    "wk": (604800.0, "s"),
    "mo": (2629800.0, "s"),  # mean Julian month
    "a": (31557600.0, "s"),  # Julian year
    # amount of substance
    "mol": (1.0, "mol"),
    "mmol": (1e-3, "mol"),
    "umol": (1e-6, "mol"),
    "nmol": (1e-9, "mol"),
    "pmol": (1e-12, "mol"),
    # pressure
    "Pa": (1.0, "Pa"),
    "kPa": (1e3, "Pa"),
    "mm[Hg]": (133.322387415, "Pa"),
    "cm[H2O]": (98.0665, "Pa"),
    "bar": (1e5, "Pa"),
    # energy
    "J": (1.0, "J"),
    "kJ": (1e3, "J"),
    "cal": (4.184, "J"),
    "kcal": (4184.0, "J"),
    # dimensionless
    "1": (1.0, "1"),
    "%": (1e-2, "1"),
    # international units, kept as such
    "[iU]": (1.0, "[iU]"),
    "[IU]": (1.0, "[iU]"),
    "m[iU]": (1e-3, "[iU]"),
    "m[IU]": (1e-3, "[iU]"),
}

# Temperatures are affine: code -> (factor, offset) to kelvin.
_UCUM_TEMPERATURES: dict[str, tuple[float, float]] = {
    "K": (1.0, 0.0),
    "Cel": (1.0, 273.15),
    "[degF]": (5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0),
}

_ANNOTATION_RE = re.compile(r"\{[^}]*\}")
_POWER_RE = re.compile(r"(.*?)(\d+)")


def _simple_unit(code: str) -> tuple[float, str] | None:
    """A unit term with an optional integer exponent (``m2``), annotations meaning 1."""
    if code in ("", "1"):
        return 1.0, ""
    known = _UCUM_UNITS.get(code)
    if known is not None:
        return known
    power = _POWER_RE.fullmatch(code)
    if power is not None and power.group(1) in _UCUM_UNITS and power.group(1) != "1":
        factor, base = _UCUM_UNITS[power.group(1)]
        exponent = int(power.group(2))
        return factor**exponent, f"{base}{exponent}"
    return None


def ucum_canonical(value: float, code: str) -> tuple[float, str] | None:
    """The value in the UCUM base unit of its dimension, or ``None`` when not convertible.

    ``(5.0, "mg")`` -> ``(0.005, "g")``, ``(98.6, "[degF]")`` -> ``(310.15, "K")``,
    ``(1.0, "mg/dL")`` -> ``(0.01, "g/L")``, ``(72, "/min")`` -> ``(1.2, "/s")``. Units are
    converted only within a dimension (``mmol/L`` and ``mg/dL`` stay apart); unknown units give
    ``None``. Annotations (``{beats}``) count as 1.
    """
    conversion = _ucum_conversion(code)
    if conversion is None:
        return None
    factor, offset, base = conversion
    return value * factor + offset, base


@functools.lru_cache(maxsize=1024)
def _ucum_conversion(code: str) -> tuple[float, float, str] | None:
    """``(factor, offset, base unit)`` such that ``base = value * factor + offset``."""
    temperature = _UCUM_TEMPERATURES.get(code)
    if temperature is not None:
        return temperature[0], temperature[1], "K"
    cleaned = _ANNOTATION_RE.sub("", code)
    if cleaned.count("/") > 1 or "." in cleaned:
        return None
    numerator, _, denominator = cleaned.partition("/")
    top = _simple_unit(numerator)
    bottom = _simple_unit(denominator) if "/" in cleaned else (1.0, "")
    if top is None or bottom is None:
        return None
    per = f"/{bottom[1]}" if bottom[1] else ""
    return top[0] / bottom[0], 0.0, (top[1] + per) or "1"
