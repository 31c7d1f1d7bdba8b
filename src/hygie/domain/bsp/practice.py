"""A professional's practice indicators ("Mon activité"), in FHIR terms, framework-free.

What the roadmap asks a practice view to show — my patients, the documents I deposited, my
messages, my prescriptions, the renewal requests I answered — is counted from the resources
themselves, whichever page or software wrote them:

* **patients**: the records open to me (a ``Patient`` search as myself: the access policy decides
  who they are), and among them those where I am the *médecin traitant*
  (``Patient.generalPractitioner``), in the care team (``CareTeam.participant``) or in a
  consultation (``Encounter.participant``, a declared care relation included);
* per month, for the last twelve months: ``DocumentReference`` whose ``author`` is me (by its
  ``date``, when it was filed), ``Communication`` whose ``sender`` / ``recipient`` is me (by
  ``sent``), ``MedicationRequest`` whose ``requester`` is me (by ``authoredOn``; one line of a
  prescription each), and renewal requests (``Task`` of code ``renew-prescription``) I own and
  answered — completed or refused — by ``lastModified``.

Every count is a ``_summary=count`` search made as the professional: the store counts under the
caller's restriction, so nothing the policy hides is counted and no resource is read. This module
only says *what* to ask (:func:`month_criteria`, :data:`MONTHLY`) and how to say the answer
(:func:`chart_summary`); ``web/bsp/practice.py`` asks it through the door.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from hygie.domain.ens.prescriptions import OPEN_TASK_STATUSES, RENEWAL_CODE
from hygie.domain.french import FRENCH_MONTHS

__all__ = [
    "MONTHLY",
    "MONTHS",
    "OPEN_RENEWALS",
    "PARIS",
    "RELATIONS",
    "Indicator",
    "Month",
    "Relation",
    "chart_summary",
    "last_months",
    "month_criteria",
]

PARIS: Final = ZoneInfo("Europe/Paris")
MONTHS: Final = 12  # the window of the monthly indicators, the current month included
_RENEWAL: Final = f"{RENEWAL_CODE['system']}|{RENEWAL_CODE['code']}"


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in Paris time: ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """ "mars 2026" """
        return f"{FRENCH_MONTHS[self.start.month - 1]} {self.start.year}"

    @property
    def short(self) -> str:
        """ "03/26", for the chart's axis."""
        return self.start.strftime("%m/%y")


def last_months(now: datetime, count: int = MONTHS) -> list[Month]:
    """The ``count`` calendar months up to the one of ``now`` (Paris time), oldest first."""
    local = now.astimezone(PARIS)
    year, month = local.year, local.month
    out: list[Month] = []
    for _ in range(count):
        start = datetime(year, month, 1, tzinfo=PARIS)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=PARIS)
        out.append(Month(start, following))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One monthly count: resources of ``resource_type`` where ``who`` is me, dated by ``when``."""

    key: str
    label: str  # the table's column, the chart's series
    resource_type: str
    who: str  # the search parameter naming me
    when: str  # the date search parameter the month applies to
    nothing: str  # "aucun document déposé", for the chart's text alternative
    extra: tuple[tuple[str, str], ...] = ()


MONTHLY: Final[tuple[Indicator, ...]] = (
    Indicator(
        "documents",
        "Documents déposés",
        "DocumentReference",
        "author",
        "date",
        "aucun document déposé",
        (("status:not", "entered-in-error"),),
    ),
    Indicator(
        "envoyes",
        "Messages envoyés",
        "Communication",
        "sender",
        "sent",
        "aucun message envoyé",
        (("status:not", "entered-in-error"),),
    ),
    Indicator(
        "recus",
        "Messages reçus",
        "Communication",
        "recipient",
        "sent",
        "aucun message reçu",
        (("status:not", "entered-in-error"),),
    ),
    Indicator(
        "prescriptions",
        "Lignes de prescription",
        "MedicationRequest",
        "requester",
        "authoredon",
        "aucune ligne de prescription",
        (("status:not", "entered-in-error"), ("status:not", "draft")),
    ),
    Indicator(
        "renouvellements",
        "Renouvellements traités",
        "Task",
        "owner",
        "modified",
        "aucun renouvellement traité",
        (("code", _RENEWAL), ("status", "completed,rejected")),
    ),
)

# the renewal requests still waiting for me (any date)
OPEN_RENEWALS: Final = (("code", _RENEWAL), ("status", ",".join(sorted(OPEN_TASK_STATUSES))))


@dataclass(frozen=True, slots=True)
class Relation:
    """A kind of care relation, counted as the patients whose record it concerns."""

    key: str
    label: str
    criterion: str  # a Patient search parameter naming me


RELATIONS: Final[tuple[Relation, ...]] = (
    Relation("traitant", "vous êtes leur médecin traitant", "general-practitioner"),
    Relation("equipe", "vous êtes dans leur équipe de soins", "_has:CareTeam:subject:participant"),
    Relation("consultation", "vous les avez reçus en consultation", "_has:Encounter:subject:participant"),
)


def month_criteria(indicator: Indicator, me: str, month: Month) -> list[tuple[str, str]]:
    """The ``_summary=count`` search of one indicator for one month."""
    return [
        (indicator.who, me),
        (indicator.when, f"ge{month.start.isoformat()}"),
        (indicator.when, f"lt{month.end.isoformat()}"),
        *indicator.extra,
        ("_summary", "count"),
    ]


def chart_summary(months: Sequence[Month], counts: Mapping[str, Sequence[int]]) -> str:
    """The chart's text alternative: each indicator's total over the window and its busiest month
    (the table under the chart has every number)."""
    if not months:
        return "Aucune période."
    parts = []
    for indicator in MONTHLY:
        series = list(counts.get(indicator.key, ()))
        total = sum(series)
        if total == 0:
            parts.append(indicator.nothing)
            continue
        peak = max(range(len(series)), key=lambda i: (series[i], i))
        parts.append(f"{indicator.label.lower()} : {total}, dont {series[peak]} en {months[peak].label}")
    return (
        f"Activité par mois de {months[0].label} à {months[-1].label} : {' ; '.join(parts)}. "
        "Le détail de chaque mois est dans le tableau qui suit."
    )
