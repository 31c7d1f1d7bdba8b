"""ENS "Carnet de santé": allergies, medical and surgical history, treatments, vaccinations
(with the French schedule's due dates) and blood group.

Everything is read through the door as the signed-in person. Entries recorded by professionals
are shown with who recorded them and cannot be changed here — the access rules refuse it anyway
(an entry's recorder, asserter, performer, requester or source is its author:
``fhir/targets.py``). The person's own entries ("ajouté par vous") can be changed and removed.
The forms and resources are in :mod:`hygie.domain.ens.carnet`, the schedule in
:mod:`hygie.domain.ens.vaccination`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import carnet as rules
from hygie.domain.ens.vaccination import Due, due, schedule
from hygie.fhir.targets import target_of_resource
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]

PARIS = ZoneInfo("Europe/Paris")
_BLOOD = f"{rules.LOINC}|{rules.BLOOD_GROUP_LOINC}"
_FIELDS = {
    "allergie": ("substance", "autre", "categorie", "type", "gravite", "reaction", "debut"),
    "antecedent": ("maladie", "autre", "statut", "debut", "fin"),
    "chirurgie": ("operation", "autre", "date", "lieu"),
    "traitement": ("medicament", "posologie", "statut", "debut"),
    "vaccin": ("vaccin", "date", "lot"),
    "groupe-sanguin": ("groupe",),
}
_STATUS_LABELS = {
    "overdue": ("En retard", "fr-badge--error"),
    "due": ("À faire maintenant", "fr-badge--warning"),
    "due-soon": ("Bientôt", "fr-badge--info"),
    "upcoming": ("À venir", "fr-badge--new"),
    "done": ("Fait", "fr-badge--success"),
}


@dataclass(frozen=True, slots=True)
class Row:
    """An entry as a table shows it."""

    id: str
    kind: str
    title: str
    details: str
    day: str
    active: bool
    source: str  # "Ajouté par vous", "Enregistré par Dr Paul BERNARD"…
    own: bool


def routes(ens: Ens) -> list[BaseRoute]:
    def moment() -> datetime:
        return datetime.fromtimestamp(ens.clock() / 1_000_000, PARIS)

    async def birth_of(visitor: Visitor) -> date | None:
        patient = await ens.door.read(visitor.caller, "Patient", visitor.patient_id)
        raw = (patient or {}).get("birthDate")
        try:
            return date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
        except ValueError:
            return None

    async def names_of(visitor: Visitor, resources: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Practitioner names for the authors that carry no display."""
        wanted: set[str] = set()
        for r in resources:
            for ref in target_of_resource(str(r.get("resourceType")), visitor.patient_id, r).authors:
                if ref.startswith("Practitioner/"):
                    wanted.add(ref.split("/", 1)[1])
        if not wanted:
            return {}
        found = await ens.door.search(
            visitor.caller, "Practitioner", [("_id", ",".join(sorted(wanted)))], limit=len(wanted)
        )
        return {f"Practitioner/{p.get('id')}": person_name(p) for p in found}

    def source(visitor: Visitor, resource: dict[str, Any], names: dict[str, str]) -> tuple[str, bool]:
        authors = target_of_resource(str(resource.get("resourceType")), visitor.patient_id, resource).authors
        if visitor.actor_ref in authors:
            return "Ajouté par vous", True
        if visitor.patient_ref in authors:
            return f"Ajouté par {visitor.space.label}", False
        if any(a.startswith("RelatedPerson/") for a in authors):
            return "Ajouté par un proche", False
        displays = _displays(resource)
        pros = [names.get(a) or displays.get(a) or "" for a in sorted(authors)]
        pros = [p for p in pros if p]
        if pros:
            return "Enregistré par " + ", ".join(dict.fromkeys(pros)), False
        origin = (resource.get("reportOrigin") or {}).get("text")
        if origin:
            return f"Source : {str(origin).lower()}", False
        return "Enregistré par un professionnel de santé", False

    async def rows(
        visitor: Visitor, kind: str, resources: list[dict[str, Any]], names: dict[str, str]
    ) -> list[Row]:
        out = []
        for r in resources:
            summary = rules.summary(kind, r)
            label, own = source(visitor, r, names)
            out.append(
                Row(
                    str(r.get("id")),
                    kind,
                    summary.title,
                    summary.details,
                    summary.day,
                    summary.state == "active",
                    label,
                    own,
                )
            )
        return sorted(out, key=lambda row: row.day, reverse=True)

    async def search(
        visitor: Visitor, resource_type: str, params: list[tuple[str, str]] | None = None
    ) -> list[dict[str, Any]]:
        return await ens.door.search(
            visitor.caller, resource_type, [("patient", visitor.patient_id), *(params or [])], limit=500
        )

    def schedule_rows(items: list[Due]) -> list[dict[str, Any]]:
        return [
            {
                "label": d.label,
                "dose": d.dose,
                "status": d.status,
                "badge": _STATUS_LABELS[d.status][0],
                "badge_class": _STATUS_LABELS[d.status][1],
                "start": d.start.strftime("%d/%m/%Y"),
                "end": d.end.strftime("%d/%m/%Y") if d.end else "",
                "given": d.given.strftime("%d/%m/%Y") if d.given else "",
            }
            for d in items
        ]

    # ------------------------------------------------------------------ the carnet
    async def index(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        allergies = await search(visitor, "AllergyIntolerance")
        conditions = await search(visitor, "Condition")
        procedures = await search(visitor, "Procedure")
        statements = await search(visitor, "MedicationStatement")
        prescriptions = await search(visitor, "MedicationRequest", [("status", "active")])
        immunizations = await search(visitor, "Immunization")
        blood = await search(visitor, "Observation", [("code", _BLOOD), ("_sort", "-date")])
        names = await names_of(
            visitor, [*allergies, *conditions, *procedures, *statements, *prescriptions, *blood]
        )
        history = [c for c in conditions if _problem(c)]
        diagnoses = [c for c in conditions if not _problem(c)]
        birth = await birth_of(visitor)
        pending = (
            [d for d in due(birth, immunizations, moment().date()) if d.status != "done"] if birth else []
        )
        treatments = await rows(visitor, "traitement", statements, names)
        return await ens.page(
            request,
            visitor,
            "ens/carnet/index.html",
            title="Carnet de santé",
            allergies=await rows(visitor, "allergie", allergies, names),
            history=await rows(visitor, "antecedent", history, names),
            diagnoses=await rows(visitor, "antecedent", diagnoses, names),
            surgeries=await rows(visitor, "chirurgie", procedures, names),
            treatments=[t for t in treatments if t.active],
            stopped=[t for t in treatments if not t.active],
            prescribed=await rows(visitor, "traitement", prescriptions, names),
            blood=(await rows(visitor, "groupe-sanguin", blood[:1], names)),
            vaccinations=len(immunizations),
            pending=schedule_rows(pending[:5]),
            pending_count=len(pending),
            birth_known=birth is not None,
        )

    async def vaccinations(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        immunizations = await search(visitor, "Immunization")
        names = await names_of(visitor, immunizations)
        birth = await birth_of(visitor)
        items = due(birth, immunizations, moment().date()) if birth else []
        return await ens.page(
            request,
            visitor,
            "ens/carnet/vaccins.html",
            title="Mes vaccinations",
            pending=schedule_rows([d for d in items if d.status != "done"]),
            done=schedule_rows([d for d in items if d.status == "done"]),
            history=await rows(visitor, "vaccin", immunizations, names),
            birth_known=birth is not None,
            source=schedule().source,
        )

    # ------------------------------------------------------------------ add, change, remove
    def kind_of(request: Request) -> rules.EntryKind:
        kind = rules.KINDS.get(request.path_params["kind"])
        if kind is None:
            raise PortalError(404, "Cette page n’existe pas.")
        return kind

    async def entry(visitor: Visitor, kind: rules.EntryKind, entry_id: str) -> dict[str, Any]:
        """The entry, if it is of this kind and in this record (else a "not found" page)."""
        resource = await ens.door.read(visitor.caller, kind.resource_type, entry_id)
        if resource is None or not _in_record(resource, visitor.patient_ref):
            raise PortalError(404, "Cette information n’existe pas ou n’est plus disponible.")
        if kind.key == "groupe-sanguin" and rules.BLOOD_GROUP_LOINC not in _codes(resource.get("code")):
            raise PortalError(404, "Cette information n’existe pas ou n’est plus disponible.")
        return resource

    def read_only(visitor: Visitor, resource: dict[str, Any]) -> None:
        _, own = source(visitor, resource, {})
        if not own:
            raise PortalError(
                403,
                "Cette information a été enregistrée par un professionnel de santé ou par un proche : "
                "vous ne pouvez pas la modifier. Parlez-en à votre médecin si elle vous semble inexacte.",
            )

    async def form_page(
        request: Request,
        visitor: Visitor,
        kind: rules.EntryKind,
        values: dict[str, str],
        errors: dict[str, str],
        *,
        action: str,
        editing: bool,
        version: str = "",
    ) -> Response:
        return await ens.page(
            request,
            visitor,
            "ens/carnet/formulaire.html",
            status=400 if errors else 200,
            title=("Modifier : " if editing else "Ajouter : ") + kind.title.lower(),
            kind=kind,
            values=values,
            errors=errors,
            action=action,
            editing=editing,
            version=version,
            allergens=[(c.key, c.label) for c in rules.ALLERGENS],
            allergy_categories=list(rules.ALLERGY_CATEGORIES.items()),
            allergy_types=list(rules.ALLERGY_TYPES.items()),
            criticalities=list(rules.CRITICALITIES.items()),
            conditions=[(c.key, c.label) for c in rules.CONDITIONS],
            surgeries=[(c.key, c.label) for c in rules.SURGERIES],
            vaccines=[(v.key, v.label) for v in schedule().vaccines],
            blood_groups=[(c.key, c.label) for c in rules.BLOOD_GROUPS],
            today=moment().date().isoformat(),
        )

    def submitted(kind: rules.EntryKind, form: Submitted) -> dict[str, str]:
        return {name: form.get(name) for name in _FIELDS[kind.key]}

    async def add(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        kind = kind_of(request)
        action = f"/ens/carnet/{kind.key}/ajouter"
        if form is None:
            defaults = {"statut": "active"} if kind.key in ("antecedent", "traitement") else {}
            return await form_page(request, visitor, kind, defaults, {}, action=action, editing=False)
        values = submitted(kind, form)
        now = moment()
        resource, errors = rules.build(
            kind.key,
            values,
            patient_ref=visitor.patient_ref,
            actor_ref=visitor.actor_ref,
            today=now.date(),
            now=now.isoformat(timespec="seconds"),
            birth=await birth_of(visitor),
        )
        if resource is None:
            await ens.failed(visitor, form)
            return await form_page(request, visitor, kind, values, errors, action=action, editing=False)
        await ens.door.create(visitor.caller, resource)
        return await ens.done(visitor, form, _back(kind.key), kind.added)

    async def change(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        kind = kind_of(request)
        entry_id = request.path_params["entry_id"]
        current = await entry(visitor, kind, entry_id)
        action = f"/ens/carnet/{kind.key}/{entry_id}/modifier"
        if form is None:
            read_only(visitor, current)
            version = str((current.get("meta") or {}).get("versionId", ""))
            return await form_page(
                request,
                visitor,
                kind,
                rules.form_values(kind.key, current),
                {},
                action=action,
                editing=True,
                version=version,
            )
        # no pre-check of authorship here: the access rules decide (a professional's entry is refused)
        values = submitted(kind, form)
        now = moment()
        resource, errors = rules.build(
            kind.key,
            values,
            patient_ref=visitor.patient_ref,
            actor_ref=visitor.actor_ref,
            today=now.date(),
            now=now.isoformat(timespec="seconds"),
            birth=await birth_of(visitor),
        )
        if resource is None:
            await ens.failed(visitor, form)
            return await form_page(
                request,
                visitor,
                kind,
                values,
                errors,
                action=action,
                editing=True,
                version=form.get("version"),
            )
        await ens.door.update(
            visitor.caller, {**resource, "id": entry_id}, version=form.get("version") or None
        )
        return await ens.done(visitor, form, _back(kind.key), "Modification enregistrée.")

    async def remove(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        kind = kind_of(request)
        entry_id = request.path_params["entry_id"]
        current = await entry(visitor, kind, entry_id)
        if form is not None:
            await ens.door.delete(visitor.caller, kind.resource_type, entry_id)
            return await ens.done(
                visitor, form, _back(kind.key), "L’information est retirée de votre carnet."
            )
        read_only(visitor, current)
        summary = rules.summary(kind.key, current)
        return await ens.page(
            request,
            visitor,
            "ens/carnet/supprimer.html",
            title="Retirer : " + kind.title.lower(),
            kind=kind,
            entry_id=entry_id,
            summary=summary,
        )

    return [
        ens.route("/ens/carnet", index),
        ens.route("/ens/carnet/vaccins", vaccinations),
        ens.route("/ens/carnet/{kind}/ajouter", add, methods=("GET", "POST")),
        ens.route("/ens/carnet/{kind}/{entry_id}/modifier", change, methods=("GET", "POST")),
        ens.route("/ens/carnet/{kind}/{entry_id}/supprimer", remove, methods=("GET", "POST")),
    ]


def _back(kind: str) -> str:
    return "/ens/carnet/vaccins" if kind == "vaccin" else f"/ens/carnet#{kind}"


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {str(c.get("code")) for c in concept.get("coding", []) or [] if isinstance(c, dict)}


def _problem(condition: dict[str, Any]) -> bool:
    """A lasting problem (or the person's own entry), not a diagnosis of one consultation."""
    categories = set()
    for concept in condition.get("category", []) or []:
        categories |= _codes(concept)
    return not categories or bool(categories & {"problem-list-item", "health-concern"})


def _in_record(resource: dict[str, Any], patient_ref: str) -> bool:
    for element in ("patient", "subject"):
        ref = (
            (resource.get(element) or {}).get("reference")
            if isinstance(resource.get(element), dict)
            else None
        )
        if ref:
            return bool(ref == patient_ref)
    return False


def _displays(resource: dict[str, Any]) -> dict[str, str]:
    """reference → display of the references a resource carries (one level, and performer[].actor)."""
    out: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str) and value.get("display"):
                out[value["reference"]] = str(value["display"])
            for key in ("actor", "individual"):
                if isinstance(value.get(key), dict):
                    visit(value[key])
        elif isinstance(value, list):
            for item in value:
                visit(item)

    for key in ("recorder", "asserter", "performer", "requester", "informationSource", "author"):
        visit(resource.get(key))
    return out
