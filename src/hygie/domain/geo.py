"""Places in France and distances on the globe: from what a person types to coordinates.

**Distances.** Positions are WGS84 latitude/longitude in decimal degrees (FHIR
``Location.position``). :func:`haversine_km` gives the great-circle distance on a sphere of the
mean Earth radius (:data:`EARTH_RADIUS_KM`); the error against the ellipsoid is below 0.5 %,
far under what separates two practices. The search index does not need trigonometry in SQL:
each position is also stored as a point of the unit sphere (:func:`unit_vector`), and the
straight-line (chord) distance between two such points grows with the great-circle distance,
so ``chord² <= chord2_for_km(d)`` is *exactly* "within ``d`` km" and ``chord²`` orders results
nearest first — plain arithmetic that SQLite and PostgreSQL both compute. :func:`bounding_box`
gives the latitude/longitude rectangle around a circle, which an ordinary B-tree index on
``(lat, lng)`` narrows before that exact test (the box of J. P. Matuschek's "Finding points
within a distance of a latitude/longitude using bounding coordinates": exact longitude extent,
split in two across the antimeridian, the whole longitude range when the circle covers a pole).

**Gazetteer.** :class:`Gazetteer` turns a commune name, a postal code or an INSEE code into
:class:`Place` values, the most populous first. It reads either commune file Hygie knows
(:func:`parse_communes`): the curated extract shipped in the package
(``hygie/demo/data/communes.csv``: about a hundred communes, the default) or the full INSEE list
with coordinates (``communes-geo-2024.csv``: every commune, commune déléguée and municipal
arrondissement, one row per postal code) — which one is a setting (``HYGIE_COMMUNES_CSV``,
``docs/operations.md``). Names are compared in :func:`normalize_place` form (no accents, no case,
hyphens and apostrophes as spaces, ``St``/``Ste`` spelt out), with and without their article
(``Le Mans``, ``Mans``). Paris, Lyon and Marseille are listed by arrondissement: the city itself
is added as one place at the population-weighted centre of its arrondissements, so that
``Lyon`` finds the city and ``Lyon 3e`` its third arrondissement. A 5-character code is read as a
postal code first (what people know), then as an INSEE code. ``Saint-Denis (974)`` or
``Saint-Denis 97400`` pick one of several homonyms by department or postal code.

Everything here is pure except :func:`load_gazetteer`, which reads the file once per path.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EARTH_RADIUS_KM",
    "Box",
    "Gazetteer",
    "Place",
    "bounding_box",
    "chord2",
    "chord2_for_km",
    "default_communes_csv",
    "haversine_km",
    "load_gazetteer",
    "normalize_place",
    "parse_communes",
    "unit_vector",
]

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
_MARGIN_DEG = 1e-9  # floating-point slack so that a point on the circle stays inside its box


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in kilometres between two WGS84 positions (degrees)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def unit_vector(lat: float, lng: float) -> tuple[float, float, float]:
    """The position as a point of the unit sphere (x towards 0°E on the equator, z to the north pole)."""
    phi, lmb = math.radians(lat), math.radians(lng)
    return (math.cos(phi) * math.cos(lmb), math.cos(phi) * math.sin(lmb), math.sin(phi))


def chord2(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Squared straight-line distance between two points of the unit sphere (0 to 4)."""
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2


def chord2_for_km(km: float) -> float:
    """The squared chord of a great-circle distance: ``chord2 <= chord2_for_km(d)`` iff within ``d`` km."""
    angle = km / EARTH_RADIUS_KM
    if angle >= math.pi:
        return 4.0
    return (2 * math.sin(angle / 2)) ** 2


def km_for_chord2(value: float) -> float:
    """The great-circle distance of a squared chord (the inverse of :func:`chord2_for_km`)."""
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(max(value, 0.0)) / 2))


@dataclass(frozen=True, slots=True)
class Box:
    """Latitude range and one or two longitude ranges (two when the box crosses ±180°)."""

    lat_low: float
    lat_high: float
    lng_ranges: tuple[tuple[float, float], ...]

    def contains(self, lat: float, lng: float) -> bool:
        return self.lat_low <= lat <= self.lat_high and any(lo <= lng <= hi for lo, hi in self.lng_ranges)


