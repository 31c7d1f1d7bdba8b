"""The French vaccination schedule: which doses are done, late, due now or soon, for one person.

The schedule is data (``vaccination.json`` beside this module, after the *calendrier des
vaccinations et recommandations vaccinales 2025*): the vaccines with the antigens they cover
(matched on their ATC or CVX codes), and series of doses with the ages they are due at.
:func:`due` is pure: from a birth date, the person's ``Immunization`` resources and a day, it
says for each dose of each series that applies to them

* ``done`` — a matching dose was given (``given`` says when);
* ``overdue`` — the recommended window has passed and catching up is still recommended;
* ``due`` — the window is open now (a campaign under way, an age reached);
* ``due-soon`` — the window opens within ``soon_days``;
* ``upcoming`` — the next dose of a series, later but within ``horizon_days``.

Three kinds of series:

* ``doses`` — a primary series: dose *k* is done once *k* matching doses were given (within the
  series' counting ages); a missing dose is no longer asked for after ``catch_up_until``;
* ``boosters`` — reminders at fixed ages (dTP at 25, 45, 65, then every 10 years): a dose given
  from a milestone's ``counts_from`` age satisfies it; a missed milestone is dropped once the next
  one's window opens (the schedule resumes at the next fixed age);
* ``seasonal`` — one dose per campaign (influenza, COVID-19) from an age.

Simplifications (said in the guide): intervals between doses are not checked, risk groups and
pregnancy are not modelled, catch-up schedules are those of the routine doses.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.resources import files
from typing import Any, Literal

import orjson

__all__ = [
    "ATC_SYSTEMS",
    "CVX_SYSTEM",
    "Due",
    "DueStatus",
    "Schedule",
    "Vaccine",
    "add_months",
    "due",
    "schedule",
]

ATC_SYSTEMS = ("https://smt.esante.gouv.fr/terminologie-atc", "http://www.whocc.no/atc")
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"
DueStatus = Literal["done", "overdue", "due", "due-soon", "upcoming"]
_ORDER: dict[str, int] = {"overdue": 0, "due": 1, "due-soon": 2, "upcoming": 3, "done": 4}


@dataclass(frozen=True, slots=True)
class Due:
    """One dose of the schedule for one person, and where it stands."""

    series: str  # the series' key ("dtp-rappels")
    label: str  # the series, in French ("Diphtérie, tétanos, poliomyélite (rappels)")
    dose: str  # the dose, in French ("Rappel de 45 ans (dTP)", "Saison 2025-2026")
    status: DueStatus
    start: date  # recommended from
    end: date | None  # recommended until (None: no end)
    given: date | None = None  # when the matching dose was given (done only)


@dataclass(frozen=True, slots=True)
class Vaccine:
    """A vaccine product family: its label, the antigens it covers, its (system, code) pairs."""

    key: str
    label: str
    antigens: frozenset[str]
    codes: tuple[tuple[str, str], ...]

    def codeable(self) -> dict[str, Any]:
        """``Immunization.vaccineCode`` for this vaccine (ATC first, then CVX), French text."""
        return {"coding": [{"system": s, "code": c} for s, c in self.codes], "text": self.label}


@dataclass(frozen=True, slots=True)
class _Dose:
    label: str
    start: int  # months of age
    end: int
    counts_from: int | None = None


@dataclass(frozen=True, slots=True)
class _Series:
    key: str
    label: str
    kind: Literal["doses", "boosters", "seasonal"]
    antigens: frozenset[str]
    doses: tuple[_Dose, ...]
    count_from: int | None
    count_until: int | None
    catch_up_until: int | None
    born_from: date | None
    born_before: date | None
    from_age: int  # seasonal: the age from which the campaign applies
    campaign: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None  # start, end, counts_from


@dataclass(frozen=True, slots=True)
class Schedule:
    source: str
    vaccines: tuple[Vaccine, ...]
    series: tuple[_Series, ...]

    def vaccine(self, key: str) -> Vaccine | None:
        return next((v for v in self.vaccines if v.key == key), None)

    def antigens_of(self, immunization: Mapping[str, Any]) -> frozenset[str]:
        """The antigens an Immunization's ``vaccineCode`` covers (empty if no code is known)."""
        codings = (immunization.get("vaccineCode") or {}).get("coding") or []
        pairs = {(str(c.get("system", "")), str(c.get("code", ""))) for c in codings if isinstance(c, dict)}
        covered: set[str] = set()
        for vaccine in self.vaccines:
            if pairs & set(vaccine.codes):
                covered |= vaccine.antigens
        return frozenset(covered)


