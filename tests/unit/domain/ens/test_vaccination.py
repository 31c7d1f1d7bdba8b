"""The French vaccination schedule as data, and where a person's doses stand (``due``)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from hygie.domain.ens.vaccination import ATC_SYSTEMS, CVX_SYSTEM, Due, add_months, due, schedule

ATC = ATC_SYSTEMS[0]


def shot(day: str, atc: str, *, status: str = "completed", system: str = ATC) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "status": status,
        "vaccineCode": {"coding": [{"system": system, "code": atc}]},
        "patient": {"reference": "Patient/p"},
        "occurrenceDateTime": day,
    }


def by(items: list[Due], series: str) -> list[tuple[str, str]]:
    return [(d.dose, d.status) for d in items if d.series == series]


def statuses(items: list[Due], series: str) -> list[str]:
    return [d.status for d in sorted((d for d in items if d.series == series), key=lambda d: d.start)]


# --------------------------------------------------------------------------- the data
def test_the_schedule_is_data_with_the_main_vaccines() -> None:
    plan = schedule()
    keys = {s.key for s in plan.series}
    assert {
        "dtcap-nourrisson",
        "hib",
        "hepatite-b",
        "pneumocoque-nourrisson",
        "meningocoque-c",
        "meningocoque-b",
        "ror",
        "hpv",
        "dtp-rappels",
        "grippe",
        "covid",
        "zona",
    } <= keys
    assert "2025" in plan.source
    # the hexavalent vaccine covers six diseases in four antigen groups
    hexa = plan.vaccine("J07CA09")
    assert hexa is not None and hexa.antigens == {"dtp", "coqueluche", "hib", "hepb"}
    # every series is reachable by at least one vaccine of the list
    for series in plan.series:
        assert any(series.antigens <= v.antigens for v in plan.vaccines), series.key


def test_codes_match_on_atc_and_cvx() -> None:
    plan = schedule()
    assert plan.antigens_of(shot("2020-01-01", "J07BD52")) == {"ror"}
    assert plan.antigens_of(shot("2020-01-01", "03", system=CVX_SYSTEM)) == {"ror"}
    assert plan.antigens_of(shot("2020-01-01", "J07BD52", system="http://www.whocc.no/atc")) == {"ror"}
    assert plan.antigens_of(shot("2020-01-01", "J07BD52", system="http://example.org")) == frozenset()
    assert plan.antigens_of({"vaccineCode": {"text": "un vaccin"}}) == frozenset()


def test_add_months_keeps_to_the_calendar() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(1985, 4, 12), 12 * 45) == date(2030, 4, 12)
    assert add_months(date(2025, 11, 15), 2) == date(2026, 1, 15)


# --------------------------------------------------------------------------- infants
def test_a_newborn_has_the_first_doses_coming() -> None:
    birth = date(2025, 9, 1)
    items = due(birth, [], date(2025, 9, 20))
    # the 2-month doses open on 1 November: due soon (within 90 days)
    assert by(items, "dtcap-nourrisson") == [("1re dose, à 2 mois", "due-soon")]
    assert by(items, "pneumocoque-nourrisson") == [("1re dose, à 2 mois", "due-soon")]
    assert by(items, "meningocoque-b") == [("1re dose, à 3 mois", "due-soon")]
    # born in 2025: ACWY for infants, not the former C
    assert by(items, "meningocoque-acwy-nourrisson") == [("1re dose, à 6 mois", "upcoming")]
    assert by(items, "meningocoque-c") == []
    # nothing is late, nothing is done
    assert all(d.status in ("due-soon", "upcoming") for d in items)
    first = next(d for d in items if d.series == "dtcap-nourrisson")
    assert (first.start, first.end) == (date(2025, 11, 1), date(2025, 12, 1))


def test_a_hexavalent_dose_counts_for_three_series_and_late_doses_are_overdue() -> None:
    birth = date(2025, 1, 10)
    history = [shot("2025-03-12", "J07CA09")]  # only the 2-month dose
    items = due(birth, history, date(2025, 7, 1))
    for series in ("dtcap-nourrisson", "hib", "hepatite-b"):
        assert statuses(items, series)[:2] == ["done", "overdue"], series
    done = next(d for d in items if d.series == "hib" and d.status == "done")
    assert done.given == date(2025, 3, 12)
    # the pneumococcal vaccine was not given at all: two doses late
    assert statuses(items, "pneumocoque-nourrisson")[:2] == ["overdue", "overdue"]
    # late things come first
    assert items[0].status == "overdue"


def test_catch_up_ends_at_the_age_the_schedule_says() -> None:
    birth = date(2021, 1, 1)
    items = due(birth, [], date(2024, 6, 1))  # 3 and a half, never vaccinated
    # pneumococcus and meningococci are caught up until 2 years only
    assert by(items, "pneumocoque-nourrisson") == []
    assert by(items, "meningocoque-b") == []
    assert by(items, "meningocoque-c") == []
    # but DTCaP (until 6), Hib (until 5), hepatitis B and MMR are still to catch up
    assert statuses(items, "dtcap-nourrisson") == ["overdue"] * 3
    assert statuses(items, "hib") == ["overdue"] * 3
    assert statuses(items, "ror") == ["overdue", "overdue"]


def test_two_mmr_doses_complete_the_series() -> None:
    birth = date(2019, 5, 2)
    history = [shot("2020-05-10", "J07BD52"), shot("2020-09-15", "03", system=CVX_SYSTEM)]
    items = due(birth, history, date(2026, 1, 1))
    assert statuses(items, "ror") == ["done", "done"]


def test_not_done_and_entered_in_error_doses_do_not_count() -> None:
    birth = date(2019, 5, 2)
    history = [
        shot("2020-05-10", "J07BD52", status="not-done"),
        shot("2020-09-15", "J07BD52", status="entered-in-error"),
    ]
    assert statuses(due(birth, history, date(2026, 1, 1)), "ror") == ["overdue", "overdue"]


# --------------------------------------------------------------------------- adolescents
def test_an_adolescent_gets_hpv_acwy_and_the_11_year_booster() -> None:
    birth = date(2013, 3, 1)
    history = [
        shot("2013-05-02", "J07CA09"),
        shot("2013-07-02", "J07CA09"),
        shot("2014-02-02", "J07CA09"),
        shot("2019-03-05", "J07CA02"),  # the 6-year booster
    ]
    items = due(birth, history, date(2025, 6, 1))  # 12 years old
    assert by(items, "dtp-rappels")[:2] == [
        ("Rappel de 11 à 13 ans (dTcaP)", "due"),
        ("Rappel de 6 ans (DTCaP)", "done"),
    ]
    assert by(items, "hpv")[0] == ("1re dose, entre 11 et 14 ans", "due")
    assert by(items, "meningocoque-acwy-adolescent") == [("Une dose, entre 11 et 14 ans", "due")]
    # the infant doses are done
    assert statuses(items, "dtcap-nourrisson") == ["done"] * 3


def test_hpv_catch_up_until_26() -> None:
    assert statuses(due(date(2000, 1, 1), [], date(2025, 6, 1)), "hpv") == ["overdue", "overdue"]
    assert statuses(due(date(1995, 1, 1), [], date(2025, 6, 1)), "hpv") == []


# --------------------------------------------------------------------------- adults: boosters
def test_the_25_45_65_boosters_then_every_ten_years() -> None:
    birth = date(1985, 4, 12)
    history = [shot("2010-06-01", "J07CA02")]  # dTcaP at 25
    items = due(birth, history, date(2026, 1, 10))  # 40 years old
    rows = by(items, "dtp-rappels")
    assert ("Rappel de 25 ans (dTcaP)", "done") in rows
    # the 45-year booster is more than two years away: beyond the default horizon
    assert not any(d.status != "done" for d in items if d.series == "dtp-rappels")
    later = due(birth, history, date(2026, 1, 10), horizon_days=6 * 365)
    upcoming = [d for d in later if d.series == "dtp-rappels" and d.status == "upcoming"]
    assert [(d.dose, d.start) for d in upcoming] == [("Rappel de 45 ans (dTP)", date(2030, 4, 12))]


def test_a_missed_booster_is_overdue_until_the_next_fixed_age() -> None:
    birth = date(1975, 2, 1)
    # no booster since 25: at 50 the 45-year booster is overdue
    items = due(birth, [shot("2000-03-01", "J07CA02")], date(2025, 6, 1))
    assert ("Rappel de 45 ans (dTP)", "overdue") in by(items, "dtp-rappels")
    # done late, at 47: it counts for 45, and 65 is the next one
    items = due(birth, [shot("2000-03-01", "J07CA02"), shot("2022-05-01", "J07CA01")], date(2025, 6, 1))
    assert ("Rappel de 45 ans (dTP)", "done") in by(items, "dtp-rappels")
    assert not any(d.status == "overdue" for d in items if d.series == "dtp-rappels")


def test_after_65_the_boosters_come_every_ten_years() -> None:
    birth = date(1950, 1, 1)
    history = [shot("2015-02-01", "J07CA01")]  # at 65
    items = due(birth, history, date(2025, 3, 1))  # 75 years and 2 months
    rows = by(items, "dtp-rappels")
    assert ("Rappel de 65 ans (dTP)", "done") in rows
    assert ("Rappel de 75 ans (dTP)", "due") in rows
    # a year later, still not done: late
    assert ("Rappel de 75 ans (dTP)", "overdue") in by(due(birth, history, date(2026, 3, 1)), "dtp-rappels")
    # the 45-year booster was missed long ago: dropped, not listed as late
    assert not any(dose == "Rappel de 45 ans (dTP)" for dose, _ in rows)


# --------------------------------------------------------------------------- from 65
def test_influenza_and_covid_each_season_from_65() -> None:
    birth = date(1948, 3, 2)
    # in the campaign, nothing yet this season (last year's dose does not count)
    items = due(birth, [shot("2024-11-02", "J07BB02")], date(2025, 11, 20))
    assert by(items, "grippe") == [("Saison 2025-2026", "due")]
    assert by(items, "covid") == [("Saison 2025-2026", "due")]
    # vaccinated in October: done for this season
    items = due(birth, [shot("2025-10-20", "J07BB02"), shot("2025-10-20", "J07BN01")], date(2025, 12, 1))
    assert by(items, "grippe") == [("Saison 2025-2026", "done")]
    assert by(items, "covid") == [("Saison 2025-2026", "done")]
    # in September the campaign is due soon; in March the next one is upcoming
    assert by(due(birth, [], date(2025, 9, 10)), "grippe") == [("Saison 2025-2026", "due-soon")]
    assert by(due(birth, [], date(2026, 3, 10)), "grippe") == [("Saison 2026-2027", "upcoming")]


def test_seasonal_vaccines_start_the_season_one_turns_65() -> None:
    assert by(due(date(1990, 1, 1), [], date(2025, 11, 1)), "grippe") == []
    # turns 65 in December 2025: the 2025-2026 campaign applies
    assert by(due(date(1960, 12, 10), [], date(2025, 11, 1)), "grippe") == [("Saison 2025-2026", "due")]


def test_shingles_and_pneumococcus_from_65() -> None:
    birth = date(1959, 1, 15)
    items = due(birth, [], date(2023, 12, 1))  # 65 in January: due soon
    assert by(items, "zona") == [("1re dose, à partir de 65 ans", "due-soon")]
    assert by(items, "pneumocoque-adulte") == [("Une dose, à partir de 65 ans", "due-soon")]
    items = due(birth, [shot("2024-02-01", "J07BK03")], date(2024, 3, 20))
    assert by(items, "zona") == [
        ("2e dose, 2 mois après la 1re", "due"),
        ("1re dose, à partir de 65 ans", "done"),
    ]
    # the infant pneumococcal doses never count for the adult dose
    infant = [shot("1959-04-01", "J07AL02")]
    assert by(due(birth, infant, date(2025, 6, 1)), "pneumocoque-adulte")[0][1] == "overdue"


# --------------------------------------------------------------------------- robustness
def test_partial_dates_and_unknown_vaccines_are_handled() -> None:
    birth = date(2019, 5, 2)
    history = [
        shot("2020-06", "J07BD52"),
        shot("2021", "J07BD52"),
        shot("not a date", "J07BD52"),
        {"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "BCG"}},
    ]
    assert statuses(due(birth, history, date(2026, 1, 1)), "ror") == ["done", "done"]


def test_the_order_is_late_first_then_done_most_recent_first() -> None:
    birth = date(2013, 3, 1)
    history = [shot("2013-05-02", "J07CA09"), shot("2014-02-02", "J07CA09")]
    items = due(birth, history, date(2025, 6, 1))
    order = [d.status for d in items]
    ranks = {"overdue": 0, "due": 1, "due-soon": 2, "upcoming": 3, "done": 4}
    assert order == sorted(order, key=ranks.__getitem__)
    done = [d.given for d in items if d.status == "done"]
    assert done == sorted(done, reverse=True)  # type: ignore[type-var]


@pytest.mark.parametrize("age_years", [0, 1, 5, 12, 18, 30, 50, 70, 90])
def test_nothing_is_due_before_birth_or_given_before_it(age_years: int) -> None:
    birth = date(2025, 6, 1) if age_years == 0 else date(2025 - age_years, 6, 1)
    on = date(2025, 6, 15)
    items = due(birth, [shot("1900-01-01", "J07BD52")], on)
    assert all(d.start >= birth for d in items)
    assert all(d.status != "done" for d in items)
