"""Tele-expertise and teleconsultation (``domain/bsp/telehealth.py``): what a request holds, the
act that opens the record to the colleague and closes with the answer, the states both see; a
teleconsultation's appointment with its own video room, and the agenda by day. The relation the
act opens is checked with ``domain/relations.py`` and the access rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from hygie.domain.bsp import telehealth as tele
from hygie.domain.ens.calendar import VIDEO_LINK_URL, appointment_events, video_link
from hygie.domain.ens.messaging import PARIS
from hygie.domain.policy import Principal, Relation, Target, decide
from hygie.domain.relations import relations_from

NOW = 1_780_000_000_000_000
GP = ("Practitioner/gp", "Dr Paul BERNARD")
DERMATO = ("Practitioner/dermato", "Dr Hélène GARNIER")
LEA = ("Patient/lea", "Léa DURAND")


def request() -> tele.ExpertiseRequest:
    draft, errors = tele.check_request(
        "Lésion pigmentée : exérèse ?", "urgent", True, ["photo", "photo"], {"photo": "Photographie"}
    )
    assert draft is not None and not errors
    return draft


def test_a_request_needs_a_question_and_the_patients_consent() -> None:
    draft, errors = tele.check_request("  ", "soon", False, ["elsewhere"], {"photo": "Photographie"})
    assert draft is None
    assert set(errors) == {"question", "priorite", "documents", "consentement"}
    assert "accord du patient" in errors["consentement"]
    assert request().documents == (("photo", "Photographie"),)  # chosen once
    _, long = tele.check_request("x" * (tele.QUESTION_MAX + 1), "routine", True, [], {})
    assert "trop longue" in long["question"]


def test_the_request_and_the_act_that_opens_the_record() -> None:
    task, encounter = tele.expertise_resources(
        patient=LEA,
        requester=GP,
        expert=DERMATO,
        request=request(),
        now_us=NOW,
        encounter_ref="urn:uuid:act",
        structure="Organization/cabinet",
    )
    assert tele.is_expertise(task) and task["status"] == "requested" and task["priority"] == "urgent"
    assert task["for"] == {"reference": "Patient/lea", "display": "Léa DURAND"}
    assert task["owner"]["reference"] == "Practitioner/dermato"
    assert task["encounter"] == {"reference": "urn:uuid:act"}
    assert task["input"][1]["valueReference"]["reference"] == "DocumentReference/photo"
    assert encounter["class"]["code"] == "VR" and encounter["status"] == "planned"
    # the act is a declared encounter: the colleague reads Léa's record while it is open
    rows = relations_from({**encounter, "id": "act"})
    actors = {r.actor for r in rows}
    assert {"Practitioner/gp", "Practitioner/dermato", "Organization/cabinet"} <= actors
    assert all(r.kind == "encounter" and r.expires_us is None for r in rows)
    dermato = Principal("practitioner", "Practitioner/dermato", profession="10")
    photo = Target("DocumentReference", "lea", categories=frozenset({"10"}))
    assert decide(dermato, "read", photo, [Relation("encounter")]).allowed
    assert not decide(dermato, "read", photo, []).allowed

    view = tele.view_expertise({**task, "id": "t1", "encounter": {"reference": "Encounter/act"}})
    assert view.waiting and view.state_label == "En attente de réponse" and view.priority == "Urgente"
    assert view.patient == "Léa DURAND" and view.expert == "Dr Hélène GARNIER"
    assert view.question == "Lésion pigmentée : exérèse ?" and view.encounter_id == "act"
    assert view.answered == "" and view.answer == ""


def test_an_answer_closes_the_act_and_a_refusal_cancels_it() -> None:
    task, encounter = tele.expertise_resources(
        patient=LEA, requester=GP, expert=DERMATO, request=request(), now_us=NOW, encounter_ref="urn:uuid:a"
    )
    later = NOW + 3_600_000_000
    answered, act = tele.answer_expertise(task, encounter, " Exérèse conseillée. ", later)
    assert answered["status"] == "completed"
    assert answered["output"] == [{"type": {"text": "Avis"}, "valueString": "Exérèse conseillée."}]
    assert act is not None and act["status"] == "finished" and act["period"]["end"]
    # finished, the relation lasts the usual time after the act, then ends
    (row, *_) = relations_from({**act, "id": "a"})
    assert row.expires_us is not None and row.expires_us > later
    view = tele.view_expertise(answered)
    assert not view.waiting and view.state_label == "Avis rendu" and view.answer == "Exérèse conseillée."
    assert view.answered

    declined, cancelled = tele.answer_expertise(task, encounter, "Hors de mon domaine.", later, decline=True)
    assert declined["status"] == "rejected" and declined["statusReason"]["text"] == "Hors de mon domaine."
    assert cancelled is not None and relations_from({**cancelled, "id": "a"}) == []
    assert tele.view_expertise(declined).answer == "Hors de mon domaine."
    assert tele.check_answer("", decline=True) == "Expliquez pourquoi vous déclinez la demande."
    assert tele.check_answer("ok", decline=False) is None


def test_a_teleconsultation_is_in_the_future_with_a_duration_from_the_list() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
    draft, errors = tele.parse_teleconsultation(
        {"date": "2026-03-03", "heure": "10:30", "duree": "20", "motif": "  Suivi  de tension "}, now
    )
    assert draft is not None and not errors
    assert draft.start == datetime(2026, 3, 3, 10, 30, tzinfo=PARIS)
    assert draft.end - draft.start == timedelta(minutes=20) and draft.reason == "Suivi de tension"
    _, errors = tele.parse_teleconsultation({"date": "2026-03-01", "heure": "10:30", "duree": "20"}, now)
    assert errors == {"date": "La téléconsultation doit avoir lieu dans le futur."}
    _, errors = tele.parse_teleconsultation({"date": "03/03/2026", "heure": "", "duree": "17"}, now)
    assert set(errors) == {"date", "heure", "duree"}
    _, errors = tele.parse_teleconsultation({"date": "2028-03-03", "heure": "10:00", "duree": "15"}, now)
    assert "dans l’année" in errors["date"]


def test_each_teleconsultation_has_its_own_room_shown_in_both_agendas() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
    draft, _ = tele.parse_teleconsultation({"date": "2026-03-03", "heure": "10:30", "duree": "20"}, now)
    assert draft is not None
    first, second = (
        tele.room_link("https://visio.example/salle/"),
        tele.room_link("https://visio.example/salle"),
    )
    assert first.startswith("https://visio.example/salle/") and first != second
    assert tele.room_link("https://visio.example", "abc") == "https://visio.example/abc"
    appointment = {
        **tele.teleconsultation(patient=LEA, practitioner=GP, draft=draft, link=first, now_us=NOW),
        "id": "rdv",
    }
    assert appointment["status"] == "booked" and appointment["minutesDuration"] == 20
    assert first in appointment["patientInstruction"]
    assert video_link(appointment) == first
    # the patient's agenda: with the professional, and the link
    (event,) = appointment_events([appointment], {})
    assert event.title == "Téléconsultation avec Dr Paul BERNARD" and event.video == first
    # the professional's: with the patient, by day, the soonest first, past ones left out
    consultation = tele.view_consultation(appointment, {})
    assert consultation is not None and consultation.patient == "Léa DURAND"
    assert consultation.hours == "10h30 – 10h50"
    earlier = {
        **appointment,
        "id": "rdv0",
        "start": "2026-03-02T08:00:00+01:00",
        "end": "2026-03-02T08:20:00+01:00",
    }
    past = tele.view_consultation(earlier, {})
    assert past is not None
    today_later = tele.view_consultation(
        {**appointment, "id": "rdv1", "start": "2026-03-02T17:00:00+01:00"}, {}
    )
    assert today_later is not None
    days = tele.consultation_days([consultation, past, today_later], now)
    assert [label for label, _ in days] == ["Aujourd’hui, lundi 2 mars 2026", "Demain, mardi 3 mars 2026"]
    assert [c.id for c in days[0][1]] == ["rdv1"]


def test_only_a_web_address_is_a_video_link() -> None:
    for value in ("javascript:alert(1)", "data:text/html,x", "https://a b", 42):
        assert video_link({"extension": [{"url": VIDEO_LINK_URL, "valueUrl": value}]}) == ""
    assert video_link({}) == ""
    assert tele.view_consultation({"start": "2026-03-03T10:00:00Z"}, {}) is None  # no room
