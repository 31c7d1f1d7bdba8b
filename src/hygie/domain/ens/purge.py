"""The end of a closed health space's archive period: the record is erased for good.

Closing a space archives the record (``domain/ens/lifecycle.py``) for the archive period, then —
as the DMP does: closure, archive, destruction — it is destroyed. :func:`purge_expired` finds the
spaces whose period has ended by a query on the lifecycle Consents (``category`` ``…|ens``,
``provision.type`` ``deny``, Hygie's ``ens-archive-until`` search parameter before now), never by
reading every patient, and erases each person's record physically through the store port
(``StoreTransaction.expunge``: current rows, every version, every index, reference and access
relation row; the encrypted contents no other Binary names, ``stores/binaries.py``).

What is erased (:func:`plan`): every resource ever filed in the person's record — live or already
deleted (what was deleted with a tombstone: the person's own entries erased at a closing are
already gone, but deletions made earlier, or at closings before erasure existed, are still in
the history until now), found by the
``patient`` of their versions: the Patient, their documents and the Binaries filed in the record
by ``securityContext``, their RelatedPersons, their Consents (the lifecycle one last), their care
data — then what points only to them: a Binary without ``securityContext`` that one of their
DocumentReferences contains, and resources outside every record (a Provenance…) whose every
reference goes to what is erased or to the directory (practitioners, organisations…). Never
erased: a resource that also names another patient (a message between two people is the other's
record too), directory and reference data, Practitioners, and the AuditEvents.

What is kept: the **audit trail**. It is the accountability record, with its own retention, and
each patient's partition is a hash chain: erasing it would break ``hygie audit verify``. The
purge adds one AuditEvent to the person's chain, in the same store transaction as the erasure
(so both happen or neither): "purge at the end of the archive period", with the counts by type
— never a content. The INS itself and the **INSi reference register** (``HYGIE_INSI_REGISTER``,
``fhir/operations/identity.py``) are kept: that register stands for the national teleservice's
identity base (a copy of what the CNAM holds, read-only for Hygie, the same for every
organisation that identifies the person), not Hygie's record of the person; Hygie's own copy of
the identity — the Patient with its INS — is erased with the record.

After a purge a read of any erased resource answers **404** (not found), not 410 (gone): 410
would say a resource existed, and a purge leaves no trace of the record but the audit trail.

Runs: ``hygie ens purger [--dry-run]`` (``ens_cli.py``) or :func:`run_daily` from a server's
background worker. Each person is one store transaction: a crash leaves each record either whole
or gone, and the next run finishes. The run is idempotent: a purged space has no lifecycle
Consent any more. A space reopened (``permit``) or whose period has not ended is never touched;
the Consent is read again, locked, inside the transaction, so a reopening that lands between the
query and the erasure wins.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from hygie.domain.access import AccessRequest, Caller, Decision
from hygie.domain.audit import AuditContext, AuditEntry, AuditLog, build_entry, canonical_json
from hygie.domain.ens.lifecycle import (
    SpaceRules,
    instant,
    is_space_consent,
    space_category_query,
    state_of,
)
from hygie.fhir.outcome import FhirError
from hygie.fhir.search import parse_search
from hygie.ports import ResourceKey, ResourceStore, StoredResource

__all__ = ["PurgeReport", "PurgedSpace", "plan", "purge_expired", "run_daily"]

log = logging.getLogger("hygie.ens.purge")

OPERATOR = "hygie-ens-purge"
PURGE_REASON = "purge at the end of the archive period"
# the directory and reference data a patient's resource may point to without being shared
_DIRECTORY = frozenset(
    {
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Device",
        "Medication",
        "Substance",
        "Questionnaire",
        "PlanDefinition",
        "ActivityDefinition",
        "ValueSet",
        "CodeSystem",
        "StructureDefinition",
    }
)
_NEVER = frozenset({"AuditEvent", *_DIRECTORY})
_PAGE = 100


@dataclass(slots=True)
class PurgedSpace:
    """One space erased (or, in a dry run, that would be)."""

    patient_id: str
    archive_until_us: int
    erased: dict[str, int] = field(default_factory=dict)  # resource type -> resources
    versions: int = 0  # versions erased (every row of the history)
    kept: list[str] = field(default_factory=list)  # Type/id in the record but shared with others
    skipped: str | None = None  # why nothing was done (reopened meanwhile…)

    @property
    def resources(self) -> int:
        return sum(self.erased.values())


@dataclass(slots=True)
class PurgeReport:
    dry_run: bool
    spaces: list[PurgedSpace] = field(default_factory=list)

    @property
    def purged(self) -> list[PurgedSpace]:
        return [s for s in self.spaces if s.skipped is None]


def _references(value: Any) -> Iterable[str]:
    """Every ``reference`` string anywhere in a resource."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            elif isinstance(item, dict | list):
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _local(reference: str) -> ResourceKey | None:
    """``Type/id`` (or ``…/Type/id`` of this server, or with ``/_history/n``) as a key."""
    parts = reference.split("/_history/", 1)[0].rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return (parts[-2], parts[-1])


