"""The portals' one door to health data: every page reads and writes through the FHIR service.

A portal page never touches the store. It names the signed-in person's :class:`Caller` and asks
the same router the API uses (``fhir/router.py``): the access policy decides, the audit trail
records — durably, before the page is shown — and refusals come back as :class:`PortalError`
with a plain French message the page can show.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

import orjson

from hygie.domain.access import Caller
from hygie.fhir.interactions import FhirService
from hygie.fhir.outcome import FhirError
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.router import route

__all__ = ["Door", "PortalError", "as_json", "french_message"]


class PortalError(Exception):
    """A refusal or a failure to show in plain French (``status`` follows HTTP)."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        issues: Sequence[tuple[str | None, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail  # the FHIR diagnostics, for logs and for the curious
        # (expression, diagnostics) of each issue: a form puts each message beside its field
        self.issues = tuple(issues)


def french_message(status: int) -> str:
    return {
        401: "Votre session a expiré. Reconnectez-vous.",
        403: "Vous n’avez pas accès à cette information.",
        404: "Cette information n’existe pas ou n’est plus disponible.",
        409: "Cette information a été modifiée entre-temps. Rechargez la page et recommencez.",
        410: "Cette information a été supprimée.",
        412: "Cette information a été modifiée entre-temps. Rechargez la page et recommencez.",
        413: "Le fichier envoyé est trop volumineux.",
        422: "Les informations saisies ne sont pas acceptées.",
    }.get(status, "Le service n’a pas pu traiter votre demande. Réessayez dans un instant.")


def as_json(body: dict[str, Any] | bytes | None) -> dict[str, Any]:
    """A FHIR response body as plain JSON (search bundles carry raw JSON fragments)."""
    if body is None:
        return {}
    if isinstance(body, bytes):
        parsed: dict[str, Any] = orjson.loads(body)
        return parsed
    decoded: dict[str, Any] = orjson.loads(orjson.dumps(body))
    return decoded


# the interactions of the page being built, whose audit is written once, when the page is done
_PAGE: ContextVar[list[tuple[FhirRequest, int]] | None] = ContextVar("portal_page_audit", default=None)


class Door:
    """Reads and writes as the signed-in person, through the access policy and the audit trail."""

    def __init__(self, service: FhirService) -> None:
        self.service = service

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[None]:
        """Within the block, the reads' audit records wait and are written in one durable write
        when it ends — before the page is returned, whether it succeeded or not (writes record
        theirs in their own transaction, as always). Outside a page, each call writes its own."""
        batch: list[tuple[FhirRequest, int]] = []
        token = _PAGE.set(batch)
        try:
            yield
        finally:
            _PAGE.reset(token)
            await self.service.flush_audits(batch)

    async def call(
        self,
        caller: Caller,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        *,
        resource: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> FhirResponse:
        """One interaction; raises :class:`PortalError` on any refusal or error."""
        if resource is not None and body is None:
            body = orjson.dumps(resource)
        request = FhirRequest(
            method,
            path,
            list(query),
            {"content-type": "application/fhir+json", **(headers or {})},
            body,
            caller,
            resource=resource,
            request_id=uuid.uuid4().hex,
        )
        failure: FhirError | None = None
        try:
            response = await route(self.service, request)
        except FhirError as error:
            failure = error
            response = FhirResponse(error.status, error.outcome())
        # the trail first, as for the API: no trace, no data (a page's, once it is built)
        batch = _PAGE.get()
        if batch is None:
            await self.service.flush_audit(request, response.status)
        else:
            batch.append((request, response.status))
        if failure is not None:
            raise PortalError(
                failure.status,
                french_message(failure.status),
                str(failure),
                [(issue.expression, issue.diagnostics) for issue in failure.issues],
            ) from failure
        return response

    async def read(self, caller: Caller, resource_type: str, id: str) -> dict[str, Any] | None:
        """The resource, or None when it does not exist (or is deleted); refusals raise."""
        try:
            response = await self.call(caller, "GET", f"{resource_type}/{id}")
        except PortalError as error:
            if error.status in (404, 410):
                return None
            raise
        return as_json(response.body)

    async def search(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The matching resources (mode ``match``), following the pages up to ``limit``."""
        found, _ = await self.search_with_includes(caller, resource_type, params, limit=limit)
        return found

    async def search_with_includes(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Matches, and the included resources by ``Type/id``."""
        matches: list[dict[str, Any]] = []
        included: dict[str, dict[str, Any]] = {}
        path, query = resource_type, list(params)
        while True:
            bundle = as_json((await self.call(caller, "GET", path, query)).body)
            for entry in bundle.get("entry", []):
                resource = entry.get("resource") or {}
                if entry.get("search", {}).get("mode", "match") == "match":
                    matches.append(resource)
                else:
                    included[f"{resource.get('resourceType')}/{resource.get('id')}"] = resource
            following = next(
                (link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None
            )
            if following is None or len(matches) >= limit:
                return matches[:limit], included
            path, query = _relative(following, self.service.base_url)

    async def lastn(
        self, caller: Caller, params: Sequence[tuple[str, str]], *, per_code: int = 1
    ) -> list[dict[str, Any]]:
        """``Observation/$lastn``: the latest ``per_code`` Observations of each code, in one query."""
        bundle = await self.operation(caller, "GET", "Observation/$lastn", [*params, ("max", str(per_code))])
        return [
            entry.get("resource") or {}
            for entry in bundle.get("entry", [])
            if entry.get("search", {}).get("mode", "match") == "match"
        ]

    async def create(self, caller: Caller, resource: dict[str, Any]) -> dict[str, Any]:
        response = await self.call(
            caller,
            "POST",
            resource["resourceType"],
            resource=resource,
            headers={"prefer": "return=representation"},
        )
        return as_json(response.body)

    async def update(
        self, caller: Caller, resource: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]:
        """Replace a resource; with ``version``, only if nobody changed it since (If-Match)."""
        headers = {"prefer": "return=representation"}
        if version is not None:
            headers["if-match"] = f'W/"{version}"'
        response = await self.call(
            caller, "PUT", f"{resource['resourceType']}/{resource['id']}", resource=resource, headers=headers
        )
        return as_json(response.body)

    async def delete(self, caller: Caller, resource_type: str, id: str) -> None:
        await self.call(caller, "DELETE", f"{resource_type}/{id}")

    async def operation(
        self,
        caller: Caller,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        *,
        resource: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A FHIR operation (``Patient/1/$access-history``…); its JSON answer."""
        return as_json((await self.call(caller, method, path, query, resource=resource)).body)


def created_id(answer: dict[str, Any], resource_type: str) -> str | None:
    """The id of the first ``resource_type`` a transaction created (its entry's ``location`` is
    ``Type/id/_history/1``), or None."""
    import re  # noqa: PLC0415

    pattern = re.compile(rf"{resource_type}/([^/]+)/_history/1$")
    for entry in answer.get("entry", []):
        found = pattern.search(str((entry.get("response") or {}).get("location", "")))
        if found:
            return found.group(1)
    return None


def _relative(url: str, base: str) -> tuple[str, list[tuple[str, str]]]:
    from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415

    parts = urlsplit(url)
    base_path = urlsplit(base).path.rstrip("/")
    path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
    return path.strip("/"), parse_qsl(parts.query, keep_blank_values=True)
