"""Search and history interactions: run a query through the store and build the Bundle.

Paging is keyset-based: the ``next``/``previous`` links carry the original parameters plus an
opaque ``_cursor`` holding the sort values of the boundary row and a snapshot bound, so pages
neither repeat nor skip resources while others create or delete resources.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from hygie.fhir import resources as res
from hygie.fhir.outcome import InvalidRequest, NotFound, operation_outcome
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.search import Include, SearchQuery
from hygie.fhir.targets import target_of
from hygie.ports import ResourceKey, StoredResource

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService

__all__ = ["history", "run_search", "search", "since_of"]


def _entry(service: FhirService, stored: StoredResource, mode: str | None, body: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": service.full_url(stored.resource_type, stored.id), "resource": body}
    if mode:
        entry["search"] = {"mode": mode}
    return entry


def _shape(stored: StoredResource, query: SearchQuery) -> Any:
    """The resource as the Bundle carries it: raw JSON, or a subset for _summary/_elements."""
    if query.summary == "true":
        resource = orjson.loads(stored.content)
        return res.subset(resource, res.summary_elements(stored.resource_type))
    if query.summary == "data":
        resource = orjson.loads(stored.content)
        resource.pop("text", None)
        return res.subset(resource, set(resource))
    if query.summary == "text":
        resource = orjson.loads(stored.content)
        return res.subset(resource, {"text", *res.mandatory_elements(stored.resource_type)})
    if query.elements:
        resource = orjson.loads(stored.content)
        return res.subset(resource, set(query.elements))
    return orjson.Fragment(stored.content)


def _self_link(service: FhirService, path: str, query: SearchQuery, cursor: str | None = None) -> str:
    params = list(query.used)
    if cursor:
        params.append(("_cursor", cursor))
    qs = urlencode(params)
    return f"{service.base_url}/{path}" + (f"?{qs}" if qs else "")


async def _includes(
    service: FhirService, request: FhirRequest, query: SearchQuery, matches: list[StoredResource]
) -> tuple[list[StoredResource], list[Any]]:
    """Resolve _include and _revinclude (with :iterate), bounded by ``max_includes``."""
    seen: set[ResourceKey] = {(r.resource_type, r.id) for r in matches}
    found: list[StoredResource] = []
    issues: list[Any] = []
    frontier = matches
    limit = service.limits.max_includes
    for round_ in range(service.limits.max_include_iterations + 1):
        new: list[StoredResource] = []
        for inc in [*query.includes, *query.revincludes]:
            if round_ > 0 and not inc.iterate:
                continue
            rows = await _one_include(service, inc, frontier, seen, limit - len(found) - len(new))
            # what the caller may not read is left out, as if it did not exist
            new.extend(await service.visible(request, rows, "_include"))
            if len(found) + len(new) > limit:  # more than the bound: cut and say so
                issues.append(
                    {
                        "severity": "warning",
                        "code": "too-costly",
                        "diagnostics": f"included resources were truncated at {limit}",
                    }
                )
                found.extend(new[: max(0, limit - len(found))])
                return found, issues
        if not new:
            break
        found.extend(new)
        frontier = new
        if not any(i.iterate for i in [*query.includes, *query.revincludes]):
            break
    return found, issues


async def _one_include(
    service: FhirService, inc: Include, frontier: list[StoredResource], seen: set[ResourceKey], room: int
) -> list[StoredResource]:
    if room <= 0:
        return []
    if inc.reverse:
        keys = [(r.resource_type, r.id) for r in frontier]
        if inc.target_type:
            keys = [k for k in keys if k[0] == inc.target_type]
        rows = await service.store.referencing(keys, inc.source_type, inc.param, room + 1)
    else:
        rids = [r.rid for r in frontier if r.resource_type == inc.source_type]
        targets = await service.store.references_from(rids, inc.source_type, inc.param, inc.target_type)
        targets = [t for t in targets if t not in seen]
        rows = await service.store.read_many(targets)
    out = []
    for row in rows:
        key = (row.resource_type, row.id)
        if key in seen:
            continue
        seen.add(key)
        out.append(row)
    return out


async def run_search(
    service: FhirService, request: FhirRequest, resource_type: str | None, path: str
) -> FhirResponse:
    from hygie.fhir.interactions import search_query  # noqa: PLC0415 - avoid an import cycle

    if resource_type is not None:
        res.require_type(resource_type)
    query = search_query(request, resource_type, service.limits)
    detail = urlencode(request.query)
    await service.require(request, "search", resource_type)  # who may search at all
    if resource_type is not None:
        service.scoped(request, "search", resource_type)
    await service.restrict(request, query)
    now = service.clock()
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": res.new_id(),
        "meta": {"lastUpdated": res.instant(now)},
        "type": "searchset",
    }
    if query.summary == "count" or query.count == 0:
        bundle["total"] = await service.store.count(query, now_us=now)
        bundle["link"] = [{"relation": "self", "url": _self_link(service, path, query)}]
        service.record_search(request, resource_type, [], detail)
        return FhirResponse(200, bundle)
    page = await service.store.search(query, now_us=now)
    total = page.total
    if query.total == "accurate" or (
        query.total != "none" and total is None and query.cursor is None and query.total
    ):
        total = await service.store.count(query, now_us=now)
    if total is not None and query.total != "none":
        bundle["total"] = total
    links = [{"relation": "self", "url": _self_link(service, path, query, query.cursor)}]
    if page.next_cursor:
        links.append({"relation": "next", "url": _self_link(service, path, query, page.next_cursor)})
    if page.prev_cursor:
        links.append({"relation": "previous", "url": _self_link(service, path, query, page.prev_cursor)})
    bundle["link"] = links
    entries = [_entry(service, r, "match", _shape(r, query)) for r in page.resources]
    returned = list(page.resources)
    if query.includes or query.revincludes:
        included, issues = await _includes(service, request, query, page.resources)
        returned.extend(included)
        entries.extend(_entry(service, r, "include", _shape(r, query)) for r in included)
        if issues:
            entries.append(
                {
                    "resource": {"resourceType": "OperationOutcome", "issue": issues},
                    "search": {"mode": "outcome"},
                }
            )
    if query.warnings:
        entries.append({"resource": operation_outcome(query.warnings), "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    service.record_search(request, resource_type, returned, detail)
    return FhirResponse(200, bundle)


search = run_search


def since_of(value: str | None) -> int | None:
    """The instant (µs) of a ``_since`` parameter; 400 with its path when it is not a date."""
    if value is None:
        return None
    from hygie.fhir.values import date_range  # noqa: PLC0415

    try:
        return date_range(value)[0]
    except ValueError as exc:
        raise InvalidRequest(f"invalid _since {value!r}", expression="_since") from exc


async def _visible_versions(
    service: FhirService,
    request: FhirRequest,
    versions: list[StoredResource],
    current: StoredResource | None = None,
) -> list[StoredResource]:
    """The versions the caller may read, each judged in the record its resource belongs to now
    (type and system histories mix every record: refused versions are left out). ``current``:
    the resource of an instance history, already read."""
    if request.caller.unrestricted:
        return versions
    if current is not None:
        now_of = {(current.resource_type, current.id): current}
    else:
        keys = sorted({(v.resource_type, v.id) for v in versions})
        now_of = {(r.resource_type, r.id): r for r in await service.store.read_many(keys)}
    judged = []
    for v in versions:
        now = now_of.get((v.resource_type, v.id))
        patient = now.patient if now is not None else None
        judged.append(replace(v, patient=patient or v.patient))
    return await service.visible(request, judged, "_history")


async def history(
    service: FhirService, request: FhirRequest, resource_type: str | None, id: str | None
) -> FhirResponse:
    if resource_type is not None:
        res.require_type(resource_type)
    if id is not None:
        res.require_id(id)
    params = dict(request.query)
    try:
        count = min(int(params.get("_count", service.limits.default_count)), service.limits.max_count)
    except ValueError as exc:
        raise InvalidRequest("_count must be an integer", expression="_count") from exc
    if count < 1:
        raise InvalidRequest("_count must be at least 1 for history", expression="_count")
    since = since_of(params.get("_since"))
    await service.require(request, "history", resource_type)
    if resource_type is not None:
        service.scoped(request, "history", resource_type)
    current = None
    if id is not None and resource_type is not None:
        # the instance's history: decided on the resource as it is now
        current = await service.store.read(resource_type, id)
        if current is None:
            raise NotFound(f"{resource_type}/{id} is not known")
        await service.require(request, "history", resource_type, id, target=target_of(current))
    page = await service.store.history(
        resource_type, id, since_us=since, count=count, cursor=params.get("_cursor")
    )
    shown = await _visible_versions(service, request, page.entries, current)
    if id is None:  # an instance's history was recorded by its decision above
        service.record_search(request, resource_type, shown, "_history", "history")
    entries = []
    for h in shown:
        url = f"{h.resource_type}/{h.id}"
        entry: dict[str, Any] = {"fullUrl": service.full_url(h.resource_type, h.id)}
        if not h.deleted:
            entry["resource"] = orjson.Fragment(h.content)
        method = h.method or ("DELETE" if h.deleted else "PUT")
        entry["request"] = {"method": method, "url": url if method != "POST" else h.resource_type}
        entry["response"] = {
            "status": "204" if h.deleted else ("201" if h.version == 1 else "200"),
            "etag": res.etag(h.version),
            "lastModified": res.instant(h.last_updated),
        }
        entries.append(entry)
    path = "/".join(p for p in (resource_type, id, "_history") if p)
    base_params = [(k, v) for k, v in request.query if k != "_cursor"]
    links = [
        {
            "relation": "self",
            "url": f"{service.base_url}/{path}" + (f"?{urlencode(request.query)}" if request.query else ""),
        }
    ]
    if page.next_cursor:
        links.append(
            {
                "relation": "next",
                "url": f"{service.base_url}/{path}?{urlencode([*base_params, ('_cursor', page.next_cursor)])}",
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "id": res.new_id(),
        "meta": {"lastUpdated": res.instant(service.clock())},
        "type": "history",
        "link": links,
        "entry": entries,
    }
    return FhirResponse(200, bundle)
