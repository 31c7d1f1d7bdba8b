"""Small helpers on resource JSON: parsing bodies, ids, meta stamping, instants, summaries."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson

from hygie.fhir.definitions import load_bundle_resources, resource_types
from hygie.fhir.outcome import InvalidRequest, NotFound

__all__ = [
    "ID_RE",
    "etag",
    "http_date",
    "instant",
    "new_id",
    "parse_json",
    "require_type",
    "stamp",
    "summary_elements",
]

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def new_id() -> str:
    return str(uuid.uuid4())


def require_type(resource_type: str) -> str:
    if resource_type not in resource_types():
        raise NotFound(f"unknown resource type {resource_type!r}", code="not-supported")
    return resource_type


def require_id(value: str, expression: str = "id") -> str:
    if not ID_RE.match(value):
        raise InvalidRequest(f"invalid id {value!r}: 1 to 64 of A-Z a-z 0-9 - .", expression=expression)
    return value


def parse_json(body: bytes | None) -> dict[str, Any]:
    """Parse a request body holding one JSON object."""
    if not body:
        raise InvalidRequest("the request has no body", code="required")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}", code="structure") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object (a FHIR resource)", code="structure")
    if not isinstance(data.get("resourceType"), str):
        raise InvalidRequest("the body has no resourceType", code="required", expression="resourceType")
    return data


def instant(micros: int) -> str:
    """FHIR instant (UTC, microseconds) for a time in microseconds since the epoch."""
    dt = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def http_date(micros: int) -> str:
    return format_datetime(datetime.fromtimestamp(micros // 1_000_000, tz=UTC), usegmt=True)


def etag(version: int) -> str:
    return f'W/"{version}"'


def stamp(resource: dict[str, Any], id: str, version: int, last_updated: int) -> bytes:
    """Serialise ``resource`` with its id and meta.versionId/lastUpdated set by the server."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(last_updated)
    out: dict[str, Any] = {"resourceType": resource["resourceType"], "id": id, "meta": meta}
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return orjson.dumps(out)


def _top_elements(resource_type: str, wanted: Callable[[dict[str, Any]], bool]) -> frozenset[str]:
    """Top-level element names (choice types expanded) of a type whose definition ``wanted`` keeps."""
    for sd in load_bundle_resources("profiles-resources.json"):
        if sd.get("resourceType") == "StructureDefinition" and sd.get("id") == resource_type:
            names: set[str] = {"resourceType", "id", "meta"}
            for element in sd.get("snapshot", {}).get("element", []):
                parts = str(element.get("path", "")).split(".")
                if len(parts) != 2 or not wanted(element):
                    continue
                name = parts[1]
                if name.endswith("[x]"):
                    base = name[:-3]
                    for t in element.get("type", []):
                        code = t.get("code", "")
                        names.add(base + code[:1].upper() + code[1:])
                else:
                    names.add(name)
            return frozenset(names)
    return frozenset({"resourceType", "id", "meta"})


@functools.cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level elements marked isSummary (or mandatory) in the R4 StructureDefinition."""
    return _top_elements(resource_type, lambda e: bool(e.get("isSummary")) or e.get("min", 0) > 0)


@functools.cache
def mandatory_elements(resource_type: str) -> frozenset[str]:
    """Top-level elements with a minimum cardinality of 1 (kept by ``_summary=text``)."""
    return _top_elements(resource_type, lambda e: e.get("min", 0) > 0)


SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def _kept(key: str, keep: frozenset[str] | set[str]) -> bool:
    if key in keep or key in ("resourceType", "id", "meta"):
        return True
    # "value" in _elements keeps the present choice variant (valueQuantity, valueString…)
    return any(key.startswith(name) and key[len(name) : len(name) + 1].isupper() for name in keep)


def subset(resource: dict[str, Any], keep: frozenset[str] | set[str]) -> dict[str, Any]:
    """Keep only ``keep`` top-level elements and mark the result SUBSETTED."""
    out = {k: v for k, v in resource.items() if _kept(k, keep)}
    meta = dict(out.get("meta") or {})
    tags = list(meta.get("tag") or [])
    tags.append(SUBSETTED)
    meta["tag"] = tags
    out["meta"] = meta
    return out
