"""The person's agenda: appointments, their own reminders, prevention and vaccination reminders,
a month grid, and the private iCalendar feed.

* Appointments are FHIR ``Appointment`` resources with the person among the participants — from
  professionals' software, apps, or the person (then marked with the tag ``personal-entry`` and
  without any professional participant: only those are editable in the portal).
* Prevention reminders follow the French organised screening programmes (*dépistages organisés*):
  colorectal cancer 50–74 years every 2 years, breast cancer (women) 50–74 years every 2 years,
  cervical cancer (women) 25–65 years, every 3 years before 30 and every 5 years from 30 (HPV
  test). The last test is looked for among the record's Observations and DiagnosticReports by
  LOINC code; without one, the screening is "à faire" from the age it starts.
* Vaccination reminders come from :func:`hygie.domain.ens.vaccination.due`.
* :func:`icalendar_feed` writes the events for consumer calendars (``icalendar``).
* A teleconsultation carries the link of its video room in the extension
  :data:`VIDEO_LINK_URL` (``valueUrl``): R4's Appointment has no ``virtualService`` (R5 has), and
  the professional who schedules it writes the link there (``domain/bsp/telehealth.py``); the
  agenda shows it as « Rejoindre la téléconsultation » — only an ``https`` (or ``http``) address,
  never anything a browser would run.
"""

from __future__ import annotations

import calendar as month_calendar
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

from icalendar import Calendar
from icalendar import Event as Vevent

from hygie.domain.ens.vitals import ENS_SYSTEM, PARIS
from hygie.ports import KeyValueStore

__all__ = [
    "PERSONAL_TAG",
    "SCREENINGS",
    "VIDEO_LINK_URL",
    "Event",
    "FeedOwner",
    "FeedTokens",
    "Reminder",
    "Screening",
    "appointment_events",
    "icalendar_feed",
    "is_personal",
    "month_grid",
    "parse_personal",
    "personal_appointment",
    "screening_reminders",
    "vaccination_reminders",
    "video_link",
]

VIDEO_LINK_URL: Final = "https://hygie.example/fhir/StructureDefinition/appointment-video-link"
PERSONAL_TAG: Final = {"system": ENS_SYSTEM, "code": "personal-entry", "display": "Ajouté par la personne"}
PROFESSIONAL_KINDS: Final = (
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "HealthcareService",
    "CareTeam",
)
MONTHS: Final = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                 "octobre", "novembre", "décembre")  # fmt: skip
DAYS: Final = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
STATUS_WORDS: Final = {
    "proposed": "proposé",
    "pending": "en attente de confirmation",
    "booked": "confirmé",
    "arrived": "vous êtes arrivé(e)",
    "fulfilled": "a eu lieu",
    "cancelled": "annulé",
    "noshow": "manqué",
    "entered-in-error": "annulé",
    "checked-in": "enregistré",
    "waitlist": "liste d’attente",
}
TITLE_MAX: Final = 200
PLACE_MAX: Final = 200
NOTE_MAX: Final = 1000


# --------------------------------------------------------------------------- appointments
@dataclass(frozen=True, slots=True)
class Event:
    id: str
    title: str
    start: datetime  # aware
    end: datetime | None
    status: str
    status_words: str
    source: str  # "vous", "Dr Paul BERNARD", "une application"
    kind: Literal["personal", "professional", "app"]
    place: str
    note: str
    version: str = ""
    video: str = ""  # the teleconsultation's room (an https link), "" for an appointment in person

    @property
    def editable(self) -> bool:
        return self.kind == "personal"

    @property
    def cancelled(self) -> bool:
        return self.status in ("cancelled", "entered-in-error")

    @property
    def day(self) -> date:
        return self.start.astimezone(PARIS).date()


def _parse_instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=PARIS)


def video_link(appointment: Mapping[str, Any]) -> str:
    """The video room of a teleconsultation ("" when none, or not a web address)."""
    for ext in appointment.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == VIDEO_LINK_URL:
            link = ext.get("valueUrl")
            if isinstance(link, str) and link.startswith(("https://", "http://")) and " " not in link:
                return link
    return ""


def is_personal(appointment: Mapping[str, Any]) -> bool:
    """Entered by the person in the portal (tagged, and no professional among its participants)."""
    tagged = any(
        t.get("system") == PERSONAL_TAG["system"] and t.get("code") == PERSONAL_TAG["code"]
        for t in (appointment.get("meta") or {}).get("tag", []) or []
        if isinstance(t, dict)
    )
    return tagged and not _professionals(appointment)