def bounding_box(lat: float, lng: float, km: float) -> Box:
    """The smallest latitude/longitude rectangle holding every point within ``km`` of a position."""
    angle = km / EARTH_RADIUS_KM
    dlat = math.degrees(angle) + _MARGIN_DEG
    low, high = lat - dlat, lat + dlat
    if low <= -90 or high >= 90 or angle >= math.pi / 2:
        # the circle reaches a pole: every longitude
        return Box(max(low, -90.0), min(high, 90.0), ((-180.0, 180.0),))
    ratio = math.sin(angle) / math.cos(math.radians(lat))
    if ratio >= 1:
        return Box(low, high, ((-180.0, 180.0),))
    dlng = math.degrees(math.asin(ratio)) + _MARGIN_DEG
    west, east = lng - dlng, lng + dlng
    if west < -180:
        return Box(low, high, ((west + 360, 180.0), (-180.0, east)))
    if east > 180:
        return Box(low, high, ((west, 180.0), (-180.0, east - 360)))
    return Box(low, high, ((west, east),))


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[-'’‘`.,/_]+")
_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_ARTICLES = ("l ", "le ", "la ", "les ")
_ARRONDISSEMENT = re.compile(r"^(.*?) (\d+)(?:er|e|eme|ème)? arrondissement$", re.IGNORECASE)


def normalize_place(text: str) -> str:
    """The comparable form of a place name: ``Saint-Étienne`` and ``st etienne`` → ``saint etienne``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _SEPARATORS.sub(" ", plain).split()
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


def _without_article(key: str) -> str | None:
    for article in _ARTICLES:
        if key.startswith(article) and len(key) > len(article):
            return key[len(article) :]
    return None


# --------------------------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """A commune (or a municipal arrondissement, or a commune déléguée) with its centre.

    ``insee`` is the INSEE code (a commune déléguée carries its commune nouvelle's code, as the
    INSEE file does); ``postal_codes`` every postal code serving it, the main one first.
    """

    insee: str
    name: str
    postal_codes: tuple[str, ...]
    department: str
    lat: float
    lng: float
    population: int = 0
    kind: str = "commune"  # commune | arrondissement | deleguee | ville

    @property
    def postal_code(self) -> str:
        return self.postal_codes[0] if self.postal_codes else ""

    @property
    def label(self) -> str:
        """``Vannes (56000)``: the name and the main postal code, as a person recognises a place
        (a whole city listed by arrondissement, ``Lyon``, has no one postal code)."""
        if self.kind == "ville" or not self.postal_code:
            return self.name
        return f"{self.name} ({self.postal_code})"

    def distance_km(self, lat: float, lng: float) -> float:
        return haversine_km(self.lat, self.lng, lat, lng)


@dataclass(slots=True)
class _Row:
    insee: str
    name: str
    names: tuple[str, ...]
    postal: str
    department: str
    lat: float
    lng: float
    population: int
    kind: str
    parent: str | None  # the city an arrondissement belongs to (its INSEE code or its name)
    city: str | None


# The cities INSEE lists by arrondissement; the package extract names them without their code.
_CITY_CODES = {"Paris": "75056", "Lyon": "69123", "Marseille": "13055"}


def _float(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: str | None) -> int:
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def _rows(text: str) -> Iterator[_Row]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    fields = set(reader.fieldnames or ())
    if {"insee_com", "commune", "code_postal", "lat", "lng"} <= fields:
        for r in reader:  # communes-geo-2024.csv
            lat, lng = _float(r.get("lat")), _float(r.get("lng"))
            if lat is None or lng is None or not r.get("insee_com"):
                continue
            kind = {"ARM": "arrondissement", "COMD": "deleguee"}.get(r.get("commune_type") or "", "commune")
            name = r.get("commune_article") or r.get("commune") or ""
            names = tuple(n for n in {name, r.get("commune") or ""} if n)
            yield _Row(
                r["insee_com"],
                name,
                names,
                r.get("code_postal") or "",
                r.get("insee_dep") or "",
                lat,
                lng,
                _int(r.get("population_2021")),
                kind,
                (r.get("insee_parente") or None) if kind == "arrondissement" else None,
                None,
            )
    elif {"insee", "name", "postal_code", "lat", "lng"} <= fields:
        for r in reader:  # the package extract (hygie/demo/data/communes.csv)
            lat, lng = _float(r.get("lat")), _float(r.get("lng"))
            if lat is None or lng is None or not r.get("insee"):
                continue
            city = r.get("city") or None
            arrondissement = bool(city and r["name"] != city and _ARRONDISSEMENT.match(r["name"]))
            yield _Row(
                r["insee"],
                r["name"],
                (r["name"],),
                r.get("postal_code") or "",
                r.get("department") or "",
                lat,
                lng,
                _int(r.get("population")),
                "arrondissement" if arrondissement else "commune",
                _CITY_CODES.get(city or "", city) if arrondissement else None,
                city if arrondissement else None,
            )
    else:
        raise ValueError(
            "unknown commune file: expected the columns of communes-geo-2024.csv "
            "(insee_com, commune, code_postal, lat, lng…) or of Hygie's extract (insee, name, postal_code, lat, lng…)"
        )


def parse_communes(text: str) -> list[Place]:
    """Places of a commune file (either format), one per commune, with every postal code.

    Rows without coordinates are left out. Cities listed only by arrondissement get one more
    place, at the population-weighted centre of their arrondissements.
    """
    merged: dict[tuple[str, str, str], tuple[_Row, list[str]]] = {}
    for row in _rows(text):
        key = (row.insee, row.kind, row.name)
        if key in merged:
            postal = merged[key][1]
            if row.postal and row.postal not in postal:
                postal.append(row.postal)
        else:
            merged[key] = (row, [row.postal] if row.postal else [])
    places: list[Place] = []
    cities: dict[str, list[tuple[_Row, list[str]]]] = {}
    communes = {insee for insee, kind, _ in merged if kind == "commune"}
    for row, postal in merged.values():
        places.append(
            Place(
                row.insee, row.name, tuple(postal), row.department, row.lat, row.lng, row.population, row.kind
            )
        )
        if row.parent and row.parent not in communes:
            cities.setdefault(row.parent, []).append((row, postal))
    for parent, parts in cities.items():
        weights = [max(row.population, 1) for row, _ in parts]
        total = sum(weights)
        first = parts[0][0]
        match = _ARRONDISSEMENT.match(first.name)
        name = first.city or (match.group(1) if match else first.name)
        code = parent if parent[:1].isdigit() else _CITY_CODES.get(parent, "")
        postal = sorted({p for _, codes in parts for p in codes})
        places.append(
            Place(
                code,
                name,
                tuple(postal),
                first.department,
                sum(row.lat * w for (row, _), w in zip(parts, weights, strict=True)) / total,
                sum(row.lng * w for (row, _), w in zip(parts, weights, strict=True)) / total,
                sum(row.population for row, _ in parts),
                "ville",
            )
        )
    return places


def _name_keys(place: Place) -> set[str]:
    key = normalize_place(place.name)
    keys = {key}
    bare = _without_article(key)
    if bare:
        keys.add(bare)
    if place.kind == "arrondissement":
        match = _ARRONDISSEMENT.match(key)
        if match:
            city, number = match.group(1), match.group(2)
            suffix = "er" if number == "1" else "e"
            keys.update({f"{city} {number}", f"{city} {number}{suffix}", f"{city} {number}eme"})
    return keys


_CODE = re.compile(r"^(?:\d{5}|2[ab]\d{3})$", re.IGNORECASE)
_QUALIFIED = re.compile(r"^(.*?)[\s,]*\(?\s*(\d{5}|\d{2,3}|2[ab])\s*\)?$", re.IGNORECASE)
_LEADING_POSTAL = re.compile(r"^(\d{5})\s+(.+)$")


class Gazetteer:
    """Places by name, postal code and INSEE code (see the module docstring for the rules)."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.places: tuple[Place, ...] = tuple(places)
        self._by_name: dict[str, list[Place]] = {}
        self._by_postal: dict[str, list[Place]] = {}
        self._by_insee: dict[str, list[Place]] = {}
        for place in self.places:
            for key in _name_keys(place):
                self._by_name.setdefault(key, []).append(place)
            if place.kind != "ville":  # a postal code names an arrondissement, not the whole city
                for code in place.postal_codes:
                    self._by_postal.setdefault(code, []).append(place)
            if place.insee:
                self._by_insee.setdefault(place.insee.upper(), []).append(place)
        for table in (self._by_name, self._by_postal, self._by_insee):
            for found in table.values():
                found.sort(key=_rank)

    def __len__(self) -> int:
        return len(self.places)

    def by_insee(self, code: str) -> Place | None:
        """The commune of an INSEE code (not its communes déléguées)."""
        found = self._by_insee.get(code.strip().upper(), [])
        return next((p for p in found if p.kind != "deleguee"), found[0] if found else None)

    def find(self, text: str) -> list[Place]:
        """The places a person may mean by ``text``, the most likely first; empty when none."""
        raw = " ".join(text.split())
        if not raw:
            return []
        if _CODE.match(raw):
            code = raw.upper()
            return list(self._by_postal.get(code, ())) or list(self._by_insee.get(code, ()))
        leading = _LEADING_POSTAL.match(raw)  # "69003 Lyon"
        if leading:
            raw = f"{leading.group(2)} {leading.group(1)}"
        found = self._by_name.get(normalize_place(raw))
        if found:
            return list(found)
        qualified = _QUALIFIED.match(raw)  # "Saint-Denis (974)", "Lyon 69003"
        if qualified and qualified.group(1).strip():
            named = self._by_name.get(normalize_place(qualified.group(1)), [])
            qualifier = qualified.group(2).upper()
            if len(qualifier) == 5:
                chosen = [p for p in named if qualifier in p.postal_codes]
            else:
                chosen = [p for p in named if p.department.upper() == qualifier.zfill(2)]
            if chosen:
                return chosen
        return []


def _rank(place: Place) -> tuple[int, int, str]:
    """Communes before their communes déléguées, then the most populous, then by name."""
    return (1 if place.kind == "deleguee" else 0, -place.population, place.name)


def default_communes_csv() -> Path:
    """The commune extract shipped in the package (about a hundred communes)."""
    return Path(__file__).resolve().parents[1] / "demo" / "data" / "communes.csv"


@functools.lru_cache(maxsize=4)
def load_gazetteer(path: Path | None = None) -> Gazetteer:
    """The gazetteer of a commune file (the package extract by default), read once per path."""
    source = path or default_communes_csv()
    return Gazetteer(parse_communes(source.read_text(encoding="utf-8")))
