"""Every official HL7 R4 example: created, read back unchanged, found by its own search values.

For each example, the search values are taken from the index rows the server extracted; each
becomes a query in FHIR syntax (token ``system|code``, ``:exact`` strings, ``ge`` dates,
references, quantities with units, composites…), and the example must be in the results. That
ties the indexer, the query parser and the SQL compiler together on real data, on both backends.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest

from hygie.domain.access import Caller
from hygie.fhir.index_model import DATE_MAX, DATE_MIN
from hygie.fhir.indexing import extract_index
from hygie.fhir.interactions import FhirService
from hygie.fhir.request import FhirRequest
from hygie.fhir.resources import instant
from hygie.fhir.router import route

OPERATOR = Caller.operator("tests")

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _examples(shared: Path) -> list[Path]:
    folder = shared / "fhir-r4-examples"
    with (folder / "index.csv").open() as f:
        return [folder / row["file"] for row in csv.DictReader(f)]


def esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def _num(v: float) -> str:
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _date_query(low: int, high: int) -> str | None:
    if low <= DATE_MIN and high >= DATE_MAX:
        return None
    if low <= DATE_MIN:
        return "le" + instant(high)
    return "ge" + instant(low)


def queries_for(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """One (name, value) query per distinct index row of the resource."""
    entries = extract_index(resource)
    out: set[tuple[str, str]] = set()
    for param, system, code, _text in entries.tokens:
        if code is None:
            continue
        if param.endswith(":of-type"):
            continue  # its value lives in text; covered by the unit tests
        out.add((param, f"{esc(system)}|{esc(code)}" if system else esc(code)))
    for param, _norm, exact in entries.strings:
        if exact.strip():
            out.add((f"{param}:exact", esc(exact)))
    for param, low, high in entries.dates:
        q = _date_query(low, high)
        if q:
            out.add((param, q))
    for param, rtype, rid, url in entries.references:
        if rtype and rid:
            out.add((param, f"{rtype}/{rid}"))
        elif url:
            out.add((param, esc(url)))
    for param, value, system, code, unit, _cv, _cc in entries.quantities:
        unit_part = f"|{esc(system or '')}|{esc(code or unit or '')}" if (code or unit) else ""
        out.add((param, _num(value) + unit_part))
    for param, value in entries.numbers:
        out.add((param, _num(value)))
    for param, value in entries.uris:
        out.add((param, esc(value)))
    for param, s1, c1, s2, c2, n2, lo2, hi2, st2 in entries.composites:
        if c1 is None:
            continue
        first = f"{esc(s1)}|{esc(c1)}" if s1 else esc(c1)
        if n2 is not None:
            second = _num(n2)
        elif c2 is not None:
            second = f"{esc(s2)}|{esc(c2)}" if s2 else esc(c2)
        elif lo2 is not None and hi2 is not None:
            d = _date_query(lo2, hi2)
            if d is None:
                continue
            second = d
        elif st2:
            second = esc(st2)
        else:
            continue
        out.add((param, f"{first}${second}"))
    return sorted(out)


async def test_every_example_round_trips_and_is_found(service: FhirService, shared_data: Path) -> None:
    failures: list[str] = []
    loaded: list[dict[str, Any]] = []
    for path in _examples(shared_data):
        resource = orjson.loads(path.read_bytes())
        rtype, rid = resource["resourceType"], resource.get("id")
        if rid is None:  # e.g. parameters-example has no id: create it
            req = FhirRequest("POST", rtype, [], {}, resource=dict(resource), caller=OPERATOR)
        else:
            req = FhirRequest("PUT", f"{rtype}/{rid}", [], {}, resource=dict(resource), caller=OPERATOR)
        try:
            response = await route(service, req)
        except Exception as exc:
            failures.append(f"create {path.name}: {exc}")
            continue
        if response.status not in (200, 201):
            failures.append(f"create {path.name}: status {response.status}")
            continue
        rid = rid or orjson.loads(response.resource_bytes or b"{}")["id"]
        got = orjson.loads((await route(service, FhirRequest("GET", f"{rtype}/{rid}", caller=OPERATOR))).body)  # type: ignore[arg-type]
        meta = got.pop("meta")
        original = {"id": rid, **resource}
        original_meta = dict(original.pop("meta", {}) or {})
        if got != original:
            failures.append(f"read back {path.name}: content differs")
        for key, value in original_meta.items():
            if key not in ("versionId", "lastUpdated") and meta.get(key) != value:
                failures.append(f"read back {path.name}: meta.{key} differs")
        loaded.append({**resource, "id": rid})
    assert not failures, "\n".join(failures[:40])
    searched = 0
    for resource in loaded:
        rtype, rid = resource["resourceType"], resource["id"]
        for name, value in queries_for(resource):
            searched += 1
            req = FhirRequest(
                "GET",
                rtype,
                [(name, value), ("_count", "200"), ("_elements", "id")],
                {"prefer": "handling=strict"},
                caller=OPERATOR,
            )
            try:
                response = await route(service, req)
            except Exception as exc:
                failures.append(f"{rtype}/{rid} {name}={value}: {exc}")
                continue
            body = response.body
            assert isinstance(body, dict)
            found = {
                e["resource"]["id"]
                for e in body.get("entry", [])
                if e.get("search", {}).get("mode") == "match"
            }
            if rid not in found:
                failures.append(f"{rtype}/{rid} not found by {name}={value}")
    assert not failures, f"{len(failures)} of {searched} searches failed:\n" + "\n".join(failures[:60])
    assert searched > 3000
