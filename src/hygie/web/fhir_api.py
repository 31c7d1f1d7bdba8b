"""The FHIR REST endpoint under ``/fhir``: a thin ASGI adapter around ``fhir/router.py``.

It only translates: HTTP → :class:`FhirRequest` (headers, query, a size-capped body) and
:class:`FhirResponse` → HTTP (status, headers, JSON). It is a plain ASGI callable rather than a
framework route because it sits on the hottest path of the server.

JSON only: a request whose body is XML, or that asks for XML only (``Accept`` or ``_format``),
gets 415 with an OperationOutcome.

Every request but ``GET metadata`` needs a bearer token: ``authenticate`` turns the headers
into the :class:`~hygie.domain.access.Caller` (401 with ``WWW-Authenticate`` otherwise). The
access decisions a request took are written to the audit trail before its response is sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from hygie.domain.access import Caller
from hygie.fhir.interactions import FhirService
from hygie.fhir.outcome import FhirError, Issue, NotSupported, Unauthorized, operation_outcome
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.router import route

__all__ = ["Authenticate", "FhirApi"]

log = logging.getLogger("hygie.fhir")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# headers (lower-case names) and the client's address -> the caller, or raise Unauthorized
Authenticate = Callable[[dict[str, str], str | None], Awaitable[Caller]]

JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json", "text/json")
FORM_TYPE = "application/x-www-form-urlencoded"
CONTENT_TYPE = b"application/fhir+json; charset=utf-8"
# the CORS policy of the FHIR API (the same as web/app.py's for the other routes), answered here
# because the FHIR API is served before the framework's middleware, on the hot path
CORS_RESPONSE = [
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-expose-headers",
        b"Location, ETag, Last-Modified, Content-Location, X-Request-Id, WWW-Authenticate",
    ),
]
CORS_PREFLIGHT = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
    "access-control-allow-headers": (
        "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, X-Request-Id"
    ),
    "access-control-max-age": "600",
}


class PayloadTooLarge(FhirError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds the limit of {limit} bytes", code="too-costly")


def _is_xml(media: str) -> bool:
    media = media.split(";", maxsplit=1)[0].strip().lower()
    return media.endswith(("/xml", "+xml")) or media == "xml"


def _check_formats(headers: dict[str, str], query: list[tuple[str, str]], has_body: bool) -> None:
    content_type = headers.get("content-type", "")
    if has_body and content_type:
        media = content_type.split(";")[0].strip().lower()
        if _is_xml(media):
            raise NotSupported(
                "XML is not supported: send application/fhir+json", status=415, code="not-supported"
            )
        if media not in JSON_TYPES and media != FORM_TYPE:
            raise NotSupported(f"unsupported content type {media!r}: send application/fhir+json", status=415)
    for name, value in query:
        if name == "_format" and _is_xml(value):
            raise NotSupported("_format=xml is not supported: this server speaks JSON only", status=415)
    accept = headers.get("accept", "")
    if accept:
        kinds = [a.split(";")[0].strip().lower() for a in accept.split(",") if a.strip()]
        if kinds and all(_is_xml(k) for k in kinds):
            raise NotSupported("XML is not supported: accept application/fhir+json", status=415)


def _internal_error() -> FhirResponse:
    return FhirResponse(
        500, operation_outcome([Issue("exception", "internal error; the incident was logged")])
    )


class FhirApi:
    """ASGI app answering every FHIR request below its mount point."""

    def __init__(
        self,
        service: FhirService,
        *,
        max_body_bytes: int,
        authenticate: Authenticate | None = None,
        prefix: str = "/fhir",
    ) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.authenticate = authenticate
        self.prefix = prefix

    async def _caller(self, method: str, path: str, headers: dict[str, str], scope: Scope) -> Caller:
        if path == "metadata" and method in ("GET", "HEAD"):
            return Caller.anonymous()  # the capability statement is public
        if self.authenticate is None:
            raise Unauthorized("this server accepts no access token")
        client = scope.get("client")
        return await self.authenticate(headers, client[0] if client else None)

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise PayloadTooLarge(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge(self.max_body_bytes)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        path = scope["path"]
        if path == self.prefix or path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        path = path.strip("/")  # the ASGI server already percent-decoded it
        cors = "origin" in headers
        if method == "OPTIONS" and cors:
            await self._preflight(send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        request: FhirRequest | None = None
        try:
            caller = await self._caller(method, path, headers, scope)
            body = await self._body(receive, headers) if method in ("POST", "PUT", "PATCH") else b""
            _check_formats(headers, query, bool(body))
            request = FhirRequest(method, path, query, headers, body or None, caller, request_id=request_id)
            response = await route(self.service, request)
        except FhirError as error:
            response = FhirResponse(error.status, error.outcome(), dict(error.headers))
        except Exception:
            log.exception("unexpected error on %s /%s", method, path)
            response = _internal_error()
        if request is not None:
            try:
                # durably in the trail before the data leaves: no trace, no answer
                await self.service.flush_audit(request, response.status)
            except Exception:
                log.exception("the audit trail refused the records of %s /%s", method, path)
                response = _internal_error()
        await self._send(send, response, method == "HEAD", request_id, cors)

    @staticmethod
    async def _preflight(send: Send) -> None:
        """CORS preflight: any origin, bearer tokens, never credentials (as ``web/app.py``)."""
        headers = [(k.encode(), v.encode()) for k, v in CORS_PREFLIGHT.items()]
        await send(
            {"type": "http.response.start", "status": 200, "headers": [*headers, (b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send(
        send: Send, response: FhirResponse, head: bool, request_id: str, cors: bool = False
    ) -> None:
        body: bytes
        if response.body is None:
            body = b""
        elif isinstance(response.body, bytes):
            body = response.body
        else:
            body = orjson.dumps(response.body)
        raw_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        if cors:
            raw_headers.extend(CORS_RESPONSE)
        if response.media_type is not None:
            raw_headers.append((b"content-type", response.media_type.encode("latin-1")))
        elif body or response.status not in (204, 304):
            raw_headers.append((b"content-type", CONTENT_TYPE))
        raw_headers.extend(
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
        )
        if response.status == 204:
            body = b""
        raw_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
