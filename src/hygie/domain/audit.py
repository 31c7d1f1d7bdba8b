"""The audit trail: one IHE BALP AuditEvent per access decision, hash-chained and signed.

Every decision of :mod:`hygie.domain.access`, granted or refused, becomes an :class:`AuditEntry`
(:func:`build_entry`): the FHIR AuditEvent in the IHE Basic Audit Log Patterns style (digest
§7.2) plus the few columns a patient's access history is listed by (who, role, structure,
action, outcome, purpose). Entries are kept in *partitions*, one per patient (``_system`` when
no patient is concerned), and each partition is a hash chain::

    hash(n) = SHA-256(hash(n-1) ‖ partition ‖ n ‖ canonical entry)      hash(0) = 32 zero bytes

so editing, removing, adding or moving a stored record breaks the chain. Because anyone able to
write the table can also recompute a chain, the heads are signed from time to time
(:class:`AuditSigner`, Ed25519): a :class:`Checkpoint` commits to ``(partition, seq, hash)``,
and :func:`verify_chain` checks records, heads and checkpoints together and lists every anomaly.

Everything here is pure: no SQL, no I/O. The stores (``stores/audit_sql.py``,
``stores/audit_memory.py``) assign sequence numbers under a per-partition lock and call
:func:`seal`; the ``hygie audit`` command calls :func:`verify_chain`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import struct
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hygie.domain.access import Caller, Decision

if TYPE_CHECKING:
    from hygie.domain.disputes import Dispute, DisputeStatus

__all__ = [
    "AGENT_ROLES",
    "GENESIS",
    "PLATFORM_ROLE",
    "SYSTEM_PARTITION",
    "AccessLine",
    "Actor",
    "Anomaly",
    "AnomalyKind",
    "AuditContext",
    "AuditEntry",
    "AuditLog",
    "AuditPage",
    "AuditRecord",
    "AuditSigner",
    "ChainHead",
    "Checkpoint",
    "Coding",
    "VerifyReport",
    "access_line",
    "actor_of",
    "audit_entries",
    "build_entry",
    "canonical_json",
    "chain_hash",
    "checkpoint_message",
    "key_id",
    "partition_of",
    "seal",
    "seal_many",
    "verify_chain",
    "verify_checkpoint",
]

SYSTEM_PARTITION = "_system"
GENESIS = bytes(32)

# code systems (digest §7.2)
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_ACCESS_MODE = "https://mos.esante.gouv.fr/NOS/TRE_R248-ModeAcces/FHIR/TRE-R248-ModeAcces"
# the role of the platform's own processes (loader, notifications, probes, purges): recorded like
# anyone, and told apart from people and apps so that a person's history can set them aside
AGENT_ROLES = "https://hygie.example/fhir/CodeSystem/audit-agent-role"
PLATFORM_ROLE = "platform"
_BALP_PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."

# interaction -> (restful-interaction subtype, action, BALP profile, who sends the data)
_KINDS: dict[str, tuple[str, str, str, Literal["server", "client"]]] = {
    "read": ("read", "R", "Read", "server"),
    "vread": ("vread", "R", "Read", "server"),
    "history": ("history-instance", "R", "Read", "server"),
    "search": ("search-type", "E", "Query", "client"),
    "operation": ("operation", "E", "Query", "client"),
    "capabilities": ("capabilities", "E", "Query", "client"),
    "create": ("create", "C", "Create", "client"),
    "update": ("update", "U", "Update", "client"),
    "patch": ("patch", "U", "Update", "client"),
    "delete": ("delete", "D", "Delete", "client"),
    "transaction": ("transaction", "E", "Create", "client"),
    "batch": ("batch", "E", "Create", "client"),
}


# --------------------------------------------------------------------------------------------
# Building entries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def fhir(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Actor:
    """The person (or system) behind a request, as the audit shows it to the patient.

    Filled from the access token by ``auth/`` (Pro Santé Connect gives the IdNat_PS, profession
    and structure; FranceConnect the patient). ``structure`` is the IdNat_Struct or FINESS of the
    organisation the professional acts for: disputes are routed to its data-protection officer.
    """

    who: str
    who_system: str | None = None
    display: str | None = None
    role: Coding | None = None
    structure: str | None = None
    structure_system: str | None = None
    structure_display: str | None = None
    purpose_of_use: tuple[Coding, ...] = ()
    access_mode: str | None = None  # TRE_R248: normal | bris_de_glace | centre_15
    justification: str | None = None  # required by the policy for break-glass


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What the decision itself does not know: when, where from, through which server."""

    recorded_us: int  # microseconds since the epoch, UTC
    server: str  # this server's name: the Source / observer
    client: str | None = None  # the client application or network address
    request_id: str | None = None  # X-Request-Id
    query: str | None = None  # the raw query string of a search (base64-encoded in the event)
    outcome: str | None = None  # override "0" for a granted request that later failed (4/8/12)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One AuditEvent ready to append: the canonical JSON plus the columns it is listed by."""

    partition: str
    recorded_us: int
    patient: str | None
    agent: str
    role: str | None
    structure: str | None
    action: str
    outcome: str
    purpose: str | None
    content: bytes  # canonical JSON of the AuditEvent resource

    def summary(self) -> dict[str, Any]:
        """The listed columns: hashed with the content so that none can be edited unnoticed."""
        return {
            "recorded": self.recorded_us,
            "patient": self.patient,
            "agent": self.agent,
            "role": self.role,
            "structure": self.structure,
            "action": self.action,
            "outcome": self.outcome,
            "purpose": self.purpose,
        }

    def event(self) -> dict[str, Any]:
        """The AuditEvent resource."""
        loaded: dict[str, Any] = orjson.loads(self.content)
        return loaded


