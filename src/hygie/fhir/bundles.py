"""Batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction).

A **transaction** is all or nothing: every entry runs inside one store transaction, in the
order the specification prescribes (DELETE, then POST, then PUT/PATCH, then GET/HEAD), after
``urn:uuid:`` / ``urn:oid:`` full URLs and conditional references (``Patient?identifier=…``)
have been resolved and rewritten everywhere in the Bundle. Any failure rolls everything back
and the response is one OperationOutcome naming the entry.

A **batch** runs each entry on its own; each entry's response carries its status and, on
failure, its OperationOutcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from hygie.fhir import resources as res
from hygie.fhir.outcome import FhirError, InvalidRequest, Issue, PreconditionFailed
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.search import parse_search

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService
    from hygie.ports import StoreTransaction

__all__ = ["process_bundle"]

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: dict[str, Any] | None
    headers: dict[str, str]


_REQUEST_PARTS = {
    "If-Match": "ifMatch",
    "If-None-Match": "ifNoneMatch",
    "If-None-Exist": "ifNoneExist",
    "criteria": "url",
    "_cursor": "url",
    "_expunge": "url",
}


def _prefix_issues(error: FhirError, index: int) -> FhirError:
    """Point each issue's expression at the entry it came from."""
    issues = []
    entry = f"Bundle.entry[{index}]"
    for issue in error.issues:
        expr = issue.expression
        if not expr:
            expr = entry
        elif expr in _REQUEST_PARTS:  # a header or the URL of the entry's request
            expr = f"{entry}.request.{_REQUEST_PARTS[expr]}"
        elif not expr.startswith("Bundle"):
            # "Patient.name[0]" (typed) or "id" (bare element): both inside the entry's resource
            inner = expr.split(".", 1)[1] if "." in expr and expr[:1].isupper() else expr
            expr = f"{entry}.resource.{inner}"
        issues.append(Issue(issue.code, f"entry {index}: {issue.diagnostics}", expr, issue.severity))
    error.issues = issues
    return error


