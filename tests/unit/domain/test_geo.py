"""Distances, bounding boxes and the gazetteer (``domain/geo.py``)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from hygie.domain.geo import (
    Gazetteer,
    bounding_box,
    chord2,
    chord2_for_km,
    haversine_km,
    km_for_chord2,
    load_gazetteer,
    normalize_place,
    parse_communes,
    unit_vector,
)

SHARED_COMMUNES = (
    Path(__file__).resolve().parents[4] / "shared" / "data" / "fr" / "communes" / "communes-geo-2024.csv"
)
if not SHARED_COMMUNES.is_file():
    SHARED_COMMUNES = Path("/work/shared/data/fr/communes/communes-geo-2024.csv")


def test_haversine_on_known_distances() -> None:
    assert haversine_km(48.8566, 2.3522, 48.8566, 2.3522) == 0
    # Paris – Lyon: about 392 km as the crow flies; a quarter of a meridian: 10 007.5 km
    assert 390 < haversine_km(48.8566, 2.3522, 45.7640, 4.8357) < 394
    assert haversine_km(0, 0, 90, 0) == pytest.approx(math.pi / 2 * 6371.0088)
    # symmetric, and across the antimeridian the short way
    assert haversine_km(-16.8, 179.9, -16.8, -179.95) < 20


def test_the_squared_chord_orders_and_thresholds_as_the_distance_does() -> None:
    rng = random.Random(7)
    centre = (45.76, 4.84)
    here = unit_vector(*centre)
    points = [(rng.uniform(-89, 89), rng.uniform(-180, 180)) for _ in range(300)]
    by_distance = sorted(points, key=lambda p: haversine_km(*centre, *p))
    by_chord = sorted(points, key=lambda p: chord2(here, unit_vector(*p)))
    assert by_distance == by_chord
    for p in points:
        d = haversine_km(*centre, *p)
        assert km_for_chord2(chord2(here, unit_vector(*p))) == pytest.approx(d, abs=1e-6)
        assert chord2(here, unit_vector(*p)) <= chord2_for_km(d + 1e-6)
        assert chord2(here, unit_vector(*p)) > chord2_for_km(d - 1e-3)
    assert chord2_for_km(30_000) == 4.0


@pytest.mark.parametrize(
    ("lat", "lng", "km"),
    [
        (45.76, 4.84, 10),
        (-16.8, 179.9, 300),
        (-16.8, -179.9, 300),
        (89.9, -60, 30),
        (-89.5, 10, 100),
        (0, 0, 5000),
    ],
)
def test_the_box_holds_the_whole_circle(lat: float, lng: float, km: float) -> None:
    box = bounding_box(lat, lng, km)
    rng = random.Random(f"{lat}{lng}{km}")
    inside = 0
    for _ in range(2000):
        # points of the circle's edge and inside, in every direction
        bearing, distance = rng.uniform(0, 2 * math.pi), km * math.sqrt(rng.random())
        angle = distance / 6371.0088
        phi, lmb = math.radians(lat), math.radians(lng)
        phi2 = math.asin(
            math.sin(phi) * math.cos(angle) + math.cos(phi) * math.sin(angle) * math.cos(bearing)
        )
        lmb2 = lmb + math.atan2(
            math.sin(bearing) * math.sin(angle) * math.cos(phi),
            math.cos(angle) - math.sin(phi) * math.sin(phi2),
        )
        p_lat, p_lng = math.degrees(phi2), (math.degrees(lmb2) + 540) % 360 - 180
        assert haversine_km(lat, lng, p_lat, p_lng) <= km + 1e-6
        assert box.contains(p_lat, p_lng), (p_lat, p_lng, box)
        inside += 1
    assert inside == 2000


def test_a_box_across_the_antimeridian_has_two_longitude_ranges() -> None:
    box = bounding_box(-16.8, 179.9, 50)
    assert len(box.lng_ranges) == 2
    assert box.contains(-16.8, -179.8) and box.contains(-16.8, 179.5) and not box.contains(-16.8, 0)
    assert bounding_box(89.9, 0, 50).lng_ranges == ((-180.0, 180.0),)


def test_place_names_are_compared_without_accents_case_hyphens_or_abbreviations() -> None:
    assert normalize_place("Saint-Étienne") == normalize_place("st etienne") == "saint etienne"
    assert normalize_place("L'Haÿ-les-Roses") == "l hay les roses"
    assert normalize_place("  Ste-Foy-lès-Lyon ") == "sainte foy les lyon"


EXTRACT = """# a comment line
insee,name,city,postal_code,department,department_name,region,region_name,lat,lng,population
56260,Vannes,Vannes,56000,56,Morbihan,53,Bretagne,47.6586,-2.7599,54000
69383,Lyon 3e Arrondissement,Lyon,69003,69,Rhône,84,ARA,45.75141,4.86848,100000
69387,Lyon 7e Arrondissement,Lyon,69007,69,Rhône,84,ARA,45.73211,4.83931,50000
72181,Le Mans,Le Mans,72000,72,Sarthe,52,PDL,47.9960,0.1966,145000
"""


def test_the_package_extract_format() -> None:
    gazetteer = Gazetteer(parse_communes(EXTRACT))
    assert [p.label for p in gazetteer.find("vannes")] == ["Vannes (56000)"]
    assert [p.label for p in gazetteer.find("56000")] == ["Vannes (56000)"]
    assert [p.label for p in gazetteer.find("56260")] == ["Vannes (56000)"]  # INSEE code
    assert [p.insee for p in gazetteer.find("Mans")] == ["72181"]  # without its article
    # the city listed by arrondissement: one place at the weighted centre, and each arrondissement
    [lyon] = gazetteer.find("Lyon")
    assert (lyon.insee, lyon.kind, lyon.postal_codes, lyon.population) == (
        "69123",
        "ville",
        ("69003", "69007"),
        150000,
    )
    assert lyon.lat == pytest.approx((45.75141 * 2 + 45.73211) / 3)
    assert [p.insee for p in gazetteer.find("Lyon 3e")] == ["69383"]
    assert [p.insee for p in gazetteer.find("lyon 7")] == ["69387"]
    assert [p.insee for p in gazetteer.find("69007")] == ["69387"]  # a postal code: the arrondissement
    assert gazetteer.find("Lyonn") == [] and gazetteer.find("") == [] and gazetteer.find("99999") == []


def test_an_unknown_file_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown commune file"):
        parse_communes("a,b,c\n1,2,3\n")


def test_the_default_gazetteer_is_the_package_extract() -> None:
    gazetteer = load_gazetteer()
    assert 100 <= len(gazetteer) <= 120
    assert gazetteer.find("Ajaccio")[0].insee == "2A004"
    assert gazetteer.find("Paris")[0].kind == "ville"


@pytest.mark.skipif(not SHARED_COMMUNES.is_file(), reason="shared commune list not found")
def test_the_full_insee_list() -> None:
    gazetteer = load_gazetteer(SHARED_COMMUNES)
    assert len(gazetteer) > 34_000
    [lyon] = gazetteer.find("Lyon")
    assert lyon.insee == "69123" and len(lyon.postal_codes) == 9
    # homonyms: the most populous first; a department or a postal code picks one
    assert [p.department for p in gazetteer.find("Saint-Denis")][:2] == ["974", "93"]
    assert [p.insee for p in gazetteer.find("Saint-Denis (93)")] == ["93066"]
    assert [p.insee for p in gazetteer.find("Saint-Denis 97400")] == ["97411"]
    assert [p.insee for p in gazetteer.find("93200 Saint-Denis")] == ["93066"]
    assert gazetteer.find("2A004")[0].name == "Ajaccio"
    assert gazetteer.find("st etienne")[0].insee == "42218"
    # a postal code shared by villages gives them all, the most populous first
    villages = gazetteer.find("60390")
    assert len(villages) > 5 and villages == sorted(villages, key=lambda p: -p.population)
    # a commune déléguée keeps its old name, and shares its commune nouvelle's INSEE code
    [bellegarde] = gazetteer.find("Bellegarde-sur-Valserine")
    assert (bellegarde.kind, bellegarde.insee) == ("deleguee", "01033")
    commune = gazetteer.by_insee("01033")
    assert commune is not None and commune.kind == "commune" and commune.name == "Valserhône"
