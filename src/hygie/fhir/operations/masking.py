"""The patient masks a document of their record from professionals, and releases it.

* ``POST DocumentReference/[id]/$mask`` — adds the TRE_A07 visibility label ``MASQUE_PS``;
* ``POST DocumentReference/[id]/$unmask`` — removes it.

Why operations and not an update: the access rules make a professional's document read-only for
the patient (``domain/policy.py``), yet masking is the patient's own decision about who sees
their record (digest §3.3). These operations change nothing but that label, under their own rule:

* the caller is the patient whose record holds the document, or one of their legal
  representatives — and must be able to read it (a document hidden from the patient until it is
  announced, or kept from the representatives, is "not known" to them);
* professionals, helpers (aidants), backend services and apps without a DocumentReference
  write scope are refused (403 when they may see the document, 404 otherwise);
* the document gets a new version (``If-Match`` honoured) whose only difference is
  ``securityLabel`` (and ``meta.security``, where some senders put labels); its contents (the
  Binaries of the same record it points to) get the label in ``meta.security`` too, in the same
  transaction; masking a masked document, or releasing a visible one, writes nothing;
* the decision, granted or refused, goes to the audit trail like any interaction.

Who still sees a masked document is the policy's business: the patient, the document's authors,
and the médecin traitant unless the operator's matrix says otherwise
(``CategoryMatrix.masked_visible_to_medecin_traitant``).

The answer is the DocumentReference as it now is (200).
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from hygie.domain.access import AccessRequest, Decision
from hygie.domain.identity.nos import TRE_A07_VISIBILITY
from hygie.domain.policy import MASKED_FROM_PROFESSIONALS
from hygie.fhir import resources as res
from hygie.fhir.interactions import parse_if_match
from hygie.fhir.outcome import Forbidden, NotFound, PreconditionFailed
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.targets import target_of
from hygie.ports import StoredResource

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService
    from hygie.ports import StoreTransaction

__all__ = ["MASK_LABEL", "mask", "masked", "unmask", "with_mask"]

DOCUMENT = "DocumentReference"
_BINARY_URL = re.compile(r"Binary/([A-Za-z0-9\-.]{1,64})")
MASK_LABEL: dict[str, Any] = {
    "coding": [
        {
            "system": TRE_A07_VISIBILITY,
            "code": MASKED_FROM_PROFESSIONALS,
            "display": "Masqué aux professionnels de santé",
        }
    ]
}


def _codes(concepts: Any) -> list[str]:
    return [
        str(coding.get("code"))
        for concept in (concepts if isinstance(concepts, list) else [])
        if isinstance(concept, dict)
        for coding in concept.get("coding", []) or []
        if isinstance(coding, dict)
    ]


def masked(document: dict[str, Any]) -> bool:
    """Whether the document carries the ``MASQUE_PS`` label (in ``securityLabel`` or ``meta.security``)."""
    meta = document.get("meta") if isinstance(document.get("meta"), dict) else {}
    security = [{"coding": meta.get("security") or []}] if meta else []
    return MASKED_FROM_PROFESSIONALS in _codes(document.get("securityLabel")) + _codes(security)


def with_mask(document: dict[str, Any], mask: bool) -> dict[str, Any]:
    """A copy of ``document`` with the mask label added or removed, nothing else changed."""
    changed = copy.deepcopy(document)
    if mask:
        if not masked(changed):
            changed["securityLabel"] = [*(changed.get("securityLabel") or []), copy.deepcopy(MASK_LABEL)]
        return changed
    labels = []
    for concept in changed.get("securityLabel") or []:
        if not isinstance(concept, dict):
            continue
        codings = [
            c
            for c in concept.get("coding", []) or []
            if not (isinstance(c, dict) and c.get("code") == MASKED_FROM_PROFESSIONALS)
        ]
        if codings or not concept.get("coding"):
            labels.append({**concept, "coding": codings} if concept.get("coding") else concept)
    if labels:
        changed["securityLabel"] = labels
    else:
        changed.pop("securityLabel", None)
    meta = changed.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("security"), list):
        kept = [
            c
            for c in meta["security"]
            if not (isinstance(c, dict) and c.get("code") == MASKED_FROM_PROFESSIONALS)
        ]
        if kept:
            meta["security"] = kept
        else:
            meta.pop("security")
    return changed


async def mask(service: FhirService, request: FhirRequest, document_id: str) -> FhirResponse:
    """``$mask``: professionals no longer see the document (except as the policy says)."""
    return await _set_mask(service, request, document_id, mask=True)


async def unmask(service: FhirService, request: FhirRequest, document_id: str) -> FhirResponse:
    """``$unmask``: the document is visible again to the professionals the rules let in."""
    return await _set_mask(service, request, document_id, mask=False)


def _may_decide_masks(service: FhirService, request: FhirRequest) -> bool:
    """The patient or a legal representative, first-party or through an app allowed to write
    documents for them."""
    caller = request.caller
    if caller.kind not in ("patient", "representative"):
        return False
    scopes = caller.principal.scopes
    return scopes is None or any(
        scopes.permits(context, DOCUMENT, "update")[0] for context in ("patient", "user")
    )


async def _refuse(
    service: FhirService, request: FhirRequest, current: StoredResource, operation: str
) -> NoReturn:
    target = target_of(current)
    reason = f"{operation}: only the patient and their legal representatives mask a document"
    access = AccessRequest(request.caller, "operation", DOCUMENT, current.id, target.patient, operation)
    request.audit.decisions.append(Decision(access, False, reason))
    # a refusal looks like absence unless the caller may see the document anyway
    seen = AccessRequest(request.caller, "read", DOCUMENT, current.id, target.patient)
    if (await service.policy.decide(seen, target, request.relations)).allowed:
        raise Forbidden(f"access refused: {reason}")
    raise NotFound(f"{DOCUMENT}/{current.id} is not known")


async def _set_mask(
    service: FhirService, request: FhirRequest, document_id: str, *, mask: bool
) -> FhirResponse:
    res.require_id(document_id)
    operation = "$mask" if mask else "$unmask"
    expected = parse_if_match(request.header("if-match"))
    async with service.transaction(request) as tx:
        current = await tx.read_for_update(DOCUMENT, document_id)
        if current is None or current.deleted:
            raise NotFound(f"{DOCUMENT}/{document_id} is not known")
        if not _may_decide_masks(service, request) or target_of(current).patient is None:
            await _refuse(service, request, current, operation)
        # the rule of a read: the patient's own record (not hidden from them), a representative's link
        await service.require(
            request, "operation", DOCUMENT, document_id, target=target_of(current), detail=operation
        )
        if expected is not None and expected != current.version:
            raise PreconditionFailed(
                f"{DOCUMENT}/{document_id} is at version {current.version}, not {expected}",
                expression="If-Match",
            )
        document = orjson.loads(current.content)
        await _label_contents(service, tx, document, current.patient, mask=mask)
        if masked(document) == mask:
            return service._located(current, 200, request)  # already so: nothing to write
        changed = with_mask(document, mask)
        op = service._write_op(changed, DOCUMENT, document_id, current.version + 1, "PATCH", service.clock())
        await tx.write(op)
        stored = StoredResource(DOCUMENT, document_id, op.version, op.last_updated, False, op.content)
        return service._located(stored, 200, request)


async def _label_contents(
    service: FhirService, tx: StoreTransaction, document: dict[str, Any], patient: str | None, *, mask: bool
) -> None:
    """The document's contents (its Binaries, in the same record) carry the same label, so that a
    professional the mask keeps out cannot read them by id, in a search or in ``$everything``.
    A Binary names no author: while masked, its content is open to the médecin traitant (when
    the policy says so), not to the document's author, who keeps the document's metadata."""
    for content in document.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, dict) else None
        url = attachment.get("url") if isinstance(attachment, dict) else None
        found = _BINARY_URL.fullmatch(url) if isinstance(url, str) else None
        if found is None:
            continue
        stored = await tx.read_for_update("Binary", found.group(1))
        if stored is None or stored.deleted or patient is None or stored.patient != patient:
            continue
        binary = orjson.loads(stored.content)
        meta = dict(binary.get("meta") or {})
        before = list(meta.get("security") or [])
        after = [
            c for c in before if not (isinstance(c, dict) and c.get("code") == MASKED_FROM_PROFESSIONALS)
        ]
        if mask:
            after.append({"system": TRE_A07_VISIBILITY, "code": MASKED_FROM_PROFESSIONALS})
        if after == before:
            continue
        if after:
            meta["security"] = after
        else:
            meta.pop("security", None)
        binary["meta"] = meta
        op = service._write_op(binary, "Binary", stored.id, stored.version + 1, "PATCH", service.clock())
        await tx.write(op)
