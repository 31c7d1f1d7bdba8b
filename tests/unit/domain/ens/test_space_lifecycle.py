"""A health space's life as FHIR: open by default, refused within the opt-out window, closed
later, archived for a period and reopened within it; what closing deletes."""

from __future__ import annotations

import pytest

from hygie.domain.ens.lifecycle import (
    EXT_ARCHIVE_UNTIL,
    EXT_CLOSURE,
    SpaceRules,
    closing_consent,
    own_entries,
    preview,
    reopening_consent,
    state_of,
)
from hygie.domain.relations import relations_from
from hygie.fhir.values import date_range

DAY = 86_400 * 1_000_000
CREATED = date_range("2026-01-10T09:00:00Z")[0]
RULES = SpaceRules(opt_out_days=42, archive_years=10)


def ext(consent: dict, url: str) -> object:
    return next(e for e in consent["extension"] if e["url"] == url)


def test_a_space_without_a_consent_is_open_since_the_patient_was_registered() -> None:
    state = state_of(None, CREATED, RULES)
    assert not state.closed
    assert state.may_oppose(CREATED + 41 * DAY) and not state.may_oppose(CREATED + 43 * DAY)
    assert not state.may_reopen(CREATED)


def test_refusing_within_the_window_then_reopening() -> None:
    state = state_of(None, CREATED, RULES)
    now = CREATED + 3 * DAY
    consent = closing_consent("lea", state, None, by="RelatedPerson/mere", now_us=now, rules=RULES)
    assert consent["provision"]["type"] == "deny"
    assert ext(consent, EXT_CLOSURE)["valueCode"] == "opposition"
    assert ext(consent, EXT_ARCHIVE_UNTIL)["valueDateTime"].startswith("2036-01-13")
    assert consent["performer"] == [{"reference": "RelatedPerson/mere"}]
    assert [r.kind for r in relations_from(consent)] == ["space_closed"]
    closed = state_of({**consent, "id": "c1", "meta": {"versionId": "1"}}, CREATED, RULES)
    assert closed.closed and closed.closure == "opposition" and closed.version == "1"
    assert closed.created_us == CREATED
    with pytest.raises(ValueError, match="already closed"):
        closing_consent("lea", closed, None, by="Patient/lea", now_us=now, rules=RULES)
    assert closed.may_reopen(now + 365 * DAY)
    assert not closed.may_reopen(now + 3660 * DAY)
    reopened = reopening_consent("lea", closed, {"id": "c1"}, by="Patient/lea", now_us=now + DAY)
    assert reopened["id"] == "c1" and reopened["provision"]["type"] == "permit"
    assert relations_from(reopened) == []
    again = state_of(reopened, CREATED, RULES)
    assert not again.closed and again.changed_us is not None and again.created_us == CREATED
    assert not again.may_oppose(now + DAY + 50 * DAY)  # the window counts from the first opening


def test_closing_after_the_window_is_a_closure_and_the_archive_may_expire() -> None:
    state = state_of(None, CREATED, RULES)
    now = CREATED + 100 * DAY
    consent = closing_consent("lea", state, None, by="Patient/lea", now_us=now, rules=SpaceRules(42, 1))
    closed = state_of(consent, CREATED, RULES)
    assert closed.closure == "fermeture"
    with pytest.raises(ValueError, match="archive period"):
        reopening_consent("lea", closed, None, by="Patient/lea", now_us=now + 400 * DAY)


def test_closing_deletes_only_what_the_person_entered_outside_documents() -> None:
    me, mum, doctor = "Patient/lea", "RelatedPerson/mere", "Practitioner/dr"
    record = [
        {
            "resourceType": "Observation",
            "id": "w",
            "performer": [{"reference": me}],
            "subject": {"reference": me},
        },
        {"resourceType": "Observation", "id": "lab", "performer": [{"reference": doctor}]},
        {"resourceType": "AllergyIntolerance", "id": "a", "recorder": {"reference": mum}},
        {"resourceType": "Communication", "id": "m1", "sender": {"reference": me}},
        {"resourceType": "Communication", "id": "m2", "sender": {"reference": doctor}},
        {"resourceType": "DocumentReference", "id": "d", "author": [{"reference": me}]},
        {
            "resourceType": "Condition",
            "id": "c",
            "asserter": {"reference": me},
            "author": [{"reference": doctor}],
        },
        {"resourceType": "Procedure", "id": "p", "performer": [{"actor": {"reference": me}}]},
        {"resourceType": "Consent", "id": "k", "performer": [{"reference": me}]},
        {"resourceType": "Condition", "id": "nobody"},
        {"resourceType": "Goal", "id": "seuils", "expressedBy": {"reference": mum}},
        {"resourceType": "Appointment", "id": "perso", "participant": [{"actor": {"reference": me}}]},
        {
            "resourceType": "Appointment",
            "id": "rdv",
            "participant": [{"actor": {"reference": me}}, {"actor": {"reference": doctor}}],
        },
        {
            "resourceType": "Flag",
            "id": "alerte",
            "identifier": [
                {"system": "https://hygie.esante.example/fhir/NamingSystem/threshold-alert", "value": "x"}
            ],
        },
    ]
    own = {r["id"] for r in own_entries(record, {me, mum})}
    assert own == {"w", "a", "m1", "p", "seuils", "perso", "alerte"}
    state = state_of(None, CREATED, RULES)
    shown = preview(
        [{"resourceType": "Patient", "id": "lea"}, *record],
        {me, mum},
        state,
        now_us=CREATED + DAY,
        rules=RULES,
        patient_id="lea",
    )
    assert shown.closure == "opposition"
    assert set(shown.deleted_refs) == {
        "Observation/w",
        "AllergyIntolerance/a",
        "Communication/m1",
        "Procedure/p",
        "Goal/seuils",
        "Appointment/perso",
        "Flag/alerte",
    }
    archived = dict(shown.archived)
    assert archived["documents"] == 1 and archived["messages reçus"] == 1
    assert "mesures que vous avez saisies" in dict(shown.deleted)
