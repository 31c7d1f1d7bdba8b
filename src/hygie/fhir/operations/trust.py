"""The citizen's controls and the professional's emergency access, as FHIR operations.

* ``GET Patient/[id]/$access-history`` — who accessed the record: a ``searchset`` Bundle of the
  AuditEvents of the patient's partition, newest first (``_count``, ``_since``, paging), for the
  patient and their legal representatives;
* ``POST AuditEvent/[id]/$dispute`` — "je ne reconnais pas cet accès": opens a case for the
  data-protection officer of the structure that made the access (``domain/disputes.py``);
* ``POST Patient/[id]/$break-glass`` — a professional without a care relationship opens an
  emergency access (reason code, justification, at most 4 h), unless the patient refused it;
  the patient is notified, the structure's review queue gets it, the audit shows ``BTG``;
* ``POST Patient/[id]/$share`` — the patient creates a temporary grant redeemable by a short
  code or its QR code (duration, document categories, purpose);
* ``POST $redeem-share`` — a professional redeems the code: the grant becomes the patient's
  ``Consent`` (a ``permit`` provision naming the professional, ending by itself), which the
  patient can revoke at any time by deleting it.

Every operation passes the access policy and leaves audit records, like any interaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

import orjson

from hygie.domain.access import AccessRequest, Caller, Decision
from hygie.domain.audit import access_line
from hygie.domain.break_glass import MAX_HOURS, REASONS, BreakGlass, BreakGlassRefused, BreakGlassService
from hygie.domain.disputes import DisputeConflict, DisputeError, open_dispute
from hygie.domain.ens.notifications import Notice, audience, notices, portal_base
from hygie.domain.policy import Principal, Target
from hygie.fhir import resources as res
from hygie.fhir.outcome import Forbidden, InvalidRequest, NotFound, Unprocessable
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.searching import since_of
from hygie.fhir.targets import target_of
from hygie.ports import KeyValueStore

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService

__all__ = [
    "SHARE_CODE_MINUTES",
    "TrustServices",
    "access_history",
    "break_glass",
    "dispute",
    "redeem_share",
    "share",
]

SHARE_CODE_MINUTES = 30  # a share code must be redeemed within this time
MAX_SHARE_DAYS = 365
_SHARE = "share_code"
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed from paper
_MINUTE_US = 60 * 1_000_000


@dataclass
class TrustServices:
    """What the operations need beside the store: emergency accesses and short-lived codes."""

    break_glass: BreakGlassService
    kv: KeyValueStore
    clock: Callable[[], int]


def _parameters(body: dict[str, Any] | None) -> dict[str, Any]:
    """``Parameters`` → {name: value[x]} (the first value of each name)."""
    if body is None:
        return {}
    if body.get("resourceType") != "Parameters":
        raise InvalidRequest("this operation takes a Parameters resource", expression="resourceType")
    out: dict[str, Any] = {}
    for param in body.get("parameter", []) or []:
        if not isinstance(param, dict) or "name" not in param:
            continue
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        if param["name"] in out:
            existing = out[param["name"]]
            out[param["name"]] = [*(existing if isinstance(existing, list) else [existing]), value]
        else:
            out[param["name"]] = value
    return out


def _body(request: FhirRequest) -> dict[str, Any] | None:
    if request.resource is not None:
        return request.resource
    if not request.body:
        return None
    return res.parse_json(request.body)


def _parameters_resource(**values: Any) -> dict[str, Any]:
    params = []
    for name, value in values.items():
        if value is None:
            continue
        key = {bool: "valueBoolean", int: "valueInteger"}.get(type(value), "valueString")
        params.append({"name": name.replace("_", "-"), key: value})
    return {"resourceType": "Parameters", "parameter": params}


def _trust(service: FhirService) -> TrustServices:
    if service.trust is None:
        raise NotFound("this server does not offer the trust operations")
    return service.trust


async def _patient(service: FhirService, request: FhirRequest, patient_id: str, operation: str) -> Target:
    """The Patient, read under the caller's rights (404 when absent or not theirs to see)."""
    res.require_id(patient_id)
    stored = await service.store.read("Patient", patient_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    target = target_of(stored)
    await service.require(request, "operation", "Patient", patient_id, target=target, detail=operation)
    return target


# -- access history ------------------------------------------------------------------------------


async def access_history(service: FhirService, request: FhirRequest, patient_id: str) -> FhirResponse:
    """The patient's access history (the patient, a legal representative, or an operator)."""
    caller = request.caller
    if caller.kind not in ("patient", "representative", "operator"):
        # professionals, helpers and apps do not read who else accessed the record
        await _refuse(
            service, request, "Patient", patient_id, "only the patient and their legal representatives"
        )
    await _patient(service, request, patient_id, "$access-history")
    params = dict(request.query)
    try:
        count = max(1, min(int(params.get("_count", "50")), service.limits.max_count))
    except ValueError as exc:
        raise InvalidRequest("_count must be an integer", expression="_count") from exc
    since = since_of(params.get("_since") or None)
    # "accesses by others": the caller names the agents to leave out (themselves, those acting for them)
    excluded = [v for k, v in request.query if k == "exclude-agent" and v][:20]
    # and the kinds of agents to leave out (``platform``: the platform's own processes)
    roles = [v for k, v in request.query if k == "exclude-role" and v][:20]
    page = await service.audit.list_for_patient(
        patient_id,
        since_us=since,
        count=count,
        cursor=params.get("_cursor"),
        exclude_agents=excluded,
        exclude_roles=roles,
    )
    base = f"{service.base_url}/Patient/{patient_id}/$access-history"
    kept = [(k, v) for k, v in request.query if k != "_cursor"]
    links = [{"relation": "self", "url": base + (f"?{urlencode(request.query)}" if request.query else "")}]
    if page.next_cursor:
        links.append(
            {"relation": "next", "url": f"{base}?{urlencode([*kept, ('_cursor', page.next_cursor)])}"}
        )
    # the patient's disputes, to show each disputed line's case and its state
    disputes = {(d.partition, d.seq): d for d in await service.audit.list_disputes(patient=patient_id)}
    entries = []
    for record in page.records:
        event = record.entry.event()
        event["id"] = f"{record.partition}.{record.seq}"
        line = access_line(record)
        case = disputes.get((record.partition, record.seq))
        # the lines a patient reads: who, role, structure, what, when, purpose (and "dispute me")
        event.setdefault("extension", []).append(
            {
                "url": "https://hygie.example/fhir/StructureDefinition/access-line",
                "valueString": orjson.dumps(
                    {
                        "who": line.who_display or line.who,
                        "role": line.role,
                        "structure": line.structure,
                        "what": list(line.what),
                        "granted": line.granted,
                        "purpose": line.purpose,
                        "dispute": None
                        if case is None
                        else {
                            "id": case.id,
                            "status": case.status,
                            "outcome": case.outcome,
                            "resolution": case.resolution,
                        },
                    }
                ).decode(),
            }
        )
        entries.append(
            {
                "fullUrl": f"{service.base_url}/AuditEvent/{event['id']}",
                "resource": event,
                "search": {"mode": "match"},
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "id": res.new_id(),
        "meta": {"lastUpdated": res.instant(service.clock())},
        "type": "searchset",
        "link": links,
        "entry": entries,
    }
    return FhirResponse(200, bundle)


async def _refuse(service: FhirService, request: FhirRequest, rtype: str, rid: str, reason: str) -> NoReturn:
    access = AccessRequest(request.caller, "operation", rtype, rid, None, reason)
    request.audit.decisions.append(Decision(access, False, reason))
    raise NotFound(f"{rtype}/{rid} is not known")


# -- disputes ------------------------------------------------------------------------------------


async def dispute(service: FhirService, request: FhirRequest, event_id: str) -> FhirResponse:
    """ "I don't recognise this access": the patient opens a case about one of their records."""
    partition, _, seq_text = event_id.rpartition(".")
    if not partition or not seq_text.isdigit():
        raise NotFound(f"AuditEvent/{event_id} is not known")
    record = await service.audit.get(partition, int(seq_text))
    caller = request.caller
    if record is None or caller.kind != "patient" or caller.principal.patient_id != record.entry.patient:
        await _refuse(
            service, request, "AuditEvent", event_id, "only the patient an access concerns may dispute it"
        )
        raise AssertionError  # unreachable: _refuse raises
    params = _parameters(_body(request))
    comment = str(params.get("comment") or "").strip()
    now = service.clock()
    try:
        case = open_dispute(secrets.token_urlsafe(12), record, caller, comment, now)
        await service.audit.save_dispute(case)
    except DisputeConflict as exc:
        raise Unprocessable("cet accès a déjà été signalé", code="duplicate") from exc
    except DisputeError as exc:
        raise Forbidden(str(exc)) from exc
    access = AccessRequest(caller, "create", "AuditEvent", event_id, record.entry.patient, "$dispute")
    request.audit.decisions.append(Decision(access, True, "the patient disputes an access"))
    body = _parameters_resource(
        dispute=case.id,
        status=case.status,
        structure=case.structure,
        message=(
            "Votre signalement a été transmis au délégué à la protection des données de la structure "
            "concernée. Vous serez informé(e) de ses conclusions."
        ),
    )
    return FhirResponse(201, body)


# -- break-glass ---------------------------------------------------------------------------------


def _teller(service: FhirService, patient_id: str) -> Callable[[BreakGlass], Awaitable[Sequence[Notice]]]:
    """The notices of an emergency access: the one recipient rule (``domain/ens/notifications.py``),
    its contact details read through the one door as the operator ``notifications``."""

    async def tell(grant: BreakGlass) -> Sequence[Notice]:
        from hygie.web.portal.door import Door  # noqa: PLC0415 - the door only wraps this service

        told = await audience(
            Door(service),
            patient_id,
            kind="emergency",
            now_us=service.clock(),
            majority_age=service.limits.majority_age,
        )
        hours = max(1, -(-(grant.expires_us - grant.opened_us) // 3_600_000_000))
        return notices("emergency", grant.id, told, base_url=portal_base(service.base_url), hours=hours)

    return tell


async def break_glass(service: FhirService, request: FhirRequest, patient_id: str) -> FhirResponse:
    """A professional opens an emergency access to a patient they have no relationship with."""
    trust = _trust(service)
    caller = request.caller
    principal = caller.principal
    res.require_id(patient_id)
    if principal.kind != "practitioner" or principal.subject is None:
        raise Forbidden("only a health professional may open an emergency access")
    stored = await service.store.read("Patient", patient_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    params = _parameters(_body(request))
    try:
        hours = float(params.get("hours") or MAX_HOURS)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("hours must be a number", expression="Parameters.parameter[hours]") from exc
    relations = await service.store.relations(patient_id, ["*"], now_us=service.clock())
    # a patient who refused emergency access, or whose health space is closed
    refused = any(kind in ("emergency_refusal", "space_closed") for kind, _, _ in relations)
    reason = str(params.get("reason") or "")
    try:
        grant = await trust.break_glass.open(
            practitioner=principal.subject,
            organization=principal.organization,
            patient=patient_id,
            reason=reason,
            justification=str(params.get("justification") or ""),
            hours=hours,
            emergency_refused=refused,
            notify=_teller(service, patient_id),
        )
    except BreakGlassRefused as exc:
        access = AccessRequest(caller, "operation", "Patient", patient_id, patient_id, "$break-glass")
        request.audit.decisions.append(Decision(access, False, f"break-glass refused: {exc.code}"))
        status = 403 if exc.code == "refused-by-patient" else 422
        raise Unprocessable(
            exc.message, code="forbidden" if status == 403 else "invalid", expression=exc.code
        ) from exc
    access = AccessRequest(caller, "operation", "Patient", patient_id, patient_id, f"$break-glass {reason}")
    request.audit.decisions.append(
        Decision(
            access, True, f"break-glass opened: {REASONS[reason]} — {grant.justification}", break_glass=True
        )
    )
    body = _parameters_resource(
        id=grant.id,
        expires=res.instant(grant.expires_us),
        reason=REASONS[reason],
        patient=f"Patient/{patient_id}",
    )
    return FhirResponse(201, body)


# -- temporary grants by code --------------------------------------------------------------------


def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


def qr_svg(text: str) -> str:
    """The QR code of ``text`` as an SVG data URI (segno)."""
    import segno  # noqa: PLC0415

    svg: str = segno.make(text, error="m").svg_data_uri(scale=4)
    return svg


async def share(service: FhirService, request: FhirRequest, patient_id: str) -> FhirResponse:
    """The patient (or their legal representative) creates a share code for a professional."""
    trust = _trust(service)
    caller = request.caller
    if caller.kind not in ("patient", "representative"):
        await _refuse(service, request, "Patient", patient_id, "only the patient shares their record")
    await _patient(service, request, patient_id, "$share")
    params = _parameters(_body(request))
    try:
        days = float(params.get("days") or 1)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("days must be a number", expression="Parameters.parameter[days]") from exc
    if not 0 < days <= MAX_SHARE_DAYS:
        raise Unprocessable(
            f"La durée d'un partage est comprise entre quelques heures et {MAX_SHARE_DAYS} jours.",
            code="invalid",
            expression="Parameters.parameter[days]",
        )
    categories = params.get("category") or []
    categories = [str(c) for c in (categories if isinstance(categories, list) else [categories])]
    purpose = str(params.get("purpose") or "TREAT")
    now = trust.clock()
    code = _new_code()
    record = {
        "patient": patient_id,
        "days": days,
        "categories": categories,
        "purpose": purpose,
        "by": caller.subject,
        "created": now,
    }
    expires = now + SHARE_CODE_MINUTES * _MINUTE_US
    while not await trust.kv.add(_SHARE, code, record, expires_us=expires):
        code = _new_code()
    body = _parameters_resource(
        code=code,
        expires=res.instant(expires),
        qr=qr_svg(f"HYGIE-PARTAGE:{code}"),
        message=(
            f"Donnez ce code au professionnel de santé dans les {SHARE_CODE_MINUTES} minutes. "
            "Il lui ouvre votre dossier pour la durée choisie ; vous pouvez retirer cet accès à tout moment."
        ),
    )
    return FhirResponse(201, body)


async def redeem_share(service: FhirService, request: FhirRequest) -> FhirResponse:
    """A professional redeems a share code: the grant becomes the patient's Consent."""
    trust = _trust(service)
    caller = request.caller
    principal = caller.principal
    if principal.kind != "practitioner" or principal.subject is None:
        raise Forbidden("only a health professional redeems a share code")
    params = _parameters(_body(request))
    code = str(params.get("code") or "").strip().upper().removeprefix("HYGIE-PARTAGE:")
    record = await trust.kv.take(_SHARE, code) if code else None
    if record is None:
        access = AccessRequest(caller, "operation", None, None, None, "$redeem-share")
        request.audit.decisions.append(Decision(access, False, "unknown or expired share code"))
        raise Unprocessable(
            "Ce code est inconnu, déjà utilisé ou expiré.", code="not-found", expression="code"
        )
    patient_id = str(record["patient"])
    now = trust.clock()
    end = now + int(float(record["days"]) * 86_400 * 1_000_000)
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {"start": res.instant(now), "end": res.instant(end)},
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PRCP",
                        }
                    ]
                },
                "reference": {"reference": principal.subject},
            }
        ],
        "purpose": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": record["purpose"]}
        ],
    }
    if record["categories"]:
        provision["class"] = [
            {"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": c} for c in record["categories"]
        ]
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": res.instant(now)[:19] + "Z",
        "provision": provision,
    }
    if record.get("by"):
        consent["performer"] = [{"reference": str(record["by"])}]
    # the patient's own consent, recorded on their behalf (they created the code)
    as_patient = Caller.of(
        Principal("patient", f"Patient/{patient_id}"), display="code de partage", client_id=caller.client_id
    )
    inner = FhirRequest(
        "POST",
        "Consent",
        resource=consent,
        caller=as_patient,
        request_id=request.request_id,
        audit=request.audit,
    )
    response = await service.create(inner, "Consent")
    created = orjson.loads(response.resource_bytes or b"{}")
    body = _parameters_resource(
        patient=f"Patient/{patient_id}", consent=f"Consent/{created.get('id')}", expires=res.instant(end)
    )
    return FhirResponse(201, body)
