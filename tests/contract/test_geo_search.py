"""``Location?near=`` on every backend (memory, SQLite, PostgreSQL): radius, units, order, paging.

The distances the assertions rely on are computed with :func:`hygie.domain.geo.haversine_km`, so
each radius sits between two known distances rather than on a guess.
"""

from __future__ import annotations

from typing import Any

import pytest

from hygie.domain.geo import haversine_km
from hygie.fhir.indexing import extract_index
from hygie.fhir.resources import stamp
from hygie.fhir.search import parse_search
from hygie.ports import ResourceStore, WriteOp

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000_000_000  # microseconds: 2023-11-14T22:13:20Z
T = 1_000_000  # one second

LYON = (45.7640, 4.8357)
VILLEURBANNE = (45.7719, 4.8902)
SAINT_ETIENNE = (45.4397, 4.3872)
PARIS = (48.8566, 2.3522)
SUVA = (-18.1248, 178.4501)  # Fiji, west of the antimeridian
TAVEUNI_EAST = (-16.80, -179.95)  # just east of the antimeridian
NEAR_POLE = (89.95, 120.0)


async def put(store: ResourceStore, resource: dict[str, Any], version: int, ts: int) -> None:
    """Write one version as the FHIR service would (content stamped, index extracted)."""
    rtype, rid = resource["resourceType"], resource["id"]
    op = WriteOp(rtype, rid, version, ts, stamp(resource, rid, version, ts), extract_index(resource), "PUT")
    async with store.transaction() as tx:
        await tx.write(op)


async def delete(store: ResourceStore, rtype: str, id: str, ts: int) -> None:
    async with store.transaction() as tx:
        current = await tx.read_for_update(rtype, id)
        assert current is not None
        await tx.write(
            WriteOp(rtype, id, current.version + 1, ts, current.content, None, "DELETE", deleted=True)
        )


