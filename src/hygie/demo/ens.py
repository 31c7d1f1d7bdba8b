"""Populate the demo citizens' health spaces (ENS) beyond their generated histories.

The generator gives every citizen a medical history (visits, measures, prescriptions, documents).
The portal's sections add what a person and their carers would have built up in their space: a
trusted person and advance directives, the person's own documents, home measures with
thresholds, appointments, dispensed prescriptions, a conversation with the GP, an alert and a
questionnaire after a stay — and, for the demo child, her two parents and her care team.

Each seeder is idempotent (it finds its own content again), so this runs at every ``hygie demo``
and brings an older demo folder up to date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hygie.demo import (
    ens_agenda,
    ens_documents,
    ens_family,
    ens_messages,
    ens_prescriptions,
    ens_profile,
    ens_vitals,
)
from hygie.demo.accounts import first_resource

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["seed_spaces"]

# what every demo citizen's space gets, in order (messages after documents: a message may attach one)
ADULT_SEEDERS: tuple[Any, ...] = (
    ens_profile,
    ens_documents,
    ens_vitals,
    ens_prescriptions,
    ens_agenda,
    ens_messages,
)


def _gp_of(patient: dict[str, Any]) -> str | None:
    for ref in patient.get("generalPractitioner") or []:
        reference = str(ref.get("reference", "")) if isinstance(ref, dict) else ""
        if reference.startswith("Practitioner/"):
            return reference.split("/", 1)[1]
    return None


async def seed_spaces(runtime: Runtime) -> int:
    """Seed every demo citizen's space; return how many spaces were seeded."""
    from hygie.demo.generator import DEMO_CITIZENS  # noqa: PLC0415

    seeded = 0
    for citizen in DEMO_CITIZENS:
        patient = await first_resource(runtime.service, "Patient", [("identifier", citizen.ins)])
        if patient is None:
            continue
        patient_id, gp = str(patient["id"]), _gp_of(dict(patient))
        seeders: tuple[Any, ...] = ADULT_SEEDERS
        if citizen.ins == ens_family.LEA_INS:
            # a child: her parents and care team; no trusted person or advance directives
            await ens_family.seed_demo(runtime, patient_id, gp)
            seeders = tuple(s for s in ADULT_SEEDERS if s is not ens_profile)
        for seeder in seeders:
            await seeder.seed_demo(runtime, patient_id, gp)
        seeded += 1
    return seeded
