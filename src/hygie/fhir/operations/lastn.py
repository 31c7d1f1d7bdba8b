"""``Observation/$lastn`` (http://hl7.org/fhir/R4/observation-operation-lastn.html).

The most recent ``max`` Observations of each code, for one subject, in one query: "the latest
weight, blood pressure and glucose" without one search per measure.

* Parameters: ``max`` (positiveInt, default 1, at most ``Limits.max_count``) and the Observation
  search parameters and modifiers, as a search takes them (``handling=strict`` applies). R4 makes
  two of them compulsory: a subject (``patient`` or ``subject``) and a ``category`` or a parameter
  on the code (``code``, ``code-value-*``, ``combo-code*``); without them: 400 at ``patient`` /
  ``code``. The order and the size of the answer are the operation's: ``_sort``, ``_count`` and
  ``_cursor`` are refused (400 at the parameter), and so are ``_include``/``_revinclude``.
* Grouping (R4 "GROUP BY Observation.code"; codes are the same when system and code are): an
  Observation belongs to the group of the smallest ``system|code`` pair of its ``Observation.code``
  codings — one group each, so an Observation coded both in LOINC and locally is returned once.
  Observations whose code carries no coding (text only) belong to no group and are not returned.
* Order: within a group, the effective date (the ``date`` search parameter: the latest instant of
  ``effective[x]``) newest first, then the most recently created; Observations without an
  effective date come last. Groups follow each other by code. No paging: everything is in one
  ``searchset`` Bundle.
* The one door: the same checks as a search of Observation — the caller must be allowed to
  search (SMART scopes checked, 403 otherwise), the access policy's search restriction is carried
  into the store's query so that refused rows (another patient's, a hidden adolescent's, a
  blocked professional's) are never grouped, ranked or counted, and the audit trail records one
  search decision per patient whose data the answer carries.
* GET, or POST with the parameters in a form body or a ``Parameters`` resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import orjson

from hygie.fhir import resources as res
from hygie.fhir.outcome import InvalidRequest, NotSupported, operation_outcome
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.search import SearchQuery, parse_search

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService
    from hygie.ports import StoredResource

__all__ = ["GROUP_PARAM", "ORDER_PARAM", "lastn", "lastn_query"]

RESOURCE_TYPE = "Observation"
GROUP_PARAM = "code"  # the token parameter the Observations are grouped by
ORDER_PARAM = "date"  # the date parameter they are ranked by, newest first
SUBJECT_PARAMS = frozenset({"patient", "subject"})
# the parameters that name what is measured (R4: "a category parameter and/or a search parameter
# that contains a code element in its FHIRPath expression")
WHAT_PARAMS = frozenset(
    {
        "category",
        "code",
        "code-value-concept",
        "code-value-date",
        "code-value-quantity",
        "code-value-string",
        "combo-code",
        "combo-code-value-concept",
        "combo-code-value-quantity",
    }
)
REFUSED = {
    "_sort": "$lastn orders each group by effective date itself: _sort is not used",
    "_count": "$lastn returns max Observations per code: use max, not _count",
    "_cursor": "$lastn answers in one Bundle: there is no page to ask for",
    "_include": "_include is not supported by $lastn",
    "_revinclude": "_revinclude is not supported by $lastn",
    "_total": "$lastn does not count: _total is not used",
}


def _parameters(request: FhirRequest) -> list[tuple[str, str]]:
    """The operation's parameters: the URL's, plus a POST body's (form or ``Parameters``)."""
    params = list(request.query)
    if request.method.upper() != "POST" or not (request.body or request.resource):
        return params
    content_type = (request.header("content-type") or "").split(";")[0].strip()
    if request.resource is None and content_type in ("application/x-www-form-urlencoded", ""):
        try:
            text = (request.body or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the $lastn body is not UTF-8") from exc
        return [*params, *parse_qsl(text, keep_blank_values=True)]
    body = request.resource
    if body is None:
        try:
            body = orjson.loads(request.body or b"")
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("the $lastn body is not JSON") from exc
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise NotSupported("POST $lastn takes a Parameters resource or a form body", status=415)
    for i, part in enumerate(body.get("parameter") or []):
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest("each parameter needs a name", expression=f"Parameters.parameter[{i}]")
        value = next((v for k, v in part.items() if k.startswith("value")), None)
        if isinstance(value, dict) and "reference" in value:
            value = value["reference"]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidRequest(
                f"parameter {name!r} needs a simple value", expression=f"Parameters.parameter[{i}]"
            )
        params.append((name, str(value)))
    return params


def _max(values: list[str], ceiling: int) -> int:
    if len(values) > 1:
        raise InvalidRequest("max may be given once", expression="max")
    if not values:
        return 1
    try:
        count = int(values[0])
    except ValueError as exc:
        raise InvalidRequest(f"max must be a positive integer, got {values[0]!r}", expression="max") from exc
    if count < 1:
        raise InvalidRequest(f"max must be a positive integer, got {values[0]!r}", expression="max")
    if count > ceiling:
        raise InvalidRequest(f"max must be at most {ceiling}, got {count}", expression="max")
    return count


def lastn_query(
    params: list[tuple[str, str]], *, max_count: int, strict: bool = False
) -> tuple[SearchQuery, int]:
    """The search that selects the candidates, and ``max``; 400 with the parameter's path for
    what R4 requires and is missing, or what $lastn does not take."""
    searched: list[tuple[str, str]] = []
    maxes: list[str] = []
    for name, value in params:
        if name == "max":
            maxes.append(value)
            continue
        refused = REFUSED.get(name.split(":", 1)[0])
        if refused is not None:
            raise InvalidRequest(refused, expression=name)
        searched.append((name, value))
    per_code = _max(maxes, max_count)
    query = parse_search(RESOURCE_TYPE, searched, max_count=max_count, strict=strict)
    named = {c.param.split(":", 1)[0] for c in query.criteria}
    if not named & SUBJECT_PARAMS:
        raise InvalidRequest(
            "$lastn needs a subject: the patient or subject parameter (R4)", expression="patient"
        )
    if not named & WHAT_PARAMS:
        raise InvalidRequest(
            "$lastn needs a category parameter or a parameter on the code (R4)", expression="code"
        )
    return query, per_code


async def lastn(service: FhirService, request: FhirRequest) -> FhirResponse:
    """``GET|POST Observation/$lastn``: a searchset Bundle of the latest ``max`` per code."""
    from hygie.fhir.interactions import prefer  # noqa: PLC0415 - avoid an import cycle
    from hygie.fhir.searching import _entry, _shape  # noqa: PLC0415 - the search's own shapes

    params = _parameters(request)
    strict = prefer(request, "handling") == "strict"
    query, per_code = lastn_query(params, max_count=service.limits.max_count, strict=strict)
    detail = "$lastn?" + urlencode(params)
    # the door of a search of Observation: who may search, the app's scopes, the restriction
    await service.require(request, "search", RESOURCE_TYPE, detail="$lastn")
    service.scoped(request, "search", RESOURCE_TYPE)
    await service.restrict(request, query)
    now = service.clock()
    rows: list[StoredResource] = await service.store.lastn(
        query, group=GROUP_PARAM, by=ORDER_PARAM, per_group=per_code, now_us=now
    )
    entries: list[dict[str, Any]] = [_entry(service, r, "match", _shape(r, query)) for r in rows]
    if query.warnings:
        entries.append({"resource": operation_outcome(query.warnings), "search": {"mode": "outcome"}})
    service.record_search(request, RESOURCE_TYPE, rows, detail)
    base = f"{service.base_url}/{RESOURCE_TYPE}/$lastn"
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": res.new_id(),
        "meta": {"lastUpdated": res.instant(now)},
        "type": "searchset",
        "total": len(rows),
        "link": [{"relation": "self", "url": base + (f"?{urlencode(params)}" if params else "")}],
        "entry": entries,
    }
    return FhirResponse(200, bundle)