def _professionals(appointment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        p["actor"]
        for p in appointment.get("participant") or []
        if isinstance(p, dict)
        and isinstance(p.get("actor"), dict)
        and str(p["actor"].get("reference", "")).split("/", 1)[0] in PROFESSIONAL_KINDS
    ]


def _place(appointment: Mapping[str, Any]) -> str:
    for p in appointment.get("participant") or []:
        actor = p.get("actor") if isinstance(p, dict) else None
        if not isinstance(actor, dict):
            continue
        ref = str(actor.get("reference", ""))
        if ref.startswith("Location/") or (not ref and actor.get("display")):
            return str(actor.get("display") or "")
    return ""


def appointment_events(appointments: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[Event]:
    """The appointments as events, in time order (without a start: left out)."""
    out: list[Event] = []
    for a in appointments:
        start = _parse_instant(a.get("start"))
        if start is None:
            continue
        end = _parse_instant(a.get("end"))
        professionals = _professionals(a)
        if is_personal(a):
            kind: Literal["personal", "professional", "app"] = "personal"
            source = "vous"
        elif professionals:
            kind = "professional"
            ref = str(professionals[0].get("reference", ""))
            source = names.get(ref) or str(professionals[0].get("display") or "un professionnel de santé")
        else:
            kind, source = "app", "une application"
        title = str(a.get("description") or "")
        if not title:
            types = a.get("serviceType") or a.get("appointmentType") or a.get("reasonCode") or []
            concepts = types if isinstance(types, list) else [types]
            title = next(
                (str(c.get("text") or "") for c in concepts if isinstance(c, dict) and c.get("text")), ""
            )
        if not title:
            title = f"Rendez-vous avec {source}" if kind == "professional" else "Rendez-vous"
        status = str(a.get("status", ""))
        out.append(
            Event(
                str(a.get("id", "")),
                title,
                start,
                end,
                status,
                STATUS_WORDS.get(status, status),
                source,
                kind,
                _place(a),
                str(a.get("comment") or ""),
                str((a.get("meta") or {}).get("versionId", "")),
                video_link(a),
            )
        )
    out.sort(key=lambda e: (e.start, e.id))
    return out


@dataclass(frozen=True, slots=True)
class Personal:
    title: str
    start: datetime
    end: datetime
    place: str
    note: str


def parse_personal(form: Mapping[str, str], now: datetime) -> tuple[Personal | None, dict[str, str]]:
    """A personal appointment or reminder typed by the person (``objet``, ``date``, ``debut``,
    ``fin``, ``lieu``, ``note``): French messages per field."""
    errors: dict[str, str] = {}
    title = form.get("objet", "").strip()
    if not title:
        errors["objet"] = "Indiquez l’objet du rendez-vous, par exemple « Dentiste »."
    elif len(title) > TITLE_MAX:
        errors["objet"] = f"L’objet est trop long : {TITLE_MAX} caractères au plus."
    day: date | None = None
    text = form.get("date", "").strip()
    if not text:
        errors["date"] = "Indiquez la date du rendez-vous."
    else:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            errors["date"] = "La date n’est pas valide : utilisez le format jj/mm/aaaa."
    local_today = now.astimezone(PARIS).date()
    if day is not None and not (
        local_today - timedelta(days=366) <= day <= local_today + timedelta(days=5 * 366)
    ):
        errors["date"] = "La date doit être comprise entre il y a un an et dans cinq ans."
    times: dict[str, time] = {}
    for name, word in (("debut", "de début"), ("fin", "de fin")):
        value = form.get(name, "").strip()
        if not value:
            errors[name] = f"Indiquez l’heure {word}."
            continue
        try:
            times[name] = time.fromisoformat(value)
        except ValueError:
            errors[name] = f"L’heure {word} n’est pas valide : utilisez le format hh:mm."
    if "debut" in times and "fin" in times and times["fin"] <= times["debut"]:
        errors["fin"] = "L’heure de fin doit être après l’heure de début."
    place = form.get("lieu", "").strip()
    if len(place) > PLACE_MAX:
        errors["lieu"] = f"Le lieu est trop long : {PLACE_MAX} caractères au plus."
    note = form.get("note", "").strip()
    if len(note) > NOTE_MAX:
        errors["note"] = (
            f"La note est trop longue : {NOTE_MAX} caractères au plus (elle en fait {len(note)})."
        )
    if errors or day is None:
        return None, errors
    start = datetime.combine(day, times["debut"].replace(second=0, microsecond=0), PARIS)
    end = datetime.combine(day, times["fin"].replace(second=0, microsecond=0), PARIS)
    return Personal(title, start, end, place, note), {}


def personal_appointment(
    entry: Personal, patient_ref: str, patient_name: str, existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Appointment of a personal entry (new, or ``existing`` changed)."""
    resource: dict[str, Any] = dict(existing) if existing else {"resourceType": "Appointment"}
    meta = dict(resource.get("meta") or {})
    tags = [
        t
        for t in meta.get("tag", []) or []
        if not (isinstance(t, dict) and t.get("code") == PERSONAL_TAG["code"])
    ]
    meta["tag"] = [*tags, dict(PERSONAL_TAG)]
    resource["meta"] = {k: v for k, v in meta.items() if k in ("tag", "profile", "security")}
    participants: list[dict[str, Any]] = [
        {
            "actor": {"reference": patient_ref, **({"display": patient_name} if patient_name else {})},
            "required": "required",
            "status": "accepted",
        }
    ]
    if entry.place:
        participants.append(
            {
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                      "code": "LOC", "display": "location"}]}],
                "actor": {"display": entry.place},
                "required": "information-only",
                "status": "accepted",
            }
        )  # fmt: skip
    resource.update(
        {
            "status": "booked",
            "description": entry.title,
            "start": entry.start.isoformat(),
            "end": entry.end.isoformat(),
            "minutesDuration": int((entry.end - entry.start).total_seconds() // 60),
            "participant": participants,
        }
    )
    if entry.note:
        resource["comment"] = entry.note
    else:
        resource.pop("comment", None)
    return resource


def form_of(event: Event) -> dict[str, str]:
    """The edit form's values for an event."""
    start = event.start.astimezone(PARIS)
    end = (event.end or event.start).astimezone(PARIS)
    return {
        "objet": event.title,
        "date": start.date().isoformat(),
        "debut": start.strftime("%H:%M"),
        "fin": end.strftime("%H:%M"),
        "lieu": event.place,
        "note": event.note,
    }


# --------------------------------------------------------------------------- reminders
@dataclass(frozen=True, slots=True)
class Reminder:
    key: str  # stable (the feed's UID)
    kind: Literal["screening", "vaccination"]
    title: str
    detail: str
    status: Literal["overdue", "due", "due-soon", "upcoming"]
    due: date  # from when
    status_words: str


@dataclass(frozen=True, slots=True)
class Screening:
    key: str
    title: str
    sex: Literal["any", "female"]
    start_age: int
    end_age: int  # last year of age included
    years: int  # interval
    years_from_30: int | None  # a different interval from 30 (cervical)
    loinc: tuple[str, ...]  # tests that count as done (not verified against LOINC here)
    detail: str


SCREENINGS: Final = (
    Screening(
        "colorectal",
        "Dépistage du cancer colorectal",
        "any",
        50,
        74,
        2,
        None,
        ("29771-3", "57905-2"),  # immunological faecal occult blood tests (FIT)
        "Un test simple à faire chez soi, tous les deux ans de 50 à 74 ans, pris en charge à 100 %. "
        "Demandez-le à votre médecin ou à votre pharmacien.",
    ),
    Screening(
        "sein",
        "Dépistage du cancer du sein",
        "female",
        50,
        74,
        2,
        None,
        ("24606-6",),  # MG Breast Screening
        "Une mammographie et un examen clinique des seins tous les deux ans de 50 à 74 ans, pris en "
        "charge à 100 % sur invitation de l’Assurance Maladie.",
    ),
    Screening(
        "col-uterus",
        "Dépistage du cancer du col de l’utérus",
        "female",
        25,
        65,
        3,
        5,
        ("10524-7", "19762-4", "21440-3"),  # cervical cytology, HPV test
        "Un frottis tous les trois ans de 25 à 29 ans, puis un test HPV tous les cinq ans de 30 à 65 ans. "
        "Parlez-en à votre médecin, votre gynécologue ou votre sage-femme.",
    ),
)


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def last_tests(resources: Iterable[Mapping[str, Any]]) -> dict[str, date]:
    """Screening key → the date of its last test found among Observations / DiagnosticReports."""
    out: dict[str, date] = {}
    for r in resources:
        codes = {
            str(c.get("code"))
            for c in (r.get("code") or {}).get("coding", []) or []
            if isinstance(c, dict) and c.get("system") == "http://loinc.org"
        }
        when = _parse_instant(
            r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start") or r.get("issued")
        )
        if when is None and isinstance(r.get("effectiveDateTime"), str):
            try:
                when = datetime.combine(date.fromisoformat(str(r["effectiveDateTime"])[:10]), time(12), PARIS)
            except ValueError:
                when = None
        if when is None:
            continue
        for s in SCREENINGS:
            if codes & set(s.loinc):
                day = when.astimezone(PARIS).date()
                if s.key not in out or day > out[s.key]:
                    out[s.key] = day
    return out


def screening_loinc() -> str:
    return ",".join(f"http://loinc.org|{c}" for s in SCREENINGS for c in s.loinc)


def screening_reminders(
    birth_date: date | None, gender: str | None, today: date, last: Mapping[str, date], *, soon_days: int = 90
) -> list[Reminder]:
    """The organised screenings that concern the person, with when the next one is due."""
    if birth_date is None:
        return []
    out: list[Reminder] = []
    for s in SCREENINGS:
        if s.sex == "female" and gender not in ("female", None, "", "unknown", "other"):
            continue
        starts = _years_later(birth_date, s.start_age)
        ends = _years_later(birth_date, s.end_age + 1)  # until the end of the last year of age
        if today >= ends or today < starts - timedelta(days=soon_days):
            continue
        done = last.get(s.key)
        if done is not None:
            age_then = (done - birth_date).days // 365
            interval = s.years_from_30 if (s.years_from_30 and age_then >= 30) else s.years
            next_due = max(starts, _years_later(done, interval))
        else:
            next_due = starts
        if next_due >= ends:
            continue
        if next_due < today - timedelta(days=30):
            status: Literal["overdue", "due", "due-soon", "upcoming"] = "overdue"
            words = "à faire" + (f" (dernier test le {done.strftime('%d/%m/%Y')})" if done else "")
        elif next_due <= today:
            status, words = "due", "à faire maintenant"
        elif next_due <= today + timedelta(days=soon_days):
            status, words = "due-soon", f"à prévoir à partir du {next_due.strftime('%d/%m/%Y')}"
        else:
            status, words = "upcoming", f"prochain à partir du {next_due.strftime('%d/%m/%Y')}"
        detail = s.detail
        if s.sex == "female" and gender not in ("female",):
            detail += " Ce dépistage concerne les personnes ayant un col de l’utérus ou des seins."
        out.append(Reminder(f"depistage-{s.key}", "screening", s.title, detail, status, next_due, words))
    return out


def vaccination_reminders(
    birth_date: date | None, immunizations: Sequence[Mapping[str, Any]], today: date
) -> list[Reminder]:
    """The vaccinations to do (late, due, due soon), from the schedule module."""
    if birth_date is None:
        return []
    from hygie.domain.ens.vaccination import due  # noqa: PLC0415

    words = {"overdue": "en retard", "due": "à faire maintenant", "due-soon": "à prévoir bientôt"}
    out: list[Reminder] = []
    for d in due(birth_date, immunizations, today):
        if d.status not in words:
            continue
        key = "vaccin-" + hashlib.sha256(f"{d.series}|{d.dose}".encode()).hexdigest()[:12]
        when = f" à partir du {d.start.strftime('%d/%m/%Y')}" if d.status == "due-soon" else ""
        out.append(
            Reminder(
                key,
                "vaccination",
                f"Vaccination : {d.label}",
                d.dose,
                d.status,  # type: ignore[arg-type]
                d.start,
                words[d.status] + when,
            )
        )
    return out


# --------------------------------------------------------------------------- month grid
@dataclass(frozen=True, slots=True)
class Day:
    day: date | None
    events: tuple[Event, ...] = ()
    reminders: tuple[Reminder, ...] = ()
    today: bool = False

    @property
    def label(self) -> str:
        if self.day is None:
            return ""
        return f"{DAYS[self.day.weekday()]} {self.day.day} {MONTHS[self.day.month - 1]}"


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int
    weeks: list[list[Day]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{MONTHS[self.month - 1].capitalize()} {self.year}"

    @property
    def previous(self) -> str:
        return f"{self.year - 1}-12" if self.month == 1 else f"{self.year}-{self.month - 1:02d}"

    @property
    def following(self) -> str:
        return f"{self.year + 1}-01" if self.month == 12 else f"{self.year}-{self.month + 1:02d}"


def parse_month(text: str, today: date) -> tuple[int, int]:
    try:
        year, month = (int(p) for p in text.split("-", 1))
        if 1900 <= year <= 2200 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    return today.year, today.month


def month_grid(
    year: int, month: int, events: Iterable[Event], reminders: Iterable[Reminder], today: date
) -> Month:
    """Weeks (Monday first) of ``month``, each day with its events."""
    by_day: dict[date, list[Event]] = {}
    for e in events:
        by_day.setdefault(e.day, []).append(e)
    reminders_by_day: dict[date, list[Reminder]] = {}
    for r in reminders:
        shown_on = max(r.due, today) if r.status in ("overdue", "due") else r.due
        reminders_by_day.setdefault(shown_on, []).append(r)
    grid = Month(year, month)
    for week in month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        grid.weeks.append(
            [
                Day(
                    d if d.month == month else None,
                    tuple(by_day.get(d, ())) if d.month == month else (),
                    tuple(reminders_by_day.get(d, ())) if d.month == month else (),
                    d == today,
                )
                for d in week
            ]
        )
    return grid


# --------------------------------------------------------------------------- iCalendar
def icalendar_feed(
    events: Iterable[Event], reminders: Iterable[Reminder], *, owner: str, today: date, now: datetime
) -> bytes:
    """An iCalendar (RFC 5545) of the appointments and reminders, for consumer calendars."""
    cal = Calendar()
    cal.add("prodid", "-//Hygie//Mon espace sante//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Espace santé — {owner}" if owner else "Espace santé")
    cal.add("x-wr-timezone", "Europe/Paris")
    cal.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT6H")
    stamp = now.astimezone(UTC)
    for e in events:
        if e.status == "entered-in-error":
            continue
        v = Vevent()
        v.add("uid", f"rdv-{e.id}@hygie")
        v.add("dtstamp", stamp)
        v.add("dtstart", e.start.astimezone(UTC))
        v.add("dtend", (e.end or e.start + timedelta(minutes=30)).astimezone(UTC))
        v.add("summary", e.title)
        v.add(
            "status",
            "CANCELLED"
            if e.cancelled
            else ("TENTATIVE" if e.status in ("proposed", "pending") else "CONFIRMED"),
        )
        if e.place:
            v.add("location", e.place)
        description = f"Avec : {e.source}" if e.kind == "professional" else ""
        if e.note:
            description = (description + "\n" if description else "") + e.note
        if description:
            v.add("description", description)
        cal.add_component(v)
    for r in reminders:
        v = Vevent()
        v.add("uid", f"{r.key}@hygie")
        v.add("dtstamp", stamp)
        day = max(r.due, today.replace(day=1)) if r.status in ("overdue", "due") else r.due
        v.add("dtstart", day)
        v.add("dtend", day + timedelta(days=1))
        v.add("summary", f"Rappel : {r.title}")
        v.add("description", f"{r.detail} ({r.status_words}).")
        v.add("transp", "TRANSPARENT")
        cal.add_component(v)
    data: bytes = cal.to_ical()
    return data


# --------------------------------------------------------------------------- feed tokens
FEED_KIND: Final = "ens-agenda-feed"  # sha256(token) -> {"account", "patient", "created"}
FEED_OWNER_KIND: Final = "ens-agenda-feed-of"  # "account|patient" -> {"digest", "created"}


@dataclass(frozen=True, slots=True)
class FeedOwner:
    account_id: str
    patient_id: str


class FeedTokens:
    """The private addresses of calendar feeds: a random token per (account, space), kept only
    hashed; issuing a new one revokes the previous one."""

    def __init__(self, kv: KeyValueStore, clock: Callable[[], int]) -> None:
        self.kv = kv
        self.clock = clock

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    async def issue(self, account_id: str, patient_id: str) -> str:
        import secrets  # noqa: PLC0415

        await self.revoke(account_id, patient_id)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        digest = self._digest(token)
        await self.kv.put(FEED_KIND, digest, {"account": account_id, "patient": patient_id, "created": now})
        await self.kv.put(FEED_OWNER_KIND, f"{account_id}|{patient_id}", {"digest": digest, "created": now})
        return token

    async def current(self, account_id: str, patient_id: str) -> int | None:
        """When the live feed of this account and space was made (µs), or None."""
        record = await self.kv.get(FEED_OWNER_KIND, f"{account_id}|{patient_id}")
        return int(record["created"]) if record else None

    async def revoke(self, account_id: str, patient_id: str) -> bool:
        record = await self.kv.take(FEED_OWNER_KIND, f"{account_id}|{patient_id}")
        if record is None:
            return False
        await self.kv.delete(FEED_KIND, str(record["digest"]))
        return True

    async def owner(self, token: str) -> FeedOwner | None:
        if not token or len(token) > 128:
            return None
        record = await self.kv.get(FEED_KIND, self._digest(token))
        if record is None:
            return None
        return FeedOwner(str(record["account"]), str(record["patient"]))
