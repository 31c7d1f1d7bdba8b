"""The person's measures (*mesures*): what they may enter, how, and their personal alert thresholds.

* A measure is an Observation coded in LOINC with a UCUM unit, as the demo data and the national
  "mesures de santé" guide code them (``vital-signs``, ``laboratory`` for blood glucose,
  ``activity`` for steps); blood pressure is the panel 85354-9 with its systolic (8480-6) and
  diastolic (8462-4) components.
* :func:`parse_entry` checks what a person typed (French decimal comma accepted, plausible ranges,
  no date in the future) and :func:`observation` writes it, the person (or the relative acting
  for them) as performer.
* :func:`readings` reads back every series — the person's, their professionals', their apps' and
  devices' — with its source (an app's by its server-set ``meta.source``), converting the few
  other units apps use.
* Personal thresholds are a FHIR ``Goal`` per measure (``target.measure`` + ``detailRange``),
  marked with a local category; :func:`crossings` says which values leave the range.

Pure functions only: the threshold watch (``domain/ens/vitals_watch.py``) and the pages adapt them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from hygie.domain.provenance import app_of, app_source

__all__ = [
    "BP_PANEL",
    "ENS_SYSTEM",
    "MEASURES",
    "PARIS",
    "THRESHOLD_CATEGORY",
    "Crossing",
    "Entry",
    "Field",
    "Measure",
    "Ranges",
    "Reading",
    "Source",
    "crossings",
    "fr_number",
    "french_date",
    "goal",
    "is_threshold_goal",
    "measure_of",
    "observation",
    "parse_decimal",
    "parse_entry",
    "parse_thresholds",
    "readings",
    "search_codes",
    "shown",
    "source_of",
    "summary",
    "thresholds_of",
]

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
# Hygie's own codes for what no standard code system names (the portal's marks)
ENS_SYSTEM: Final = "https://hygie.esante.example/fhir/CodeSystem/ens"
THRESHOLD_CATEGORY: Final = {
    "system": ENS_SYSTEM,
    "code": "alert-thresholds",
    "display": "Seuils d'alerte personnels",
}
BP_PANEL: Final = "85354-9"
PARIS: Final = ZoneInfo("Europe/Paris")
EARLIEST: Final = date(1900, 1, 1)


@dataclass(frozen=True, slots=True)
class Field:
    """One number of a measure (blood pressure has two)."""

    name: str  # form field
    label: str  # "Poids", "Systolique"
    loinc: str
    display: str  # LOINC display for the coding
    low: float
    high: float
    decimals: int  # at most this many digits after the comma
    noun: str  # "Le poids", "La pression systolique" (for messages)


@dataclass(frozen=True, slots=True)
class Measure:
    key: str  # URL segment
    label: str
    loinc: tuple[str, ...]  # the Observation.code codings (all of them are written, any one matches)
    category: Literal["vital-signs", "laboratory", "activity"]
    unit: str  # shown to people
    ucum: str
    fields: tuple[Field, ...]
    hint: str  # one line under the input

    @property
    def panel(self) -> bool:
        return len(self.fields) > 1

    def field(self, loinc: str) -> Field | None:
        return next((f for f in self.fields if f.loinc == loinc), None)


def _one(key: str, label: str, loinc: tuple[str, ...], display: str, category: Any, unit: str, ucum: str,
         low: float, high: float, decimals: int, noun: str, hint: str) -> Measure:  # fmt: skip
    return Measure(
        key, label, loinc, category, unit, ucum,
        (Field("valeur", label, loinc[0], display, low, high, decimals, noun),), hint,
    )  # fmt: skip


MEASURES: Final[dict[str, Measure]] = {
    m.key: m
    for m in (
        _one("poids", "Poids", ("29463-7",), "Body weight", "vital-signs", "kg", "kg",
             0.5, 400, 2, "Le poids", "En kilogrammes, par exemple 72,5"),
        _one("taille", "Taille", ("8302-2",), "Body height", "vital-signs", "cm", "cm",
             20, 260, 1, "La taille", "En centimètres, par exemple 168"),
        Measure(
            "tension", "Tension artérielle", (BP_PANEL,), "vital-signs", "mm Hg", "mm[Hg]",
            (
                Field("systolique", "Systolique (le plus grand chiffre)", "8480-6",
                      "Systolic blood pressure", 50, 260, 0, "La pression systolique"),
                Field("diastolique", "Diastolique (le plus petit chiffre)", "8462-4",
                      "Diastolic blood pressure", 30, 160, 0, "La pression diastolique"),
            ),
            "En millimètres de mercure, par exemple 125 et 80 (12/8)",
        ),
        _one("frequence-cardiaque", "Fréquence cardiaque", ("8867-4",), "Heart rate", "vital-signs",
             "battements/min", "/min", 20, 250, 0, "La fréquence cardiaque",
             "En battements par minute, par exemple 68"),
        _one("glycemie", "Glycémie", ("2339-0",), "Glucose [Mass/volume] in Blood", "laboratory",
             "mg/dL", "mg/dL", 20, 600, 0, "La glycémie", "En milligrammes par décilitre, par exemple 95"),
        _one("temperature", "Température", ("8310-5",), "Body temperature", "vital-signs", "°C", "Cel",
             30, 45, 1, "La température", "En degrés Celsius, par exemple 37,2"),
        _one("saturation", "Saturation en oxygène", ("59408-5", "2708-6"),
             "Oxygen saturation in Arterial blood by Pulse oximetry", "vital-signs", "%", "%",
             50, 100, 0, "La saturation en oxygène", "En pourcentage, par exemple 97"),
        _one("pas", "Nombre de pas", ("41950-7",), "Number of steps in 24 hour Measured", "activity",
             "pas/jour", "1/(24.h)", 0, 100_000, 0, "Le nombre de pas", "Sur une journée, par exemple 8 000"),
    )
}  # fmt: skip

# codes apps also use for the same measure (read, never written)
_ALSO: Final = {"glycemie": ("2345-7", "15074-8")}
# other units apps send, converted to the measure's unit: UCUM code -> factor
_CONVERT: Final[Mapping[str, Mapping[str, float]]] = {
    "poids": {"g": 0.001, "[lb_av]": 0.45359237},
    "taille": {"m": 100.0, "[in_i]": 2.54, "mm": 0.1},
    "glycemie": {"mmol/L": 18.016, "g/L": 100.0},
    "frequence-cardiaque": {"{beats}/min": 1.0, "{Beats}/min": 1.0},
    "pas": {"{steps}/d": 1.0, "/d": 1.0, "{steps}": 1.0},
}


def measure_of(resource: Mapping[str, Any]) -> Measure | None:
    """The measure an Observation is a value of (None: not one of ours)."""
    codes = {
        str(c.get("code"))
        for c in (resource.get("code") or {}).get("coding", []) or []
        if isinstance(c, dict) and c.get("system") == LOINC
    }
    for measure in MEASURES.values():
        if codes & set(measure.loinc) or codes & set(_ALSO.get(measure.key, ())):
            return measure
    return None


def search_codes(measures: Iterable[Measure]) -> str:
    """The ``code`` search value for these measures (every code they are read from)."""
    out: list[str] = []
    for m in measures:
        out.extend(f"{LOINC}|{c}" for c in (*m.loinc, *_ALSO.get(m.key, ())))
    return ",".join(out)


# --------------------------------------------------------------------------- French numbers
_DECIMAL = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def parse_decimal(text: str) -> float | None:
    """``"72,5"`` / ``"72.5"`` / ``"8 000"`` → a number; None if it is not one."""
    cleaned = text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if not _DECIMAL.match(cleaned):
        return None
    value = float(cleaned.replace(",", "."))
    return value if math.isfinite(value) else None


def _decimals(text: str) -> int:
    cleaned = text.strip().replace(",", ".")
    return len(cleaned.split(".", 1)[1]) if "." in cleaned else 0


def fr_number(value: float, decimals: int | None = None) -> str:
    """72.5 → ``"72,5"``; 8000 → ``"8 000"`` (narrow no-break space); integers without a comma."""
    if decimals is None:
        decimals = 0 if float(value).is_integer() else (1 if round(value, 1) == round(value, 2) else 2)
    return f"{value:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")


def _bounds(f: Field) -> str:
    return f"{fr_number(f.low)} et {fr_number(f.high)}"


# --------------------------------------------------------------------------- entry
@dataclass(frozen=True, slots=True)
class Entry:
    """A measure the person typed, checked."""

    measure: Measure
    values: tuple[float, ...]  # one per field
    when: datetime  # aware


def parse_moment(day_text: str, time_text: str, now: datetime) -> tuple[datetime | None, dict[str, str]]:
    """The date and (optional) time typed, in Paris time; errors by field (``date``, ``heure``)."""
    errors: dict[str, str] = {}
    day: date | None = None
    moment: time = time(12, 0)
    try:
        day = date.fromisoformat(day_text) if day_text else None
        if day is None:
            errors["date"] = "Indiquez la date de la mesure."
    except ValueError:
        errors["date"] = "La date n’est pas valide : utilisez le format jj/mm/aaaa."
    if time_text:
        try:
            moment = time.fromisoformat(time_text)
        except ValueError:
            errors["heure"] = "L’heure n’est pas valide : utilisez le format hh:mm."
    if day is None or errors:
        return None, errors
    if day < EARLIEST:
        return None, {"date": "La date est trop ancienne."}
    when = datetime.combine(day, moment.replace(second=0, microsecond=0), PARIS)
    local_now = now.astimezone(PARIS)
    if day > local_now.date():
        return None, {"date": "La date ne peut pas être dans le futur."}
    if when > local_now + timedelta(minutes=5):
        return None, {"heure": "L’heure ne peut pas être dans le futur."}
    return when, {}


def _check_value(f: Field, text: str, what: str = "") -> tuple[float | None, str | None]:
    noun = what or f.noun
    if not text.strip():
        return None, f"Indiquez {noun[0].lower() + noun[1:]}."
    value = parse_decimal(text)
    if value is None:
        return None, f"{noun} doit être un nombre, par exemple {fr_number(f.low + (f.high - f.low) / 4)}."
    if _decimals(text) > f.decimals:
        if f.decimals == 0:
            return None, f"{noun} s’écrit sans virgule."
        return None, f"{noun} s’écrit avec {f.decimals} chiffre(s) après la virgule au plus."
    if not f.low <= value <= f.high:
        agreed = "comprise" if noun.startswith("La ") else "compris"
        return None, f"{noun} doit être {agreed} entre {_bounds(f)} {_unit_words(f)}."
    return value, None


def _unit_words(f: Field) -> str:
    measure = next(m for m in MEASURES.values() if f in m.fields)
    return measure.unit


def parse_entry(
    measure: Measure, form: Mapping[str, str], now: datetime
) -> tuple[Entry | None, dict[str, str]]:
    """Check a typed measure (form fields: the measure's fields, ``date``, ``heure``)."""
    errors: dict[str, str] = {}
    values: list[float] = []
    for f in measure.fields:
        value, error = _check_value(f, form.get(f.name, ""))
        if error:
            errors[f.name] = error
        elif value is not None:
            values.append(value)
    if measure.key == "tension" and not errors and values[0] <= values[1]:
        errors["diastolique"] = "La pression diastolique doit être plus petite que la systolique."
    when, moment_errors = parse_moment(form.get("date", ""), form.get("heure", ""), now)
    errors.update(moment_errors)
    if errors or when is None:
        return None, errors
    return Entry(measure, tuple(values), when), {}


def _quantity(measure: Measure, value: float) -> dict[str, Any]:
    number: float | int = int(value) if float(value).is_integer() else value
    return {"value": number, "unit": measure.unit, "system": UCUM, "code": measure.ucum}


def observation(
    entry: Entry, patient_ref: str, performer_ref: str, performer_name: str = ""
) -> dict[str, Any]:
    """The Observation for a measure the person entered (they, or their relative, performed it)."""
    m = entry.measure
    performer: dict[str, str] = {"reference": performer_ref}
    if performer_name:
        performer["display"] = performer_name
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": m.category}]}],
        "code": {"coding": [{"system": LOINC, "code": c} for c in m.loinc], "text": m.label},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": entry.when.isoformat(),
        "issued": entry.when.astimezone(UTC).isoformat(),
        "performer": [performer],
    }
    if m.category == "vital-signs":
        resource["meta"] = {"profile": [VITAL_SIGNS_PROFILE]}
    if m.panel:
        resource["component"] = [
            {"code": {"coding": [{"system": LOINC, "code": f.loinc, "display": f.display}]},
             "valueQuantity": _quantity(m, v)}
            for f, v in zip(m.fields, entry.values, strict=True)
        ]  # fmt: skip
    else:
        resource["valueQuantity"] = _quantity(m, entry.values[0])
    return resource


