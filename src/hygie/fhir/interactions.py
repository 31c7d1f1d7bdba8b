"""The FHIR R4 RESTful interactions, framework-free (http://hl7.org/fhir/R4/http.html).

:class:`FhirService` answers a :class:`~hygie.fhir.request.FhirRequest` with a
:class:`~hygie.fhir.request.FhirResponse`. Each interaction:

1. parses and checks its input (ids, types, body, headers),
2. asks the access policy (``domain/access.py``) — the one door,
3. reads or writes through the ``ResourceStore`` port (a write is one store transaction),
4. returns status, headers and body; errors are raised as ``FhirError`` and become
   OperationOutcomes in ``web/``.

Writes validate the resource (``fhir/validation``), extract its search index
(``fhir/indexing.py``) and stamp ``meta.versionId`` / ``meta.lastUpdated``; a third-party app's
create, update and patch (alone or in a Bundle) also get ``meta.source`` naming the app, set by
the server and by nobody else (``domain/provenance.py``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import jsonpatch
import orjson

from hygie.domain.access import EXPUNGE, AccessPolicy, AccessRequest, Decision, Interaction
from hygie.domain.audit import AuditLog, audit_entries
from hygie.domain.policy import Target
from hygie.domain.provenance import with_provenance
from hygie.domain.relations import relations_from
from hygie.fhir import resources as res
from hygie.fhir.indexing import extract_index
from hygie.fhir.outcome import (
    Conflict,
    FhirError,
    Forbidden,
    Gone,
    InvalidRequest,
    Issue,
    NotFound,
    NotSupported,
    PreconditionFailed,
    Unauthorized,
    Unprocessable,
    operation_outcome,
)
from hygie.fhir.record_metadata import check_professional_document
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.search import SearchQuery, parse_search
from hygie.fhir.targets import target_of, target_of_resource, with_patient
from hygie.fhir.validation import validate_resource
from hygie.ports import ResourceStore, StoredResource, StoreTransaction, WriteOp

if TYPE_CHECKING:
    from hygie.fhir.operations.eprescription import PrescriptionServices
    from hygie.fhir.operations.identity import IdentityServices
    from hygie.fhir.operations.trust import TrustServices

__all__ = ["FhirService", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    default_count: int = 20
    max_count: int = 1000
    max_includes: int = 1000
    max_bundle_entries: int = 10_000
    everything_page: int = 1000
    max_include_iterations: int = 3
    majority_age: int = 18  # a legal representative's access ends when the patient reaches it


def now_us() -> int:
    return time.time_ns() // 1000


_IF_MATCH_RE = re.compile(r'^(?:W/)?"?([^"]+)"?$')


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    m = _IF_MATCH_RE.match(value.strip())
    if not m or not m.group(1).isdigit():
        raise InvalidRequest(f'If-Match must be an ETag such as W/"3", got {value!r}', expression="If-Match")
    return int(m.group(1))


def prefer(request: FhirRequest, key: str) -> str | None:
    header = request.header("prefer")
    if not header:
        return None
    for part in header.split(";"):
        for item in part.split(","):
            name, _, value = item.strip().partition("=")
            if name.strip() == key:
                return value.strip().strip('"')
    return None


def _unresolved_reference(node: Any, path: str) -> tuple[str, str] | None:
    """The first ``urn:uuid:``/``urn:oid:`` or conditional (``Type?…``) reference left in a
    resource about to be stored: a transaction resolves them before writing, so any that remain
    would point nowhere."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and (
            ref.startswith(("urn:uuid:", "urn:oid:")) or ("?" in ref and "://" not in ref)
        ):
            return f"{path}.reference", ref
        for key, value in node.items():
            # resources nested in a Bundle or Parameters, and contained ones, resolve among themselves
            if isinstance(value, dict | list) and key not in ("contained", "resource", "entry"):
                found = _unresolved_reference(value, f"{path}.{key}")
                if found is not None:
                    return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _unresolved_reference(value, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _failing_operation(operations: list[Any], document: dict[str, Any]) -> str:
    """The first operation of a JSON Patch that fails on ``document`` (index, op and path)."""
    current: Any = document
    for i, operation in enumerate(operations):
        try:
            current = jsonpatch.apply_patch(current, [operation])
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError):
            op = operation.get("op") if isinstance(operation, dict) else None
            path = operation.get("path") if isinstance(operation, dict) else None
            return f"{i} ({op} {path})"
    return "?"


