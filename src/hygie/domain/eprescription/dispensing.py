"""What a pharmacy may still hand over on a prescription line — pure arithmetic, and the
``MedicationDispense`` that records what it did (digest §8).

A line allows ``1 + numberOfRepeatsAllowed`` deliveries of ``dispenseRequest.quantity`` packs
each. Packs are counted across the line's ``MedicationDispense`` (``completed`` and
``in-progress`` ones; ``declined`` ones hand nothing over): a delivery may be made in several
parts (the pharmacy lacks stock), and the parts add up to one full delivery. Rules:

* one dispense covers at most what the current delivery still lacks: a pharmacy never hands over
  two deliveries at once, nor more than the prescription allows in total;
* the dispense that makes the delivery whole is ``completed``, a part of it ``in-progress`` —
  so the number of ``completed`` dispenses is the number of full deliveries, which is how the
  citizen's space counts them (``domain/ens/prescriptions.py``);
* its ``type`` says which delivery it is (v3 ActPharmacySupplyType: ``FF`` first fill, ``FFP``
  a part of it, ``FFC`` the part that completes it; ``RF``/``RFP``/``RFC`` for renewals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from hygie.domain.eprescription.medicines import Catalogue, Medicine

__all__ = [
    "ACT_CODE",
    "COUNTED_STATUSES",
    "SUBSTITUTION_SYSTEM",
    "DispenseRefused",
    "Fill",
    "LineProgress",
    "by_line",
    "check_substitute",
    "dispense_resource",
    "handed_over",
    "line_state",
    "plan_fill",
    "progress_of",
    "supply_days",
    "validity_of",
]

ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SUBSTITUTION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
COUNTED_STATUSES: Final = frozenset({"completed", "in-progress"})
_FILL_DISPLAY: Final = {
    "FF": "First Fill",
    "FFP": "First Fill - Part Fill",
    "FFC": "First Fill - Complete",
    "RF": "Refill",
    "RFP": "Refill - Part Fill",
    "RFC": "Refill - Complete",
}


class DispenseRefused(ValueError):
    """A line that cannot be handed over as asked (the message is for the pharmacist)."""

    def __init__(self, message: str, field: str = "quantity") -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class LineProgress:
    """Where a line stands: packs per delivery, deliveries allowed, packs handed over so far."""

    per_delivery: int
    deliveries_allowed: int  # 1 + numberOfRepeatsAllowed
    handed: int = 0

    @property
    def total_allowed(self) -> int:
        return self.per_delivery * self.deliveries_allowed

    @property
    def exhausted(self) -> bool:
        return self.handed >= self.total_allowed

    @property
    def full_deliveries(self) -> int:
        return min(self.handed // self.per_delivery, self.deliveries_allowed)

    @property
    def in_current(self) -> int:
        """Packs already handed over for the delivery under way (0: none is under way)."""
        return 0 if self.exhausted else self.handed % self.per_delivery

    @property
    def lacking(self) -> int:
        """Packs the current (or next) delivery still needs; 0 when all deliveries were made."""
        return 0 if self.exhausted else self.per_delivery - self.in_current

    @property
    def deliveries_remaining(self) -> int:
        """Deliveries not yet complete (the one under way included)."""
        return self.deliveries_allowed - self.full_deliveries

    @property
    def renewals_remaining(self) -> int:
        """Renewals not yet begun (the first delivery is not a renewal)."""
        begun = self.full_deliveries + (1 if self.in_current else 0)
        return max(0, self.deliveries_allowed - max(1, begun))


@dataclass(frozen=True, slots=True)
class Fill:
    """One dispense as planned: its status, its ``type`` code, the packs and the days they cover."""

    status: str  # completed | in-progress
    fill_type: str
    quantity: int
    days_supply: int

    @property
    def fill_display(self) -> str:
        return _FILL_DISPLAY[self.fill_type]


def handed_over(dispenses: Iterable[Mapping[str, Any]]) -> int:
    """Packs handed over by these dispenses (those counted: completed and in-progress)."""
    total = 0
    for dispense in dispenses:
        if dispense.get("status") not in COUNTED_STATUSES:
            continue
        value = (dispense.get("quantity") or {}).get("value")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            total += int(value)
    return total


def plan_fill(progress: LineProgress, quantity: object, duration_days: int) -> Fill:
    """The dispense of ``quantity`` packs on a line at ``progress``, or :class:`DispenseRefused`."""
    if progress.exhausted:
        renewals = progress.deliveries_allowed - 1
        allowed = "sans renouvellement" if renewals == 0 else f"renouvellements compris ({renewals})"
        raise DispenseRefused(
            f"Cette ligne a déjà été entièrement délivrée : {progress.deliveries_allowed} "
            f"délivrance{'s' if progress.deliveries_allowed > 1 else ''} {allowed}."
        )
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int | float)
        or not float(quantity).is_integer()
    ):
        raise DispenseRefused("La quantité délivrée est un nombre entier de boîtes.")
    count = int(quantity)
    if count <= 0:
        raise DispenseRefused("La quantité délivrée doit être d'au moins une boîte.")
    if count > progress.lacking:
        if progress.in_current:
            why = f"il reste {progress.lacking} boîte(s) à délivrer pour compléter la délivrance en cours"
        else:
            why = f"une délivrance compte {progress.per_delivery} boîte(s)"
        raise DispenseRefused(f"Quantité trop grande ({count}) : {why}.")
    first = progress.full_deliveries == 0
    completes = count == progress.lacking
    if completes:
        code = ("FFC" if first else "RFC") if progress.in_current else ("FF" if first else "RF")
    else:
        code = "FFP" if first else "RFP"
    days = max(1, round(duration_days * count / progress.per_delivery))
    return Fill("completed" if completes else "in-progress", code, count, days)


def dispense_resource(
    request: Mapping[str, Any],
    *,
    fill: Fill | None,
    handed_at: str,
    pharmacist: Mapping[str, str],
    pharmacy: Mapping[str, str] | None,
    medication: Mapping[str, Any] | None = None,
    substitution_reason: str | None = None,
    not_delivered: str | None = None,
) -> dict[str, Any]:
    """The ``MedicationDispense`` of one line: a fill (``fill``), or nothing handed over with its
    reason (``not_delivered``, status ``declined``). ``medication`` is the generic handed over in
    place of the prescribed medicine."""
    performers: list[dict[str, Any]] = []
    if pharmacy:  # first: the citizen's space names the pharmacy from the first performer
        performers.append({"actor": dict(pharmacy)})
    performers.append(
        {
            "function": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function",
                        "code": "finalchecker",
                    }
                ]
            },
            "actor": dict(pharmacist),
        }
    )
    dispense: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "status": "declined" if fill is None else fill.status,
        "medicationCodeableConcept": dict(medication or request.get("medicationCodeableConcept") or {}),
        "subject": dict(request.get("subject") or {}),
        "performer": performers,
        "authorizingPrescription": [{"reference": f"MedicationRequest/{request.get('id')}"}],
    }
    if fill is None:
        dispense["statusReasonCodeableConcept"] = {"text": not_delivered or "Non délivré"}
        dispense["substitution"] = {"wasSubstituted": False}
        return dispense
    unit = str(((request.get("dispenseRequest") or {}).get("quantity") or {}).get("unit") or "boîte")
    dispense["type"] = {
        "coding": [{"system": ACT_CODE, "code": fill.fill_type, "display": fill.fill_display}]
    }
    dispense["quantity"] = {"value": fill.quantity, "unit": unit}
    dispense["daysSupply"] = {
        "value": fill.days_supply,
        "unit": "jours" if fill.days_supply > 1 else "jour",
        "system": "http://unitsofmeasure.org",
        "code": "d",
    }
    dispense["whenHandedOver"] = handed_at
    if request.get("dosageInstruction"):
        dispense["dosageInstruction"] = request["dosageInstruction"]
    if medication is not None:
        substitution: dict[str, Any] = {
            "wasSubstituted": True,
            "type": {
                "coding": [{"system": SUBSTITUTION_SYSTEM, "code": "G", "display": "generic composition"}]
            },
        }
        if substitution_reason:
            substitution["reason"] = [{"text": substitution_reason}]
        dispense["substitution"] = substitution
    else:
        dispense["substitution"] = {"wasSubstituted": False}
    return dispense


# -- the pharmacy's reading of stored lines --------------------------------------------------------


def progress_of(line: Mapping[str, Any], dispenses: Iterable[Mapping[str, Any]]) -> LineProgress:
    """Where a stored ``MedicationRequest`` stands, given its dispenses."""
    dispense_request = line.get("dispenseRequest") or {}
    per = (dispense_request.get("quantity") or {}).get("value")
    repeats = dispense_request.get("numberOfRepeatsAllowed")
    return LineProgress(
        int(per) if isinstance(per, int | float) and not isinstance(per, bool) and per >= 1 else 1,
        1 + (repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats >= 0 else 0),
        handed_over(dispenses),
    )


def supply_days(line: Mapping[str, Any]) -> int:
    """The days one delivery covers (``expectedSupplyDuration``; 30 when the line does not say)."""
    value = ((line.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}).get("value")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 30


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def validity_of(lines: Sequence[Mapping[str, Any]]) -> tuple[date | None, date | None]:
    """The prescription's validity (first day, last day): the narrowest over its lines."""
    starts, ends = [], []
    for line in lines:
        period = (line.get("dispenseRequest") or {}).get("validityPeriod") or {}
        start, end = _day(period.get("start")), _day(period.get("end"))
        if start:
            starts.append(start)
        if end:
            ends.append(end)
    return (max(starts) if starts else None), (min(ends) if ends else None)