def _others(content: dict[str, Any], patient_id: str) -> bool:
    """Whether a resource names a patient other than this one."""
    return any(
        key is not None and key[0] == "Patient" and key[1] != patient_id
        for key in map(_local, _references(content))
    )


def _attachment_binaries(document: dict[str, Any]) -> set[str]:
    """The Binary ids a DocumentReference's attachments point to."""
    out = set()
    for content in document.get("content") or []:
        url = ((content or {}).get("attachment") or {}).get("url") if isinstance(content, dict) else None
        key = _local(url) if isinstance(url, str) else None
        if key is not None and key[0] == "Binary":
            out.add(key[1])
    return out


async def plan(store: ResourceStore, patient_id: str) -> tuple[list[ResourceKey], list[str]]:
    """What purging this person's record erases, and the ``Type/id`` of the resources of the
    record left because they also belong to someone else."""
    erase: dict[ResourceKey, StoredResource | None] = {}
    kept: list[str] = []
    for row in await store.filed_in(patient_id):
        if row.resource_type in _NEVER:
            continue
        own = row.resource_type == "Patient" and row.id == patient_id
        if not own and _others(orjson.loads(row.content), patient_id):
            kept.append(f"{row.resource_type}/{row.id}")
            continue
        erase[(row.resource_type, row.id)] = row
    # the contents of their documents, when no securityContext filed them in the record
    named = {
        binary
        for row in erase.values()
        if row is not None and row.resource_type == "DocumentReference"
        for binary in _attachment_binaries(orjson.loads(row.content))
    }
    for binary in sorted(named):
        if ("Binary", binary) in erase:
            continue
        try:
            found = await store.read("Binary", binary)
        except FhirError:  # its content is gone already: an interrupted purge of this record
            erase[("Binary", binary)] = None
            continue
        if found is not None and found.patient in (None, patient_id):
            erase[("Binary", binary)] = found
    # resources outside every record that point only to what is erased (and the directory)
    for row in await store.referrers(sorted(erase)):
        key = (row.resource_type, row.id)
        if key in erase or row.patient is not None or row.resource_type in _NEVER:
            continue
        targets = {k for k in map(_local, _references(orjson.loads(row.content))) if k is not None}
        if targets and all(t in erase or t[0] in _DIRECTORY for t in targets):
            erase[key] = row
    return _ordered(erase, patient_id), kept


def _ordered(keys: Iterable[ResourceKey], patient_id: str) -> list[ResourceKey]:
    """Erasure order (one transaction: for the reader of the code, not for consistency): what
    points at the record first, the lifecycle Consent and the Patient last."""

    def rank(key: ResourceKey) -> tuple[int, str, str]:
        if key == ("Patient", patient_id):
            return (2, *key)
        return (1 if key[0] == "Consent" else 0, *key)

    return sorted(keys, key=rank)


