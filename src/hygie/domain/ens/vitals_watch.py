"""The watch over personal thresholds: a new value that leaves its range notifies the person.

Where the check runs, and why. A value may come from the person (the portal), a professional
or an app through the FHIR API. Checking inside the FHIR write path would put a search of Goals
on every Observation written by every client — the hot path the benchmarks measure — for the
few people who set thresholds. Instead the watch reads, for each person who set thresholds, the
Observations *updated since its last pass* (``_lastUpdated``, with a small overlap so that a
write committed late is not missed), and runs:

* right after the person enters a value in the portal;
* each time the measures page is shown (so a value an app sent is flagged when the person looks);
* in the server's background delivery (``hygie/delivery.py``, every ``HYGIE_OUTBOX_INTERVAL``
  seconds), which finds the patients of the Observations written since its last round (the
  store's ``_lastUpdated`` index) and runs :meth:`ThresholdWatch.sweep` for those who are
  watched: the e-mail reaches someone who does not open the portal.

A crossing becomes a FHIR ``Flag`` in the person's record (shown on the measures page until they
dismiss it; ``flag-detail`` points to the Observation and the Goal) and a notification through
the durable outbox to whoever the one recipient rule names (``domain/ens/notifications.py``):
the person on the e-mail and/or mobile they chose, and the legal representatives who run a
minor's space on theirs. E-mail and SMS are not secure channels: they say that a measure crossed
a threshold, never which value. Each crossing is claimed once (``kv.add``), so the page, the
sweep and a double click never notify twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Protocol

from hygie.domain.access import Caller
from hygie.domain.ens.notifications import tell
from hygie.domain.ens.vitals import (
    ENS_SYSTEM,
    MEASURES,
    PARIS,
    Crossing,
    crossings,
    readings,
    search_codes,
    thresholds_of,
)
from hygie.domain.outbox import Outbox
from hygie.ports import KeyValueStore

__all__ = ["ALERT_CATEGORY", "ALERT_IDENTIFIER", "Notice", "ThresholdWatch"]

WATCH_KIND: Final = "ens-vitals-watch"  # patient id -> {"since": lastUpdated}
CLAIM_KIND: Final = "ens-vitals-alert"  # alert identifier -> claimed once
ALERT_IDENTIFIER: Final = "https://hygie.esante.example/fhir/NamingSystem/threshold-alert"
ALERT_CATEGORY: Final = {
    "system": ENS_SYSTEM,
    "code": "threshold-crossed",
    "display": "Seuil d'alerte franchi",
}
FLAG_DETAIL: Final = "http://hl7.org/fhir/StructureDefinition/flag-detail"
OVERLAP: Final = timedelta(minutes=10)


class _Records(Protocol):
    async def read(self, caller: Caller, resource_type: str, id: str) -> dict[str, Any] | None: ...

    async def search(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    async def create(self, caller: Caller, resource: dict[str, Any]) -> dict[str, Any]: ...

    async def update(
        self, caller: Caller, resource: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]: ...


class _Account(Protocol):
    @property
    def login(self) -> str: ...

    @property
    def active(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """An undismissed crossing, for the measures page."""

    flag_id: str
    version: str
    text: str
    measure_key: str | None
    when: str  # "12/05/2026 à 08:30"


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat()


class ThresholdWatch:
    def __init__(
        self,
        records: _Records,
        kv: KeyValueStore,
        outbox: Outbox,
        clock: Callable[[], int],
        *,
        majority_age: int = 18,
        base_url: str | None = None,
    ) -> None:
        """Whom a crossing is told to is the recipient rule's (``domain/ens/notifications.py``);
        ``majority_age``: ``HYGIE_MAJORITY_AGE``; ``base_url``: the public address the e-mail
        links to."""
        self.records = records
        self.kv = kv
        self.outbox = outbox
        self.clock = clock
        self.majority_age = majority_age
        self.base_url = base_url

    async def follow(self, patient_id: str) -> None:
        """Watch this person's new values from now on (a second call changes nothing)."""
        if await self.kv.get(WATCH_KIND, patient_id) is None:
            await self.kv.put(WATCH_KIND, patient_id, {"since": _iso(self.clock())})

    async def watched(self, patient_id: str) -> bool:
        return await self.kv.get(WATCH_KIND, patient_id) is not None

    async def check(self, caller: Caller, patient_id: str) -> list[Crossing]:
        """Flag and notify the crossings among the values updated since the last pass."""
        record = await self.kv.get(WATCH_KIND, patient_id)
        if record is None:
            return []
        started = self.clock()
        goals = await self.records.search(
            caller, "Goal", [("patient", patient_id), ("lifecycle-status", "active")], limit=100
        )
        thresholds = thresholds_of(goals)
        found: list[Crossing] = []
        if thresholds:
            since = datetime.fromisoformat(str(record["since"])) - OVERLAP
            measures = [MEASURES[k] for k in thresholds]
            observations = await self.records.search(
                caller,
                "Observation",
                [
                    ("patient", patient_id),
                    ("code", search_codes(measures)),
                    ("_lastUpdated", f"ge{since.isoformat()}"),
                    ("_sort", "_lastUpdated"),
                    ("_count", "200"),
                ],
                limit=2000,
            )
            for key, (ranges, goal) in thresholds.items():
                measure = MEASURES[key]
                start = _start(goal)
                for reading in readings(measure, observations, {}):
                    if start is not None and reading.when.astimezone(PARIS).date() < start:
                        continue
                    for crossing in crossings(measure, reading, ranges):
                        alerted = await self._alert(
                            caller, patient_id, goal, reading.id, reading.when, crossing, record
                        )
                        if alerted:
                            found.append(crossing)
        fresh = await self.kv.get(WATCH_KIND, patient_id) or record
        fresh["since"] = max(str(fresh["since"]), _iso(started))
        await self.kv.put(WATCH_KIND, patient_id, fresh)
        return found

    async def _alert(
        self,
        caller: Caller,
        patient_id: str,
        goal: Mapping[str, Any],
        observation_id: str,
        when: datetime,
        crossing: Crossing,
        record: Mapping[str, Any],
    ) -> bool:
        key = f"{observation_id}/{crossing.field.loinc}/{crossing.side}/{crossing.bound:g}"
        if not await self.kv.add(CLAIM_KIND, f"{patient_id}|{key}", {"at": self.clock()}):
            return False
        flag = {
            "resourceType": "Flag",
            "extension": [
                {"url": FLAG_DETAIL, "valueReference": {"reference": f"Observation/{observation_id}"}},
                {"url": FLAG_DETAIL, "valueReference": {"reference": f"Goal/{goal.get('id')}"}},
            ],
            "identifier": [{"system": ALERT_IDENTIFIER, "value": key}],
            "status": "active",
            "category": [{"coding": [dict(ALERT_CATEGORY)]}],
            "code": {
                "coding": [{"system": "http://loinc.org", "code": crossing.field.loinc}],
                "text": crossing.sentence(),
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {"start": when.isoformat()},
        }
        try:
            await self.records.create(caller, flag)
        except Exception:
            await self.kv.delete(CLAIM_KIND, f"{patient_id}|{key}")  # let the next pass try again
            raise
        await tell(
            self.records,
            self.outbox,
            patient_id,
            "threshold",
            f"{patient_id}:{key}",
            now_us=self.clock(),
            majority_age=self.majority_age,
            base_url=self.base_url,
        )
        return True

    async def notices(self, caller: Caller, patient_id: str) -> list[Notice]:
        """The person's undismissed crossings, newest first."""
        flags = await self.records.search(
            caller, "Flag", [("patient", patient_id), ("identifier", f"{ALERT_IDENTIFIER}|")], limit=200
        )
        out: list[tuple[str, Notice]] = []
        for f in flags:
            if f.get("status") != "active" or not _is_alert(f):
                continue
            start = str((f.get("period") or {}).get("start", ""))
            out.append(
                (
                    start,
                    Notice(
                        str(f["id"]),
                        str((f.get("meta") or {}).get("versionId", "")),
                        str((f.get("code") or {}).get("text", "")),
                        _measure_key(f),
                        _french_moment(start),
                    ),
                )
            )
        return [n for _, n in sorted(out, key=lambda x: x[0], reverse=True)]

    async def dismiss(self, caller: Caller, patient_id: str, flag: dict[str, Any]) -> bool:
        """Close a notice (the person has seen it); False when it is not one of theirs."""
        if not _is_alert(flag) or (flag.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
            return False
        if flag.get("status") != "active":
            return True
        closed = dict(flag)
        closed["status"] = "inactive"
        closed["period"] = {**(flag.get("period") or {}), "end": _iso(self.clock())}
        await self.records.update(
            caller, closed, version=str((flag.get("meta") or {}).get("versionId") or "") or None
        )
        return True

    async def sweep(self, caller: Caller, patients: Iterable[str] | None = None) -> int:
        """One pass (the operator's job) over ``patients`` — those with new values, as the
        background delivery finds them — or every watched person; the crossings found."""
        total = 0
        if patients is None:
            chosen = [patient_id for patient_id, _ in await self.kv.list(WATCH_KIND)]
        else:
            chosen = [p for p in dict.fromkeys(patients) if await self.watched(p)]
        for patient_id in chosen:
            total += len(await self.check(caller, patient_id))
        return total


def _is_alert(flag: Mapping[str, Any]) -> bool:
    return any(
        i.get("system") == ALERT_IDENTIFIER for i in flag.get("identifier") or [] if isinstance(i, dict)
    )


def _measure_key(flag: Mapping[str, Any]) -> str | None:
    codes = {str(c.get("code")) for c in (flag.get("code") or {}).get("coding", []) or []}
    for m in MEASURES.values():
        if any(f.loinc in codes for f in m.fields):
            return m.key
    return None


def _start(goal: Mapping[str, Any]) -> date | None:
    try:
        return date.fromisoformat(str(goal.get("startDate", "")))
    except ValueError:
        return None


def _french_moment(text: str) -> str:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if when.tzinfo is None:
        when = when.replace(tzinfo=PARIS)
    local = when.astimezone(PARIS)
    return local.strftime("%d/%m/%Y à %H:%M")
