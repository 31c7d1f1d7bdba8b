"""The search-index rows extracted from one resource.

``fhir/indexing.py`` produces an :class:`IndexEntries` for a resource; every store writes the
rows into its typed index tables and answers searches from them. The row shapes are plain tuples
so that stores can hand them to ``executemany`` / ``COPY`` without conversion.

Conventions shared by the indexer, the search planner and the stores:

* ``param`` is the search parameter ``code`` (``"patient"``, ``"code"``, ``"_tag"``); the
  resource type is stored beside it by the store.
* Dates are ranges ``[low, high]`` in integer **microseconds since 1970-01-01T00:00:00Z**, both
  inclusive, widened by precision: ``2020-03`` gives ``[2020-03-01T00:00:00, 2020-03-31T23:59:59.999999]``
  (a date without zone is read as UTC). A Period gives ``[start.low, end.high]`` with open
  ends at :data:`DATE_MIN` / :data:`DATE_MAX`.
* Strings are kept twice: ``norm`` (accents stripped, case folded, whitespace collapsed) for the
  default ``starts-with`` and ``:contains`` matches, ``exact`` (as written) for ``:exact``.
* A token row carries ``text``, the normalised display / ``CodeableConcept.text`` used by ``:text``.
  Identifiers with a ``type`` add a row under ``"<param>:of-type"`` whose system/code are the type
  coding's and whose ``text`` is the identifier value (normalised with ``str`` only).
  References given by identifier add a token row under ``"<param>:identifier"``.
* A reference row is ``(param, target_type, target_id, url)``: a relative or absolute literal
  reference to a FHIR resource fills type and id (and ``url`` with the absolute form when the
  reference was absolute); a canonical or other URL only fills ``url``.
* A geographic row (``Location.position``, the ``near`` parameter) keeps latitude and longitude in
  WGS84 degrees and the same position as a point of the unit sphere (``x, y, z``): the store
  narrows candidates with a latitude/longitude box on an ordinary index, then tests and orders
  by the squared chord to the searched point, which is exact and needs no trigonometry in SQL
  (``domain/geo.py``).
* Quantities keep the value as written (``float``) with system, code and unit text; a canonical
  form (UCUM base unit) is added in ``canonical_*`` when the unit is convertible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "CompositeRow",
    "DateRow",
    "GeoRow",
    "IndexEntries",
    "NumberRow",
    "QuantityRow",
    "ReferenceRow",
    "RelationRow",
    "StringRow",
    "TokenRow",
    "UriRow",
]

DATE_MIN = -62135596800_000000  # 0001-01-01T00:00:00Z in microseconds
DATE_MAX = 253402300799_999999  # 9999-12-31T23:59:59.999999Z in microseconds

# (param, system, code, text)
TokenRow = tuple[str, str | None, str | None, str | None]
# (param, norm, exact)
StringRow = tuple[str, str, str]
# (param, low, high)
DateRow = tuple[str, int, int]
# (param, target_type, target_id, url)
ReferenceRow = tuple[str, str | None, str | None, str | None]
# (param, value, system, code, unit, canonical_value, canonical_code)
QuantityRow = tuple[str, float, str | None, str | None, str | None, float | None, str | None]
# (param, value)
NumberRow = tuple[str, float]
# (param, value)
UriRow = tuple[str, str]
# (param, lat, lng, x, y, z)
GeoRow = tuple[str, float, float, float, float, float]
# (kind, patient, actor, categories (comma-separated) or None, expires µs or None)
RelationRow = tuple[str, str, str, str | None, int | None]
# (param, system1, code1, system2, code2, number2, low2, high2, string2)
# A composite's first component is a token (the code); the second is one of token (system2/code2),
# quantity (number2 with system2/code2 = unit system/code), date (low2/high2) or string (string2).
CompositeRow = tuple[
    str, str | None, str | None, str | None, str | None, float | None, int | None, int | None, str | None
]


@dataclass(slots=True)
class IndexEntries:
    """Everything a store needs to answer searches on one resource version."""

    tokens: list[TokenRow] = field(default_factory=list)
    strings: list[StringRow] = field(default_factory=list)
    dates: list[DateRow] = field(default_factory=list)
    references: list[ReferenceRow] = field(default_factory=list)
    quantities: list[QuantityRow] = field(default_factory=list)
    numbers: list[NumberRow] = field(default_factory=list)
    uris: list[UriRow] = field(default_factory=list)
    composites: list[CompositeRow] = field(default_factory=list)
    geo: list[GeoRow] = field(default_factory=list)
    # access relations the resource establishes (domain/relations.py; ADR 0007)
    relations: list[RelationRow] = field(default_factory=list)
    # Patient ids of every patient compartment the resource is in (first = partition key).
    compartments: list[str] = field(default_factory=list)
