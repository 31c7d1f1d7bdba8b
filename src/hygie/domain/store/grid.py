"""The referencing criteria grid: what an app must show to be listed, by category and data access.

The grid is **data**, versioned, revisable by the authority (CNNum recommendation 9): the four
families of the common base — ethics, users' rights and data protection, security, urbanisation
and interoperability — plus CNNum 9's additions (medical utility and interest, accessibility,
digital inclusion, environmental responsibility, reliability of information, a virtuous business
model). Version 1 ships with the code (``grid.json``); the authority publishes a new version
(``hygie store grille-publier`` or the authorities' back office), which applies to submissions made from then on —
an app keeps the version it was assessed against, so that its evaluation can be re-read as it was.

Each criterion has a **requirement level** per app category (CNNum 8: ``1`` direct impact on
health, a medical device; ``2`` organisation and efficiency of care; ``3`` neither, wellness) —
``exige`` (mandatory), ``recommande`` (recommended), ``sans_objet`` (not applicable) — and may be
raised to a level when the app accesses the person's record (``with_data``). Each also says what
evidence it takes: the publisher's signed **engagement**, a **preuve** (a document or link), or
the result of an independent **test** (the laboratory and its report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "CATEGORY_CODES",
    "EVIDENCE",
    "LEVELS",
    "Criterion",
    "Family",
    "Grid",
    "GridError",
    "shipped_grid",
]

CATEGORY_CODES = ("1", "2", "3")
LEVELS = {"exige": "Exigé", "recommande": "Recommandé", "sans_objet": "Sans objet"}
_RANK = {"sans_objet": 0, "recommande": 1, "exige": 2}
EVIDENCE = {
    "engagement": "Engagement signé de l’éditeur",
    "preuve": "Pièce justificative",
    "test": "Résultat d’un test indépendant",
}


class GridError(ValueError):
    """A grid that cannot be published: each message names the faulty place."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Family:
    code: str
    label: str
    origin: str  # "socle" (the common base) or "cnnum-9"


@dataclass(frozen=True, slots=True)
class Criterion:
    id: str
    family: str
    title: str
    requirement: str
    evidence: str  # engagement | preuve | test
    levels: Mapping[str, str]  # category -> level
    with_data: str | None  # the level when the app accesses the record (never lowers)

    def level(self, category: str, data_access: bool) -> str:
        base = self.levels.get(category, "sans_objet")
        if data_access and self.with_data and _RANK[self.with_data] > _RANK[base]:
            return self.with_data
        return base


@dataclass(frozen=True, slots=True)
class Grid:
    version: int
    published: str
    note: str
    families: tuple[Family, ...]
    criteria: tuple[Criterion, ...]

    def criterion(self, criterion_id: str) -> Criterion | None:
        return next((c for c in self.criteria if c.id == criterion_id), None)

    def family_label(self, code: str) -> str:
        return next((f.label for f in self.families if f.code == code), code)

    def applicable(self, category: str, data_access: bool) -> list[tuple[Criterion, str]]:
        """The criteria that apply to such an app, with their level (mandatory ones first)."""
        found = [(c, c.level(category, data_access)) for c in self.criteria]
        applicable = [(c, level) for c, level in found if level != "sans_objet"]
        return sorted(applicable, key=lambda cl: (-_RANK[cl[1]], cl[0].id))

    def required(self, category: str, data_access: bool) -> list[Criterion]:
        return [c for c, level in self.applicable(category, data_access) if level == "exige"]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "published": self.published,
            "note": self.note,
            "families": [{"code": f.code, "label": f.label, "origin": f.origin} for f in self.families],
            "criteria": [
                {
                    "id": c.id,
                    "family": c.family,
                    "title": c.title,
                    "requirement": c.requirement,
                    "evidence": c.evidence,
                    "levels": dict(c.levels),
                    "with_data": c.with_data,
                }
                for c in self.criteria
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grid:
        """A grid from its JSON form, checked whole: every problem is reported at once."""
        problems: list[str] = []
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            problems.append("version : un entier positif est attendu")
            version = 0
        families: list[Family] = []
        for i, f in enumerate(data.get("families") or []):
            if not isinstance(f, dict) or not f.get("code") or not f.get("label"):
                problems.append(f"families[{i}] : code et libellé sont obligatoires")
                continue
            families.append(Family(str(f["code"]), str(f["label"]), str(f.get("origin") or "socle")))
        if not families:
            problems.append("families : au moins une famille est attendue")
        codes = {f.code for f in families}
        criteria: list[Criterion] = []
        seen: set[str] = set()
        for i, c in enumerate(data.get("criteria") or []):
            where = f"criteria[{i}]"
            if not isinstance(c, dict):
                problems.append(f"{where} : un objet est attendu")
                continue
            cid = str(c.get("id") or "")
            if not cid or cid in seen:
                problems.append(f"{where}.id : identifiant absent ou en double ({cid!r})")
            seen.add(cid)
            if c.get("family") not in codes:
                problems.append(f"{where}.family : famille inconnue {c.get('family')!r}")
            if not c.get("title") or not c.get("requirement"):
                problems.append(f"{where} : titre et exigence sont obligatoires")
            if c.get("evidence") not in EVIDENCE:
                problems.append(f"{where}.evidence : {c.get('evidence')!r} n’est pas {', '.join(EVIDENCE)}")
            levels = c.get("levels") or {}
            if not isinstance(levels, dict) or set(levels) != set(CATEGORY_CODES):
                problems.append(f"{where}.levels : un niveau pour chacune des catégories 1, 2 et 3")
                levels = {}
            bad = [v for v in levels.values() if v not in LEVELS]
            if bad:
                problems.append(f"{where}.levels : niveau inconnu {bad[0]!r}")
            with_data = c.get("with_data")
            if with_data is not None and with_data not in LEVELS:
                problems.append(f"{where}.with_data : niveau inconnu {with_data!r}")
            criteria.append(
                Criterion(
                    cid,
                    str(c.get("family") or ""),
                    str(c.get("title") or ""),
                    str(c.get("requirement") or ""),
                    str(c.get("evidence") or ""),
                    {str(k): str(v) for k, v in levels.items()},
                    with_data,
                )
            )
        if not criteria:
            problems.append("criteria : au moins un critère est attendu")
        if problems:
            raise GridError(problems)
        return cls(
            version,
            str(data.get("published") or ""),
            str(data.get("note") or ""),
            tuple(families),
            tuple(criteria),
        )


@cache
def shipped_grid() -> Grid:
    """Version 1, as shipped with the code."""
    return Grid.from_json(orjson.loads((Path(__file__).parent / "grid.json").read_bytes()))
