"""E-prescription (*ordonnance numérique*) as FHIR operations: the prescriber writes, the
pharmacy reads and dispenses (digest §8; ``docs/fhir/eprescription.md``).

* ``POST MedicationRequest/$prescribe`` — a prescriber (doctor, dentist, midwife: TRE_G15 codes
  of :attr:`EPrescriptionConfig.prescribers`) with a care relationship to the patient, as the
  access policy decides for a creation in that record, writes a prescription: one
  ``MedicationRequest`` per line sharing the prescription number, the printed PDF (``Binary``)
  and its ``DocumentReference`` — in one transaction. With ``renews`` (a renewal request, the
  ``Task`` the citizen sent from their space), the Task is completed in the same transaction,
  its ``output`` naming the new lines, and each new line's ``priorPrescription`` names the line
  it renews.
* ``POST MedicationRequest/$lookup`` — a pharmacist (TRE_G15 ``21``) presents the QR code's
  payload, or the printed number with the patient's birth date, and reads the prescription: its
  lines with what was handed over so far, the renewals left, the prescriber, the patient's name
  and birth date, the validity.
* ``POST MedicationRequest/$dispense`` — the same pharmacist records, per line, the packs handed
  over (a part of a delivery, or the rest of it), a generic substitution, or "not delivered" with
  its reason: one ``MedicationDispense`` per line, in one transaction, refused as a whole if any
  line is refused.

**The code is the authorisation.** A pharmacist has no care relationship with the patient: the
access policy would refuse them the record. What opens *this prescription, and nothing else* is
the proof of holding it — the QR code's secret (whose SHA-256 alone is stored on the lines), or
the number printed in clear together with the patient's birth date (a second fact, so that a
number read over a shoulder or mistyped into another valid one opens nothing). Each opening is a
granted decision in the patient's audit trail with that reason; each failed attempt on a known
prescription is a refused one there; a pharmacist whose attempts keep failing is stopped for
the hour (:attr:`EPrescriptionConfig.max_failed_lookups`). The prescriber and the patient see
the dispenses through the ordinary rules: ``MedicationDispense`` is in the patient compartment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from hygie.domain.access import AccessRequest, Decision, Interaction
from hygie.domain.ens.prescriptions import OPEN_TASK_STATUSES, is_renewal
from hygie.domain.ens.vitals import PARIS
from hygie.domain.eprescription import dispensing as pharmacy
from hygie.domain.eprescription import records
from hygie.domain.eprescription.document import render_prescription
from hygie.domain.eprescription.medicines import CIP13_SYSTEM, Catalogue
from hygie.domain.eprescription.numbers import (
    NumberError,
    display_number,
    new_number,
    new_secret,
    normalise_number,
    parse_payload,
    payload,
    secret_hash,
    secret_matches,
)
from hygie.domain.eprescription.rules import (
    EPrescriptionConfig,
    PrescriptionRefused,
    check_prescription,
    line_of,
)
from hygie.domain.policy import Target
from hygie.fhir import resources as res
from hygie.fhir.outcome import Conflict, FhirError, Forbidden, InvalidRequest, Issue, NotFound, Unprocessable
from hygie.fhir.record_metadata import check_professional_document
from hygie.fhir.request import FhirRequest, FhirResponse
from hygie.fhir.search import SearchQuery, parse_search
from hygie.fhir.targets import target_of, target_of_resource
from hygie.ports import KeyValueStore, StoredResource

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService
    from hygie.ports import StoreTransaction

__all__ = ["PHARMACIST", "PrescriptionServices", "dispense", "lookup", "prescribe"]

PHARMACIST = "21"  # TRE_G15
_FAILURES = "eprescription-failed-lookup"
_HOUR_US = 3600 * 1_000_000
_MAX_LINES = 100
_MAX_DISPENSES = 2000


@dataclass
class PrescriptionServices:
    """What the operations need beside the store: the medicines, the operator's settings, a
    key-value store (failed attempts) and the clock (µs) that says what day it is in Paris."""

    catalogue: Catalogue
    config: EPrescriptionConfig
    kv: KeyValueStore
    clock: Callable[[], int]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock() / 1_000_000, PARIS)

    def today(self) -> date:
        return self.now().date()


def _services(service: FhirService) -> PrescriptionServices:
    if service.prescriptions is None:
        raise NotFound("this server does not offer e-prescription")
    return service.prescriptions


# -- Parameters in and out -------------------------------------------------------------------------


@dataclass
class _Param:
    name: str
    value: Any = None
    parts: list[_Param] = field(default_factory=list)

    def named(self) -> dict[str, Any]:
        return {p.name: p.value for p in self.parts}


def _value(param: dict[str, Any]) -> Any:
    """A parameter's ``value[x]``: a reference's ``reference``, a CIP13 coding's code."""
    for key, value in param.items():
        if not key.startswith("value"):
            continue
        if key == "valueReference" and isinstance(value, dict):
            return value.get("reference")
        if key == "valueCoding" and isinstance(value, dict):
            system, code = value.get("system"), str(value.get("code") or "")
            return code if system in (None, CIP13_SYSTEM) else f"{system}|{code}"
        return value
    return None


