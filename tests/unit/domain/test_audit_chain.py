"""The audit chain (domain/audit.py): BALP events, hashing, checkpoints, and tamper detection.

The property tests take a chain of random events and apply one tampering — an edit, a deletion,
an insertion, a swap of two records, a truncated tail — the way someone with write access to
the table could, and check that :func:`verify_chain` names it.
"""

from __future__ import annotations

import base64
import dataclasses

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hygie.domain.access import AccessRequest, Caller, Decision
from hygie.domain.audit import (
    GENESIS,
    SYSTEM_PARTITION,
    Actor,
    AuditContext,
    AuditEntry,
    AuditRecord,
    AuditSigner,
    ChainHead,
    Coding,
    access_line,
    build_entry,
    chain_hash,
    seal,
    seal_many,
    verify_chain,
)
from hygie.domain.disputes import (
    PLATFORM,
    DisputeError,
    close_dispute,
    open_dispute,
    start_review,
)

NOW = 1_748_740_365_000_000  # 2025-06-01T01:12:45Z
SIGNER = AuditSigner(Ed25519PrivateKey.generate())
KEYS = {SIGNER.key_id: SIGNER.private_key.public_key()}
DOCTOR = Actor(
    who="810001234565",
    who_system="urn:oid:1.2.250.1.71.4.2.1",
    display="Dr Jeanne Martin",
    role=Coding("https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "10"),
    structure="1750712184",
    structure_system="urn:oid:1.2.250.1.71.4.2.2",
    purpose_of_use=(Coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT"),),
)


def decision(interaction: str = "read", allowed: bool = True, **kw: str | None) -> Decision:
    fields: dict[str, str | None] = {
        "resource_type": "DocumentReference",
        "resource_id": "dr-42",
        "patient": "p1",
        **kw,
    }
    request = AccessRequest(Caller("practitioner", "810001234565"), interaction, **fields)  # type: ignore[arg-type]
    return Decision(request, allowed, "ok" if allowed else "blocked by the patient")


def entry(partition: str = "p1", n: int = 0, **extra: object) -> AuditEntry:
    content = orjson.dumps({"resourceType": "AuditEvent", "n": n, **extra}, option=orjson.OPT_SORT_KEYS)
    return AuditEntry(partition, NOW + n, partition, "someone", "10", "S1", "R", "0", "TREAT", content)


def chain(n: int, partition: str = "p1") -> list[AuditRecord]:
    return seal(ChainHead(partition), [entry(partition, i) for i in range(n)])


def head_of(records: list[AuditRecord]) -> dict[str, ChainHead]:
    last = records[-1]
    return {last.partition: ChainHead(last.partition, last.seq, last.hash)}


def kinds(
    records: list[AuditRecord], *, heads: dict[str, ChainHead] | None = None, cps: bool = False
) -> set[str]:
    checkpoints = []
    if cps and heads:
        checkpoints = [SIGNER.sign(h, NOW) for h in heads.values()]
    report = verify_chain(records, checkpoints, KEYS, heads=heads)
    return {a.kind for a in report.anomalies}


# -- BALP events ---------------------------------------------------------------------------------


def test_patient_read_is_a_balp_patient_read_with_both_dcm_agents_and_the_user() -> None:
    e = build_entry(
        decision(), AuditContext(NOW, "fhir.example.fr", client="lps-01", request_id="rq-1"), DOCTOR
    )
    event = e.event()
    assert event["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
    ]
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"], event["outcome"]) == (
        "rest",
        "read",
        "R",
        "0",
    )
    assert event["recorded"] == "2025-06-01T01:12:45Z"
    roles = {a["type"]["coding"][0]["code"]: a for a in event["agent"]}
    assert roles["110153"]["who"] == {"display": "fhir.example.fr"}  # the server sends: Source
    assert roles["110152"]["who"]["identifier"]["value"] == "lps-01"
    user = roles["IRCP"]
    assert user["requestor"] is True
    assert user["who"]["identifier"] == {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234565"}
    assert user["role"][0]["coding"][0]["code"] == "10"
    assert user["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    assert roles["PROV"]["who"]["identifier"]["value"] == "1750712184"
    entities = {(x.get("role") or x["type"])["code"]: x for x in event["entity"]}
    assert entities["4"]["what"] == {"reference": "DocumentReference/dr-42"}
    assert entities["1"]["what"] == {"reference": "Patient/p1"}
    assert entities["XrequestId"]["what"]["identifier"]["value"] == "rq-1"
    assert (e.partition, e.patient, e.agent, e.role, e.structure, e.purpose) == (
        "p1",
        "p1",
        "urn:oid:1.2.250.1.71.4.2.1|810001234565",
        "10",
        "1750712184",
        "TREAT",
    )


def test_search_is_a_query_with_reversed_agents_and_a_base64_query_entity() -> None:
    d = decision("search", resource_id=None, detail="patient=p1&type=11488-4")
    event = build_entry(d, AuditContext(NOW, "srv", client="app"), DOCTOR).event()
    assert event["action"] == "E"
    assert event["subtype"][0]["code"] == "search-type"
    assert event["meta"]["profile"][0].endswith("IHE.BasicAudit.PatientQuery")
    roles = {a["type"]["coding"][0]["code"]: a["who"] for a in event["agent"]}
    assert roles["110153"] == {"identifier": {"value": "app"}}  # the client sends the query
    assert roles["110152"] == {"display": "srv"}
    query = next(x for x in event["entity"] if x.get("role", {}).get("code") == "24")
    assert base64.b64decode(query["query"]) == b"patient=p1&type=11488-4"
    assert query["description"] == "DocumentReference?patient=p1&type=11488-4"


def test_refused_decision_is_recorded_as_a_failure_with_its_reason() -> None:
    e = build_entry(decision(allowed=False), AuditContext(NOW, "srv"), DOCTOR)
    assert e.outcome == "4"
    assert e.event()["outcomeDesc"] == "blocked by the patient"


def test_break_glass_carries_btg_access_mode_policy_and_justification() -> None:
    actor = dataclasses.replace(
        DOCTOR,
        purpose_of_use=(),
        access_mode="bris_de_glace",
        justification="patient inconscient aux urgences",
    )
    e = build_entry(decision(), AuditContext(NOW, "srv"), actor)
    event = e.event()
    codes = [c["code"] for c in event["purposeOfEvent"][0]["coding"]]
    assert codes == ["BTG", "bris_de_glace"]
    user = next(a for a in event["agent"] if a["requestor"])
    assert user["policy"] == ["urn:fr:dmp:access-mode:bris_de_glace"]
    assert {"description": "justification: patient inconscient aux urgences"} in event["entity"]
    assert e.purpose == "BTG,bris_de_glace"


def test_events_without_a_patient_go_to_the_system_partition() -> None:
    d = decision("capabilities", resource_type=None, resource_id=None, patient=None)
    e = build_entry(d, AuditContext(NOW, "srv"))
    assert e.partition == SYSTEM_PARTITION
    assert e.patient is None
    assert e.agent == "810001234565"  # from the caller when no actor is given


def test_access_line_tells_the_patient_who_what_when_and_why() -> None:
    record = seal(ChainHead("p1"), [build_entry(decision(), AuditContext(NOW, "srv"), DOCTOR)])[0]
    line = access_line(record)
    assert (line.who_display, line.role, line.structure, line.what, line.purpose, line.granted) == (
        "Dr Jeanne Martin",
        "10",
        "1750712184",
        ("DocumentReference/dr-42",),
        "TREAT",
        True,
    )
    assert line.recorded_us == NOW


# -- the chain -----------------------------------------------------------------------------------


def test_chain_links_each_record_to_the_previous_one() -> None:
    records = chain(3)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS
    assert records[1].prev_hash == records[0].hash
    assert records[2].hash == chain_hash(records[1].hash, "p1", 3, records[2].entry)
    continued = seal(ChainHead("p1", 3, records[2].hash), [entry("p1", 9)])
    assert continued[0].seq == 4
    assert continued[0].prev_hash == records[2].hash


def test_hash_covers_partition_sequence_and_every_listed_column() -> None:
    e = entry()
    base = chain_hash(GENESIS, "p1", 1, e)
    assert chain_hash(GENESIS, "p2", 1, e) != base
    assert chain_hash(GENESIS, "p1", 2, e) != base
    assert chain_hash(GENESIS, "p1", 1, dataclasses.replace(e, structure="S2")) != base
    assert chain_hash(GENESIS, "p1", 1, dataclasses.replace(e, outcome="4")) != base


def test_seal_many_keeps_the_order_and_chains_each_partition() -> None:
    entries = [entry("a", 0), entry("b", 1), entry("a", 2)]
    records = seal_many({"a": ChainHead("a", 5, b"\x01" * 32)}, entries)
    assert [(r.partition, r.seq) for r in records] == [("a", 6), ("b", 1), ("a", 7)]
    assert records[2].prev_hash == records[0].hash


def test_seal_refuses_an_entry_of_another_partition() -> None:
    with pytest.raises(ValueError, match="partition"):
        seal(ChainHead("a"), [entry("b")])


def test_an_intact_chain_with_head_and_checkpoint_verifies() -> None:
    records = chain(5) + chain(2, "p2")
    heads = {**head_of(records[:5]), **head_of(records[5:])}
    report = verify_chain(records, [SIGNER.sign(h, NOW) for h in heads.values()], KEYS, heads=heads)
    assert report.ok, report.anomalies
    assert (report.records, report.partitions, report.checkpoints) == (7, 2, 2)


def test_checkpoint_with_unknown_key_or_forged_signature_is_reported() -> None:
    records = chain(3)
    cp = SIGNER.sign(ChainHead("p1", 3, records[2].hash), NOW)
    other = AuditSigner(Ed25519PrivateKey.generate())
    forged = dataclasses.replace(cp, signature=bytes(64))
    moved = dataclasses.replace(cp, seq=2, hash=records[1].hash)  # signature no longer covers it
    for bad in (other.sign(ChainHead("p1", 3, records[2].hash), NOW), forged, moved):
        report = verify_chain(records, [bad], KEYS)
        assert [a.kind for a in report.anomalies] == ["bad_signature"]


def test_a_chain_rewritten_before_its_checkpoint_is_caught_by_the_signature() -> None:
    records = chain(4)
    cp = SIGNER.sign(ChainHead("p1", 4, records[3].hash), NOW)
    # the attacker edits record 2 and recomputes every hash after it: the chain is consistent again
    forged = seal(ChainHead("p1"), [records[0].entry, entry("p1", 99), records[2].entry, records[3].entry])
    assert verify_chain(forged, [], KEYS).ok
    report = verify_chain(forged, [cp], KEYS)
    assert [a.kind for a in report.anomalies] == ["truncated"]  # the tail is no longer the signed one
    cp2 = SIGNER.sign(ChainHead("p1", 3, records[2].hash), NOW)
    assert {a.kind for a in verify_chain(forged, [cp2], KEYS).anomalies} == {"edited"}


# -- tampering, one case at a time ---------------------------------------------------------------


def test_edited_content_is_reported_at_its_sequence_number() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(records[2], entry=entry("p1", 2, forged=True))
    report = verify_chain(records, [], KEYS)
    assert [(a.kind, a.seq) for a in report.anomalies] == [("edited", 3)]


def test_deleted_record_is_reported_as_a_gap() -> None:
    records = chain(5)
    del records[1]
    report = verify_chain(records, [], KEYS)
    assert [(a.kind, a.seq) for a in report.anomalies] == [("deleted", 2)]


def test_swapped_records_are_both_reported_as_reordered() -> None:
    records = chain(5)
    a, b = records[1], records[3]
    records[1] = dataclasses.replace(b, seq=2)
    records[3] = dataclasses.replace(a, seq=4)
    report = verify_chain(records, [], KEYS)
    assert [(x.kind, x.seq) for x in report.anomalies] == [("reordered", 2), ("reordered", 4)]
    assert "written as record 4" in report.anomalies[0].detail


def test_record_forged_at_the_tail_is_reported_as_inserted_beyond_the_head() -> None:
    records = chain(4)
    heads = head_of(records)
    records += seal(ChainHead("p1", 4, records[3].hash), [entry("p1", 77)])  # a well-formed forgery
    report = verify_chain(records, [], KEYS, heads=heads)
    assert [(a.kind, a.seq) for a in report.anomalies] == [("inserted", 5)]


def test_truncated_tail_is_reported_from_the_head_and_the_checkpoint() -> None:
    records = chain(6)
    heads = head_of(records)
    report = verify_chain(records[:4], [SIGNER.sign(heads["p1"], NOW)], KEYS, heads=heads)
    assert [(a.kind, a.seq) for a in report.anomalies] == [("truncated", 6), ("truncated", 6)]


def test_partition_emptied_entirely_is_truncated() -> None:
    records = chain(2)
    report = verify_chain([], [], KEYS, heads=head_of(records))
    assert [a.kind for a in report.anomalies] == ["truncated"]


def test_a_forged_duplicate_of_a_sequence_number_is_reported_as_inserted() -> None:
    records = chain(5)
    bogus = dataclasses.replace(records[2], entry=entry("p1", 50), prev_hash=b"\x07" * 32, hash=b"\x08" * 32)
    before = verify_chain([*records[:2], bogus, *records[2:]], [], KEYS)  # sorted first among seq 3
    assert [(a.kind, a.seq, a.detail) for a in before.anomalies] == [
        ("inserted", 3, "not in the chain: the next record links past it")
    ]
    after = verify_chain([*records[:3], bogus, *records[3:]], [], KEYS)
    assert [(a.kind, a.seq) for a in after.anomalies] == [("inserted", 3)]
    assert "second record" in after.anomalies[0].detail


def test_a_record_from_another_chain_is_reported_where_it_breaks_the_links() -> None:
    records = chain(5)
    stranger = seal(ChainHead("p1", 2, b"\x05" * 32), [entry("p1", 60)])[0]  # self-consistent
    records[2] = stranger
    report = verify_chain(records, [], KEYS)
    assert [(a.kind, a.seq) for a in report.anomalies] == [("reordered", 3)]
    assert str(report.anomalies[0]) == "reordered: p1#3: does not follow the record stored before it"


def test_records_of_a_partition_without_head_are_reported() -> None:
    records = chain(2) + chain(1, "p2")
    report = verify_chain(records, [], KEYS, heads=head_of(records[:2]))
    assert [(a.kind, a.partition, a.seq) for a in report.anomalies] == [("inserted", "p2", None)]
    assert str(report.anomalies[0]) == "inserted: p2: records in a partition that has no head"


def test_checkpoint_on_a_deleted_record_adds_nothing_to_the_gap() -> None:
    records = chain(5)
    cp = SIGNER.sign(ChainHead("p1", 3, records[2].hash), NOW)
    del records[2]
    report = verify_chain(records, [cp], KEYS)
    assert [(a.kind, a.seq) for a in report.anomalies] == [("deleted", 3)]


def test_history_and_system_search_subtypes_and_displays() -> None:
    ctx = AuditContext(NOW, "srv")
    instance = build_entry(decision("history"), ctx).event()
    type_level = build_entry(decision("history", resource_id=None), ctx).event()
    system = build_entry(decision("history", resource_type=None, resource_id=None, patient=None), ctx).event()
    everything = build_entry(decision("search", resource_type=None, resource_id=None, detail="_id=x"), ctx)
    assert [e["subtype"][0]["code"] for e in (instance, type_level, system, everything.event())] == [
        "history-instance",
        "history-type",
        "history-system",
        "search-system",
    ]
    actor = dataclasses.replace(
        DOCTOR,
        role=Coding("urn:roles", "60", "Infirmier"),
        structure_display="CHU de Nantes",
    )
    event = build_entry(decision(), ctx, actor).event()
    user = next(a for a in event["agent"] if a["requestor"])
    assert user["role"][0]["coding"][0] == {"system": "urn:roles", "code": "60", "display": "Infirmier"}
    org = next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == "PROV")
    assert org["who"]["display"] == "CHU de Nantes"
    line = access_line(seal(ChainHead(everything.partition), [everything])[0])
    assert line.what == ("_id=x",)


# -- property: any single tampering is detected and named ------------------------------------------

payloads = st.dictionaries(
    st.text(max_size=5), st.integers(-(2**53), 2**53) | st.text(max_size=8), max_size=3
)


def _entries(draw: st.DrawFn, n: int) -> list[AuditEntry]:
    return [entry("p1", i, data=draw(payloads)) for i in range(n)]


@st.composite
def tampered(draw: st.DrawFn) -> tuple[list[AuditRecord], list[AuditRecord], str]:
    """(original chain, tampered records, expected anomaly kind)."""
    n = draw(st.integers(min_value=2, max_value=12))
    original = seal(ChainHead("p1"), _entries(draw, n))
    records = list(original)
    how = draw(st.sampled_from(["edit", "delete", "insert", "swap", "truncate"]))
    if how == "edit":
        i = draw(st.integers(0, n - 1))
        field = draw(st.sampled_from(["content", "agent", "structure", "recorded_us", "prev_hash", "hash"]))
        r = records[i]
        if field == "content":
            new = dataclasses.replace(r.entry, content=r.entry.content + b" ")
            records[i] = dataclasses.replace(r, entry=new)
        elif field == "prev_hash":
            records[i] = dataclasses.replace(r, prev_hash=bytes(b ^ 1 for b in r.prev_hash))
        elif field == "hash":
            records[i] = dataclasses.replace(r, hash=bytes(b ^ 1 for b in r.hash))
        elif field == "recorded_us":
            records[i] = dataclasses.replace(
                r, entry=dataclasses.replace(r.entry, recorded_us=r.entry.recorded_us + 1)
            )
        elif field == "agent":
            records[i] = dataclasses.replace(r, entry=dataclasses.replace(r.entry, agent="forged"))
        else:
            records[i] = dataclasses.replace(r, entry=dataclasses.replace(r.entry, structure="forged"))
        return original, records, "edited"
    if how == "delete":
        i = draw(st.integers(0, n - 1))
        del records[i]
        return original, records, "truncated" if i == n - 1 else "deleted"
    if how == "insert":
        # a well-formed record chained onto its predecessor, the following ones renumbered
        i = draw(st.integers(0, n))
        prev = ChainHead("p1", i, records[i - 1].hash if i else GENESIS)
        forged = seal(prev, [entry("p1", 1000, data=draw(payloads))])[0]
        shifted = [dataclasses.replace(r, seq=r.seq + 1) for r in records[i:]]
        return original, [*records[:i], forged, *shifted], "inserted"
    if how == "swap":
        i, j = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)))
        a, b = records[i], records[j]
        records[i], records[j] = dataclasses.replace(b, seq=a.seq), dataclasses.replace(a, seq=b.seq)
        return original, records, "reordered"
    k = draw(st.integers(1, n))
    return original, records[: n - k], "truncated"


