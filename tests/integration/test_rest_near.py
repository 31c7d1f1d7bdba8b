"""``Location?near=`` over HTTP: nearest first, the self link, and bad values refused with their path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

FHIR_JSON = {"Content-Type": "application/fhir+json"}


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    r = await client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
    )
    assert r.status_code in (200, 201), r.text


@pytest.fixture
async def locations(client: httpx.AsyncClient) -> None:
    for id, lat, lng in (
        ("marseille", 43.2965, 5.3698),
        ("aix", 43.5297, 5.4474),
        ("toulon", 43.1242, 5.9280),
    ):
        await put(
            client,
            {"resourceType": "Location", "id": id, "position": {"latitude": lat, "longitude": lng}},
        )


async def test_nearest_first_over_http(client: httpx.AsyncClient, locations: None) -> None:
    r = await client.get("/fhir/Location", params={"near": "43.53|5.45|100|km"})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["aix", "marseille", "toulon"]
    assert "near=43.53" in next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    r = await client.get("/fhir/Location", params={"near": "43.53|5.45|30000|m"})
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["aix", "marseille"]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("43.5", "latitude|longitude"),
        ("north|5.45|10|km", "latitude must be a number"),
        ("95|5.45|10|km", "latitude must be between"),
        ("43.5|181|10|km", "longitude must be between"),
        ("43.5|5.45|-3|km", "must not be negative"),
        ("43.5|5.45|ten|km", "distance must be a number"),
        ("43.5|5.45|10|furlong", "unit must be km, m or [mi_i]"),
        ("43.5|5.45|10|km|extra", "latitude|longitude"),
        ("43.5|5.45|10|km,44|5|10|km", "takes one position"),
        ("nan|5.45|10|km", "finite"),
    ],
)
async def test_bad_values_are_refused_with_their_expression(
    client: httpx.AsyncClient, value: str, said: str
) -> None:
    r = await client.get("/fhir/Location", params={"near": value})
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["near"]
    assert said in issue["diagnostics"]


async def test_a_modifier_other_than_missing_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Location", params={"near:exact": "43.5|5.45|10|km"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["near:exact"]


async def test_the_capability_statement_declares_near(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/metadata")
    resources = r.json()["rest"][0]["resource"]
    location = next(x for x in resources if x["type"] == "Location")
    near = next(p for p in location["searchParam"] if p["name"] == "near")
    assert near["type"] == "special"
