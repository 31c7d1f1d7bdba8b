"""What a prescriber may write, checked before anything is stored — pure, framework-free.

A prescription is a start date, an optional end of validity and its lines; a line names a
medicine of the catalogue (CIP13 or name), a dose per take in the medicine's unit, a number of
takes per day, a duration in days, a number of renewals (*à renouveler N fois*), whether the
pharmacist may substitute a generic, and free-text instructions.

:func:`check_prescription` refuses, each time in plain French with the field at fault (line index
and field name):

* an empty prescription, too many lines, the same medicine on two lines;
* an unknown medicine;
* a dose that is not a positive number, is not a multiple of what the form allows (a tablet
  that is not scored is not halved), or whose daily total exceeds the medicine's maximum;
* a number of takes per day that is not a whole number from 1 to :data:`MAX_TAKES_PER_DAY`;
* a duration outside 1–365 days, renewals outside 0–11, a treatment (duration × (1 + renewals))
  longer than 12 months or than the medicine's regulatory maximum (benzodiazepines);
* a start date before today, an end of validity in the past or before the start.

The quantity of one delivery is what the dose, the frequency and the duration need, rounded up to
whole packs (:meth:`PrescribedLine.packs_per_delivery`). Unless the prescriber gives an end date,
the prescription stays valid for the longer of the treatment and :data:`FIRST_DELIVERY_DAYS`
(the three months within which a first delivery must happen, [P]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from hygie.domain.eprescription.medicines import Catalogue, Medicine, french_number

__all__ = [
    "DEFAULT_NUMBER_SYSTEM",
    "FIRST_DELIVERY_DAYS",
    "MAX_DURATION_DAYS",
    "MAX_LINES",
    "MAX_RENEWALS",
    "MAX_TAKES_PER_DAY",
    "PRESCRIBERS",
    "EPrescriptionConfig",
    "LineRequest",
    "PrescribedLine",
    "Prescription",
    "PrescriptionRefused",
    "Problem",
    "check_prescription",
    "config_from",
]

MAX_LINES: Final = 20
MAX_TAKES_PER_DAY: Final = 12
MAX_DURATION_DAYS: Final = 365
MAX_RENEWALS: Final = 11
MAX_TREATMENT_DAYS: Final = 365  # duration × (1 + renewals): twelve months at most
MAX_START_AHEAD_DAYS: Final = 365
MAX_INSTRUCTIONS: Final = 500
FIRST_DELIVERY_DAYS: Final = 90  # [P] a first delivery within three months of the prescription
# TRE_G15 professions that write medicine prescriptions here: doctors, dentists, midwives
PRESCRIBERS: Final = frozenset({"10", "40", "50"})
# [U] digest §11.7: the FHIR system of the prescription number is not published
DEFAULT_NUMBER_SYSTEM: Final = "https://hygie.esante.example/fhir/NamingSystem/ordonnance-numerique"
_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class EPrescriptionConfig:
    """What is unverified nationally (digest §11.7) and therefore the operator's to set."""

    number_system: str = DEFAULT_NUMBER_SYSTEM
    first_delivery_days: int = FIRST_DELIVERY_DAYS
    prescribers: frozenset[str] = PRESCRIBERS
    # a pharmacist who types numbers that open nothing is stopped after this many per hour
    max_failed_lookups: int = 10


def config_from(env: Mapping[str, str]) -> EPrescriptionConfig:
    """The configuration from ``HYGIE_EPRESCRIPTION_*`` variables (documented in
    ``docs/fhir/eprescription.md``); defaults for those not set."""
    default = EPrescriptionConfig()

    def integer(name: str, fallback: int) -> int:
        raw = env.get(name)
        if not raw:
            return fallback
        try:
            return int(raw)
        except ValueError as exc:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from exc

    professions = env.get("HYGIE_EPRESCRIPTION_PRESCRIBERS")
    return EPrescriptionConfig(
        number_system=env.get("HYGIE_EPRESCRIPTION_NUMBER_SYSTEM") or default.number_system,
        first_delivery_days=integer("HYGIE_EPRESCRIPTION_FIRST_DELIVERY_DAYS", default.first_delivery_days),
        prescribers=frozenset(p.strip() for p in professions.split(",") if p.strip())
        if professions
        else default.prescribers,
        max_failed_lookups=integer("HYGIE_EPRESCRIPTION_MAX_FAILED_LOOKUPS", default.max_failed_lookups),
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """One refusal: ``line`` is the index of the line at fault (None: the prescription itself)."""

    field: str
    message: str
    line: int | None = None


class PrescriptionRefused(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in self.problems))