def line_state(line: Mapping[str, Any], progress: LineProgress, expired: bool) -> str:
    """A line's state in the pharmacist's words."""
    status = line.get("status")
    if status != "active":
        return {"cancelled": "annulée", "stopped": "arrêtée", "entered-in-error": "annulée"}.get(
            str(status), "non délivrable"
        )
    if progress.exhausted:
        return "entièrement délivrée"
    if expired:
        return "expirée"
    if progress.handed:
        return "délivrée en partie"
    return "à délivrer"


def by_line(dispenses: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Dispenses by the id of the line they fill, oldest first."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for d in dispenses:
        for ref in d.get("authorizingPrescription") or []:
            reference = str((ref or {}).get("reference", ""))
            if reference.startswith("MedicationRequest/"):
                out.setdefault(reference.split("/", 1)[1], []).append(d)
    for items in out.values():
        items.sort(key=lambda d: (str(d.get("whenHandedOver") or ""), str(d.get("id"))))
    return out


def check_substitute(catalogue: Catalogue, line: Mapping[str, Any], code: str) -> Medicine:
    """The generic handed over in place of the prescribed medicine (same substance, strength and
    unit of dose), or :class:`DispenseRefused` (``non substituable``, unknown, not a generic)."""
    if (line.get("substitution") or {}).get("allowedBoolean") is False:
        raise DispenseRefused(
            "Le prescripteur a indiqué « non substituable » pour cette ligne.", "substitute"
        )
    generic = catalogue.find(code)
    if generic is None:
        raise DispenseRefused(f"Médicament inconnu : « {code} ».", "substitute")
    codings = (line.get("medicationCodeableConcept") or {}).get("coding") or []
    prescribed = next(
        (
            found
            for c in codings
            if isinstance(c, dict) and (found := catalogue.by_cip13(str(c.get("code") or ""))) is not None
        ),
        None,
    )
    if prescribed is None:
        raise DispenseRefused(
            "Le médicament prescrit n'est pas dans la liste : substitution impossible.", "substitute"
        )
    if generic.cip13 == prescribed.cip13:
        raise DispenseRefused("C'est le médicament prescrit : ce n'est pas une substitution.", "substitute")
    if (generic.atc, generic.strength, generic.unit) != (
        prescribed.atc,
        prescribed.strength,
        prescribed.unit,
    ):
        raise DispenseRefused(
            f"{generic.name} n'est pas substituable à {prescribed.name} (substance, dosage ou forme différents).",
            "substitute",
        )
    return generic
