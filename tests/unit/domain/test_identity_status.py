"""The RNIV trust-status state machine: transitions, evidence, attributes and refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hygie.domain.identity.status import (
    CollectionMethod,
    ConflictingAttributes,
    IdentityAttribute,
    IdentityError,
    IdentityState,
    IdentityStatus,
    InsiCallBlocked,
    InvalidEvidence,
    TransitionRefused,
    ValidationMode,
    check_state,
    clear_attribute,
    create,
    may_call_insi,
    may_share_ins,
    record_document_check,
    record_insi_result,
    record_vitale_app,
    set_attribute,
    with_comment,
)

DAY = date(2025, 3, 14)
LATER = date(2025, 6, 1)


def test_creation_gives_a_provisional_identity_without_evidence() -> None:
    state = create()
    assert state.status is IdentityStatus.PROV
    assert not state.attributes
    assert not state.has_document_check
    assert not state.has_insi_evidence
    assert not may_share_ins(state)


def test_document_check_moves_prov_to_vali_and_records_mode_and_date() -> None:
    state = record_document_check(create(), ValidationMode.CN, DAY)
    assert state.status is IdentityStatus.VALI
    assert state.validation_mode is ValidationMode.CN
    assert state.validation_date == DAY
    assert state.insi_query_date is None


def test_insi_success_moves_prov_to_recup_and_records_date_and_method() -> None:
    state = record_insi_result(create(), True, DAY, CollectionMethod.CV)
    assert state.status is IdentityStatus.RECUP
    assert state.insi_query_date == DAY
    assert state.method_collection is CollectionMethod.CV
    assert state.validation_mode is None


def test_document_check_after_insi_qualifies_the_identity() -> None:
    recovered = record_insi_result(create(), True, DAY, CollectionMethod.INSI)
    qualified = record_document_check(recovered, ValidationMode.PA, LATER)
    assert qualified.status is IdentityStatus.QUAL
    assert may_share_ins(qualified)


def test_insi_after_document_check_qualifies_the_identity() -> None:
    validated = record_document_check(create(), ValidationMode.ECN, DAY)
    qualified = record_insi_result(validated, True, LATER, CollectionMethod.CB)
    assert qualified.status is IdentityStatus.QUAL
    assert (qualified.validation_mode, qualified.method_collection) == (
        ValidationMode.ECN,
        CollectionMethod.CB,
    )


def test_failed_insi_withdraws_insi_evidence() -> None:
    qualified = record_insi_result(
        record_document_check(create(), ValidationMode.CN, DAY), True, DAY, CollectionMethod.SM
    )
    after = record_insi_result(qualified, False, LATER, CollectionMethod.SM)
    assert after.status is IdentityStatus.VALI
    assert after.insi_query_date is None
    assert after.validation_mode is ValidationMode.CN
    recovered = record_insi_result(create(), True, DAY, CollectionMethod.SM)
    assert record_insi_result(recovered, False, LATER, CollectionMethod.SM).status is IdentityStatus.PROV
    assert record_insi_result(create(), False, DAY, CollectionMethod.SM) == create()


def test_failed_insi_after_vitale_app_makes_the_identity_provisional() -> None:
    qualified = record_vitale_app(create(), DAY)
    after = record_insi_result(qualified, False, LATER, CollectionMethod.INSI)
    assert after.status is IdentityStatus.PROV
    assert not after.has_document_check


def test_vitale_app_qualifies_directly_without_insi() -> None:
    state = record_vitale_app(create(), DAY)
    assert state.status is IdentityStatus.QUAL
    assert state.insi_query_date is None
    assert state.validation_mode is ValidationMode.AV
    assert state.method_collection is CollectionMethod.AV
    check_state(state)
    assert record_document_check(create(), ValidationMode.AV, DAY) == state


def test_minors_modes_are_refused_for_adults_and_accepted_for_children() -> None:
    child = record_document_check(create(), ValidationMode.LEP, DAY, birth_date=date(2015, 1, 1))
    assert child.status is IdentityStatus.VALI
    with pytest.raises(InvalidEvidence) as refused:
        record_document_check(create(), ValidationMode.LEP, DAY, birth_date=date(1980, 1, 1))
    assert refused.value.code == "minors-mode-for-adult"
    assert "réservé aux mineurs" in str(refused.value)
    with pytest.raises(InvalidEvidence):
        record_document_check(create(), ValidationMode.CN, date(2000, 1, 1), birth_date=date(2001, 1, 1))


@pytest.mark.parametrize("attribute", [IdentityAttribute.DOUT, IdentityAttribute.FICT])
def test_doubtful_or_fictitious_identity_is_forced_provisional_and_blocks_insi(
    attribute: IdentityAttribute,
) -> None:
    qualified = record_vitale_app(create(), DAY)
    flagged = set_attribute(qualified, attribute)
    assert flagged.status is IdentityStatus.PROV
    assert not flagged.has_document_check
    assert not flagged.has_insi_evidence
    assert not may_call_insi(flagged)
    assert not may_share_ins(flagged)
    with pytest.raises(InsiCallBlocked) as blocked:
        record_insi_result(flagged, True, LATER, CollectionMethod.INSI)
    assert blocked.value.code == "insi-blocked"
    assert "INSi interdit" in str(blocked.value)
    assert attribute.label in str(blocked.value)
    with pytest.raises(TransitionRefused) as refused:
        record_document_check(flagged, ValidationMode.CN, LATER)
    assert refused.value.code == "identity-flagged"
    with pytest.raises(TransitionRefused):
        record_vitale_app(flagged, LATER)


def test_clearing_a_doubt_keeps_the_identity_provisional() -> None:
    doubtful = set_attribute(record_vitale_app(create(), DAY), IdentityAttribute.DOUT)
    cleared = clear_attribute(doubtful, IdentityAttribute.DOUT)
    assert cleared.status is IdentityStatus.PROV
    assert may_call_insi(cleared)
    assert record_insi_result(cleared, True, LATER, CollectionMethod.INSI).status is IdentityStatus.RECUP


def test_doubtful_and_fictitious_cannot_be_combined() -> None:
    with pytest.raises(ConflictingAttributes) as conflict:
        set_attribute(set_attribute(create(), IdentityAttribute.DOUT), IdentityAttribute.FICT)
    assert conflict.value.code == "conflicting-attributes"
    assert "douteuse et fictive" in str(conflict.value)
    with pytest.raises(ConflictingAttributes):
        set_attribute(set_attribute(create(), IdentityAttribute.HOMD), IdentityAttribute.FICT)


def test_homonym_attributes_combine_with_doubt_and_keep_the_status() -> None:
    qualified = record_vitale_app(create(), DAY)
    homonym = set_attribute(qualified, IdentityAttribute.HOMA)
    assert homonym.status is IdentityStatus.QUAL
    both = set_attribute(set_attribute(homonym, IdentityAttribute.HOMD), IdentityAttribute.DOUT)
    assert both.attributes == {IdentityAttribute.HOMA, IdentityAttribute.HOMD, IdentityAttribute.DOUT}
    assert both.status is IdentityStatus.PROV


def test_check_state_rejects_statuses_without_their_evidence() -> None:
    with pytest.raises(InvalidEvidence) as missing:
        check_state(IdentityState(status=IdentityStatus.QUAL, validation_mode=ValidationMode.CN))
    assert missing.value.code == "missing-insi-date"
    with pytest.raises(InvalidEvidence) as no_mode:
        check_state(IdentityState(status=IdentityStatus.VALI))
    assert no_mode.value.code == "missing-validation-mode"
    with pytest.raises(InvalidEvidence) as flagged:
        check_state(
            IdentityState(
                status=IdentityStatus.RECUP,
                attributes=frozenset({IdentityAttribute.DOUT}),
                insi_query_date=DAY,
            )
        )
    assert flagged.value.code == "flagged-not-provisional"
    check_state(IdentityState(status=IdentityStatus.RECUP, insi_query_date=DAY))


def test_every_refusal_is_an_identity_error_with_french_message_and_english_code() -> None:
    errors: list[IdentityError] = []
    for action in (
        lambda: record_insi_result(
            set_attribute(create(), IdentityAttribute.FICT), True, DAY, CollectionMethod.SM
        ),
        lambda: set_attribute(set_attribute(create(), IdentityAttribute.FICT), IdentityAttribute.DOUT),
        lambda: check_state(IdentityState(status=IdentityStatus.VALI)),
    ):
        with pytest.raises(IdentityError) as caught:
            action()
        errors.append(caught.value)
    for error in errors:
        assert error.code.isascii() and error.code == error.code.lower()
        assert " " not in error.code
        assert str(error)[0].isupper() and str(error).endswith(".")


def test_comment_is_kept_and_emptied_to_none() -> None:
    assert with_comment(create(), "Pièce vue au guichet").comment == "Pièce vue au guichet"
    assert with_comment(create(comment="x"), "").comment is None


# --------------------------------------------------------------------------- property
@dataclass(frozen=True)
class _Event:
    kind: str
    mode: ValidationMode = ValidationMode.CN
    matched: bool = True
    attribute: IdentityAttribute = IdentityAttribute.DOUT


_events = st.one_of(
    st.builds(_Event, st.just("document"), mode=st.sampled_from(list(ValidationMode))),
    st.builds(_Event, st.just("insi"), matched=st.booleans()),
    st.builds(_Event, st.just("vitale")),
    st.builds(_Event, st.just("set"), attribute=st.sampled_from(list(IdentityAttribute))),
    st.builds(_Event, st.just("clear"), attribute=st.sampled_from(list(IdentityAttribute))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_events, max_size=25))
def test_no_event_sequence_qualifies_without_both_checks_and_flags_always_mean_prov(
    events: list[_Event],
) -> None:
    state = create()
    document_seen = insi_seen = False  # successes since the last DOUT/FICT
    for event in events:
        try:
            if event.kind == "document":
                state = record_document_check(state, event.mode, DAY)
                document_seen = True
                insi_seen = insi_seen or event.mode is ValidationMode.AV
            elif event.kind == "insi":
                state = record_insi_result(state, event.matched, DAY, CollectionMethod.INSI)
                insi_seen = insi_seen or event.matched
            elif event.kind == "vitale":
                state = record_vitale_app(state, DAY)
                document_seen = insi_seen = True
            elif event.kind == "set":
                state = set_attribute(state, event.attribute)
                if event.attribute in (IdentityAttribute.DOUT, IdentityAttribute.FICT):
                    document_seen = insi_seen = False
            else:
                state = clear_attribute(state, event.attribute)
        except IdentityError:
            pass
        check_state(state)
        if state.status is IdentityStatus.QUAL:
            assert document_seen and insi_seen
            assert state.has_document_check and state.has_insi_evidence
        if state.attributes & {IdentityAttribute.DOUT, IdentityAttribute.FICT}:
            assert state.status is IdentityStatus.PROV
        assert not {IdentityAttribute.DOUT, IdentityAttribute.FICT} <= state.attributes
        assert may_share_ins(state) == (state.status is IdentityStatus.QUAL)
