"""A-posteriori audit campaigns: which listed apps to audit, sampled by risk.

Every listed app may be drawn; the riskier it is, the likelier: its category (a medical device
weighs most), its access to the person's record, the reports filed about it (open ones weigh
more), and the time since its last audit (or its listing) — an app nobody has looked at for a
year rises in the draw. The weight is explained term by term, so an auditor sees why an app was
drawn.

The draw is weighted sampling without replacement (Efraimidis–Spirakis: each app gets the key
``u ** (1 / weight)`` for a uniform ``u``, the ``k`` largest keys win), from a seed recorded with
the campaign: anyone can replay the draw and find the same apps.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hygie.domain.store.catalogue import App

__all__ = ["Risk", "draw", "risk_of"]

_DAY_US = 86_400 * 1_000_000
_CATEGORY_WEIGHT = {"1": 3.0, "2": 1.5, "3": 1.0}


@dataclass(frozen=True, slots=True)
class Risk:
    app_id: str
    weight: float
    reasons: tuple[str, ...]  # French, one per term of the weight


def risk_of(app: App, *, now_us: int, open_reports: int = 0, closed_reports: int = 0) -> Risk:
    reasons = [f"catégorie {app.category} : ×{_CATEGORY_WEIGHT.get(app.category, 1.0):g}"]
    weight = _CATEGORY_WEIGHT.get(app.category, 1.0)
    if app.data_access:
        weight *= 2.0
        reasons.append("accès au dossier : ×2")
    if open_reports or closed_reports:
        bonus = 1.0 + 0.5 * open_reports + 0.2 * closed_reports
        weight *= bonus
        reasons.append(f"signalements ({open_reports} ouverts, {closed_reports} clos) : ×{bonus:.1f}")
    since = app.last_audit or app.listed_at or app.created
    days = max(0, (now_us - since) // _DAY_US) if since else 365
    age = 1.0 + min(days, 730) / 365
    weight *= age
    reasons.append(f"{days} jours sans contrôle : ×{age:.2f}")
    return Risk(app.id, round(weight, 4), tuple(reasons))


def draw(risks: Sequence[Risk], k: int, seed: int) -> list[Risk]:
    """``k`` apps drawn by weight without replacement (reproducible from ``seed``), heaviest
    keys first."""
    rng = random.Random(seed)
    keyed = [
        (rng.random() ** (1.0 / r.weight) if r.weight > 0 else 0.0, r)
        for r in sorted(risks, key=lambda r: r.app_id)
    ]
    keyed.sort(key=lambda kr: kr[0], reverse=True)
    return [r for _, r in keyed[: max(0, k)]]