@settings(max_examples=300, deadline=None)
@given(tampered())
def test_any_single_tampering_is_detected_and_named(
    case: tuple[list[AuditRecord], list[AuditRecord], str],
) -> None:
    original, records, expected = case
    heads = head_of(original)
    assert kinds(original, heads=heads, cps=True) == set()
    found = kinds(records, heads=heads, cps=True)
    assert expected in found, found


@settings(max_examples=200, deadline=None)
@given(tampered())
def test_checkpoint_alone_catches_tampering_up_to_it(
    case: tuple[list[AuditRecord], list[AuditRecord], str],
) -> None:
    """Without the (mutable) head table, the signed checkpoint of the last record is enough for
    any tampering of the signed part. (A well-formed record added after the checkpoint looks
    like a genuine append: only the head, or the next checkpoint, can tell.)"""
    original, records, _ = case
    assume(records[: len(original)] != original)
    cp = SIGNER.sign(head_of(original)["p1"], NOW)
    report = verify_chain(records, [cp], KEYS)
    assert not report.ok


@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=30))
def test_interleaved_partitions_each_form_a_gap_free_chain(partitions: list[str]) -> None:
    records = seal_many({}, [entry(p, i) for i, p in enumerate(partitions)])
    for p in set(partitions):
        assert [r.seq for r in records if r.partition == p] == list(range(1, partitions.count(p) + 1))
    assert verify_chain(records, [], KEYS).ok


