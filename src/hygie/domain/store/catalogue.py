"""An app of the catalogue, its referencing process and its public changelog.

**What an app record holds** (the publisher's declaration): name, description, publisher,
category per CNNum 8 — ``1`` direct impact on the patient's health, a medical device (with its
CE class), ``2`` organisation and efficiency of care (booking, logistics), ``3`` neither
(wellness) —, audience (citizens, professionals, both), launch mode (a contextual widget in the
portal, or standalone), its SMART registration (redirect URIs, requested scopes, JWKS), the hosts
it runs on, the purpose it states to the people who connect it, its business model, its
reimbursement status and whether professionals may prescribe it, and its assessment against the
criteria grid.

**The graduated process.** An app that neither is a medical device nor touches the person's
record (no resource scope) follows the **self-assessment** path: one answer per applicable
criterion, the publisher's signed commitment, then listing at once — the authority samples such
apps afterwards (audit campaigns). Any other app (a medical device, or access to record data)
needs an **a-priori evaluation**: evidence for every mandatory criterion, independent test
results where the grid asks for a test, and a review by the authority, which lists it — with
data exchange when it approves its access to the record.

**States** — ``draft``, ``submitted``, ``under_review``, ``listed``, ``listed_data`` (listed with
data exchange), ``suspended``, ``delisted`` — change only through :func:`transition`; every change
appends a dated entry to the app's **public changelog**, written with the state in one record so
that one is never without the other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from hygie.domain.store.grid import Grid

__all__ = [
    "AUDIENCES",
    "BUSINESS_MODELS",
    "CATEGORIES",
    "CE_CLASSES",
    "EVENTS",
    "LAUNCH_MODES",
    "LISTED",
    "REIMBURSEMENT",
    "STATES",
    "App",
    "Assessment",
    "CatalogueFilters",
    "ChangelogEntry",
    "TransitionRefused",
    "declared_hosts",
    "pathway",
    "search_catalogue",
    "siret_valid",
    "submission_problems",
    "transition",
]

CATEGORIES = {
    "1": "Impact direct sur la santé — dispositif médical",
    "2": "Organisation et efficience des soins",
    "3": "Bien-être",
}
CE_CLASSES = ("I", "IIa", "IIb", "III")
AUDIENCES = {"citoyens": "Particuliers", "professionnels": "Professionnels de santé", "tous": "Tous"}
LAUNCH_MODES = {
    "widget": "Depuis l’espace de santé (lancement dans le contexte du dossier)",
    "autonome": "Application autonome (connexion depuis l’application)",
}
BUSINESS_MODELS = {
    "gratuit": "Gratuit",
    "abonnement": "Abonnement payé par l’usager",
    "licence": "Licence payée par l’établissement ou le professionnel",
    "public": "Financement public",
    "rembourse": "Pris en charge par l’Assurance Maladie",
}
REIMBURSEMENT = {
    "non": "Non remboursée",
    "pecan": "Prise en charge anticipée (PECAN)",
    "lppr": "Remboursée (liste des produits et prestations)",
    "telesurveillance": "Remboursée (activité de télésurveillance)",
}
STATES = {
    "draft": "Brouillon",
    "submitted": "Soumise",
    "under_review": "En cours d’évaluation",
    "listed": "Référencée",
    "listed_data": "Référencée avec échange de données",
    "suspended": "Suspendue",
    "delisted": "Déréférencée",
}
LISTED = frozenset({"listed", "listed_data"})
PATHWAYS = {"auto": "Auto-évaluation", "evaluation": "Évaluation a priori"}

# event -> (states it applies to, French words of the changelog)
EVENTS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({"draft"}), "Soumise au référencement"),
    "list_self": (frozenset({"submitted"}), "Référencée après auto-évaluation"),
    "take": (frozenset({"submitted"}), "Évaluation a priori commencée"),
    "approve": (frozenset({"under_review"}), "Référencée après évaluation"),
    "approve_data": (frozenset({"under_review"}), "Référencée avec échange de données après évaluation"),
    "return": (frozenset({"under_review", "submitted"}), "Renvoyée à l’éditeur pour compléments"),
    "keep": (LISTED, "Contrôle : maintenue"),
    "warn": (LISTED, "Contrôle : avertissement"),
    "suspend": (LISTED, "Suspendue"),
    "reinstate": (frozenset({"suspended"}), "Rétablie"),
    "delist": (frozenset({"listed", "listed_data", "suspended"}), "Déréférencée"),
    "downgrade": (frozenset({"listed_data"}), "Échange de données retiré : contrôles techniques en échec"),
    "restore": (
        frozenset({"listed"}),
        "Échange de données rétabli : contrôles techniques de nouveau réussis",
    ),
}
_TARGET = {
    "submit": "submitted",
    "list_self": "listed",
    "take": "under_review",
    "approve": "listed",
    "approve_data": "listed_data",
    "return": "draft",
    "suspend": "suspended",
    "delist": "delisted",
    "downgrade": "listed",
    "restore": "listed_data",
}

_SIRET = re.compile(r"\d{14}")
# a host name (or an IPv4 literal, or localhost: refused by the address guard outside tests)
_HOST = re.compile(
    r"^((?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}|\d{1,3}(\.\d{1,3}){3}|localhost)$"
)


class TransitionRefused(ValueError):
    """A state change the process does not allow (in French, for the page)."""


def siret_valid(siret: str) -> bool:
    """A SIRET: 14 digits with a Luhn key (La Poste's establishments excepted: the sum of the
    digits is a multiple of 5)."""
    digits = siret.replace(" ", "")
    if not _SIRET.fullmatch(digits):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0 or (digits.startswith("356000000") and sum(map(int, digits)) % 5 == 0)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The publisher's answer on one criterion."""

    met: bool = False
    evidence: str = ""  # what shows it: a text, a link to a document
    test: str = ""  # an independent test: laboratory, date, reference and result

    def to_json(self) -> dict[str, Any]:
        return {"met": self.met, "evidence": self.evidence, "test": self.test}


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    at: int  # µs
    event: str
    before: str
    after: str
    by: str  # who, as the public reads it ("L’éditeur", "Agence du numérique en santé"…)
    note: str = ""

    @property
    def label(self) -> str:
        return EVENTS[self.event][1] if self.event in EVENTS else self.event

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "event": self.event,
            "before": self.before,
            "after": self.after,
            "by": self.by,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class App:
    id: str
    publisher_id: str
    name: str
    summary: str = ""  # one sentence for the catalogue's card
    description: str = ""
    category: str = "3"
    ce_class: str = ""  # a medical device's class
    audience: str = "citoyens"
    launch_mode: str = "autonome"
    website: str = ""
    launch_url: str = ""
    redirect_uris: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    scopes: str = ""  # the SMART scopes it declares (and will be registered with)
    jwks: dict[str, Any] | None = None
    purpose: str = ""  # what the data is for, in the app's words, on the consent screen
    max_days: int = 365  # the longest authorisation a person may give it
    business_model: str = "gratuit"
    reimbursement: str = "non"
    prescribable: bool = False
    state: str = "draft"
    suspended_from: str = ""  # the listed state a suspension came from
    grid_version: int = 0  # the grid it was assessed against (at submission)
    assessment: Mapping[str, Assessment] = field(default_factory=dict)
    commitment: Mapping[str, Any] | None = None  # {"by", "at", "text"}: the signed self-assessment
    client_id: str = ""  # its SMART registration, once listed with data exchange
    created: int = 0
    updated: int = 0
    listed_at: int = 0
    last_audit: int = 0  # the last a-posteriori audit decision (µs)
    checks: tuple[Mapping[str, Any], ...] = ()  # the last probe results
    checked_at: int = 0
    changelog: tuple[ChangelogEntry, ...] = ()
    review_note: str = ""  # the reviewer's last words to the publisher

    @property
    def data_access(self) -> bool:
        """Whether it asks to read or write the person's record (a resource scope)."""
        return any("/" in s and not s.startswith("launch") for s in self.scopes.split())

    @property
    def listed(self) -> bool:
        return self.state in LISTED

    @property
    def state_label(self) -> str:
        return STATES.get(self.state, self.state)

    @property
    def category_label(self) -> str:
        return CATEGORIES.get(self.category, self.category)

    def for_audience(self, audience: str) -> bool:
        """Whether the catalogue of ``audience`` ("citoyens" / "professionnels") shows it."""
        return self.audience in (audience, "tous")

    def met(self, criterion_id: str) -> bool:
        answer = self.assessment.get(criterion_id)
        return answer is not None and answer.met

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "publisher_id": self.publisher_id,
            "name": self.name,
            "summary": self.summary,
            "description": self.description,
            "category": self.category,
            "ce_class": self.ce_class,
            "audience": self.audience,
            "launch_mode": self.launch_mode,
            "website": self.website,
            "launch_url": self.launch_url,
            "redirect_uris": list(self.redirect_uris),
            "hosts": list(self.hosts),
            "scopes": self.scopes,
            "jwks": self.jwks,
            "purpose": self.purpose,
            "max_days": self.max_days,
            "business_model": self.business_model,
            "reimbursement": self.reimbursement,
            "prescribable": self.prescribable,
            "state": self.state,
            "suspended_from": self.suspended_from,
            "grid_version": self.grid_version,
            "assessment": {k: v.to_json() for k, v in self.assessment.items()},
            "commitment": dict(self.commitment) if self.commitment else None,
            "client_id": self.client_id,
            "created": self.created,
            "updated": self.updated,
            "listed_at": self.listed_at,
            "last_audit": self.last_audit,
            "checks": [dict(c) for c in self.checks],
            "checked_at": self.checked_at,
            "changelog": [e.to_json() for e in self.changelog],
            "review_note": self.review_note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> App:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["redirect_uris"] = tuple(data.get("redirect_uris") or ())
        values["hosts"] = tuple(data.get("hosts") or ())
        values["assessment"] = {
            str(k): Assessment(bool(v.get("met")), str(v.get("evidence") or ""), str(v.get("test") or ""))
            for k, v in (data.get("assessment") or {}).items()
        }
        values["checks"] = tuple(data.get("checks") or ())
        values["changelog"] = tuple(ChangelogEntry(**e) for e in data.get("changelog") or ())
        return cls(**values)