# --------------------------------------------------------------------------- reading back
@dataclass(frozen=True, slots=True)
class Source:
    kind: Literal["self", "relative", "professional", "device", "app"]
    label: str


@dataclass(frozen=True, slots=True)
class Reading:
    id: str
    version: str
    when: datetime  # aware
    values: tuple[float | None, ...]  # one per field of the measure (None: missing component)
    source: Source
    updated: str  # meta.lastUpdated


def _when(resource: Mapping[str, Any]) -> datetime | None:
    text = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
    if not isinstance(text, str) or not text:
        text = resource.get("issued")
    if not isinstance(text, str) or not text:
        return None
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=PARIS)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=PARIS)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=PARIS)


def _value(measure: Measure, quantity: Any) -> float | None:
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), (int, float)):
        return None
    value = float(quantity["value"])
    code = quantity.get("code") or quantity.get("unit")
    if code in (measure.ucum, measure.unit, None):
        return value
    factor = _CONVERT.get(measure.key, {}).get(str(code))
    if factor is None and measure.key == "temperature" and code == "[degF]":
        return round((value - 32) * 5 / 9, 1)
    return None if factor is None else round(value * factor, 2)


def source_of(resource: Mapping[str, Any], names: Mapping[str, str]) -> Source:
    """Who took a measure: ``names`` maps references to how the page calls them (``"vous"``,
    ``"Dr Paul BERNARD"``…); professionals without a known name get their ``display``.

    A value an app wrote names the app first: its ``meta.source`` is set by the server
    (``domain/provenance.py``), whereas its performer is whatever the app claimed. ``names`` maps
    that source to the app's name (``"urn:hygie:app:…"`` → ``"Balance connectée"``)."""
    app = app_of(resource)
    if app is not None:
        name = names.get(app_source(app))
        return Source("app", f"application « {name} »" if name else "une application")
    performers = [p for p in resource.get("performer") or [] if isinstance(p, dict)]
    for p in performers:
        ref = str(p.get("reference", ""))
        kind = ref.split("/", 1)[0]
        if kind in ("Practitioner", "PractitionerRole", "Organization", "CareTeam"):
            return Source(
                "professional", names.get(ref) or str(p.get("display") or "un professionnel de santé")
            )
    for p in performers:
        ref = str(p.get("reference", ""))
        if ref in names:
            return Source("self" if names[ref] == "vous" else "relative", names[ref])
        if ref.startswith(("Patient/", "RelatedPerson/")):
            return Source("relative", str(p.get("display") or "un proche"))
    if resource.get("device"):
        return Source("device", "appareil connecté")
    return Source("app", "application")