@dataclass(frozen=True, slots=True)
class LineRequest:
    """One line as received: values not checked yet (None: not given)."""

    medicine: object = None
    dose: object = None
    takes_per_day: object = None
    duration_days: object = None
    renewals: object = 0
    substitution_allowed: object = True
    instructions: object = ""


@dataclass(frozen=True, slots=True)
class PrescribedLine:
    medicine: Medicine
    dose: float  # per take, in the medicine's unit
    takes_per_day: int
    duration_days: int
    renewals: int
    substitution_allowed: bool
    instructions: str

    @property
    def daily_dose(self) -> float:
        return self.dose * self.takes_per_day

    @property
    def treatment_days(self) -> int:
        return self.duration_days * (1 + self.renewals)

    @property
    def packs_per_delivery(self) -> int:
        """Whole packs covering one delivery's duration."""
        needed = self.daily_dose * self.duration_days
        return max(1, math.ceil(needed / self.medicine.pack_size - _TOLERANCE))

    def dosage_text(self) -> str:
        """The posology in French: "1 comprimé 3 fois par jour pendant 5 jours"."""
        takes = "1 fois par jour" if self.takes_per_day == 1 else f"{self.takes_per_day} fois par jour"
        days = "1 jour" if self.duration_days == 1 else f"{self.duration_days} jours"
        text = f"{self.medicine.units(self.dose)} {takes} pendant {days}"
        if self.instructions:
            text += f". {self.instructions[0].upper()}{self.instructions[1:]}"
        return text

    def renewal_text(self) -> str:
        if self.renewals == 0:
            return "Non renouvelable"
        return f"À renouveler {self.renewals} fois"