def _parse(items: Any) -> list[_Param]:
    return [
        _Param(item["name"], _value(item), _parse(item.get("part")))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]


def _parameters(request: FhirRequest) -> list[_Param]:
    body = request.resource
    if body is None:
        if not request.body:
            return []
        body = res.parse_json(request.body)
    if body.get("resourceType") != "Parameters":
        raise InvalidRequest("this operation takes a Parameters resource", expression="resourceType")
    return _parse(body.get("parameter"))


def _first(params: list[_Param], name: str) -> Any:
    return next((p.value for p in params if p.name == name), None)


def _where(name: str, line: int | None = None, part: str | None = None) -> str:
    """The ``expression`` of a faulty parameter: ``Parameters.parameter[line][0].part[dose]``."""
    if line is None:
        return f"Parameters.parameter[{name}]"
    return f"Parameters.parameter[{name}][{line}]" + (f".part[{part}]" if part else "")


def _out(name: str, value: Any) -> dict[str, Any]:
    """One output parameter, its ``value[x]`` from the Python value (a list: parts)."""
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    if isinstance(value, int):
        return {"name": name, "valueInteger": value}
    if isinstance(value, date):
        return {"name": name, "valueDate": value.isoformat()}
    if isinstance(value, list):
        return {"name": name, "part": value}
    if isinstance(value, dict):
        kind = (
            "Reference" if "reference" in value else ("CodeableConcept" if "coding" in value else "Quantity")
        )
        return {"name": name, f"value{kind}": value}
    return {"name": name, "valueString": str(value)}


