"""Demo content for the « Mesures » of one demo citizen: home measures and personal thresholds.

* blood pressure taken at home over the last two weeks (the person as performer), the last one
  this morning a little high;
* thresholds: weight around the person's last weight, blood pressure 140/90 at most;
* nothing for a minor (a child's weight follows a growth curve, not fixed limits);
* the person is watched (:class:`~hygie.domain.ens.vitals_watch.ThresholdWatch`), so the measures
  page flags this morning's value the first time it is shown, and the person is told as the
  notification rule says (``domain/ens/notifications.py``: their contact points, as they chose).

Everything is written through the FHIR service as the operator ``hygie demo``, once: a second run
finds the threshold Goal and adds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from hygie.bootstrap import clock_us
from hygie.domain.access import Caller
from hygie.domain.ens import vitals as v
from hygie.domain.ens.vitals_watch import ThresholdWatch
from hygie.web.portal.door import Door

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["seed_demo"]

HOME_PRESSURES = ((13, 126, 81), (10, 131, 84), (7, 124, 79), (4, 129, 83), (1, 133, 86))


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    door = Door(runtime.service)
    caller = Caller.operator("hygie demo")
    goals = await door.search(caller, "Goal", [("patient", patient_id)])
    patient = await door.read(caller, "Patient", patient_id)
    if v.thresholds_of(goals) or patient is None:
        return
    now = datetime.now(v.PARIS)
    born = str(patient.get("birthDate", ""))
    if len(born) < 4 or now.year - int(born[:4]) < 18:
        return  # home blood pressure and fixed weight limits are an adult's follow-up
    patient_ref = f"Patient/{patient_id}"
    bp = v.MEASURES["tension"]
    for days, systolic, diastolic in HOME_PRESSURES:
        when = datetime.combine((now - timedelta(days=days)).date(), time(7, 45), v.PARIS)
        entry = v.Entry(bp, (float(systolic), float(diastolic)), when)
        await door.create(caller, v.observation(entry, patient_ref, patient_ref))

    weights = v.readings(
        v.MEASURES["poids"],
        await door.search(
            caller,
            "Observation",
            [
                ("patient", patient_id),
                ("code", v.search_codes([v.MEASURES["poids"]])),
                ("_sort", "-date"),
                ("_count", "1"),
            ],
            limit=1,
        ),
        {},
    )
    today = now.date()
    if weights and weights[-1].values[0] is not None:
        last = float(weights[-1].values[0])
        ranges: v.Ranges = {"29463-7": (float(round(last - 6)), float(round(last + 4)))}
        await door.create(caller, v.goal(v.MEASURES["poids"], ranges, patient_ref, patient_ref, today))
    await door.create(
        caller, v.goal(bp, {"8480-6": (None, 140.0), "8462-4": (None, 90.0)}, patient_ref, patient_ref, today)
    )
    assert runtime.outbox is not None and runtime.accounts is not None
    watch = ThresholdWatch(door, runtime.kv, runtime.outbox, clock_us)
    await watch.follow(patient_id)
    # this morning's measure, after the thresholds: the measures page will flag it
    morning = min(now - timedelta(minutes=5), datetime.combine(today, time(7, 40), v.PARIS))
    entry = v.Entry(bp, (146.0, 92.0), morning.astimezone(UTC).astimezone(v.PARIS))
    await door.create(caller, v.observation(entry, patient_ref, patient_ref))