def pathway(app: App) -> str:
    """``auto`` (self-assessment then listing) or ``evaluation`` (a-priori evaluation by the
    authority): a medical device, or any access to the person's record, needs the evaluation."""
    return "evaluation" if app.category == "1" or app.data_access else "auto"


def submission_problems(app: App, grid: Grid) -> list[tuple[str, str]]:
    """What keeps the app from being submitted, as (form field, French message) — everything at
    once, so the form can say each beside its field. Empty: it may be submitted."""
    problems: list[tuple[str, str]] = []
    if not app.name.strip():
        problems.append(("nom", "Indiquez le nom de l’application."))
    if len(app.summary.strip()) < 10:
        problems.append(("resume", "Décrivez l’application en une phrase (10 caractères au moins)."))
    if not app.description.strip():
        problems.append(("description", "Décrivez ce que fait l’application et pour qui."))
    if app.category not in CATEGORIES:
        problems.append(("categorie", "Choisissez la catégorie de l’application."))
    if app.category == "1" and app.ce_class not in CE_CLASSES:
        problems.append(("classe_ce", "Un dispositif médical indique sa classe CE (I, IIa, IIb ou III)."))
    if app.audience not in AUDIENCES:
        problems.append(("public", "Choisissez à qui s’adresse l’application."))
    if app.launch_mode not in LAUNCH_MODES:
        problems.append(("lancement", "Choisissez comment l’application se lance."))
    if not app.website.startswith("https://"):
        problems.append(("site", "Indiquez l’adresse https du site de l’application."))
    if app.business_model not in BUSINESS_MODELS:
        problems.append(("modele", "Indiquez le modèle économique."))
    if app.reimbursement not in REIMBURSEMENT:
        problems.append(("remboursement", "Indiquez la situation de remboursement."))
    if not app.hosts:
        problems.append(("hotes", "Déclarez au moins un nom d’hôte où l’application fonctionne."))
    problems.extend(
        ("hotes", f"« {host} » n’est pas un nom d’hôte (exemple : app.exemple.fr).")
        for host in app.hosts
        if not _HOST.match(host)
    )
    if app.data_access:
        if not app.redirect_uris:
            problems.append(
                ("redirections", "Une application qui accède au dossier déclare ses adresses de retour.")
            )
        if not app.purpose.strip():
            problems.append(
                ("finalite", "Dites à quoi serviront les données : la personne le lira avant d’accepter.")
            )
        if app.launch_mode == "widget" and not app.launch_url:
            problems.append(("adresse_lancement", "Un widget indique son adresse de lancement SMART."))
    if not 1 <= app.max_days <= 3650:
        problems.append(("duree", "La durée maximale d’autorisation va de 1 à 3 650 jours."))
    evaluated = pathway(app) == "evaluation"
    for criterion in grid.required(app.category, app.data_access):
        answer = app.assessment.get(criterion.id)
        field_name = f"critere-{criterion.id}"
        if answer is None or not answer.met:
            problems.append(
                (field_name, f"{criterion.id} « {criterion.title} » est exigé : cochez-le et justifiez-le.")
            )
            continue
        if evaluated and not answer.evidence.strip():
            problems.append(
                (field_name, f"{criterion.id} : joignez la preuve (document, lien) exigée pour l’évaluation.")
            )
        if evaluated and criterion.evidence == "test" and not answer.test.strip():
            problems.append(
                (
                    f"test-{criterion.id}",
                    f"{criterion.id} : indiquez le laboratoire, la date et le résultat du test indépendant.",
                )
            )
    if not evaluated and not app.commitment:
        problems.append(("engagement", "Signez l’engagement de l’éditeur (nom et fonction du signataire)."))
    return problems