def _system(name: str) -> str:
    return {"atc": ATC_SYSTEMS[0], "cvx": CVX_SYSTEM}[name]


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def _parse(data: Mapping[str, Any]) -> Schedule:
    vaccines = []
    for entry in data["vaccines"]:
        codes: list[tuple[str, str]] = []
        for system, code in entry["codes"]:
            codes.append((_system(system), str(code)))
            if system == "atc":  # the WHO's own ATC system is accepted too
                codes.append((ATC_SYSTEMS[1], str(code)))
        key = next(c for s, c in entry["codes"] if s == "atc")
        vaccines.append(Vaccine(key, entry["label"], frozenset(entry["antigens"]), tuple(codes)))
    series = []
    for entry in data["series"]:
        doses = [
            _Dose(d["label"], int(d["from"]), int(d["to"]), d.get("counts_from"))
            for d in entry.get("doses", [])
        ]
        repeat = entry.get("repeat_every")
        if repeat and doses:
            age = doses[-1].start + int(repeat)
            while age <= int(entry["repeat_until"]):
                label = str(entry["repeat_label"]).format(age=age // 12)
                doses.append(_Dose(label, age, age + 12, age - 24))
                age += int(repeat)
        campaign = entry.get("campaign")
        series.append(
            _Series(
                key=entry["key"],
                label=entry["label"],
                kind=entry["kind"],
                antigens=frozenset(entry["antigens"]),
                doses=tuple(doses),
                count_from=entry.get("count_from"),
                count_until=entry.get("count_until"),
                catch_up_until=entry.get("catch_up_until"),
                born_from=date.fromisoformat(entry["born_from"]) if entry.get("born_from") else None,
                born_before=date.fromisoformat(entry["born_before"]) if entry.get("born_before") else None,
                from_age=int(entry.get("from", 0)),
                campaign=(
                    (
                        _month_day(campaign["start"]),
                        _month_day(campaign["end"]),
                        _month_day(campaign["counts_from"]),
                    )
                    if campaign
                    else None
                ),
            )
        )
    return Schedule(str(data.get("source", "")), tuple(vaccines), tuple(series))


@functools.cache
def schedule() -> Schedule:
    """The schedule shipped beside this module."""
    return _parse(orjson.loads(files("hygie.domain.ens").joinpath("vaccination.json").read_bytes()))


def add_months(day: date, months: int) -> date:
    """``day`` plus a number of calendar months (the 31st becomes the month's last day)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _occurrence(immunization: Mapping[str, Any]) -> date | None:
    """The day a dose was given (partial dates: the first day); None when unknown."""
    when = immunization.get("occurrenceDateTime")
    if not isinstance(when, str) or len(when) < 4:
        return None
    try:
        if len(when) == 4:
            return date(int(when), 1, 1)
        if len(when) == 7:
            return date(int(when[:4]), int(when[5:7]), 1)
        return date.fromisoformat(when[:10])
    except ValueError:
        return None


def _given(immunizations: Iterable[Mapping[str, Any]], plan: Schedule) -> list[tuple[date, frozenset[str]]]:
    """(day, antigens) of every dose given, oldest first."""
    out = []
    for imm in immunizations:
        if imm.get("status", "completed") != "completed":
            continue  # not-done, entered-in-error
        day = _occurrence(imm)
        antigens = plan.antigens_of(imm)
        if day is not None and antigens:
            out.append((day, antigens))
    return sorted(out, key=lambda g: g[0])


def _status(on: date, start: date, end: date, soon: timedelta) -> DueStatus:
    if on > end:
        return "overdue"
    if on >= start:
        return "due"
    if on >= start - soon:
        return "due-soon"
    return "upcoming"


def due(
    birth_date: date,
    immunizations: Sequence[Mapping[str, Any]],
    on: date,
    *,
    soon_days: int = 90,
    horizon_days: int = 730,
    plan: Schedule | None = None,
) -> list[Due]:
    """Where each dose of the schedule stands for a person born on ``birth_date`` on ``on``.

    Sorted: overdue, due, due soon, upcoming (each by date), then done (most recent first)."""
    plan = plan or schedule()
    given = _given(immunizations, plan)
    soon = timedelta(days=soon_days)
    horizon = on + timedelta(days=horizon_days)
    out: list[Due] = []
    for series in plan.series:
        if series.born_from and birth_date < series.born_from:
            continue
        if series.born_before and birth_date >= series.born_before:
            continue
        matching = [day for day, antigens in given if series.antigens <= antigens and day >= birth_date]
        if series.kind == "doses":
            out.extend(_doses(series, birth_date, matching, on, soon, horizon))
        elif series.kind == "boosters":
            out.extend(_boosters(series, birth_date, matching, on, soon, horizon))
        else:
            out.extend(_seasonal(series, birth_date, matching, on, soon, horizon))
    pending = sorted((d for d in out if d.status != "done"), key=lambda d: (_ORDER[d.status], d.start))
    done = sorted((d for d in out if d.status == "done"), key=lambda d: d.given or d.start, reverse=True)
    return pending + done


def _doses(
    series: _Series, birth: date, matching: list[date], on: date, soon: timedelta, horizon: date
) -> list[Due]:
    lower = add_months(birth, series.count_from) if series.count_from is not None else birth
    upper = add_months(birth, series.count_until) if series.count_until is not None else None
    counted = [d for d in matching if d >= lower and (upper is None or d < upper)]
    catch_up_end = add_months(birth, series.catch_up_until) if series.catch_up_until is not None else None
    out = []
    for k, dose in enumerate(series.doses):
        start, end = add_months(birth, dose.start), add_months(birth, dose.end)
        if k < len(counted):
            out.append(Due(series.key, series.label, dose.label, "done", start, end, counted[k]))
            continue
        if catch_up_end is not None and on >= catch_up_end:
            continue  # no longer recommended at this age
        status = _status(on, start, end, soon)
        if status in ("overdue", "due"):
            out.append(Due(series.key, series.label, dose.label, status, start, end))
            continue
        if start <= horizon:
            out.append(Due(series.key, series.label, dose.label, status, start, end))
        break  # only the next dose to come
    return out


def _boosters(
    series: _Series, birth: date, matching: list[date], on: date, soon: timedelta, horizon: date
) -> list[Due]:
    out = []
    milestones = series.doses
    for k, dose in enumerate(milestones):
        start, end = add_months(birth, dose.start), add_months(birth, dose.end)
        opens = add_months(birth, dose.counts_from if dose.counts_from is not None else dose.start)
        following = milestones[k + 1] if k + 1 < len(milestones) else None
        closes = (
            add_months(birth, following.counts_from if following.counts_from is not None else following.start)
            if following
            else None
        )
        hit = next((d for d in matching if d >= opens and (closes is None or d < closes)), None)
        if hit is not None:
            out.append(Due(series.key, series.label, dose.label, "done", start, end, hit))
            continue
        if closes is not None and on >= closes:
            continue  # missed, and the next fixed age has come: the schedule resumes there
        status = _status(on, start, end, soon)
        if status in ("overdue", "due") or start <= horizon:
            out.append(Due(series.key, series.label, dose.label, status, start, end))
        if status not in ("overdue", "due"):
            break  # only the next reminder to come
    return out


def _seasonal(
    series: _Series, birth: date, matching: list[date], on: date, soon: timedelta, horizon: date
) -> list[Due]:
    assert series.campaign is not None
    (sm, sd), (em, ed), (cm, cd) = series.campaign
    year = on.year if (on.month, on.day) >= (cm, cd) else on.year - 1
    if on > date(year + 1, em, ed):
        year += 1  # this season's campaign is over: the next one
    start, end = date(year, sm, sd), date(year + 1, em, ed)
    if add_months(birth, series.from_age) > end:
        return []  # not of age for this campaign
    label = f"Saison {year}-{year + 1}"
    hit = next((d for d in matching if date(year, cm, cd) <= d < date(year + 1, cm, cd)), None)
    if hit is not None:
        return [Due(series.key, series.label, label, "done", start, end, hit)]
    status = _status(on, start, end, soon)
    if status == "overdue":
        return []  # the campaign is over (cannot happen: the next one is chosen above)
    if status == "upcoming" and start > horizon:
        return []
    return [Due(series.key, series.label, label, status, start, end)]