def _ref(kind: str, id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{id}"}


def _id_in(kind: str, value: Any, expression: str) -> str:
    """The id in ``Kind/id`` or ``id``."""
    text = str(value or "").strip().removeprefix(f"{kind}/")
    if not text or not res.ID_RE.match(text):
        raise InvalidRequest(f"{expression} must name a {kind} (Kind/id or id)", expression=expression)
    return text


async def _read(service: FhirService, resource_type: str, id: str | None) -> dict[str, Any] | None:
    """A resource read for the operation (the caller was checked by the operation's own rule)."""
    stored = await service.store.read(resource_type, id) if id else None
    if stored is None or stored.deleted:
        return None
    found: dict[str, Any] = orjson.loads(stored.content)
    return found


def _id_of(reference: str | None, kind: str) -> str | None:
    return reference.split("/", 1)[1] if reference and reference.startswith(f"{kind}/") else None


def _refused(request: FhirRequest, operation: str, reason: str, patient: str | None = None) -> None:
    access = AccessRequest(request.caller, "operation", "MedicationRequest", None, patient, operation)
    request.audit.decisions.append(Decision(access, False, reason))


# -- $prescribe ------------------------------------------------------------------------------------


def _require_prescriber(request: FhirRequest, config: EPrescriptionConfig) -> str:
    principal = request.caller.principal
    subject = principal.subject or ""
    if principal.kind != "practitioner" or not subject.startswith("Practitioner/"):
        _refused(request, "$prescribe", "only a prescribing health professional prescribes")
        raise Forbidden("Seul un professionnel de santé prescripteur peut établir une ordonnance.")
    if principal.profession not in config.prescribers:
        _refused(
            request, "$prescribe", f"profession {principal.profession} does not prescribe medicines here"
        )
        raise Forbidden(
            "Votre profession ne vous permet pas d'établir une ordonnance de médicaments ici "
            "(médecins, chirurgiens-dentistes et sages-femmes)."
        )
    return subject


def _numbered(config: EPrescriptionConfig, number: str) -> SearchQuery:
    """The lines carrying this number (R4 searches ``identifier``, not ``groupIdentifier``)."""
    return parse_search(
        "MedicationRequest",
        [("identifier", f"{config.number_system}|{display_number(number)}"), ("_count", str(_MAX_LINES))],
        max_count=_MAX_LINES,
    )


async def _lines_numbered(
    service: FhirService, config: EPrescriptionConfig, number: str
) -> list[dict[str, Any]]:
    page = await service.store.search(_numbered(config, number), now_us=service.clock())
    return [orjson.loads(r.content) for r in page.resources if not r.deleted]


async def prescribe(service: FhirService, request: FhirRequest) -> FhirResponse:
    """``POST MedicationRequest/$prescribe``: write a prescription (see the module docstring)."""
    prescriptions = _services(service)
    config = prescriptions.config
    subject = _require_prescriber(request, config)
    params = _parameters(request)
    patient_id = _id_in("Patient", _first(params, "patient"), _where("patient"))
    patient_ref = f"Patient/{patient_id}"
    # the rule of a creation in the patient's record: a care relationship, no block, space open
    # (asked first: whether a record exists is not told to who may not write in it)
    await service.require(
        request,
        "create",
        "MedicationRequest",
        target=Target("MedicationRequest", patient_id, authors=frozenset({subject})),
        detail="$prescribe",
    )
    patient = await _read(service, "Patient", patient_id)
    if patient is None:
        raise NotFound(f"Patient/{patient_id} is not known")
    try:
        prescription = check_prescription(
            [line_of(p.named()) for p in params if p.name == "line"],
            today=prescriptions.today(),
            catalogue=prescriptions.catalogue,
            start=_first(params, "start"),
            end=_first(params, "end"),
            first_delivery_days=config.first_delivery_days,
        )
    except PrescriptionRefused as refused:
        raise Unprocessable(
            [
                Issue(
                    "invalid",
                    p.message,
                    _where(p.field) if p.line is None else _where("line", p.line, p.field),
                )
                for p in refused.problems
            ]
        ) from refused
    renews = _first(params, "renews")
    task_id = _id_in("Task", renews, _where("renews")) if renews is not None else None

    organization_ref = request.caller.principal.organization
    issuer = records.issuer_of(
        subject,
        await _read(service, "Practitioner", _id_of(subject, "Practitioner")) or {},
        organization_ref,
        await _read(service, "Organization", _id_of(organization_ref, "Organization")),
    )
    now = prescriptions.now()
    authored_on = now.isoformat(timespec="seconds")
    number = new_number()  # 60 random bits: a collision is checked for, not expected
    while await _lines_numbered(service, config, number):
        number = new_number()
    secret = new_secret()
    code = payload(number, secret)
    pdf = render_prescription(
        prescription,
        number=number,
        qr_payload=code,
        issuer=issuer,
        patient=records.banner_of(patient),
        created=now.replace(tzinfo=None),
    )
    prefix = res.new_id()  # the lines' ids keep the prescription's order
    line_ids = [f"{prefix}-{i:02d}" for i in range(1, len(prescription.lines) + 1)]
    binary_id, document_id = res.new_id(), res.new_id()
    document = records.document_reference(
        pdf,
        number=number,
        number_system=config.number_system,
        patient_ref=patient_ref,
        issuer=issuer,
        date=authored_on,
        binary_id=binary_id,
        request_ids=line_ids,
        master_identifier=f"urn:uuid:{uuid.uuid4()}",
        authored_day=prescription.start.isoformat(),
    )
    check_professional_document(request.caller.principal, "DocumentReference", document)
    target = target_of_resource("DocumentReference", patient_id, document)
    await service.require(request, "create", "DocumentReference", target=target, detail="$prescribe")
    await service.require(
        request, "create", "Binary", target=Target("Binary", patient_id), detail="$prescribe"
    )
    stamp = service.clock()
    async with service.transaction(request) as tx:
        if await tx.search_keys(_numbered(config, number), 1):
            raise Conflict("a prescription with this number was written meanwhile: send it again")
        renewal: StoredResource | None = None
        priors: dict[str, str] = {}
        if task_id is not None:
            renewal, priors = await _renewal(service, request, tx, task_id, patient_id, subject)
        written: list[tuple[str, str, dict[str, Any]]] = [
            (
                "MedicationRequest",
                rid,
                records.medication_request(
                    line,
                    prescription,
                    number=number,
                    number_system=config.number_system,
                    code_hash=secret_hash(secret),
                    patient_ref=patient_ref,
                    issuer=issuer,
                    authored_on=authored_on,
                    prior=priors.get(line.medicine.cip13),
                ),
            )
            for rid, line in zip(line_ids, prescription.lines, strict=True)
        ]
        written += [
            ("Binary", binary_id, records.binary(pdf, patient_ref)),
            ("DocumentReference", document_id, document),
        ]
        for resource_type, rid, resource in written:
            service._prepare(resource, resource_type, rid)
            await tx.write(service._write_op(resource, resource_type, rid, 1, "POST", stamp))
        if renewal is not None:
            done = records.completed_renewal(
                orjson.loads(renewal.content),
                number=number,
                lines=list(zip(line_ids, prescription.lines, strict=True)),
                when=authored_on,
            )
            service._prepare(done, "Task", renewal.id)
            await tx.write(service._write_op(done, "Task", renewal.id, renewal.version + 1, "PUT", stamp))
    out = [
        _out("number", display_number(number)),
        _out("code", code),
        _out("validity-start", prescription.start),
        _out("validity-end", prescription.end),
        *(_out("medicationRequest", _ref("MedicationRequest", rid)) for rid in line_ids),
        _out("documentReference", _ref("DocumentReference", document_id)),
        _out("binary", _ref("Binary", binary_id)),
    ]
    if task_id is not None:
        out.append(_out("task", _ref("Task", task_id)))
    return FhirResponse(201, {"resourceType": "Parameters", "parameter": out})


async def _renewal(
    service: FhirService,
    request: FhirRequest,
    tx: StoreTransaction,
    task_id: str,
    patient_id: str,
    subject: str,
) -> tuple[StoredResource, dict[str, str]]:
    """The renewal request this prescription answers (locked: answered once), and the lines it
    renews by CIP13 (for ``priorPrescription``)."""
    where = _where("renews")
    stored = await tx.read_for_update("Task", task_id)
    if stored is None or stored.deleted:
        raise Unprocessable(
            "Cette demande de renouvellement n'existe pas.", code="not-found", expression=where
        )
    await service.require(
        request, "update", "Task", task_id, target=target_of(stored, authors=True), detail="$prescribe renews"
    )
    task = orjson.loads(stored.content)
    problem = None
    if not is_renewal(task):
        problem = "Cette tâche n'est pas une demande de renouvellement d'ordonnance."
    elif (task.get("for") or {}).get("reference") != f"Patient/{patient_id}":
        problem = "Cette demande de renouvellement concerne un autre patient."
    elif (task.get("owner") or {}).get("reference") != subject:
        problem = "Cette demande de renouvellement est adressée à un autre prescripteur."
    elif task.get("status") not in OPEN_TASK_STATUSES:
        problem = f"Cette demande de renouvellement est close (statut {task.get('status')})."
    if problem:
        raise Unprocessable(problem, code="business-rule", expression=where)
    priors: dict[str, str] = {}
    for line_id in records.renewed_lines(task):
        old = await tx.read_for_update("MedicationRequest", line_id)
        if old is None or old.deleted or old.patient != patient_id:
            continue
        cip13 = records.cip13_of(orjson.loads(old.content).get("medicationCodeableConcept"))
        if cip13:
            priors.setdefault(cip13, f"MedicationRequest/{line_id}")
    return stored, priors


# -- opening a prescription at the pharmacy -------------------------------------------------------


@dataclass
class _Opened:
    number: str
    patient_id: str
    lines: list[dict[str, Any]]  # sorted by id: the prescription's order
    via: str  # what opened it, for the audit trail

    def grant(
        self, request: FhirRequest, operation: str, interaction: Interaction, rtype: str, rid: str
    ) -> None:
        """A granted decision in the patient's trail, with the code as its reason (an operation's
        detail is what its AuditEvent records: the query entity's description)."""
        detail = f"{operation} ordonnance {display_number(self.number)}: {self.via}, this prescription only"
        access = AccessRequest(request.caller, interaction, rtype, rid, self.patient_id, detail)
        request.audit.decisions.append(Decision(access, True, f"{self.via}: this prescription only"))


def _require_pharmacist(request: FhirRequest, operation: str) -> str:
    principal = request.caller.principal
    if principal.kind != "practitioner" or principal.profession != PHARMACIST or not principal.subject:
        _refused(request, operation, "only a pharmacist opens a prescription by its code")
        raise Forbidden("Seul un pharmacien peut ouvrir une ordonnance par son code.")
    return principal.subject


def _failure_key(prescriptions: PrescriptionServices, who: str, n: int) -> tuple[str, int]:
    window = prescriptions.clock() // _HOUR_US
    return f"{who}#{window}#{n}", (window + 1) * _HOUR_US


async def _fail(
    prescriptions: PrescriptionServices,
    request: FhirRequest,
    operation: str,
    who: str,
    reason: str,
    patient: str | None = None,
) -> NoReturn:
    """A code that opens nothing: counted against the pharmacist for the hour, recorded (in the
    patient's trail when the number is theirs), answered as an unknown prescription."""
    for n in range(1, prescriptions.config.max_failed_lookups + 1):
        key, until = _failure_key(prescriptions, who, n)
        if await prescriptions.kv.add(_FAILURES, key, {"reason": reason}, expires_us=until):
            break
    _refused(request, operation, reason, patient)
    raise NotFound("Aucune ordonnance ne correspond à ce code (ou à ce numéro et cette date de naissance).")


async def _open(service: FhirService, request: FhirRequest, params: list[_Param], operation: str) -> _Opened:
    """The prescription the pharmacist proves to hold: its QR code, or its number and the
    patient's birth date."""
    prescriptions = _services(service)
    who = _require_pharmacist(request, operation)
    service.scoped(request, "read", "MedicationRequest")  # an app acting for them: within its scopes
    code, typed, birth = _first(params, "code"), _first(params, "number"), _first(params, "birthDate")
    secret = None
    if code is None and typed is None:
        raise InvalidRequest(
            "Présentez le QR code de l'ordonnance (code) ou son numéro avec la date de naissance du patient.",
            code="required",
            expression=_where("code"),
        )
    if code is None and not birth:
        raise InvalidRequest(
            "Le numéro d'ordonnance seul ne suffit pas : indiquez aussi la date de naissance du patient.",
            code="required",
            expression=_where("birthDate"),
        )
    try:
        if code is not None:
            number, secret = parse_payload(str(code))
        else:
            number = normalise_number(str(typed))
    except NumberError as exc:
        raise Unprocessable(str(exc), expression=_where("code" if code is not None else "number")) from exc
    last, _ = _failure_key(prescriptions, who, prescriptions.config.max_failed_lookups)
    if await prescriptions.kv.get(_FAILURES, last) is not None:
        _refused(request, operation, "too many failed attempts this hour")
        raise FhirError(
            "Trop de tentatives infructueuses : réessayez dans une heure.", code="throttled", status=429
        )
    lines = [
        line
        for line in await _lines_numbered(service, prescriptions.config, number)
        if records.code_hash_of(line)
    ]
    patients = {str((line.get("subject") or {}).get("reference", "")) for line in lines}
    patient_id = _id_of(next(iter(patients)), "Patient") if len(patients) == 1 else None
    if patient_id is None:
        await _fail(prescriptions, request, operation, who, "no prescription with this number")
    if secret is not None:
        if not all(secret_matches(secret, records.code_hash_of(line) or "") for line in lines):
            await _fail(prescriptions, request, operation, who, "a QR code that does not match", patient_id)
        via = "the pharmacist presented this prescription's QR code"
    else:
        patient = await _read(service, "Patient", patient_id) or {}
        if patient.get("birthDate") != str(birth).strip()[:10]:
            await _fail(
                prescriptions,
                request,
                operation,
                who,
                "a prescription number with a wrong birth date",
                patient_id,
            )
        via = "the pharmacist gave this prescription's number and the patient's birth date"
    lines.sort(key=lambda line: str(line.get("id")))
    return _Opened(number, patient_id, lines, via)


async def _dispenses_of(service: FhirService, line_ids: list[str]) -> dict[str, list[Mapping[str, Any]]]:
    query = parse_search(
        "MedicationDispense",
        [
            ("prescription", ",".join(f"MedicationRequest/{i}" for i in line_ids)),
            ("_count", str(_MAX_DISPENSES)),
        ],
        max_count=_MAX_DISPENSES,
    )
    page = await service.store.search(query, now_us=service.clock())
    return pharmacy.by_line([orjson.loads(r.content) for r in page.resources if not r.deleted])


def _without_secret(line: dict[str, Any]) -> dict[str, Any]:
    shown = dict(line)
    kept = [
        e
        for e in line.get("extension") or []
        if isinstance(e, dict) and e.get("url") != records.CODE_HASH_URL
    ]
    if kept:
        shown["extension"] = kept
    else:
        shown.pop("extension", None)
    return shown


def _line_part(line: dict[str, Any], dispenses: list[Mapping[str, Any]], expired: bool) -> dict[str, Any]:
    progress = pharmacy.progress_of(line, dispenses)
    texts = [
        str(d["text"]) for d in line.get("dosageInstruction") or [] if isinstance(d, dict) and d.get("text")
    ]
    quantity = (line.get("dispenseRequest") or {}).get("quantity") or {"value": progress.per_delivery}
    parts = [
        _out("prescription", _ref("MedicationRequest", str(line.get("id")))),
        _out("medication", line.get("medicationCodeableConcept") or {"coding": [], "text": "?"}),
        _out("dosage", " ; ".join(texts) or "Voir l'ordonnance"),
        _out("quantity", quantity),
        _out("substitution-allowed", (line.get("substitution") or {}).get("allowedBoolean") is not False),
        _out("state", pharmacy.line_state(line, progress, expired)),
        _out("deliveries-allowed", progress.deliveries_allowed),
        _out("deliveries-done", progress.full_deliveries),
        _out("handed-over", progress.handed),
        _out("packs-lacking", progress.lacking),
        _out("renewals-remaining", progress.renewals_remaining),
        *(_out("dispense", _ref("MedicationDispense", str(d.get("id")))) for d in dispenses),
        {"name": "medicationRequest", "resource": _without_secret(line)},
    ]
    return {"name": "line", "part": parts}


async def _prescriber_parts(service: FhirService, line: dict[str, Any]) -> list[dict[str, Any]]:
    requester = line.get("requester") or {}
    ref = str(requester.get("reference") or "")
    practitioner = await _read(service, "Practitioner", _id_of(ref, "Practitioner"))
    name = records.person_name(practitioner) or str(requester.get("display") or "Prescripteur")
    parts = [_out("reference", {"reference": ref})] if ref else []
    parts.append(_out("name", name))
    if practitioner is not None:
        rpps, idnat = records.rpps_of(practitioner)
        parts += [_out(k, v) for k, v in (("rpps", rpps), ("idnat", idnat)) if v]
    return parts


async def _reading(
    service: FhirService, request: FhirRequest, opened: _Opened, operation: str
) -> list[dict[str, Any]]:
    """The prescription as the pharmacy reads it, each line and the patient granted in the trail."""
    start, end = pharmacy.validity_of(opened.lines)
    expired = end is not None and _services(service).today() > end
    dispenses = await _dispenses_of(service, [str(line.get("id")) for line in opened.lines])
    banner = records.banner_of(await _read(service, "Patient", opened.patient_id) or {})
    opened.grant(request, operation, "operation", "Patient", opened.patient_id)
    for line in opened.lines:
        opened.grant(request, operation, "operation", "MedicationRequest", str(line.get("id")))
    done = all(
        pharmacy.progress_of(line, dispenses.get(str(line.get("id")), [])).exhausted for line in opened.lines
    )
    out = [
        _out("number", display_number(opened.number)),
        _out("status", "dispensed" if done else ("expired" if expired else "active")),
        {"name": "authoredOn", "valueDateTime": str(opened.lines[0].get("authoredOn") or "")},
        *([_out("validity-start", start)] if start else []),
        *([_out("validity-end", end)] if end else []),
        _out("prescriber", await _prescriber_parts(service, opened.lines[0])),
        _out(
            "patient",
            [
                _out("name", banner.name),
                *([_out("birthDate", banner.birth_date)] if banner.birth_date else []),
            ],
        ),
    ]
    out += [_line_part(line, dispenses.get(str(line.get("id")), []), expired) for line in opened.lines]
    return out


async def lookup(service: FhirService, request: FhirRequest) -> FhirResponse:
    """``POST MedicationRequest/$lookup``: the pharmacist reads the prescription they hold."""
    opened = await _open(service, request, _parameters(request), "$lookup")
    return FhirResponse(
        200, {"resourceType": "Parameters", "parameter": await _reading(service, request, opened, "$lookup")}
    )


# -- $dispense -------------------------------------------------------------------------------------


@dataclass
class _Asked:
    """One ``line`` of a dispensing, as the pharmacist sent it."""

    index: int
    line_id: str
    quantity: Any
    substitute: Any
    reason: str | None
    not_delivered: str | None


def _asked(params: list[_Param], known: set[str]) -> list[_Asked]:
    asked: list[_Asked] = []
    issues: list[Issue] = []
    for index, param in enumerate(p for p in params if p.name == "line"):
        parts = param.named()
        line_id = str(parts.get("prescription") or "").strip().removeprefix("MedicationRequest/")
        if line_id not in known:
            issues.append(
                Issue(
                    "invalid",
                    "Cette ligne n'appartient pas à l'ordonnance présentée.",
                    _where("line", index, "prescription"),
                )
            )
        elif any(a.line_id == line_id for a in asked):
            issues.append(
                Issue(
                    "invalid",
                    "Cette ligne figure deux fois dans la délivrance.",
                    _where("line", index, "prescription"),
                )
            )
        else:
            reason, not_delivered = parts.get("substitution-reason"), parts.get("not-delivered")
            asked.append(
                _Asked(
                    index,
                    line_id,
                    parts.get("quantity"),
                    parts.get("substitute"),
                    str(reason).strip() if reason else None,
                    str(not_delivered).strip() if not_delivered is not None else None,
                )
            )
    if not asked and not issues:
        issues.append(
            Issue("required", "Indiquez au moins une ligne délivrée (ou non délivrée).", _where("line"))
        )
    if issues:
        raise Unprocessable(issues)
    return asked


async def _dispense_of(
    prescriptions: PrescriptionServices,
    tx: StoreTransaction,
    line: dict[str, Any],
    item: _Asked,
    facts: dict[str, Any],
) -> dict[str, Any]:
    """The MedicationDispense of one asked line, or :class:`DispenseRefused`."""
    if line.get("status") != "active":
        raise pharmacy.DispenseRefused(
            f"Cette ligne n'est plus délivrable (statut {line.get('status')}).", "prescription"
        )
    query = parse_search(
        "MedicationDispense",
        [("prescription", f"MedicationRequest/{item.line_id}"), ("_count", str(_MAX_DISPENSES))],
        max_count=_MAX_DISPENSES,
    )
    before = []
    for _, did in await tx.search_keys(query, _MAX_DISPENSES):
        found = await tx.read_for_update("MedicationDispense", did)
        if found is not None and not found.deleted:
            before.append(orjson.loads(found.content))
    progress = pharmacy.progress_of(line, before)
    if item.not_delivered is not None:
        if progress.exhausted:
            raise pharmacy.DispenseRefused("Cette ligne a déjà été entièrement délivrée.", "not-delivered")
        if not item.not_delivered:
            raise pharmacy.DispenseRefused("Indiquez pourquoi la ligne n'est pas délivrée.", "not-delivered")
        return pharmacy.dispense_resource(line, fill=None, not_delivered=item.not_delivered, **facts)
    generic = (
        pharmacy.check_substitute(prescriptions.catalogue, line, str(item.substitute))
        if item.substitute is not None
        else None
    )
    fill = pharmacy.plan_fill(progress, item.quantity, pharmacy.supply_days(line))
    return pharmacy.dispense_resource(
        line,
        fill=fill,
        medication=generic.codeable_concept() if generic else None,
        substitution_reason=item.reason,
        **facts,
    )


async def dispense(service: FhirService, request: FhirRequest) -> FhirResponse:
    """``POST MedicationRequest/$dispense``: the pharmacist records what was handed over."""
    prescriptions = _services(service)
    params = _parameters(request)
    opened = await _open(service, request, params, "$dispense")
    service.scoped(request, "create", "MedicationDispense")
    _, end = pharmacy.validity_of(opened.lines)
    if end is not None and prescriptions.today() > end:
        _refused(request, "$dispense", "the prescription has expired", opened.patient_id)
        raise Unprocessable(
            f"Cette ordonnance a expiré le {end.strftime('%d/%m/%Y')} : elle ne peut plus être délivrée.",
            code="business-rule",
            expression="MedicationRequest.dispenseRequest.validityPeriod.end",
        )
    asked = _asked(params, {str(line.get("id")) for line in opened.lines})
    principal = request.caller.principal
    organization = await _read(service, "Organization", _id_of(principal.organization, "Organization"))
    facts: dict[str, Any] = {
        "handed_at": prescriptions.now().isoformat(timespec="seconds"),
        "pharmacist": {
            "reference": principal.subject or "",
            "display": request.caller.display or "Pharmacien",
        },
        "pharmacy": {
            "reference": principal.organization,
            "display": str(organization.get("name") or "Pharmacie"),
        }
        if organization is not None and principal.organization
        else None,
    }
    stamp = service.clock()
    created: list[tuple[str, str, dict[str, Any]]] = []
    async with service.transaction(request) as tx:
        # the lines first, locked in one order: a concurrent dispensing of the same line waits
        # here, then counts what this one handed over
        current: dict[str, dict[str, Any]] = {}
        for line_id in sorted(a.line_id for a in asked):
            stored = await tx.read_for_update("MedicationRequest", line_id)
            if stored is None or stored.deleted:
                raise Conflict(f"MedicationRequest/{line_id} changed meanwhile")
            current[line_id] = orjson.loads(stored.content)
        issues: list[Issue] = []
        planned: list[tuple[str, dict[str, Any]]] = []
        for item in asked:
            try:
                planned.append(
                    (item.line_id, await _dispense_of(prescriptions, tx, current[item.line_id], item, facts))
                )
            except pharmacy.DispenseRefused as refused:
                issues.append(Issue("business-rule", str(refused), _where("line", item.index, refused.field)))
        if issues:  # nothing half-done: one refused line refuses the whole dispensing
            _refused(request, "$dispense", "a line of the dispensing was refused", opened.patient_id)
            raise Unprocessable(issues)
        for line_id, resource in planned:
            did = res.new_id()
            service._prepare(resource, "MedicationDispense", did)
            await tx.write(service._write_op(resource, "MedicationDispense", did, 1, "POST", stamp))
            opened.grant(request, "$dispense", "create", "MedicationDispense", did)
            created.append((line_id, did, resource))
    out = [
        _out(
            "dispense",
            [
                _out("prescription", _ref("MedicationRequest", line_id)),
                _out("medicationDispense", _ref("MedicationDispense", did)),
                _out("status", str(resource.get("status"))),
            ],
        )
        for line_id, did, resource in created
    ]
    out += await _reading(service, request, opened, "$dispense")
    return FhirResponse(201, {"resourceType": "Parameters", "parameter": out})
