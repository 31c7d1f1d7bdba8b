"""Dispatch a :class:`FhirRequest` to its interaction (http://hl7.org/fhir/R4/http.html).

The same router serves HTTP requests and the entries of batch and transaction Bundles; inside
a transaction the store transaction ``tx`` is passed down so that every entry joins it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from hygie.fhir import bundles, capability, searching
from hygie.fhir.operations import eprescription, everything, identity, lastn, masking, trust
from hygie.fhir.operations import messaging as messaging_ops
from hygie.fhir.outcome import InvalidRequest, NotFound, NotSupported
from hygie.fhir.request import FhirRequest, FhirResponse

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService
    from hygie.ports import StoreTransaction

__all__ = ["route"]

TypeOperation = Callable[["FhirService", FhirRequest], Awaitable[FhirResponse]]

# operations on an instance: (type, operation) -> (HTTP method, handler(service, request, id))
_INSTANCE_OPERATIONS = {
    ("Patient", "$access-history"): ("GET", trust.access_history),
    ("Patient", "$break-glass"): ("POST", trust.break_glass),
    ("Patient", "$share"): ("POST", trust.share),
    ("Patient", "$identity-check"): ("POST", identity.identity_check),
    ("Patient", "$declare-care"): ("POST", identity.declare_care),
    ("AuditEvent", "$dispute"): ("POST", trust.dispute),
    ("Communication", "$mark-received"): ("POST", messaging_ops.mark_received),
    ("DocumentReference", "$mask"): ("POST", masking.mask),
    ("DocumentReference", "$unmask"): ("POST", masking.unmask),
}
# operations on a type: (type, operation) -> (HTTP methods, handler(service, request))
_TYPE_OPERATIONS: dict[tuple[str, str], tuple[tuple[str, ...], TypeOperation]] = {
    ("Patient", "$identify"): (("POST",), identity.identify),
    ("MedicationRequest", "$prescribe"): (("POST",), eprescription.prescribe),
    ("MedicationRequest", "$lookup"): (("POST",), eprescription.lookup),
    ("MedicationRequest", "$dispense"): (("POST",), eprescription.dispense),
    ("Observation", "$lastn"): (("GET", "POST"), lastn.lastn),
}


def _not_allowed(method: str, path: str) -> NotSupported:
    return NotSupported(f"{method} is not supported on /{path}", status=405)


def _form_params(request: FhirRequest) -> None:
    """POST _search: parameters may come in an x-www-form-urlencoded body, added to the URL's."""
    content_type = (request.header("content-type") or "").split(";")[0].strip()
    if request.body:
        if content_type not in ("application/x-www-form-urlencoded", ""):
            raise NotSupported("POST _search takes application/x-www-form-urlencoded parameters", status=415)
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the _search body is not UTF-8") from exc
        request.query = [*request.query, *parse_qsl(text, keep_blank_values=True)]


async def route(
    service: FhirService, request: FhirRequest, tx: StoreTransaction | None = None
) -> FhirResponse:
    method = request.method.upper()
    if method == "HEAD":
        method = "GET"
    segments = [s for s in request.path.strip("/").split("/") if s]
    n = len(segments)
    if n == 0:
        if method == "POST":
            if tx is not None:
                raise InvalidRequest("a Bundle entry cannot contain another batch or transaction")
            return await bundles.process_bundle(service, request)
        if method == "GET":
            return await searching.run_search(service, request, None, "")
        raise _not_allowed(method, "")
    head = segments[0]
    if n == 1 and head == "metadata":
        if method != "GET":
            raise _not_allowed(method, head)
        await service.require(request, "capabilities")
        return FhirResponse(200, capability.capability_statement(service.base_url))
    if n == 1 and head == "_history":
        if method != "GET":
            raise _not_allowed(method, head)
        return await searching.history(service, request, None, None)
    if n == 1 and head == "_search":
        if method != "POST":
            raise _not_allowed(method, head)
        _form_params(request)
        return await searching.run_search(service, request, None, "")
    if head == "$redeem-share" and n == 1:
        if method != "POST":
            raise _not_allowed(method, head)
        return await trust.redeem_share(service, request)
    if head.startswith("$"):
        raise NotSupported(f"operation {head} is not supported at the system level")
    rtype = head
    if n == 1:
        if method == "GET":
            return await searching.run_search(service, request, rtype, rtype)
        if method == "POST":
            return await service.create(request, rtype, tx)
        if method == "PUT":
            if not request.query:
                raise InvalidRequest("PUT on a type needs search criteria (conditional update) or an id")
            return await service.conditional_update(request, rtype, tx)
        if method == "DELETE":
            if not request.query:
                raise InvalidRequest("DELETE on a type needs search criteria (conditional delete)")
            return await service.conditional_delete(request, rtype, tx)
        raise _not_allowed(method, rtype)
    second = segments[1]
    if n == 2 and second == "_search":
        if method != "POST":
            raise _not_allowed(method, request.path)
        _form_params(request)
        return await searching.run_search(service, request, rtype, rtype)
    if n == 2 and second == "_history":
        if method != "GET":
            raise _not_allowed(method, request.path)
        return await searching.history(service, request, rtype, None)
    if n == 2 and (rtype, second) in _TYPE_OPERATIONS:
        methods, type_operation = _TYPE_OPERATIONS[(rtype, second)]
        if method not in methods:
            raise _not_allowed(method, request.path)
        return await type_operation(service, request)
    if second.startswith("$"):
        raise NotSupported(f"operation {second} is not supported on {rtype}")
    rid = second
    if n == 2:
        if method == "GET":
            return await service.read(request, rtype, rid, tx)
        if method == "PUT":
            return await service.update(request, rtype, rid, tx)
        if method == "PATCH":
            return await service.patch(request, rtype, rid, tx)
        if method == "DELETE":
            return await service.delete(request, rtype, rid, tx)
        raise _not_allowed(method, request.path)
    third = segments[2]
    if n == 3 and (rtype, third) in _INSTANCE_OPERATIONS:
        allowed, operation = _INSTANCE_OPERATIONS[(rtype, third)]
        if method != allowed:
            raise _not_allowed(method, request.path)
        return await operation(service, request, rid)
    if n == 3 and third == "$everything":
        if rtype != "Patient":
            raise NotSupported(f"$everything is supported on Patient, not {rtype}")
        if method not in ("GET", "POST"):
            raise _not_allowed(method, request.path)
        return await everything.patient_everything(service, request, rid)
    if third == "_history":
        if method != "GET":
            raise _not_allowed(method, request.path)
        if n == 3:
            return await searching.history(service, request, rtype, rid)
        if n == 4:
            return await service.vread(request, rtype, rid, segments[3])
    if third.startswith("$"):
        raise NotSupported(f"operation {third} is not supported on {rtype}")
    raise NotFound(f"no FHIR interaction at /{request.path}", code="not-found")