def transition(app: App, event: str, *, at: int, by: str, note: str = "") -> App:
    """The app after ``event`` (with its changelog entry), or :class:`TransitionRefused`."""
    if event not in EVENTS:
        raise TransitionRefused(f"Action inconnue : {event}.")
    allowed, _ = EVENTS[event]
    if app.state not in allowed:
        raise TransitionRefused(
            f"Impossible depuis l’état « {app.state_label} » : {EVENTS[event][1].lower()}."
        )
    if event in ("suspend", "delist", "return", "warn") and not note.strip():
        raise TransitionRefused("Motivez la décision : elle est publiée dans l’historique de l’application.")
    after = (app.suspended_from or "listed") if event == "reinstate" else _TARGET.get(event, app.state)
    changes: dict[str, Any] = {"state": after, "updated": at}
    if event == "suspend":
        changes["suspended_from"] = app.state
    if after in LISTED and app.state not in LISTED and event not in ("restore", "downgrade", "reinstate"):
        changes["listed_at"] = at
    if event in ("keep", "warn", "suspend", "delist"):
        changes["last_audit"] = at
    if event == "return":
        changes["review_note"] = note
    entry = ChangelogEntry(at, event, app.state, after, by, note.strip())
    return replace(app, changelog=(*app.changelog, entry), **changes)


