"""Correspondence outside any record (``domain/policy.py`` *correspondence*), on facts: a
Communication naming no patient is its parties' — read by its sender, its recipients and the
members of a recipient structure, sent only by a professional in their own name, changed only by
its sender — and the search restriction says the same to the stores."""

from __future__ import annotations

from hygie.auth.scopes import parse_scopes
from hygie.domain.policy import Principal, SearchRestriction, Target, decide, restriction_for

GP = Principal("practitioner", "Practitioner/gp", profession="10", organization="Organization/cabinet")
CARDIO = Principal("practitioner", "Practitioner/cardio", profession="10")
COLLEAGUE = Principal(
    "practitioner", "Practitioner/ide", profession="60", organization="Organization/cabinet"
)
STRANGER = Principal("practitioner", "Practitioner/other", profession="10")
CLAIRE = Principal("patient", "Patient/claire")
OPERATOR = Principal("operator", "Operator/ars")
PLATFORM_JOB = Principal("system", "export-job")
CABINET_SOFTWARE = Principal("system", "logiciel-cabinet", organization="Organization/cabinet")


def letter(sender: str, *recipients: str) -> Target:
    return Target(
        "Communication", None, authors=frozenset({sender}), parties=frozenset({sender, *recipients})
    )


TO_CARDIO = letter("Practitioner/gp", "Practitioner/cardio")
TO_CABINET = letter("Practitioner/cardio", "Organization/cabinet")


def test_only_the_parties_read_a_letter() -> None:
    for who in (GP, CARDIO, OPERATOR, PLATFORM_JOB):
        assert decide(who, "read", TO_CARDIO).allowed, who
    for who in (STRANGER, COLLEAGUE, CLAIRE, CABINET_SOFTWARE):
        verdict = decide(who, "read", TO_CARDIO)
        assert not verdict.allowed and verdict.reason == "a correspondence between other people", who
    assert not decide(STRANGER, "history", TO_CARDIO).allowed
    assert not decide(STRANGER, "search", TO_CARDIO).allowed


def test_a_structures_mailbox_is_its_members() -> None:
    for who in (COLLEAGUE, GP, CABINET_SOFTWARE, CARDIO):
        assert decide(who, "read", TO_CABINET).allowed, who
    assert not decide(STRANGER, "read", TO_CABINET).allowed


def test_a_letter_is_sent_by_a_professional_in_their_own_name_and_changed_only_by_them() -> None:
    assert decide(GP, "create", TO_CARDIO).allowed
    forged = decide(STRANGER, "create", TO_CARDIO)
    assert not forged.allowed and "own name" in forged.reason
    assert not decide(CLAIRE, "create", letter("Patient/claire", "Practitioner/gp")).allowed
    assert decide(CABINET_SOFTWARE, "create", letter("Organization/cabinet", "Practitioner/gp")).allowed
    assert decide(GP, "update", TO_CARDIO).allowed
    assert not decide(CARDIO, "update", TO_CARDIO).allowed  # acknowledged with $mark-received
    assert not decide(CARDIO, "delete", TO_CARDIO).allowed


def test_an_app_gets_no_more_than_its_user() -> None:
    app = Principal(
        "practitioner", "Practitioner/other", profession="10", scopes=parse_scopes("user/Communication.rs")
    )
    assert not decide(app, "read", TO_CARDIO).allowed


def test_a_message_in_a_record_follows_the_records_rules() -> None:
    in_record = Target("Communication", "claire", authors=frozenset({"Practitioner/gp"}))
    assert decide(CLAIRE, "read", in_record).allowed  # her own record
    assert not decide(STRANGER, "read", in_record).allowed  # no care relation


def test_the_search_restriction_names_the_parties() -> None:
    assert restriction_for(GP, "Communication").correspondent == frozenset(
        {"Practitioner/gp", "Organization/cabinet"}
    )
    assert restriction_for(CLAIRE, "Communication").correspondent == frozenset({"Patient/claire"})
    assert restriction_for(CABINET_SOFTWARE, "Communication").correspondent == frozenset(
        {"Organization/cabinet"}
    )
    assert restriction_for(OPERATOR, "Communication") == SearchRestriction()
    launched = Principal(
        "patient", "Patient/claire", scopes=parse_scopes("patient/*.rs"), launch_patient="claire"
    )
    assert restriction_for(launched, "Communication").correspondent == frozenset({"Patient/claire"})