# -- disputes ------------------------------------------------------------------------------------


def test_only_the_patient_concerned_may_dispute_and_the_case_goes_to_the_structure() -> None:
    record = seal(ChainHead("p1"), [build_entry(decision(), AuditContext(NOW, "srv"), DOCTOR)])[0]
    dispute = open_dispute(
        "d1", record, Caller("patient", "Patient/p1"), " je ne connais pas ce médecin ", NOW
    )
    assert (dispute.status, dispute.structure, dispute.patient, dispute.seq) == (
        "open",
        "1750712184",
        "p1",
        1,
    )
    assert dispute.comment == "je ne connais pas ce médecin"
    for caller in (Caller("patient", "p2"), Caller("practitioner", "p1"), Caller.anonymous()):
        with pytest.raises(DisputeError, match="only the patient"):
            open_dispute("d2", record, caller, "?", NOW)


def test_dispute_moves_open_review_closed_only_by_the_structures_dpo() -> None:
    record = seal(ChainHead("p1"), [build_entry(decision(), AuditContext(NOW, "srv"))])[0]
    d = open_dispute("d1", record, Caller("patient", "p1"), "?", NOW)
    assert d.structure == PLATFORM  # no structure on the access: the platform's DPO
    with pytest.raises(DisputeError, match="only a case under review"):
        close_dispute(d, "dpo", PLATFORM, "legitimate", "ok", NOW)
    with pytest.raises(DisputeError, match="belongs to the DPO"):
        start_review(d, "dpo", "1750712184", NOW)
    d2 = start_review(d, "dpo", PLATFORM, NOW + 1)
    assert (d2.status, d2.reviewer, d2.version) == ("under_review", "dpo", 2)
    with pytest.raises(DisputeError, match="cannot be taken"):
        start_review(d2, "dpo", PLATFORM, NOW)
    with pytest.raises(DisputeError, match="explanation"):
        close_dispute(d2, "dpo", PLATFORM, "unauthorised", "  ", NOW)
    d3 = close_dispute(d2, "dpo", PLATFORM, "unauthorised", "Accès non justifié, signalé.", NOW + 2)
    assert (d3.status, d3.outcome, d3.version, d3.updated_us) == ("closed", "unauthorised", 3, NOW + 2)


def test_a_request_keeps_its_reference_data_events_on_one_system_chain() -> None:
    """Events concerning no patient go to one of the system shards, chosen by the request: one
    request touches one chain head, concurrent requests spread over several."""
    d = decision("create", resource_type="Organization", resource_id="o1", patient=None)
    d2 = decision("create", resource_type="Organization", resource_id="o2", patient=None)
    a = build_entry(d, AuditContext(NOW, "srv", request_id="req-a"))
    b = build_entry(d2, AuditContext(NOW, "srv", request_id="req-a"))
    assert a.partition == b.partition and a.partition.startswith(SYSTEM_PARTITION + ".")
    shards = {build_entry(d, AuditContext(NOW, "srv", request_id=f"req-{i}")).partition for i in range(64)}
    assert len(shards) > 8