def declared_hosts(values: Sequence[str]) -> tuple[str, ...]:
    """Host names from a form (one per line or comma-separated), lower-cased, without duplicates."""
    out: list[str] = []
    for value in values:
        for part in re.split(r"[\s,]+", value):
            host = part.strip().lower().rstrip(".")
            if host and host not in out:
                out.append(host)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CatalogueFilters:
    """What a person looks for in the catalogue (every field optional)."""

    q: str = ""
    category: str = ""
    level: str = ""  # listed | listed_data
    criterion: str = ""  # a criterion the app meets
    reimbursed: bool = False
    prescribable: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CatalogueFilters:
        def pick(name: str, allowed: Iterable[str]) -> str:
            value = str(query.get(name, "")).strip()
            return value if value in set(allowed) else ""

        return cls(
            q=" ".join(str(query.get("q", "")).split())[:100],
            category=pick("categorie", CATEGORIES),
            level=pick("niveau", LISTED),
            criterion=str(query.get("critere", "")).strip()[:20],
            reimbursed=query.get("rembourse") == "oui",
            prescribable=query.get("prescriptible") == "oui",
        )

    def to_query(self) -> dict[str, str]:
        out = {"q": self.q, "categorie": self.category, "niveau": self.level, "critere": self.criterion}
        if self.reimbursed:
            out["rembourse"] = "oui"
        if self.prescribable:
            out["prescriptible"] = "oui"
        return {k: v for k, v in out.items() if v}


@lru_cache(maxsize=16_384)
def _folded(text: str) -> str:
    """Lower case without accents (an app's words are folded once, not at every search)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def search_catalogue(
    apps: Iterable[App], audience: str, filters: CatalogueFilters, publishers: Mapping[str, str] | None = None
) -> list[App]:
    """The listed apps an audience sees that match ``filters``: every word of ``q`` in the name,
    summary, description or the publisher's name (``publishers``: id -> name; accents and case
    ignored), by name."""
    names = publishers or {}
    words = _folded(filters.q).split()
    out = []
    for app in apps:
        if not app.listed or not app.for_audience(audience):
            continue
        if filters.category and app.category != filters.category:
            continue
        if filters.level and app.state != filters.level:
            continue
        if filters.criterion and not app.met(filters.criterion):
            continue
        if filters.reimbursed and app.reimbursement == "non":
            continue
        if filters.prescribable and not app.prescribable:
            continue
        if words:
            haystack = _folded(
                f"{app.name} {app.summary} {app.description} {names.get(app.publisher_id, '')}"
            )
            if not all(w in haystack for w in words):
                continue
        out.append(app)
    return sorted(out, key=lambda a: (a.name.casefold(), a.id))