def location(id: str, position: tuple[float, float] | None, name: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Location", "id": id, "name": name or id}
    if position is not None:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    return resource


async def ids(store: ResourceStore, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    page = await store.search(parse_search(rtype, params, max_count=1000), now_us=NOW)
    return [r.id for r in page.resources]


def near(point: tuple[float, float], distance: str = "", unit: str = "") -> str:
    text = f"{point[0]}|{point[1]}"
    if distance:
        text += f"|{distance}"
    if unit:
        text += f"|{unit}"
    return text


@pytest.fixture
async def places(store: ResourceStore) -> ResourceStore:
    for i, (id, point) in enumerate(
        (
            ("paris", PARIS),
            ("saint-etienne", SAINT_ETIENNE),
            ("villeurbanne", VILLEURBANNE),
            ("lyon", LYON),
            ("nowhere", None),
        )
    ):
        await put(store, location(id, point), 1, NOW + i * T)
    return store


async def test_near_keeps_what_is_within_the_radius_nearest_first(places: ResourceStore) -> None:
    to_villeurbanne = haversine_km(*LYON, *VILLEURBANNE)
    to_saint_etienne = haversine_km(*LYON, *SAINT_ETIENNE)
    assert 4 < to_villeurbanne < 5 and 49 < to_saint_etienne < 52
    assert await ids(places, "Location", [("near", near(LYON, "10", "km"))]) == ["lyon", "villeurbanne"]
    # the same places from the other end: the order follows the distance, not the storage order
    assert await ids(places, "Location", [("near", near(VILLEURBANNE, "10", "km"))]) == [
        "villeurbanne",
        "lyon",
    ]
    assert await ids(places, "Location", [("near", near(LYON, "60", "km"))]) == [
        "lyon",
        "villeurbanne",
        "saint-etienne",
    ]
    assert await ids(places, "Location", [("near", near(LYON, "1000"))]) == [
        "lyon",
        "villeurbanne",
        "saint-etienne",
        "paris",
    ]
    # a radius just short of Villeurbanne leaves it out: the circle is exact, not the box
    assert await ids(places, "Location", [("near", near(LYON, f"{to_villeurbanne - 0.01:.3f}"))]) == ["lyon"]


async def test_units_kilometres_metres_and_miles(places: ResourceStore) -> None:
    to_villeurbanne_m = haversine_km(*LYON, *VILLEURBANNE) * 1000
    inside, outside = f"{to_villeurbanne_m + 20:.0f}", f"{to_villeurbanne_m - 20:.0f}"
    assert await ids(places, "Location", [("near", near(LYON, inside, "m"))]) == ["lyon", "villeurbanne"]
    assert await ids(places, "Location", [("near", near(LYON, outside, "m"))]) == ["lyon"]
    # 3 miles = 4.83 km: Villeurbanne (4.3 km) is in; 2.5 miles = 4.02 km: it is out
    assert await ids(places, "Location", [("near", near(LYON, "3", "[mi_i]"))]) == ["lyon", "villeurbanne"]
    assert await ids(places, "Location", [("near", near(LYON, "2.5", "[mi_i]"))]) == ["lyon"]
    # no unit: kilometres; no distance: the server's default (50 km)
    assert await ids(places, "Location", [("near", near(LYON, "5"))]) == ["lyon", "villeurbanne"]
    assert await ids(places, "Location", [("near", near(LYON))]) == await ids(
        places, "Location", [("near", near(LYON, "50", "km"))]
    )


async def test_positions_without_coordinates_and_missing(places: ResourceStore) -> None:
    assert await ids(places, "Location", [("near:missing", "true")]) == ["nowhere"]
    assert sorted(await ids(places, "Location", [("near:missing", "false")])) == [
        "lyon",
        "paris",
        "saint-etienne",
        "villeurbanne",
    ]


async def test_pages_follow_the_distance_order(places: ResourceStore) -> None:
    params = [("near", near(PARIS, "1000")), ("_count", "1")]
    seen: list[str] = []
    page = await places.search(parse_search("Location", params), now_us=NOW)
    seen.extend(r.id for r in page.resources)
    while page.next_cursor:
        page = await places.search(
            parse_search("Location", [*params, ("_cursor", page.next_cursor)]), now_us=NOW
        )
        seen.extend(r.id for r in page.resources)
    assert seen == ["paris", "lyon", "villeurbanne", "saint-etienne"]


async def test_an_explicit_sort_comes_first_and_the_distance_breaks_ties(places: ResourceStore) -> None:
    await put(places, location("lyon-bis", (45.7700, 4.8400), name="lyon"), 1, NOW + 10 * T)
    assert await ids(places, "Location", [("near", near(LYON, "60")), ("_sort", "-name")]) == [
        "villeurbanne",
        "saint-etienne",
        "lyon",
        "lyon-bis",
    ]


async def test_near_with_other_criteria_updates_and_deletions(places: ResourceStore) -> None:
    assert await ids(places, "Location", [("near", near(LYON, "60")), ("name", "saint")]) == ["saint-etienne"]
    # a moved location is found where it is now, a deleted one nowhere
    await put(places, location("villeurbanne", PARIS), 2, NOW + 20 * T)
    await delete(places, "Location", "saint-etienne", NOW + 21 * T)
    assert await ids(places, "Location", [("near", near(LYON, "60"))]) == ["lyon"]
    assert await ids(places, "Location", [("near", near(PARIS, "1"))]) == ["paris", "villeurbanne"]


async def test_across_the_antimeridian_and_near_a_pole(store: ResourceStore) -> None:
    await put(store, location("suva", SUVA), 1, NOW)
    await put(store, location("taveuni-east", TAVEUNI_EAST), 1, NOW + T)
    await put(store, location("pole", NEAR_POLE), 1, NOW + 2 * T)
    await put(store, location("greenwich", (51.4779, 0.0)), 1, NOW + 3 * T)
    # from 179.9°E, a point at 179.95°W is 17 km away across the date line
    point = (-16.80, 179.90)
    assert haversine_km(*point, *TAVEUNI_EAST) < 20
    assert await ids(store, "Location", [("near", near(point, "20"))]) == ["taveuni-east"]
    assert await ids(store, "Location", [("near", near(point, "300"))]) == ["taveuni-east", "suva"]
    # near the pole every longitude is close: a point at 120°E from 89.9°N, 60°W
    assert await ids(store, "Location", [("near", near((89.9, -60.0), "30"))]) == ["pole"]


async def test_a_chain_reaches_the_roles_of_nearby_locations(places: ResourceStore) -> None:
    for i, (role, where) in enumerate((("at-lyon", "lyon"), ("at-paris", "paris"), ("nowhere", None))):
        resource: dict[str, Any] = {"resourceType": "PractitionerRole", "id": role}
        if where:
            resource["location"] = [{"reference": f"Location/{where}"}]
        await put(places, resource, 1, NOW + (30 + i) * T)
    assert await ids(places, "PractitionerRole", [("location.near", near(LYON, "20"))]) == ["at-lyon"]
    assert await ids(places, "PractitionerRole", [("location.near", near(PARIS, "20"))]) == ["at-paris"]