@dataclass(frozen=True, slots=True)
class Prescription:
    start: date
    end: date  # last day it may be dispensed
    lines: tuple[PrescribedLine, ...] = field(default_factory=tuple)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.replace(",", ".").strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _whole(value: object) -> int | None:
    number = _number(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def _french_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def _check_line(
    index: int, line: LineRequest, catalogue: Catalogue
) -> tuple[PrescribedLine | None, list[Problem]]:
    problems: list[Problem] = []

    def refuse(name: str, message: str) -> None:
        problems.append(Problem(name, message, index))

    medicine = None
    if not isinstance(line.medicine, str) or not line.medicine.strip():
        refuse("medication", "Indiquez le médicament (code CIP13 ou nom exact).")
    else:
        medicine = catalogue.find(line.medicine)
        if medicine is None:
            refuse(
                "medication",
                f"Médicament inconnu : « {line.medicine.strip()} ». Indiquez son code CIP13 ou son nom exact.",
            )
    dose = _number(line.dose)
    takes = _whole(line.takes_per_day)
    if line.takes_per_day is None:
        refuse("takes-per-day", "Indiquez le nombre de prises par jour.")
    elif takes is None or not 1 <= takes <= MAX_TAKES_PER_DAY:
        refuse(
            "takes-per-day",
            f"Le nombre de prises par jour est un nombre entier de 1 à {MAX_TAKES_PER_DAY}.",
        )
        takes = None
    if line.dose is None:
        refuse("dose", "Indiquez la dose par prise.")
    elif dose is None or dose <= 0:
        refuse("dose", "La dose par prise doit être un nombre supérieur à zéro.")
        dose = None
    elif medicine is not None:
        steps = dose / medicine.dose_step
        if abs(steps - round(steps)) > _TOLERANCE:
            what = (
                f"Ce médicament se dose par {french_number(medicine.dose_step)} {medicine.unit}"
                if medicine.dose_step < 1
                else f"Ce médicament ne se fractionne pas : la dose est un nombre entier de {medicine.unit_plural}"
            )
            refuse("dose", f"{what} ({french_number(dose)} demandé).")
            dose = None
        elif dose > medicine.max_daily_dose + _TOLERANCE:
            refuse(
                "dose",
                f"Dose impossible : {medicine.units(dose)} par prise dépasse la dose maximale de "
                f"{medicine.units(medicine.max_daily_dose)} par jour.",
            )
            dose = None
        elif takes is not None and dose * takes > medicine.max_daily_dose + _TOLERANCE:
            refuse(
                "dose",
                f"Dose impossible : {medicine.units(dose * takes)} par jour ({medicine.units(dose)} "
                f"{takes} fois) dépasse la dose maximale de {medicine.units(medicine.max_daily_dose)} par jour.",
            )
            dose = None
    duration = _whole(line.duration_days)
    if line.duration_days is None:
        refuse("duration-days", "Indiquez la durée du traitement en jours.")
    elif duration is None or not 1 <= duration <= MAX_DURATION_DAYS:
        refuse("duration-days", f"La durée est un nombre entier de jours, de 1 à {MAX_DURATION_DAYS}.")
        duration = None
    renewals = _whole(0 if line.renewals is None else line.renewals)
    if renewals is None or not 0 <= renewals <= MAX_RENEWALS:
        refuse("renewals", f"Le nombre de renouvellements est un nombre entier de 0 à {MAX_RENEWALS}.")
        renewals = None
    if duration is not None and renewals is not None:
        total = duration * (1 + renewals)
        if total > MAX_TREATMENT_DAYS:
            refuse(
                "renewals",
                f"Le traitement renouvellements compris ne peut dépasser 12 mois : {duration} jours × "
                f"{1 + renewals} délivrances font {total} jours.",
            )
        elif medicine is not None and medicine.max_treatment_days and total > medicine.max_treatment_days:
            refuse(
                "duration-days" if renewals == 0 else "renewals",
                f"La durée de prescription de ce médicament est limitée à {medicine.max_treatment_days} jours "
                f"({total} jours demandés, renouvellements compris).",
            )
    substitution = _boolean(True if line.substitution_allowed is None else line.substitution_allowed)
    if substitution is None:
        refuse("substitution-allowed", "Indiquez si la substitution est autorisée (vrai ou faux).")
    instructions = "" if line.instructions is None else line.instructions
    if not isinstance(instructions, str):
        refuse("instructions", "Les consignes sont un texte.")
        instructions = ""
    instructions = " ".join(instructions.split())
    if len(instructions) > MAX_INSTRUCTIONS:
        refuse(
            "instructions", f"Les consignes font {MAX_INSTRUCTIONS} caractères au plus ({len(instructions)})."
        )
    if problems or medicine is None or dose is None or takes is None or duration is None or renewals is None:
        return None, problems
    assert substitution is not None
    return PrescribedLine(medicine, dose, takes, duration, renewals, substitution, instructions), []


def check_prescription(
    lines: Sequence[LineRequest],
    *,
    today: date,
    catalogue: Catalogue,
    start: object = None,
    end: object = None,
    first_delivery_days: int = FIRST_DELIVERY_DAYS,
) -> Prescription:
    """The prescription, every line checked; :class:`PrescriptionRefused` lists every problem."""
    problems: list[Problem] = []
    first = today if start is None else _date(start)
    if first is None:
        problems.append(Problem("start", "La date de début n'est pas une date (AAAA-MM-JJ)."))
    elif first < today:
        problems.append(
            Problem(
                "start",
                f"La date de début ({_french_date(first)}) est passée : une ordonnance ne s'antidate pas.",
            )
        )
    elif first > today + timedelta(days=MAX_START_AHEAD_DAYS):
        problems.append(Problem("start", "La date de début est à plus d'un an."))
    last = None if end is None else _date(end)
    if end is not None:
        if last is None:
            problems.append(Problem("end", "La date de fin n'est pas une date (AAAA-MM-JJ)."))
        elif last < today:
            problems.append(Problem("end", f"La date de fin de validité ({_french_date(last)}) est passée."))
        elif first is not None and last < first:
            problems.append(Problem("end", "La date de fin de validité précède la date de début."))
        elif first is not None and last > first + timedelta(days=MAX_TREATMENT_DAYS):
            problems.append(Problem("end", "Une ordonnance est valable un an au plus."))
    if not lines:
        problems.append(Problem("line", "L'ordonnance ne contient aucune ligne."))
    elif len(lines) > MAX_LINES:
        problems.append(Problem("line", f"Une ordonnance compte {MAX_LINES} lignes au plus ({len(lines)})."))
    checked: list[PrescribedLine] = []
    seen: dict[str, int] = {}
    for index, line in enumerate(lines[:MAX_LINES]):
        prescribed, found = _check_line(index, line, catalogue)
        problems.extend(found)
        if prescribed is None:
            continue
        before = seen.setdefault(prescribed.medicine.cip13, index)
        if before != index:
            problems.append(
                Problem(
                    "medication",
                    f"{prescribed.medicine.name} figure déjà à la ligne {before + 1} : une ligne par médicament.",
                    index,
                )
            )
        checked.append(prescribed)
    if problems or first is None:
        raise PrescriptionRefused(problems)
    if last is None:
        longest = max(line.treatment_days for line in checked)
        last = first + timedelta(days=max(first_delivery_days, longest) - 1)
    return Prescription(first, last, tuple(checked))


def line_of(values: Mapping[str, Any]) -> LineRequest:
    """A :class:`LineRequest` from the parts of a ``line`` parameter (names as in the API)."""
    return LineRequest(
        medicine=values.get("medication"),
        dose=values.get("dose"),
        takes_per_day=values.get("takes-per-day"),
        duration_days=values.get("duration-days"),
        renewals=values.get("renewals"),
        substitution_allowed=values.get("substitution-allowed"),
        instructions=values.get("instructions"),
    )
