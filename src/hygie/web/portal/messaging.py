"""Sending a secure message from a portal, whichever portal (``domain/ens/messaging.py``).

The citizen's space and the professionals' portal send a message the same way: one FHIR
transaction holding the ``Communication`` and, when a file is attached to a message in a
patient's record, the ``Binary`` filed in that record and the ``DocumentReference`` pointing at
it — so that a failure leaves none of the three, and the file is protected by the same rules as
any document of the record.
"""

from __future__ import annotations

import uuid
from typing import Any

from hygie.domain.access import Caller
from hygie.domain.ens import messaging as msg
from hygie.web.portal.door import Door, PortalError, as_json

__all__ = ["post_message"]


def _post(urn: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": urn,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


async def post_message(
    door: Door,
    caller: Caller,
    message: dict[str, Any],
    *,
    upload: tuple[str, bytes] | None = None,
    author_ref: str = "",
    now_us: int = 0,
) -> str:
    """Create ``message`` (with ``upload`` — a (name, bytes) checked beforehand — filed in the
    record of the message's ``subject``, by ``author_ref``) in one transaction; the message's id."""
    entries: list[dict[str, Any]] = []
    if upload is not None:
        patient_ref = str((message.get("subject") or {}).get("reference") or "")
        if not patient_ref.startswith("Patient/"):
            raise ValueError("a file is filed in the record of the patient the message is about")
        binary_urn, document_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        binary, doc = msg.attachment_resources(
            patient_ref, author_ref, upload[0], upload[1], now_us, binary_urn
        )
        entries.append(_post(binary_urn, binary))
        entries.append(_post(document_urn, doc))
        message["payload"].append(
            {"contentReference": {"reference": document_urn, "display": doc["description"]}}
        )
    message_urn = f"urn:uuid:{uuid.uuid4()}"
    entries.append(_post(message_urn, message))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = as_json((await door.call(caller, "POST", "", resource=bundle)).body)
    location = str(((response.get("entry") or [{}])[-1].get("response") or {}).get("location", ""))
    parts = location.split("/Communication/", 1)[-1].split("/") if "/Communication/" in location else []
    if not parts or not parts[0]:
        raise PortalError(500, "Le message n’a pas pu être envoyé. Réessayez dans un instant.", location)
    return parts[0]