def canonical_json(value: Any) -> bytes:
    """The one serialisation that is hashed: orjson with sorted keys, compact, UTF-8."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


SYSTEM_SHARDS = 16


def partition_of(patient: str | None, shard_key: str | None = None) -> str:
    """A patient's partition is their id; events concerning no patient go to ``_system`` — or,
    given a ``shard_key`` (the request id), to one of ``SYSTEM_SHARDS`` chains ``_system.<n>``:
    all the events of one request share one chain head, and concurrent requests writing
    reference data (a transaction's Organizations, Practitioners…) do not wait on each other."""
    if not patient:
        if shard_key:
            return f"{SYSTEM_PARTITION}.{zlib.crc32(shard_key.encode()) % SYSTEM_SHARDS}"
        return SYSTEM_PARTITION
    return patient.removeprefix("Patient/")


def _iso(us: int) -> str:
    seconds, micro = divmod(us, 1_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=micro)
    return stamp.isoformat().replace("+00:00", "Z")


def _actor_from(decision: Decision) -> Actor:
    caller = decision.request.caller
    return Actor(who=caller.subject or caller.kind, display=caller.kind)


def _subtype(decision: Decision) -> str:
    req = decision.request
    code = _KINDS[req.interaction][0]
    if req.interaction == "search":
        return "search-type" if req.resource_type else "search-system"
    if req.interaction == "history":
        if req.resource_id:
            return "history-instance"
        return "history-type" if req.resource_type else "history-system"
    return code


def build_entry(decision: Decision, context: AuditContext, actor: Actor | None = None) -> AuditEntry:
    """The BALP AuditEvent for one decision (granted: outcome 0; refused: 4, as HTTP 403).

    Reads put the client as Destination (DCM 110152) and the server as Source (110153); queries
    and writes reverse them, as BALP does. The user agent is ``IRCP``, requestor, with role and
    purpose of use from the token; the structure is a ``PROV`` agent. Entities: the data (object
    role 4; a delete's modifier such as ``_expunge=true`` in its ``detail``), the patient (role
    1), the query (role 24, base64), the X-Request-Id.
    """
    req = decision.request
    actor = actor or _actor_from(decision)
    _, action, profile, sender = _KINDS[req.interaction]
    patient = req.patient.removeprefix("Patient/") if req.patient else None
    outcome = ("0" if context.outcome is None else context.outcome) if decision.allowed else "4"
    if patient:
        profile = "Patient" + profile

    purposes = list(actor.purpose_of_use)
    if actor.access_mode and actor.access_mode != "normal":
        if actor.access_mode == "bris_de_glace" and not any(p.code == "BTG" for p in purposes):
            purposes.insert(0, Coding(_ACT_REASON, "BTG"))
        purposes.append(Coding(_ACCESS_MODE, actor.access_mode))

    def dcm(code: str, who: dict[str, Any]) -> dict[str, Any]:
        return {"type": {"coding": [{"system": _DCM, "code": code}]}, "requestor": False, "who": who}

    server_who = {"display": context.server}
    client_who: dict[str, Any] = {"identifier": {"value": context.client or "unknown"}}
    client_code, server_code = ("110152", "110153") if sender == "server" else ("110153", "110152")
    user: dict[str, Any] = {
        "type": {"coding": [{"system": _PARTICIPATION, "code": "IRCP"}]},
        "requestor": True,
        "who": {"identifier": {"value": actor.who}},
    }
    if actor.who_system:
        user["who"]["identifier"]["system"] = actor.who_system
    if actor.display:
        user["who"]["display"] = actor.display
    if actor.role:
        user["role"] = [{"coding": [actor.role.fhir()]}]
    if purposes:
        user["purposeOfUse"] = [{"coding": [p.fhir()]} for p in purposes]
    if actor.access_mode and actor.access_mode != "normal":
        user["policy"] = [f"urn:fr:dmp:access-mode:{actor.access_mode}"]
    agents = [dcm(server_code, server_who), dcm(client_code, client_who), user]
    if actor.structure:
        org: dict[str, Any] = {"identifier": {"value": actor.structure}}
        if actor.structure_system:
            org["identifier"]["system"] = actor.structure_system
        if actor.structure_display:
            org["display"] = actor.structure_display
        agents.append(
            {"type": {"coding": [{"system": _ROLE_CLASS, "code": "PROV"}]}, "requestor": False, "who": org}
        )

    entities: list[dict[str, Any]] = []
    if req.resource_type and req.resource_id:
        data: dict[str, Any] = {
            "type": {"system": _ENTITY_TYPE, "code": "2"},
            "role": {"system": _OBJECT_ROLE, "code": "4"},
            "what": {"reference": f"{req.resource_type}/{req.resource_id}"},
        }
        if action == "D" and req.detail:
            # how it was deleted: "_expunge=true" is an erasure of every version, not a tombstone
            data["detail"] = [{"type": "modifier", "valueString": req.detail}]
        entities.append(data)
    if patient:
        entities.append(
            {
                "type": {"system": _ENTITY_TYPE, "code": "1"},
                "role": {"system": _OBJECT_ROLE, "code": "1"},
                "what": {"reference": f"Patient/{patient}"},
            }
        )
    raw_query = context.query if context.query is not None else req.detail
    if action == "E" and raw_query:
        query: dict[str, Any] = {
            "type": {"system": _ENTITY_TYPE, "code": "2"},
            "role": {"system": _OBJECT_ROLE, "code": "24"},
            "query": base64.b64encode(raw_query.encode()).decode("ascii"),
            "description": (f"{req.resource_type}?" if req.resource_type else "") + raw_query,
        }
        entities.append(query)
    if context.request_id:
        entities.append(
            {
                "type": {"system": _BALP_ENTITY, "code": "XrequestId"},
                "what": {"identifier": {"value": context.request_id}},
            }
        )
    if actor.justification:
        entities.append({"description": f"justification: {actor.justification}"})

    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "meta": {"profile": [_BALP_PROFILE + profile]},
        "type": {"system": _EVENT_TYPE, "code": "rest"},
        "subtype": [{"system": _INTERACTION, "code": _subtype(decision)}],
        "action": action,
        "recorded": _iso(context.recorded_us),
        "outcome": outcome,
        "agent": agents,
        "source": {"observer": {"display": context.server}},
        "entity": entities,
    }
    if not decision.allowed:
        event["outcomeDesc"] = decision.reason
    if purposes:
        event["purposeOfEvent"] = [{"coding": [p.fhir() for p in purposes]}]
    who = f"{actor.who_system}|{actor.who}" if actor.who_system else actor.who
    return AuditEntry(
        partition=partition_of(patient, context.request_id),
        recorded_us=context.recorded_us,
        patient=patient,
        agent=who,
        role=actor.role.code if actor.role else None,
        structure=actor.structure,
        action=action,
        outcome=outcome,
        purpose=",".join(p.code for p in purposes) or None,
        content=canonical_json(event),
    )


_TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
_ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
# the role a non-professional caller is shown with
_KIND_ROLES = {"patient": "PAT", "representative": "GUARD", "aidant": "CAREGIVER"}


def actor_of(caller: Caller, *, break_glass: bool = False) -> Actor:
    """The audit's view of a caller: identifier, name, profession or role, structure, purpose."""
    principal = caller.principal
    role: Coding | None = None
    if principal.profession:
        role = Coding(_TRE_G15, principal.profession)
    elif caller.kind in _KIND_ROLES:
        role = Coding(_ROLE_CODES, _KIND_ROLES[caller.kind])
    elif caller.kind == "operator":
        role = Coding(AGENT_ROLES, PLATFORM_ROLE, "Traitement technique de la plateforme")
    purposes = tuple(Coding(_ACT_REASON, p) for p in caller.purpose)
    return Actor(
        who=caller.identifier or caller.subject or caller.kind,
        who_system=caller.identifier_system,
        display=caller.display or caller.subject or caller.kind,
        role=role,
        structure=principal.organization,
        purpose_of_use=purposes,
        access_mode="bris_de_glace" if break_glass else None,
    )


def audit_entries(
    decisions: Sequence[Decision],
    *,
    server: str,
    recorded_us: int,
    request_id: str | None = None,
    failure: str | None = None,
) -> list[AuditEntry]:
    """The entries for a request's decisions; ``failure`` (4/8) marks granted accesses whose
    interaction then failed."""
    out = []
    for decision in decisions:
        caller = decision.request.caller
        context = AuditContext(
            recorded_us=recorded_us,
            server=server,
            client=caller.client_id or caller.address,
            request_id=request_id,
            outcome=failure,
        )
        out.append(build_entry(decision, context, actor_of(caller, break_glass=decision.break_glass)))
    return out


# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry as stored: its place in its partition's chain and the hashes linking it."""

    entry: AuditEntry
    seq: int
    prev_hash: bytes
    hash: bytes

    @property
    def partition(self) -> str:
        return self.entry.partition


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last record of a partition (``seq`` 0 and :data:`GENESIS` for an empty one)."""

    partition: str
    seq: int = 0
    hash: bytes = GENESIS


@dataclass(slots=True)
class AuditPage:
    """One page of a patient's history, newest first, with the cursor to the next page."""

    records: list[AuditRecord]
    next_cursor: str | None = None


def _prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def chain_hash(prev_hash: bytes, partition: str, seq: int, entry: AuditEntry) -> bytes:
    """``SHA-256(prev_hash ‖ partition ‖ seq ‖ canonical entry)``, each variable part
    length-prefixed so that no two different records hash the same bytes."""
    h = hashlib.sha256(prev_hash)
    h.update(_prefixed(partition.encode()))
    h.update(struct.pack(">Q", seq))
    h.update(_prefixed(canonical_json(entry.summary())))
    h.update(entry.content)
    return h.digest()


def seal(head: ChainHead, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
    """Chain ``entries`` (all of ``head``'s partition, in order) after ``head``."""
    out: list[AuditRecord] = []
    prev, seq = head.hash, head.seq
    for entry in entries:
        if entry.partition != head.partition:
            raise ValueError(f"entry of partition {entry.partition!r} sealed after {head.partition!r}")
        seq += 1
        digest = chain_hash(prev, head.partition, seq, entry)
        out.append(AuditRecord(entry, seq, prev, digest))
        prev = digest
    return out


def seal_many(heads: Mapping[str, ChainHead], entries: Sequence[AuditEntry]) -> list[AuditRecord]:
    """Chain a batch spanning several partitions; records come back in the entries' order."""
    groups: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(entry.partition, []).append(i)
    out: list[AuditRecord | None] = [None] * len(entries)
    for partition, indexes in groups.items():
        head = heads.get(partition, ChainHead(partition))
        for i, record in zip(indexes, seal(head, [entries[i] for i in indexes]), strict=True):
            out[i] = record
    return [r for r in out if r is not None]


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "partition P had ``seq`` records ending with ``hash``"."""

    partition: str
    seq: int
    hash: bytes
    signed_us: int
    key_id: str
    signature: bytes


def checkpoint_message(partition: str, seq: int, digest: bytes, signed_us: int) -> bytes:
    """The bytes an Ed25519 checkpoint signature covers (domain-separated, length-prefixed)."""
    return (
        b"hygie-audit-checkpoint/1\x00"
        + _prefixed(partition.encode())
        + struct.pack(">QQ", seq, signed_us)
        + digest
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of SHA-256(raw key)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AuditSigner:
    """Signs chain heads with an Ed25519 key (kept by ``hygie audit``; never in the database)."""

    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())

    def sign(self, head: ChainHead, signed_us: int) -> Checkpoint:
        message = checkpoint_message(head.partition, head.seq, head.hash, signed_us)
        return Checkpoint(
            head.partition, head.seq, head.hash, signed_us, self.key_id, self.private_key.sign(message)
        )


def verify_checkpoint(checkpoint: Checkpoint, public_keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None if the signature is good, else why not."""
    key = public_keys.get(checkpoint.key_id)
    if key is None:
        return f"signed with unknown key {checkpoint.key_id}"
    message = checkpoint_message(checkpoint.partition, checkpoint.seq, checkpoint.hash, checkpoint.signed_us)
    try:
        key.verify(checkpoint.signature, message)
    except InvalidSignature:
        return f"signature by key {checkpoint.key_id} does not verify"
    return None


# --------------------------------------------------------------------------------------------
# The port
# --------------------------------------------------------------------------------------------


class AuditLog(Protocol):
    """Where audit records are kept: memory, SQLite or PostgreSQL (``stores/audit_*.py``).

    ``append`` runs inside the caller's store transaction (a write and its audit commit or roll
    back together); ``append_now`` commits on its own and returns once the records are durable
    (a read's audit is written before its response). Both serialise appends per partition, so
    each partition's chain has no gap and no fork, whatever the number of processes.
    """

    async def append(self, tx: object, entries: Sequence[AuditEntry]) -> list[AuditRecord]: ...

    async def append_now(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]: ...

    async def get(self, partition: str, seq: int) -> AuditRecord | None: ...

    async def list_for_patient(
        self,
        patient_id: str,
        *,
        since_us: int | None = None,
        count: int = 50,
        cursor: str | None = None,
        exclude_agents: Sequence[str] = (),
        exclude_roles: Sequence[str] = (),
    ) -> AuditPage:
        """The patient's records, newest first; ``cursor`` is the previous page's ``next_cursor``;
        records made by one of ``exclude_agents`` (their ``agent``) or in one of ``exclude_roles``
        (their ``role`` code, e.g. :data:`PLATFORM_ROLE`) are left out."""
        ...

    async def checkpoint(self, signer: AuditSigner, now_us: int) -> list[Checkpoint]:
        """Sign the head of every partition that grew since its last checkpoint."""
        ...

    def iter_all(self) -> AsyncIterator[AuditRecord]:
        """Every record, by partition then sequence number (for verification)."""
        ...

    async def checkpoints(self) -> list[Checkpoint]: ...

    async def heads(self) -> dict[str, ChainHead]: ...

    async def save_dispute(self, dispute: Dispute) -> None:
        """Insert a new case (version 1) or replace version ``dispute.version - 1`` of it;
        raises ``DisputeConflict`` if the entry is already disputed or the case changed."""
        ...

    async def get_dispute(self, dispute_id: str) -> Dispute | None: ...

    async def list_disputes(
        self, *, structure: str | None = None, patient: str | None = None, status: DisputeStatus | None = None
    ) -> list[Dispute]: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

AnomalyKind = Literal["edited", "deleted", "inserted", "reordered", "truncated", "bad_signature"]


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: AnomalyKind
    partition: str
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = self.partition if self.seq is None else f"{self.partition}#{self.seq}"
        return f"{self.kind}: {where}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    partitions: int = 0
    checkpoints: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def add(self, other: VerifyReport) -> None:
        """Fold in the report on other partitions."""
        self.records += other.records
        self.partitions += other.partitions
        self.checkpoints += other.checkpoints
        self.anomalies.extend(other.anomalies)


def _original_seqs(records: Sequence[AuditRecord]) -> dict[bytes, int]:
    """For each stored hash, the position its record was written at, found by following the
    ``prev_hash`` links back to the genesis (independent of the stored ``seq`` values)."""
    pred = {r.hash: r.prev_hash for r in records}
    known: dict[bytes, int] = {GENESIS: 0}
    for record in records:
        path: list[bytes] = []
        cursor = record.hash
        while cursor not in known and cursor in pred and len(path) <= len(records):
            path.append(cursor)
            cursor = pred[cursor]
        if cursor not in known:
            continue  # the links lead nowhere: no original position
        depth = known[cursor]
        for digest in reversed(path):
            depth += 1
            known[digest] = depth
    return known


def _verify_partition(
    partition: str, records: list[AuditRecord], head: ChainHead | None, report: VerifyReport
) -> None:
    add = report.anomalies.append
    origin = _original_seqs(records)
    prev, before_prev, expected = GENESIS, GENESIS, 1
    prev_flagged = False
    skipped: set[int] = set()  # indexes of records found slipped in: the chain goes past them
    for i, r in enumerate(records):
        if head is not None and r.seq > head.seq:
            add(Anomaly("inserted", partition, r.seq, f"beyond the chain head (seq {head.seq})"))
            continue
        if r.seq < expected:
            add(Anomaly("inserted", partition, r.seq, "a second record with this sequence number"))
            continue
        gap = r.seq > expected
        if gap:
            missing = f"{expected}" if r.seq == expected + 1 else f"{expected}..{r.seq - 1}"
            add(Anomaly("deleted", partition, expected, f"records {missing} are missing"))
        self_ok = chain_hash(r.prev_hash, partition, r.seq, r.entry) == r.hash
        link_ok = r.prev_hash == prev
        flagged = False
        if not link_ok and not gap and not prev_flagged and i > 0 and r.prev_hash == before_prev:
            # this record links past its predecessor: the predecessor was slipped in
            add(
                Anomaly(
                    "inserted",
                    partition,
                    records[i - 1].seq,
                    "not in the chain: the next record links past it",
                )
            )
            prev_flagged = True
        if not self_ok:
            written_at = origin.get(r.hash)
            if (
                written_at is not None
                and written_at != r.seq
                and chain_hash(r.prev_hash, partition, written_at, r.entry) == r.hash
            ):
                add(Anomaly("reordered", partition, r.seq, f"written as record {written_at}"))
            elif not link_ok and i + 1 < len(records) and records[i + 1].prev_hash == prev:
                add(Anomaly("inserted", partition, r.seq, "not in the chain: the next record links past it"))
                skipped.add(i)
            else:
                add(Anomaly("edited", partition, r.seq, "content does not match its hash"))
            flagged = True
        elif not link_ok and not gap and not prev_flagged:
            add(Anomaly("reordered", partition, r.seq, "does not follow the record stored before it"))
            flagged = True
        if i not in skipped:
            before_prev, prev = prev, r.hash
            expected = r.seq + 1
        prev_flagged = flagged
    if head is not None:
        last = next((r for r in reversed(records) if r.seq <= head.seq), None)
        last_seq = last.seq if last else 0
        if head.seq > last_seq:
            add(
                Anomaly(
                    "truncated",
                    partition,
                    head.seq,
                    f"the head is at {head.seq}, the last record at {last_seq}",
                )
            )
        elif last is not None and last.hash != head.hash:
            add(Anomaly("edited", partition, head.seq, "the last record differs from the chain head"))


def verify_chain(
    records: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint],
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    heads: Mapping[str, ChainHead] | None = None,
) -> VerifyReport:
    """Check every partition's chain against itself, its head (if given) and its checkpoints.

    Anomalies: ``edited`` (a record no longer matches its hash), ``deleted`` (a gap in the
    sequence), ``inserted`` (an extra record: duplicate number, beyond the head, or linked past),
    ``reordered`` (a record moved: it verifies at another position, or does not follow its
    predecessor), ``truncated`` (a signed checkpoint or the head lies beyond the last record, or
    the last record differs from its checkpoint), ``bad_signature``. Records may come in any
    order; they are grouped by partition and sorted by sequence number. ``heads``, when given,
    is taken as complete: records of a partition without a head are reported.

    The verdict on one partition depends only on its own records, head and checkpoints, so a
    large trail can be verified one partition at a time and the reports added up
    (:meth:`VerifyReport.add`).
    """
    report = VerifyReport()
    by_partition: dict[str, list[AuditRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
        report.records += 1
    for chain in by_partition.values():
        chain.sort(key=lambda r: r.seq)
    report.partitions = len(by_partition)
    for partition in sorted(by_partition):
        head = heads.get(partition) if heads is not None else None
        if heads is not None and head is None:
            report.anomalies.append(
                Anomaly("inserted", partition, None, "records in a partition that has no head")
            )
        _verify_partition(partition, by_partition[partition], head, report)
    for partition in sorted(set(heads or ()) - set(by_partition)):
        head = (heads or {})[partition]
        if head.seq > 0:
            report.anomalies.append(
                Anomaly("truncated", partition, head.seq, f"the head is at {head.seq} but no record is left")
            )
    _verify_checkpoints(by_partition, checkpoints, public_keys, report)
    return report


def _verify_checkpoints(
    by_partition: Mapping[str, list[AuditRecord]],
    checkpoints: Iterable[Checkpoint],
    public_keys: Mapping[str, Ed25519PublicKey],
    report: VerifyReport,
) -> None:
    add = report.anomalies.append
    by_seq = {p: {r.seq: r for r in chain} for p, chain in by_partition.items()}
    for cp in checkpoints:
        report.checkpoints += 1
        problem = verify_checkpoint(cp, public_keys)
        if problem is not None:
            add(Anomaly("bad_signature", cp.partition, cp.seq, f"checkpoint {problem}"))
            continue
        chain = by_partition.get(cp.partition, [])
        last_seq = chain[-1].seq if chain else 0
        if cp.seq > last_seq:
            add(
                Anomaly(
                    "truncated",
                    cp.partition,
                    cp.seq,
                    f"signed checkpoint at {cp.seq}, last record at {last_seq}",
                )
            )
            continue
        record = by_seq[cp.partition].get(cp.seq)
        if record is None:
            continue  # a gap, already reported as deleted
        if record.hash != cp.hash:
            kind: AnomalyKind = "truncated" if cp.seq == last_seq else "edited"
            add(
                Anomaly(
                    kind,
                    cp.partition,
                    cp.seq,
                    "the record differs from the signed checkpoint (chain rewritten)",
                )
            )


# --------------------------------------------------------------------------------------------
# What a patient sees
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessLine:
    """One line of a patient's access history: who, role, structure, what, when, purpose."""

    partition: str
    seq: int
    recorded_us: int
    who: str
    who_display: str | None
    role: str | None
    structure: str | None
    what: tuple[str, ...]
    action: str
    granted: bool
    purpose: str | None


def access_line(record: AuditRecord) -> AccessLine:
    """Summarise a record for the patient's history page and its FHIR listing."""
    entry = record.entry
    event = entry.event()
    whats: list[str] = []
    who_display: str | None = None
    for agent in event.get("agent", []):
        if agent.get("requestor"):
            who_display = agent.get("who", {}).get("display")
    for entity in event.get("entity", []):
        role = entity.get("role", {}).get("code")
        if role == "4":
            whats.append(entity["what"]["reference"])
        elif role == "24":
            whats.append(entity.get("description", ""))
    return AccessLine(
        partition=entry.partition,
        seq=record.seq,
        recorded_us=entry.recorded_us,
        who=entry.agent,
        who_display=who_display,
        role=entry.role,
        structure=entry.structure,
        what=tuple(whats),
        action=entry.action,
        granted=entry.outcome == "0",
        purpose=entry.purpose,
    )
