"""``POST Communication/[id]/$mark-received`` — the recipient's read receipt.

A message's ``received`` (when the recipient got it, shown as "Lu le …") is set by the
recipient, not by its author; but a patient may not rewrite a professional's message (nor the
other way round, ideally). This operation lets exactly the recipient set exactly that element:

* the caller must be allowed to read the message (the access policy decides, 404 otherwise);
* the caller must be a recipient: their ``fhirUser`` (or their structure) is in ``recipient``,
  or the patient named in ``recipient`` is the caller, or the caller acts for that patient
  (legal representative, aidant) — 403 otherwise;
* ``received`` is set once, to now; the message is otherwise unchanged (a new version, so the
  history shows when it was read). A second call changes nothing.

The answer is the message as it now stands. The decision is audited as an ``update``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from hygie.domain.access import AccessRequest, Decision
from hygie.fhir import resources as res
from hygie.fhir.outcome import Conflict, Forbidden, NotFound
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.targets import target_of
from hygie.ports import StoredResource

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService

__all__ = ["mark_received"]


def _refs(items: Any) -> set[str]:
    out: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("reference"), str):
            out.add(item["reference"])
    return out


def _is_recipient(request: FhirRequest, recipients: set[str], patient: str | None) -> bool:
    principal = request.caller.principal
    mine = {r for r in (principal.subject, principal.organization) if r}
    if mine & recipients:
        return True
    # a relative acting for the patient (the policy allowed the read) opens the patient's mail
    return (
        principal.kind in ("patient", "representative", "aidant")
        and patient is not None
        and f"Patient/{patient}" in recipients
    )


async def mark_received(service: FhirService, request: FhirRequest, communication_id: str) -> FhirResponse:
    res.require_id(communication_id)
    async with service.transaction(request) as tx:
        current = await tx.read_for_update("Communication", communication_id)
        if current is None or current.deleted:
            raise NotFound(f"Communication/{communication_id} is not known")
        target = target_of(current)
        await service.require(
            request, "operation", "Communication", communication_id, target=target, detail="$mark-received"
        )
        message: dict[str, Any] = orjson.loads(current.content)
        if not _is_recipient(request, _refs(message.get("recipient")), target.patient):
            access = AccessRequest(
                request.caller, "update", "Communication", communication_id, target.patient, "$mark-received"
            )
            request.audit.decisions.append(Decision(access, False, "only a recipient acknowledges a message"))
            raise Forbidden("only a recipient of this message may mark it as received")
        if message.get("received"):
            return service._located(current, 200, request)
        now = service.clock()
        message["received"] = res.instant(now)[:19] + "Z"
        op = service._write_op(message, "Communication", communication_id, current.version + 1, "PUT", now)
        if op.patient != current.patient and current.patient is not None:
            raise Conflict("the message moved to another record")
        access = AccessRequest(
            request.caller, "update", "Communication", communication_id, target.patient, "$mark-received"
        )
        request.audit.decisions.append(Decision(access, True, "the recipient acknowledges the message"))
        await tx.write(op)
    stored = StoredResource(op.resource_type, op.id, op.version, op.last_updated, False, op.content)
    return service._located(stored, 200, request)