def _entries(bundle: dict[str, Any], limit: int) -> list[_Entry]:
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise InvalidRequest("Bundle.entry must be an array", expression="Bundle.entry")
    if len(raw_entries) > limit:
        raise InvalidRequest(
            f"the Bundle has {len(raw_entries)} entries; the limit is {limit}", code="too-costly"
        )
    out = []
    for i, e in enumerate(raw_entries):
        if not isinstance(e, dict):
            raise InvalidRequest(f"entry {i} is not an object", expression=f"Bundle.entry[{i}]")
        request = e.get("request")
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise InvalidRequest(
                f"entry {i} has no request.method and request.url",
                code="required",
                expression=f"Bundle.entry[{i}].request",
            )
        method = str(request["method"]).upper()
        if method not in _ORDER:
            raise InvalidRequest(
                f"entry {i}: unsupported method {method}", expression=f"Bundle.entry[{i}].request.method"
            )
        headers = {}
        for key, header in (
            ("ifNoneExist", "if-none-exist"),
            ("ifMatch", "if-match"),
            ("ifNoneMatch", "if-none-match"),
            ("ifModifiedSince", "if-modified-since"),
        ):
            if request.get(key):
                headers[header] = str(request[key])
        resource = e.get("resource")
        if resource is not None and not isinstance(resource, dict):
            raise InvalidRequest(
                f"entry {i}: resource must be an object", expression=f"Bundle.entry[{i}].resource"
            )
        if method in ("POST", "PUT") and resource is None:
            raise InvalidRequest(
                f"entry {i}: {method} needs a resource",
                code="required",
                expression=f"Bundle.entry[{i}].resource",
            )
        out.append(_Entry(i, method, str(request["url"]), e.get("fullUrl"), resource, headers))
    return out


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    """Replace references (and attachment/narrative URLs) that point at Bundle-local ids."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("reference", "url") and isinstance(v, str) and v in mapping:
                out[k] = mapping[v]
            else:
                out[k] = _rewrite(v, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node


def _collect_conditional_refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and "?" in v and not v.startswith(("http:", "https:")):
                found.add(v)
            else:
                _collect_conditional_refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _collect_conditional_refs(v, found)


def _split_url(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    parts = urlsplit(url)
    path = parts.path.strip("/")
    segments = [s for s in path.split("/") if s]
    return segments, parse_qsl(parts.query, keep_blank_values=True)


async def _resolve_conditional(
    service: FhirService, tx: StoreTransaction, reference: str, caller_request: FhirRequest
) -> str:
    rtype, _, criteria = reference.partition("?")
    res.require_type(rtype)
    query = parse_search(rtype, parse_qsl(criteria, keep_blank_values=True), strict=True)
    service.scoped(caller_request, "search", rtype)
    await service.restrict(caller_request, query)
    keys = await tx.search_keys(query, 2)
    if len(keys) != 1:
        raise PreconditionFailed(
            f"conditional reference {reference!r} matched {len(keys)} resources (exactly one is required)",
            code="not-found" if not keys else "multiple-matches",
        )
    return f"{rtype}/{keys[0][1]}"


async def _dispatch(
    service: FhirService, entry: _Entry, caller: FhirRequest, tx: StoreTransaction | None
) -> FhirResponse:
    from hygie.fhir.router import route  # noqa: PLC0415 - the router imports this module

    segments, query = _split_url(entry.url)
    req = FhirRequest(
        method=entry.method,
        path="/".join(segments),
        query=query,
        headers={**entry.headers, "prefer": caller.header("prefer") or ""},
        resource=entry.resource,
        caller=caller.caller,
        request_id=caller.request_id,
        audit=caller.audit,
        relations=caller.relations,
    )
    if entry.method == "PATCH":
        req.headers["content-type"] = "application/json-patch+json"
    return await route(service, req, tx)


def _response_entry(response: FhirResponse) -> dict[str, Any]:
    out: dict[str, Any] = {"response": {"status": str(response.status)}}
    r = out["response"]
    if "Location" in response.headers:
        r["location"] = response.headers["Location"]
    if "ETag" in response.headers:
        r["etag"] = response.headers["ETag"]
    if "Last-Modified" in response.headers and response.resource_bytes is not None:
        resource = orjson.loads(response.resource_bytes)
        r["lastModified"] = resource.get("meta", {}).get("lastUpdated")
    if response.status >= 400 and isinstance(response.body, dict):
        r["outcome"] = response.body
    elif isinstance(response.body, bytes):
        out["resource"] = orjson.Fragment(response.body)
    elif isinstance(response.body, dict):
        out["resource"] = response.body
    return out


async def process_bundle(service: FhirService, request: FhirRequest) -> FhirResponse:
    bundle = request.resource if request.resource is not None else res.parse_json(request.body)
    if bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("POST to the base URL takes a Bundle", expression="resourceType")
    btype = bundle.get("type")
    if btype not in ("batch", "transaction"):
        raise InvalidRequest(
            f"Bundle.type must be batch or transaction, not {btype!r}", expression="Bundle.type"
        )
    entries = _entries(bundle, service.limits.max_bundle_entries)
    if btype == "batch":
        await service.require(request, "batch")
        return await _batch(service, request, entries)
    await service.require(request, "transaction")
    return await _transaction(service, request, entries)


async def _batch(service: FhirService, request: FhirRequest, entries: list[_Entry]) -> FhirResponse:
    out = []
    for e in entries:
        try:
            response = await _dispatch(service, e, request, None)
        except FhirError as err:
            response = service.error_response(err)
        # each entry's decisions go to the trail with that entry's own outcome
        await service.flush_audit(request, response.status)
        out.append(_response_entry(response))
    return FhirResponse(
        200, {"resourceType": "Bundle", "id": res.new_id(), "type": "batch-response", "entry": out}
    )


async def _transaction(service: FhirService, request: FhirRequest, entries: list[_Entry]) -> FhirResponse:
    # 1. local identities: POST entries get their server id now, so references can be rewritten
    mapping: dict[str, str] = {}
    preset_ids: dict[int, str] = {}
    seen_full_urls: set[str] = set()
    for e in entries:
        if e.full_url:
            if e.full_url in seen_full_urls:
                raise InvalidRequest(
                    f"entry {e.index}: duplicate fullUrl {e.full_url}",
                    expression=f"Bundle.entry[{e.index}].fullUrl",
                )
            seen_full_urls.add(e.full_url)
        segments, _ = _split_url(e.url)
        if e.method == "POST" and segments:
            new_id = res.new_id()
            preset_ids[e.index] = new_id
            if e.full_url:
                mapping[e.full_url] = f"{segments[0]}/{new_id}"
        elif e.method == "PUT" and len(segments) == 2 and e.full_url and e.full_url.startswith("urn:"):
            mapping[e.full_url] = f"{segments[0]}/{segments[1]}"

    responses: dict[int, FhirResponse] = {}
    async with service.transaction(request) as tx:
        # 2. conditional creates that match: their fullUrl maps to the existing resource
        for e in entries:
            if e.method == "POST" and "if-none-exist" in e.headers:
                segments, _ = _split_url(e.url)
                rtype = segments[0]
                criteria = e.headers["if-none-exist"]
                criteria = criteria.split("?", 1)[1] if "?" in criteria else criteria
                query = parse_search(rtype, parse_qsl(criteria, keep_blank_values=True), strict=True)
                await service.restrict(request, query)
                keys = await tx.search_keys(query, 2)
                if len(keys) > 1:
                    raise _prefix_issues(
                        PreconditionFailed(f"ifNoneExist matched {len(keys)} resources"), e.index
                    )
                if keys and e.full_url:
                    mapping[e.full_url] = f"{rtype}/{keys[0][1]}"
        # 3. conditional references
        conditional: set[str] = set()
        for e in entries:
            if e.resource is not None:
                _collect_conditional_refs(e.resource, conditional)
        for ref in sorted(conditional):
            mapping[ref] = await _resolve_conditional(service, tx, ref, request)
        # 4. rewrite every resource once
        if mapping:
            for e in entries:
                if e.resource is not None:
                    e.resource = _rewrite(e.resource, mapping)
        # 5. run in the prescribed order
        for e in sorted(entries, key=lambda x: (_ORDER[x.method], x.index)):
            try:
                if e.method == "POST" and e.index in preset_ids:
                    segments, _ = _split_url(e.url)
                    req = FhirRequest(
                        "POST",
                        segments[0],
                        [],
                        {**e.headers, "prefer": request.header("prefer") or ""},
                        resource=e.resource,
                        caller=request.caller,
                        request_id=request.request_id,
                        audit=request.audit,
                        relations=request.relations,
                    )
                    responses[e.index] = await service.create(req, segments[0], tx, id=preset_ids[e.index])
                else:
                    responses[e.index] = await _dispatch(service, e, request, tx)
            except FhirError as err:
                raise _prefix_issues(err, e.index) from None
            if responses[e.index].status >= 400:
                raise _prefix_issues(
                    FhirError(
                        f"failed with status {responses[e.index].status}", status=responses[e.index].status
                    ),
                    e.index,
                )
    out = [_response_entry(responses[e.index]) for e in entries]
    return FhirResponse(
        200, {"resourceType": "Bundle", "id": res.new_id(), "type": "transaction-response", "entry": out}
    )