_FHIR_MEDIA = ("application/fhir+json", "application/json", "json", "*/*", "application/*", "")


def _wants_native(request: FhirRequest) -> bool:
    """A Binary is returned in its own format when the client accepts no FHIR/JSON type."""
    accept = request.header("accept")
    if accept is None or dict(request.query).get("_format"):
        return False
    kinds = [a.split(";")[0].strip().lower() for a in accept.split(",")]
    return not any(k in _FHIR_MEDIA for k in kinds)


def _native_binary(content: bytes, headers: dict[str, str]) -> FhirResponse:
    import base64  # noqa: PLC0415

    resource = orjson.loads(content)
    data = base64.b64decode(resource.get("data", ""))
    media = str(resource.get("contentType") or "application/octet-stream")
    return FhirResponse(200, data, headers, resource_bytes=content, media_type=media)


def _now_clock() -> int:
    return now_us()


class FhirService:
    """Every FHIR interaction on one store, behind one access policy."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        base_url: str,
        policy: AccessPolicy | None = None,
        audit: AuditLog | None = None,
        limits: Limits | None = None,
        clock: Callable[[], int] = _now_clock,
        server: str = "hygie",
    ) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.policy = policy or AccessPolicy(
            lambda patient, actors, now: store.relations(patient, actors, now_us=now), clock
        )
        if audit is None:
            from hygie.stores.audit_memory import MemoryAuditLog  # noqa: PLC0415 - the embedded default

            audit = MemoryAuditLog()
        self.audit: AuditLog = audit
        self.limits = limits or Limits()
        self.server = server
        # emergency accesses and share codes (fhir/operations/trust.py), attached by the runtime
        self.trust: TrustServices | None = None
        # e-prescription: medicines, settings, failed-lookup counts (fhir/operations/eprescription.py)
        self.prescriptions: PrescriptionServices | None = None
        # INSi and the outbox for identification and care declarations (fhir/operations/identity.py)
        self.identity: IdentityServices | None = None

    # -- the door ---------------------------------------------------------------------------

    async def authorize(
        self,
        request: FhirRequest,
        interaction: Interaction,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        target: Target | None = None,
        detail: str | None = None,
    ) -> Decision:
        """Ask the policy and keep the decision for the audit trail of this request."""
        patient = target.patient if target is not None else None
        access = AccessRequest(request.caller, interaction, resource_type, resource_id, patient, detail)
        decision = await self.policy.decide(access, target, request.relations)
        if target is not None or not decision.allowed:
            # a granted search, history or Bundle is recorded by what it returns, entry by entry
            request.audit.decisions.append(decision)
        return decision

    async def require(
        self,
        request: FhirRequest,
        interaction: Interaction,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        target: Target | None = None,
        detail: str | None = None,
    ) -> Decision:
        """:meth:`authorize`, raising when refused: "forbidden" looks like "absent" (404) for an
        existing resource the caller may not read; a refused creation or search is 403, and so is
        a refused change of a resource the caller may read (its existence is no secret to them)."""
        decision = await self.authorize(
            request, interaction, resource_type, resource_id, target=target, detail=detail
        )
        if not decision.allowed:
            if decision.reason == "not authenticated":
                raise Unauthorized()
            if resource_id is not None and not (
                interaction in ("update", "patch", "delete")
                and target is not None
                and await self._may_read(request, resource_type, resource_id, target)
            ):
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            raise Forbidden(f"access refused: {decision.reason}")
        return decision

    async def _may_read(
        self, request: FhirRequest, resource_type: str | None, resource_id: str, target: Target
    ) -> bool:
        """Whether the caller may read the resource (asked, not recorded: nothing is read)."""
        access = AccessRequest(request.caller, "read", resource_type, resource_id, target.patient)
        return (await self.policy.decide(access, target, request.relations)).allowed

    def scoped(self, request: FhirRequest, interaction: Interaction, resource_type: str) -> None:
        """Refuse (403) an interaction the app's scopes never allow on this type, and record it."""
        reason = self.policy.scope_refusal(request.caller, interaction, resource_type)
        if reason is not None:
            access = AccessRequest(request.caller, interaction, resource_type, detail=reason)
            request.audit.decisions.append(Decision(access, False, reason))
            raise Forbidden(reason)

    async def restrict(self, request: FhirRequest, query: SearchQuery) -> SearchQuery:
        """Add the caller's search restriction to ``query`` (the store applies it in SQL)."""
        query.restriction = await self.policy.restriction(
            request.caller, query.resource_type, request.relations
        )
        return query

    async def visible(
        self, request: FhirRequest, rows: list[StoredResource], detail: str
    ) -> list[StoredResource]:
        """The rows the caller may read (included resources, compartments, history): the others
        are dropped silently, and each kept row's patient gets an audit record."""
        if request.caller.unrestricted:
            return rows
        kept = []
        # a platform job's verdict depends on the type alone (its scopes): decide once per type
        # (not a structure's software: its verdict depends on the record, as a professional's)
        platform_job = request.caller.kind == "system" and request.caller.principal.structure is None
        per_type: dict[str, bool] | None = {} if platform_job else None
        for row in rows:
            allowed = per_type.get(row.resource_type) if per_type is not None else None
            if allowed is None:
                decision = await self.policy.decide(
                    AccessRequest(request.caller, "read", row.resource_type, row.id, detail=detail),
                    target_of(row),
                    request.relations,
                )
                allowed = decision.allowed
                if per_type is not None:
                    per_type[row.resource_type] = allowed
            if allowed:
                kept.append(row)
        return kept

    def record_search(
        self,
        request: FhirRequest,
        resource_type: str | None,
        rows: list[StoredResource],
        detail: str,
        interaction: Interaction = "search",
    ) -> None:
        """One granted decision per patient whose data the response carries (or one in the
        system partition when it carries none)."""
        patients: list[str | None] = [
            *sorted({r.patient or (r.id if r.resource_type == "Patient" else "") for r in rows} - {""})
        ]
        for patient in patients or [None]:
            access = AccessRequest(request.caller, interaction, resource_type, None, patient, detail)
            request.audit.decisions.append(Decision(access, True, "search within the caller's restriction"))

    @contextlib.asynccontextmanager
    async def transaction(self, request: FhirRequest) -> AsyncIterator[StoreTransaction]:
        """A store transaction whose commit includes the audit records of this request's decisions."""
        async with self.store.transaction() as tx:
            yield tx
            await self.commit_audit(request, tx)

    async def commit_audit(self, request: FhirRequest, tx: StoreTransaction) -> None:
        pending = request.audit.take()
        if pending:
            entries = audit_entries(
                pending, server=self.server, recorded_us=self.clock(), request_id=request.request_id
            )
            await self.audit.append(tx, entries)

    async def flush_audit(self, request: FhirRequest, status: int) -> None:
        """Write the decisions not yet in the trail, durably (before a read's response is sent).
        A granted access whose interaction then failed is recorded with a failure outcome."""
        await self.flush_audits([(request, status)])

    async def flush_audits(self, answered: Sequence[tuple[FhirRequest, int]]) -> None:
        """:meth:`flush_audit` for several requests in one durable write (a portal page's)."""
        entries = []
        recorded_us = self.clock()
        for request, status in answered:
            pending = request.audit.take()
            if pending:
                failure = None if status < 400 else ("8" if status >= 500 else "4")
                entries.extend(
                    audit_entries(
                        pending,
                        server=self.server,
                        recorded_us=recorded_us,
                        request_id=request.request_id,
                        failure=failure,
                    )
                )
        if entries:
            await self.audit.append_now(entries)

    # -- helpers ----------------------------------------------------------------------------

    def full_url(self, resource_type: str, id: str) -> str:
        return f"{self.base_url}/{resource_type}/{id}"

    def _located(self, stored: StoredResource, status: int, request: FhirRequest) -> FhirResponse:
        headers = {
            "ETag": res.etag(stored.version),
            "Last-Modified": res.http_date(stored.last_updated),
            "Location": f"{self.full_url(stored.resource_type, stored.id)}/_history/{stored.version}",
        }
        return self._with_prefer(request, status, stored.content, headers)

    def _with_prefer(
        self, request: FhirRequest, status: int, content: bytes, headers: dict[str, str]
    ) -> FhirResponse:
        mode = prefer(request, "return") or "representation"
        if mode == "minimal":
            return FhirResponse(status, None, headers, resource_bytes=content)
        if mode == "OperationOutcome":
            outcome = operation_outcome(
                [Issue("informational", f"{request.method} succeeded", severity="information")]
            )
            return FhirResponse(status, outcome, headers, resource_bytes=content)
        return FhirResponse(status, content, headers, resource_bytes=content)

    def _prepare(self, resource: dict[str, Any], resource_type: str, id: str) -> None:
        if resource.get("resourceType") != resource_type:
            raise InvalidRequest(
                f"resourceType {resource.get('resourceType')!r} does not match the URL ({resource_type})",
                expression="resourceType",
            )
        issues = validate_resource(resource)
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        if errors:
            raise Unprocessable(errors)
        unresolved = None if resource_type == "Bundle" else _unresolved_reference(resource, resource_type)
        if unresolved is not None:
            where, ref = unresolved
            raise Unprocessable(
                f"reference {ref!r} can only be resolved inside a transaction Bundle that defines it",
                code="invalid",
                expression=where,
            )

    async def _majority(self, resource: dict[str, Any], tx: StoreTransaction | None) -> int | None:
        """When the patient a RelatedPerson represents comes of age (µs), from their birthDate."""
        ref = (
            (resource.get("patient") or {}).get("reference")
            if isinstance(resource.get("patient"), dict)
            else None
        )
        if (
            resource.get("resourceType") != "RelatedPerson"
            or not isinstance(ref, str)
            or not ref.startswith("Patient/")
        ):
            return None
        pid = ref.split("/", 1)[1]
        stored = await (tx.read_for_update("Patient", pid) if tx else self.store.read("Patient", pid))
        if stored is None or stored.deleted:
            return None
        born = orjson.loads(stored.content).get("birthDate")
        if not isinstance(born, str) or len(born) < 4 or not born[:4].isdigit():
            return None
        from hygie.fhir.values import date_range  # noqa: PLC0415

        year = int(born[:4]) + self.limits.majority_age
        try:
            return date_range(f"{year:04d}{born[4:]}")[0]
        except ValueError:  # 29 February
            return date_range(f"{year:04d}-03-01")[0]

    def _write_op(
        self,
        resource: dict[str, Any],
        resource_type: str,
        id: str,
        version: int,
        method: str,
        ts: int,
        majority_us: int | None = None,
    ) -> WriteOp:
        content = res.stamp(resource, id, version, ts)
        stamped = {**resource, "id": id}
        index = extract_index(stamped)
        index.relations = [
            (r.kind, r.patient, r.actor, ",".join(r.categories) if r.categories else None, r.expires_us)
            for r in relations_from(stamped, majority_us=majority_us)
        ]
        patient = index.compartments[0] if index.compartments else None
        return WriteOp(resource_type, id, version, ts, content, index, method, False, patient)

    # -- read -------------------------------------------------------------------------------

    async def read(
        self, request: FhirRequest, resource_type: str, id: str, tx: StoreTransaction | None = None
    ) -> FhirResponse:
        res.require_type(resource_type)
        res.require_id(id)
        self.scoped(request, "read", resource_type)
        # inside a transaction a read sees the transaction's own writes
        stored = await (tx.read_for_update(resource_type, id) if tx else self.store.read(resource_type, id))
        if stored is None:
            raise NotFound(f"{resource_type}/{id} is not known")
        await self.require(request, "read", resource_type, id, target=target_of(stored))
        if stored.deleted:
            raise Gone(
                f"{resource_type}/{id} was deleted",
                headers={
                    "ETag": res.etag(stored.version),
                    "Last-Modified": res.http_date(stored.last_updated),
                },
            )
        headers = {"ETag": res.etag(stored.version), "Last-Modified": res.http_date(stored.last_updated)}
        if_none_match = request.header("if-none-match")
        if if_none_match and if_none_match.strip().lstrip("W/").strip('"') == str(stored.version):
            return FhirResponse(304, None, headers)
        if resource_type == "Binary" and _wants_native(request):
            return _native_binary(stored.content, headers)
        body: bytes | dict[str, Any] = stored.content
        summary = dict(request.query).get("_summary")
        elements = dict(request.query).get("_elements")
        if summary == "true" or elements:
            resource = orjson.loads(stored.content)
            keep = (
                res.summary_elements(resource_type) if summary == "true" else set((elements or "").split(","))
            )
            body = res.subset(resource, keep)
        return FhirResponse(200, body, headers, resource_bytes=stored.content)

    async def vread(self, request: FhirRequest, resource_type: str, id: str, version: str) -> FhirResponse:
        res.require_type(resource_type)
        res.require_id(id)
        if not version.isdigit():
            raise NotFound(f"{resource_type}/{id} has no version {version!r}")
        self.scoped(request, "vread", resource_type)
        stored = await self.store.vread(resource_type, id, int(version))
        if stored is None:
            raise NotFound(f"{resource_type}/{id} has no version {version}")
        current = await self.store.read(resource_type, id)
        patient = current.patient if current is not None else None
        await self.require(
            request, "vread", resource_type, id, target=with_patient(target_of(stored), patient)
        )
        headers = {"ETag": res.etag(stored.version), "Last-Modified": res.http_date(stored.last_updated)}
        if stored.deleted:
            raise Gone(f"version {version} of {resource_type}/{id} is a deletion", headers=headers)
        return FhirResponse(200, stored.content, headers, resource_bytes=stored.content)

    # -- create / update / patch / delete -----------------------------------------------------

    def _body(self, request: FhirRequest) -> dict[str, Any]:
        if request.resource is not None:
            return request.resource
        return res.parse_json(request.body)

    async def create(
        self,
        request: FhirRequest,
        resource_type: str,
        tx: StoreTransaction | None = None,
        id: str | None = None,
    ) -> FhirResponse:
        res.require_type(resource_type)
        self.scoped(request, "create", resource_type)
        resource = self._body(request)
        if_none_exist = request.header("if-none-exist")
        if if_none_exist is not None:
            existing = await self._conditional_match(request, resource_type, if_none_exist, tx)
            if len(existing) > 1:
                raise PreconditionFailed(
                    f"If-None-Exist matched {len(existing)} resources", expression="If-None-Exist"
                )
            if existing:
                # inside a transaction the match may be one of its own, not yet committed, writes
                if tx is not None:
                    found = await tx.read_for_update(resource_type, existing[0])
                else:
                    found = await self.store.read(resource_type, existing[0])
                if found is None:
                    raise Conflict(f"{resource_type}/{existing[0]} changed while checking If-None-Exist")
                await self.require(request, "read", resource_type, found.id, target=target_of(found))
                headers = {
                    "ETag": res.etag(found.version),
                    "Last-Modified": res.http_date(found.last_updated),
                    "Location": f"{self.full_url(resource_type, found.id)}/_history/{found.version}",
                }
                return self._with_prefer(request, 200, found.content, headers)
        new_id = id or res.new_id()
        self._prepare(resource, resource_type, new_id)
        resource = with_provenance(resource, request.caller.app, keep=request.caller.kind == "operator")
        check_professional_document(request.caller.principal, resource_type, resource)
        majority = await self._majority(resource, tx)
        op = self._write_op(resource, resource_type, new_id, 1, "POST", self.clock(), majority)
        await self.require(
            request, "create", resource_type, target=target_of_resource(resource_type, op.patient, resource)
        )
        await self._commit(request, op, tx)
        stored = StoredResource(resource_type, new_id, 1, op.last_updated, False, op.content)
        return self._located(stored, 201, request)

    async def _commit(self, request: FhirRequest, op: WriteOp, tx: StoreTransaction | None) -> None:
        if tx is not None:
            await tx.write(op)
            return
        async with self.transaction(request) as own:
            await own.write(op)

    async def update(
        self, request: FhirRequest, resource_type: str, id: str, tx: StoreTransaction | None = None
    ) -> FhirResponse:
        res.require_type(resource_type)
        res.require_id(id)
        self.scoped(request, "update", resource_type)
        resource = self._body(request)
        body_id = resource.get("id")
        if body_id is None:
            raise InvalidRequest(
                "the resource in an update must have an id", code="required", expression="id"
            )
        if body_id != id:
            raise InvalidRequest(
                f"the resource id {body_id!r} does not match the URL id {id!r}", expression="id"
            )
        self._prepare(resource, resource_type, id)
        check_professional_document(request.caller.principal, resource_type, resource)
        expected = parse_if_match(request.header("if-match"))
        if tx is not None:
            return await self._update_in(request, tx, resource, resource_type, id, expected, "PUT")
        async with self.transaction(request) as own:
            return await self._update_in(request, own, resource, resource_type, id, expected, "PUT")

    async def _update_in(
        self,
        request: FhirRequest,
        tx: StoreTransaction,
        resource: dict[str, Any],
        resource_type: str,
        id: str,
        expected: int | None,
        method: str,
    ) -> FhirResponse:
        resource = with_provenance(resource, request.caller.app, keep=request.caller.kind == "operator")
        current = await tx.read_for_update(resource_type, id)
        interaction: Interaction = "patch" if method == "PATCH" else ("update" if current else "create")
        if current is not None and not current.deleted and method != "PATCH":  # patch() asked already
            # may the caller change what is there? (before If-Match: a refusal looks like absence)
            await self.require(
                request, interaction, resource_type, id, target=target_of(current, authors=True)
            )
        if expected is not None:
            if current is None or current.deleted:
                raise PreconditionFailed(f"{resource_type}/{id} does not exist (If-Match {expected})")
            if current.version != expected:
                raise PreconditionFailed(
                    f"{resource_type}/{id} is at version {current.version}, not {expected}",
                    expression="If-Match",
                )
        version = (current.version + 1) if current is not None else 1
        majority = await self._majority(resource, tx)
        op = self._write_op(resource, resource_type, id, version, method, self.clock(), majority)
        # and may it write what it sends (not, say, move an entry into another record)?
        decision = await self.authorize(
            request,
            interaction,
            resource_type,
            id,
            target=target_of_resource(resource_type, op.patient, resource),
        )
        if not decision.allowed:
            raise Forbidden(f"access refused: {decision.reason}")
        await tx.write(op)
        created = current is None or current.deleted
        stored = StoredResource(resource_type, id, version, op.last_updated, False, op.content)
        return self._located(stored, 201 if created else 200, request)

    async def _conditional_match(
        self, request: FhirRequest, resource_type: str, criteria: str, tx: StoreTransaction | None
    ) -> list[str]:
        criteria = criteria.split("?", 1)[1] if "?" in criteria else criteria
        params = parse_qsl(criteria, keep_blank_values=True)
        if not params:
            raise InvalidRequest("conditional operation without criteria", expression="criteria")
        query = parse_search(resource_type, params, strict=True, max_count=self.limits.max_count)
        self.scoped(request, "search", resource_type)
        # conditional matches see only what the caller may see: no leak through them
        await self.restrict(request, query)
        if tx is not None:
            keys = await tx.search_keys(query, 2)
        else:
            async with self.store.transaction() as own:
                keys = await own.search_keys(query, 2)
        return [i for _, i in keys]

    async def conditional_update(
        self, request: FhirRequest, resource_type: str, tx: StoreTransaction | None = None
    ) -> FhirResponse:
        res.require_type(resource_type)
        criteria = urlencode(request.query)
        matches = await self._conditional_match(request, resource_type, criteria, tx)
        if len(matches) > 1:
            raise PreconditionFailed(f"the criteria matched {len(matches)} resources", expression="criteria")
        resource = self._body(request)
        body_id = resource.get("id")
        if matches:
            if body_id is not None and body_id != matches[0]:
                raise InvalidRequest(
                    f"the resource id {body_id!r} differs from the matching resource {matches[0]!r}",
                    expression="id",
                )
            resource["id"] = matches[0]
            request.resource = resource
            return await self.update(request, resource_type, matches[0], tx)
        if body_id is not None:
            request.resource = resource
            return await self.update(request, resource_type, str(body_id), tx)
        request.resource = resource
        return await self.create(request, resource_type, tx)

    async def patch(
        self, request: FhirRequest, resource_type: str, id: str, tx: StoreTransaction | None = None
    ) -> FhirResponse:
        res.require_type(resource_type)
        res.require_id(id)
        self.scoped(request, "patch", resource_type)
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        if request.resource is not None and request.resource.get("resourceType") == "Binary":
            # a batch entry carries a JSON Patch as a Binary (http://hl7.org/fhir/R4/http.html#patch)
            import base64  # noqa: PLC0415

            body = base64.b64decode(request.resource.get("data", ""))
        elif content_type not in ("application/json-patch+json", ""):
            raise NotSupported(
                f"PATCH supports application/json-patch+json only, not {content_type!r}",
                status=415,
            )
        else:
            body = request.body or b""
        try:
            operations = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"malformed JSON Patch: {exc}", code="structure") from exc
        if not isinstance(operations, list):
            raise InvalidRequest("a JSON Patch is a JSON array of operations", code="structure")
        expected = parse_if_match(request.header("if-match"))

        async def run(t: StoreTransaction) -> FhirResponse:
            current = await t.read_for_update(resource_type, id)
            if current is None:
                raise NotFound(f"{resource_type}/{id} is not known")
            await self.require(request, "patch", resource_type, id, target=target_of(current, authors=True))
            if current.deleted:
                raise Gone(f"{resource_type}/{id} was deleted")
            if expected is not None and expected != current.version:
                raise PreconditionFailed(
                    f"{resource_type}/{id} is at version {current.version}, not {expected}",
                    expression="If-Match",
                )
            original = orjson.loads(current.content)
            try:
                patched = jsonpatch.apply_patch(original, operations)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
                # name the failing operation, never echo the stored document back
                failing = _failing_operation(operations, original)
                raise Unprocessable(
                    f"the patch cannot be applied: {type(exc).__name__} at operation {failing}",
                    code="processing",
                ) from exc
            if patched.get("id") != id or patched.get("resourceType") != resource_type:
                raise Unprocessable("a patch may not change the resource type or id", code="processing")
            self._prepare(patched, resource_type, id)
            return await self._update_in(request, t, patched, resource_type, id, expected, "PATCH")

        if tx is not None:
            return await run(tx)
        async with self.transaction(request) as own:
            return await run(own)

    async def delete(
        self, request: FhirRequest, resource_type: str, id: str, tx: StoreTransaction | None = None
    ) -> FhirResponse:
        """A delete writes a tombstone: the history keeps every version. With ``_expunge=true``
        (as HAPI FHIR's) the resource is erased instead, every version with it, in the same store
        transaction — decided by the same rule as a delete (whoever may delete it may erase it)
        and recorded as a delete whose data entity says ``_expunge=true``. Afterwards a read is a
        404 and the history has nothing of it; a Binary's content goes with it when no other
        Binary names it (``stores/binaries.py``). An already deleted resource may be expunged too:
        judged on its last content, in the record that content names."""
        res.require_type(resource_type)
        res.require_id(id)
        self.scoped(request, "delete", resource_type)
        expunge = expunge_asked(request)

        async def run(t: StoreTransaction) -> FhirResponse:
            current = await t.read_for_update(resource_type, id)
            if current is None or (current.deleted and not expunge):
                return FhirResponse(204)
            target = target_of(current, authors=True)
            if current.deleted and target.patient is None:
                # a tombstone's row names no record any more: its last content still does
                target = with_patient(target, self._compartment_of(current))
            await self.require(
                request, "delete", resource_type, id, target=target, detail=EXPUNGE if expunge else None
            )
            expected = parse_if_match(request.header("if-match"))
            if expected is not None and expected != current.version:
                raise PreconditionFailed(
                    f"{resource_type}/{id} is at version {current.version}, not {expected}",
                    expression="If-Match",
                )
            if expunge:
                await t.expunge(resource_type, id)
                return FhirResponse(204)
            ts = self.clock()
            op = WriteOp(resource_type, id, current.version + 1, ts, current.content, None, "DELETE", True)
            await t.write(op)
            return FhirResponse(204, None, {"ETag": res.etag(current.version + 1)})

        if tx is not None:
            return await run(tx)
        async with self.transaction(request) as own:
            return await run(own)

    async def conditional_delete(
        self, request: FhirRequest, resource_type: str, tx: StoreTransaction | None = None
    ) -> FhirResponse:
        res.require_type(resource_type)
        self.scoped(request, "delete", resource_type)  # even when nothing matches
        expunge_asked(request)  # a bad value is a 400 even when nothing matches
        criteria = urlencode([(k, v) for k, v in request.query if k != "_expunge"])
        matches = await self._conditional_match(request, resource_type, criteria, tx)
        if len(matches) > 1:
            raise PreconditionFailed(f"the criteria matched {len(matches)} resources", expression="criteria")
        if not matches:
            return FhirResponse(204)
        return await self.delete(request, resource_type, matches[0], tx)

    def _compartment_of(self, stored: StoredResource) -> str | None:
        """The patient record a stored content belongs to (as a write would file it)."""
        if stored.resource_type == "Patient":
            return stored.id
        compartments = extract_index({**orjson.loads(stored.content), "id": stored.id}).compartments
        return compartments[0] if compartments else None

    # -- errors for the web layer ---------------------------------------------------------------

    @staticmethod
    def error_response(error: FhirError) -> FhirResponse:
        return FhirResponse(error.status, error.outcome(), dict(error.headers))


def expunge_asked(request: FhirRequest) -> bool:
    """Whether a DELETE asks for the physical erasure (``_expunge=true``; ``false`` or absent:
    a tombstone). Any other value is a 400, never a silent tombstone."""
    values = [v for k, v in request.query if k == "_expunge"]
    if not values:
        return False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise InvalidRequest("_expunge is true or false, given once", expression="_expunge")
    return values[0] == "true"


def conflict_from(exc: Exception) -> Conflict:
    return Conflict(str(exc))


def split_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def search_query(request: FhirRequest, resource_type: str | None, limits: Limits) -> SearchQuery:
    strict = prefer(request, "handling") == "strict"
    return parse_search(
        resource_type,
        request.query,
        default_count=limits.default_count,
        max_count=limits.max_count,
        strict=strict,
    )
