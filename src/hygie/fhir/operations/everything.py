"""``Patient/[id]/$everything`` (http://hl7.org/fhir/R4/patient-operation-everything.html).

Returns the Patient, every resource of its patient compartment (the R4 CompartmentDefinition
drives membership through the search index), and the resources they reference through a search
parameter that lie outside the compartment (practitioners, organisations, medications,
locations…), page by page in store order. Parameters: ``_since`` (only resources updated since), ``_type`` (comma-separated types),
``_count`` (page size, capped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from hygie.fhir import resources as res
from hygie.fhir.definitions import resource_types
from hygie.fhir.outcome import Gone, InvalidRequest, NotFound
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.searching import since_of
from hygie.fhir.targets import target_of

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService
    from hygie.ports import ResourceKey

__all__ = ["patient_everything"]


async def patient_everything(service: FhirService, request: FhirRequest, patient_id: str) -> FhirResponse:
    res.require_id(patient_id)
    service.scoped(request, "operation", "Patient")  # 403 whatever the id, as a read is
    params = dict(request.query)
    patient = await service.store.read("Patient", patient_id)
    if patient is None:
        raise NotFound(f"Patient/{patient_id} is not known")
    await service.require(
        request, "operation", "Patient", patient_id, target=target_of(patient), detail="$everything"
    )
    if patient.deleted:
        raise Gone(f"Patient/{patient_id} was deleted")
    types: list[str] | None = None
    if params.get("_type"):
        types = [t.strip() for t in params["_type"].split(",") if t.strip()]
        unknown = [t for t in types if t not in resource_types()]
        if unknown:
            raise InvalidRequest(f"unknown resource types in _type: {', '.join(unknown)}", expression="_type")
    since = since_of(params.get("_since") or None)
    try:
        count = int(params.get("_count", service.limits.everything_page))
    except ValueError as exc:
        raise InvalidRequest("_count must be an integer", expression="_count") from exc
    count = max(1, min(count, service.limits.everything_page))
    try:
        after = int(params.get("_cursor", "0"))
    except ValueError as exc:
        raise InvalidRequest("invalid paging cursor", expression="_cursor") from exc

    rows = await service.store.compartment(patient_id, types, since, after, count + 1)
    has_more = len(rows) > count
    rows = rows[:count]
    next_after = rows[-1].rid if rows else after
    # the record as the caller may see it: documents hidden from them, scopes, categories…
    rows = await service.visible(request, rows, "$everything")
    members = {(r.resource_type, r.id) for r in rows}
    # what the page references, from the search index (no re-parsing of the stored documents)
    referenced: set[ResourceKey] = set(await service.store.targets_of([r.rid for r in rows]))
    outside = sorted(k for k in referenced - members if types is None or k[0] in types)
    extra = await service.store.read_many(outside) if outside else []
    extra = await service.visible(request, extra, "$everything")
    entries = [
        {
            "fullUrl": service.full_url(r.resource_type, r.id),
            "resource": orjson.Fragment(r.content),
            "search": {"mode": "match"},
        }
        for r in rows
    ]
    entries.extend(
        {
            "fullUrl": service.full_url(r.resource_type, r.id),
            "resource": orjson.Fragment(r.content),
            "search": {"mode": "include"},
        }
        for r in extra
    )
    base = f"{service.base_url}/Patient/{patient_id}/$everything"
    kept = [(k, v) for k, v in request.query if k != "_cursor"]
    links = [{"relation": "self", "url": base + (f"?{urlencode(request.query)}" if request.query else "")}]
    if has_more:
        links.append(
            {"relation": "next", "url": f"{base}?{urlencode([*kept, ('_cursor', str(next_after))])}"}
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": res.new_id(),
        "meta": {"lastUpdated": res.instant(service.clock())},
        "type": "searchset",
        "link": links,
        "entry": entries,
    }
    if not has_more and after == 0:
        bundle["total"] = len(rows)
    return FhirResponse(200, bundle)