def _purge_entry(
    patient_id: str, space: PurgedSpace, *, now_us: int, server: str, operator: str
) -> AuditEntry:
    """The AuditEvent of a purge in the person's chain: a delete of the Patient by the platform,
    with the counts by type (never a content)."""
    caller = Caller.operator(operator)
    request = AccessRequest(caller, "delete", "Patient", patient_id, f"Patient/{patient_id}", PURGE_REASON)
    entry = build_entry(
        Decision(request, True, PURGE_REASON), AuditContext(recorded_us=now_us, server=server)
    )
    event = entry.event()
    event["outcomeDesc"] = PURGE_REASON
    event.setdefault("entity", []).append(
        {
            "description": (
                f"{PURGE_REASON} ({instant(space.archive_until_us)}): {space.resources} resources, "
                f"{space.versions} versions erased"
            ),
            "detail": [
                {"type": resource_type, "valueString": str(count)}
                for resource_type, count in sorted(space.erased.items())
            ],
        }
    )
    return dataclasses.replace(entry, content=canonical_json(event))


async def _expired_consents(store: ResourceStore, now_us: int) -> list[dict[str, Any]]:
    """The lifecycle Consents whose archive period ended before now (the query of Hygie's
    ``ens-archive-until`` search parameter), every page."""
    params = [
        ("category", space_category_query()),
        ("ens-archive-until", f"lt{instant(now_us)}"),
        ("_count", str(_PAGE)),
    ]
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = parse_search("Consent", [*params, ("_cursor", cursor)] if cursor else params)
        page = await store.search(query, now_us=now_us)
        out.extend(orjson.loads(r.content) for r in page.resources)
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


def _patient_of(consent: dict[str, Any]) -> str | None:
    ref = (consent.get("patient") or {}).get("reference")
    key = _local(ref) if isinstance(ref, str) else None
    return key[1] if key is not None and key[0] == "Patient" else None


async def purge_expired(
    store: ResourceStore,
    audit: AuditLog,
    *,
    now_us: int,
    rules: SpaceRules,
    dry_run: bool = False,
    server: str = "hygie",
    operator: str = OPERATOR,
) -> PurgeReport:
    """Erase the record of every closed space whose archive period ended before ``now_us``
    (``dry_run``: say what would be erased, erase nothing)."""
    report = PurgeReport(dry_run)
    for consent in await _expired_consents(store, now_us):
        patient_id = _patient_of(consent)
        state = state_of(consent, 0, rules)
        if (
            patient_id is None
            or not is_space_consent(consent)
            or not state.closed
            or state.archive_until_us is None
            or state.archive_until_us >= now_us
        ):
            continue  # reopened (permit), not a lifecycle Consent, or not expired
        space = PurgedSpace(patient_id, state.archive_until_us)
        report.spaces.append(space)
        keys, space.kept = await plan(store, patient_id)
        for resource_type, _ in keys:
            space.erased[resource_type] = space.erased.get(resource_type, 0) + 1
        if dry_run:
            continue
        async with store.transaction() as tx:
            current = await tx.read_for_update("Consent", str(consent.get("id")))
            seen = (consent.get("meta") or {}).get("versionId")
            if current is None or current.deleted or str(current.version) != str(seen):
                space.skipped = "the space changed since the query (reopened?): left for the next run"
                space.erased = {}
                continue
            for resource_type, id in keys:
                space.versions += len(await tx.expunge(resource_type, id))
            entry = _purge_entry(patient_id, space, now_us=now_us, server=server, operator=operator)
            await audit.append(tx, [entry])
        log.info("purged the record of Patient/%s: %d resources", patient_id, space.resources)
    return report


async def run_daily(
    store: ResourceStore,
    audit: AuditLog,
    clock: Callable[[], int],
    rules: SpaceRules,
    *,
    server: str = "hygie",
) -> PurgeReport:
    """One purge run for a server's background worker (call it once a day): the same as
    ``hygie ens purger``; a failure is logged and left for the next day's run."""
    try:
        return await purge_expired(store, audit, now_us=clock(), rules=rules, server=server)
    except Exception:
        log.exception("the purge of expired health spaces failed; the next run will finish it")
        return PurgeReport(dry_run=False)
