"""The agenda's rules: appointments as events, personal entries, screening reminders by age and
last test, the month grid, and the iCalendar feed (parsed back with ``icalendar``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import icalendar

from hygie.domain.ens import calendar as cal

NOW = datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
TODAY = date(2026, 5, 12)


def appointment(id: str, start: str, *, actors: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": id,
        "status": "booked",
        "start": start,
        "end": start.replace("T10:00", "T10:30"),
        "participant": [{"actor": a, "status": "accepted"} for a in actors],
        **extra,
    }


def test_personal_entries_are_checked_in_french() -> None:
    entry, errors = cal.parse_personal(
        {"objet": "", "date": "2026-05-20", "debut": "14:30", "fin": "14:00"}, NOW
    )
    assert entry is None
    assert errors == {
        "objet": "Indiquez l’objet du rendez-vous, par exemple « Dentiste ».",
        "fin": "L’heure de fin doit être après l’heure de début.",
    }
    _, errors = cal.parse_personal({"objet": "x", "date": "2040-01-01", "debut": "9", "fin": ""}, NOW)
    assert set(errors) == {"date", "debut", "fin"}
    _, errors = cal.parse_personal({"objet": "x" * 201, "date": "2026-05-20", "debut": "09:00", "fin": "10:00",
                                    "note": "y" * 1001}, NOW)  # fmt: skip
    assert set(errors) == {"objet", "note"}


def test_a_personal_entry_is_an_appointment_the_person_may_change() -> None:
    entry, _ = cal.parse_personal(
        {"objet": "Dentiste", "date": "2026-05-20", "debut": "14:30", "fin": "15:00", "lieu": "Cabinet"}, NOW
    )
    assert entry is not None
    resource = cal.personal_appointment(entry, "Patient/p", "Claire DUPONT")
    assert resource["start"] == "2026-05-20T14:30:00+02:00" and resource["minutesDuration"] == 30
    assert resource["participant"][0]["actor"] == {"reference": "Patient/p", "display": "Claire DUPONT"}
    assert resource["participant"][1]["actor"] == {"display": "Cabinet"}
    assert cal.is_personal(resource)
    resource["id"] = "a1"
    [event] = cal.appointment_events([resource], {})
    assert event.editable and event.place == "Cabinet" and event.source == "vous"
    assert cal.form_of(event)["debut"] == "14:30"
    # a professional among the participants: not the person's to change, even if tagged
    resource["participant"].append({"actor": {"reference": "Practitioner/d"}, "status": "accepted"})
    assert not cal.is_personal(resource)


def test_appointments_from_professionals_and_apps() -> None:
    events = cal.appointment_events(
        [
            appointment("b", "2026-06-02T10:00:00+02:00", actors=[{"reference": "Patient/p"}]),
            appointment(
                "a",
                "2026-06-01T10:00:00+02:00",
                actors=[{"reference": "Patient/p"}, {"reference": "Practitioner/d"}],
                serviceType=[{"text": "Consultation de cardiologie"}],
            ),
            {"resourceType": "Appointment", "id": "c", "status": "proposed", "participant": []},
        ],
        {"Practitioner/d": "Dr Paul BERNARD"},
    )
    assert [(e.id, e.kind, e.source, e.title) for e in events] == [
        ("a", "professional", "Dr Paul BERNARD", "Consultation de cardiologie"),
        ("b", "app", "une application", "Rendez-vous"),
    ]
    assert not events[0].editable


def test_screening_reminders_follow_age_sex_and_the_last_test() -> None:
    woman_52 = cal.screening_reminders(date(1974, 3, 2), "female", TODAY, {})
    assert [(r.key, r.status) for r in woman_52] == [
        ("depistage-colorectal", "overdue"),
        ("depistage-sein", "overdue"),
        ("depistage-col-uterus", "overdue"),
    ]
    man_52 = cal.screening_reminders(date(1974, 3, 2), "male", TODAY, {})
    assert [r.key for r in man_52] == ["depistage-colorectal"]
    assert cal.screening_reminders(date(1940, 1, 1), "female", TODAY, {}) == []  # over 74
    assert cal.screening_reminders(date(2010, 1, 1), "female", TODAY, {}) == []
    # a test last year: the next one is due next year
    last = cal.last_tests(
        [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "29771-3"}]},
                "effectiveDateTime": "2025-09-01",
            }
        ]
    )
    assert last == {"colorectal": date(2025, 9, 1)}
    [colorectal] = cal.screening_reminders(date(1974, 3, 2), "male", TODAY, last)
    assert colorectal.status == "upcoming" and colorectal.due == date(2027, 9, 1)
    # turning 50 in two months: announced
    [soon] = cal.screening_reminders(date(1976, 7, 1), "male", TODAY, {})
    assert soon.status == "due-soon" and soon.due == date(2026, 7, 1)
    # cervical from 30: every five years after an HPV test
    last = {"col-uterus": date(2024, 1, 10)}
    [cervical] = cal.screening_reminders(date(1990, 1, 1), "female", TODAY, last)
    assert cervical.due == date(2029, 1, 10)


def test_vaccination_reminders_come_from_the_schedule() -> None:
    reminders = cal.vaccination_reminders(date(1974, 3, 2), [], TODAY)
    assert reminders and all(r.kind == "vaccination" for r in reminders)
    assert any("Diphtérie" in r.title for r in reminders)
    assert len({r.key for r in reminders}) == len(reminders)


def test_the_month_grid_starts_on_monday() -> None:
    [event] = cal.appointment_events(
        [appointment("a", "2026-05-20T10:00:00+02:00", actors=[{"reference": "Patient/p"}])], {}
    )
    grid = cal.month_grid(2026, 5, [event], [], TODAY)
    assert grid.title == "Mai 2026" and grid.previous == "2026-04" and grid.following == "2026-06"
    assert all(len(week) == 7 for week in grid.weeks)
    assert grid.weeks[0][0].day is None and grid.weeks[0][4].day == date(2026, 5, 1)  # a Friday
    day = next(d for w in grid.weeks for d in w if d.day == date(2026, 5, 20))
    assert day.events == (event,) and day.label == "mercredi 20 mai"
    assert next(d for w in grid.weeks for d in w if d.today).day == TODAY
    assert cal.parse_month("2026-13", TODAY) == (2026, 5) and cal.parse_month("2027-01", TODAY) == (2027, 1)


def test_the_icalendar_feed_parses_back() -> None:
    events = cal.appointment_events(
        [
            appointment(
                "a",
                "2026-05-20T10:00:00+02:00",
                actors=[
                    {"reference": "Patient/p"},
                    {"reference": "Practitioner/d", "display": "Dr Paul BERNARD"},
                ],
                description="Suivi",
            ),
            appointment(
                "x", "2026-05-21T10:00:00+02:00", actors=[{"reference": "Patient/p"}], status="cancelled"
            ),
        ],
        {},
    )
    reminders = cal.screening_reminders(date(1974, 3, 2), "male", TODAY, {})
    data = cal.icalendar_feed(events, reminders, owner="Claire DUPONT", today=TODAY, now=NOW)
    parsed = icalendar.Calendar.from_ical(data)
    vevents = {str(e["summary"]): e for e in parsed.walk("VEVENT")}
    assert set(vevents) == {"Suivi", "Rendez-vous", "Rappel : Dépistage du cancer colorectal"}
    assert vevents["Suivi"].decoded("dtstart") == datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
    assert "Dr Paul BERNARD" in str(vevents["Suivi"]["description"])
    assert str(vevents["Rendez-vous"]["status"]) == "CANCELLED"
    assert vevents["Rappel : Dépistage du cancer colorectal"].decoded("dtstart") == date(2026, 5, 1)
    assert str(parsed["x-wr-calname"]) == "Espace santé — Claire DUPONT"