def readings(
    measure: Measure, observations: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> list[Reading]:
    """The values of ``measure`` among ``observations`` (others ignored), oldest first.

    Entered-in-error and cancelled values, and values in a unit that cannot be converted, are left out.
    """
    out: list[Reading] = []
    for o in observations:
        if o.get("status") in ("entered-in-error", "cancelled") or measure_of(o) != measure:
            continue
        when = _when(o)
        if when is None:
            continue
        values: tuple[float | None, ...]
        if measure.panel:
            found: dict[str, float | None] = {}
            for c in o.get("component") or []:
                for coding in (c.get("code") or {}).get("coding", []) or []:
                    if coding.get("system") == LOINC and measure.field(str(coding.get("code"))):
                        found[str(coding["code"])] = _value(measure, c.get("valueQuantity"))
            values = tuple(found.get(f.loinc) for f in measure.fields)
        else:
            values = (_value(measure, o.get("valueQuantity")),)
        if all(v is None for v in values):
            continue
        meta = o.get("meta") or {}
        out.append(
            Reading(
                str(o.get("id", "")),
                str(meta.get("versionId", "")),
                when,
                values,
                source_of(o, names),
                str(meta.get("lastUpdated", "")),
            )
        )
    out.sort(key=lambda r: (r.when, r.id))
    return out


# --------------------------------------------------------------------------- thresholds
Ranges = dict[str, tuple[float | None, float | None]]  # field LOINC -> (low, high)


def parse_thresholds(measure: Measure, form: Mapping[str, str]) -> tuple[Ranges | None, dict[str, str]]:
    """Low/high thresholds typed per field (``bas-<field>``, ``haut-<field>``; both optional)."""
    errors: dict[str, str] = {}
    ranges: Ranges = {}
    for f in measure.fields:
        bounds: list[float | None] = []
        for side, word in (("bas", "Le seuil bas"), ("haut", "Le seuil haut")):
            name = f"{side}-{f.name}"
            text = form.get(name, "").strip()
            if not text:
                bounds.append(None)
                continue
            value, error = _check_value(
                f, text, word + (f" ({f.label.split(' (')[0].lower()})" if measure.panel else "")
            )
            if error:
                errors[name] = error
            bounds.append(value)
        low, high = bounds
        if low is not None and high is not None and low >= high:
            errors[f"haut-{f.name}"] = "Le seuil haut doit être plus grand que le seuil bas."
        ranges[f.loinc] = (low, high)
    if errors:
        return None, errors
    return ranges, {}


def goal(
    measure: Measure,
    ranges: Ranges,
    patient_ref: str,
    expressed_by: str,
    today: date,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``Goal`` that holds a measure's personal thresholds (a new one, or ``existing`` changed)."""
    targets: list[dict[str, Any]] = []
    for f in measure.fields:
        low, high = ranges.get(f.loinc, (None, None))
        if low is None and high is None:
            continue
        detail: dict[str, Any] = {}
        if low is not None:
            detail["low"] = _quantity(measure, low)
        if high is not None:
            detail["high"] = _quantity(measure, high)
        targets.append(
            {"measure": {"coding": [{"system": LOINC, "code": f.loinc, "display": f.display}], "text": f.label},
             "detailRange": detail}
        )  # fmt: skip
    resource: dict[str, Any] = dict(existing) if existing else {"resourceType": "Goal"}
    resource.update(
        {
            "lifecycleStatus": "active" if targets else "cancelled",
            "category": [{"coding": [dict(THRESHOLD_CATEGORY)], "text": "Seuils d'alerte"}],
            "description": {
                "coding": [{"system": LOINC, "code": measure.loinc[0]}],
                "text": f"Seuils d'alerte : {measure.label.lower()}",
            },
            "subject": {"reference": patient_ref},
            "expressedBy": {"reference": expressed_by},
            "startDate": today.isoformat(),
            "statusDate": today.isoformat(),
        }
    )
    if targets:
        resource["target"] = targets
    else:
        resource.pop("target", None)
    return resource


def is_threshold_goal(resource: Mapping[str, Any]) -> bool:
    return any(
        c.get("system") == ENS_SYSTEM and c.get("code") == THRESHOLD_CATEGORY["code"]
        for cat in resource.get("category") or []
        for c in (cat.get("coding") or [])
    )


def thresholds_of(goals: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Ranges, Mapping[str, Any]]]:
    """Measure key → (ranges by field, the Goal) for the active threshold Goals."""
    out: dict[str, tuple[Ranges, Mapping[str, Any]]] = {}
    for g in goals:
        if g.get("lifecycleStatus") != "active" or not is_threshold_goal(g):
            continue
        ranges: Ranges = {}
        measure: Measure | None = None
        for t in g.get("target") or []:
            code = next(
                (
                    str(c.get("code"))
                    for c in (t.get("measure") or {}).get("coding", [])
                    if c.get("system") == LOINC
                ),
                None,
            )
            if code is None:
                continue
            for m in MEASURES.values():
                if m.field(code):
                    measure = m
            detail = t.get("detailRange") or {}
            low = (detail.get("low") or {}).get("value")
            high = (detail.get("high") or {}).get("value")
            ranges[code] = (
                float(low) if isinstance(low, (int, float)) else None,
                float(high) if isinstance(high, (int, float)) else None,
            )
        if measure is not None and ranges:
            out[measure.key] = (ranges, g)
    return out


@dataclass(frozen=True, slots=True)
class Crossing:
    measure: Measure
    field: Field
    value: float
    side: Literal["low", "high"]
    bound: float

    def sentence(self) -> str:
        """``"Poids : 92 kg, au-dessus de votre seuil haut (90 kg)."``"""
        label = (
            self.measure.label
            if not self.measure.panel
            else f"{self.measure.label} ({self.field.label.split(' (')[0].lower()})"
        )
        where = "au-dessus de votre seuil haut" if self.side == "high" else "en dessous de votre seuil bas"
        unit = self.measure.unit
        return f"{label} : {fr_number(self.value)} {unit}, {where} ({fr_number(self.bound)} {unit})."


def crossings(measure: Measure, reading: Reading, ranges: Ranges) -> list[Crossing]:
    out: list[Crossing] = []
    for f, value in zip(measure.fields, reading.values, strict=True):
        if value is None:
            continue
        low, high = ranges.get(f.loinc, (None, None))
        if high is not None and value > high:
            out.append(Crossing(measure, f, value, "high", high))
        elif low is not None and value < low:
            out.append(Crossing(measure, f, value, "low", low))
    return out


# --------------------------------------------------------------------------- words
def shown(measure: Measure, values: tuple[float | None, ...]) -> str:
    """``"72,5 kg"``, ``"125/80 mm Hg"``."""
    if measure.panel:
        return "/".join("?" if v is None else fr_number(v) for v in values) + f" {measure.unit}"
    value = values[0]
    return ("?" if value is None else fr_number(value)) + f" {measure.unit}"


def french_date(when: datetime, with_time: bool = True) -> str:
    local = when.astimezone(PARIS)
    return local.strftime("%d/%m/%Y à %H:%M" if with_time else "%d/%m/%Y")


def summary(measure: Measure, series: list[Reading], period: str) -> str:
    """The words that stand for the chart (its ``alt``): how many values, their range, the last."""
    if not series:
        return f"{measure.label} {period} : aucune valeur."
    count = len(series)
    parts: list[str] = []
    for i, f in enumerate(measure.fields):
        values = [r.values[i] for r in series if r.values[i] is not None]
        if not values:
            continue
        name = f.label.split(" (")[0].lower() + " " if measure.panel else ""
        low, high = min(v for v in values if v is not None), max(v for v in values if v is not None)
        if low == high:
            parts.append(f"{name}toujours {fr_number(low)}")
        else:
            parts.append(f"{name}de {fr_number(low)} à {fr_number(high)}")
    last = series[-1]
    words = "mesure" if count == 1 else "mesures"
    return (
        f"{measure.label} {period} : {count} {words}, {', '.join(parts)} {measure.unit} ; "
        f"la dernière : {shown(measure, last.values)} le {french_date(last.when, with_time=False)}."
    )
