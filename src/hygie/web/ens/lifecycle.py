"""ENS "Mon espace": the space's state, refusing it, closing it (after a preview), reopening it.

The state is the space's lifecycle Consent (``domain/ens/lifecycle.py``), read and written
through the door as the visitor, so that every change is decided by the access policy and
recorded in the audit trail. Closing is one FHIR transaction: the Consent turns to ``deny`` and
the person's own entries are deleted together — or nothing happens. They are deleted with
``_expunge=true``, every version erased, because the page promises "supprimé définitivement": a
plain FHIR delete would keep them in the record's history, readable again after a reopening.

While a space is closed, every other page of the portal leads here (the gate registered in
``ens.services["gate"]``): the person, or their legal representative, may only reopen it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.domain.ens.controls import french_date, parse_us
from hygie.domain.ens.lifecycle import (
    ClosingPreview,
    SpaceRules,
    SpaceState,
    closing_consent,
    preview,
    reopening_consent,
    space_category_query,
    state_of,
)
from hygie.web.ens.core import Ens
from hygie.web.ens.export import everything
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import FormErrors, Submitted
from hygie.web.portal.session import Visitor

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["routes"]

_HOME = "/ens/mon-espace"
# what a closed space still opens: this section, the choice of space, and how one signs in
# ("Connexion et sécurité": the account's, not the space's)
_OPEN_WHEN_CLOSED = (_HOME, "/ens/espace", "/ens/compte")


def _runtime(ens: Ens) -> Runtime:
    runtime: Runtime = ens.services["runtime"]
    return runtime


def _rules(ens: Ens) -> SpaceRules:
    settings = _runtime(ens).settings
    return SpaceRules(opt_out_days=settings.ens_opt_out_days, archive_years=settings.ens_archive_years)


async def space_closed(ens: Ens, patient_id: str) -> bool:
    """Whether the space is closed, from the access index (the ``space_closed`` relation the
    lifecycle Consent derives): a policy fact, cheap enough to ask on every page."""
    runtime = _runtime(ens)
    relations = await runtime.store.relations(patient_id, ["*"], now_us=ens.clock())
    return any(kind == "space_closed" for kind, _, _ in relations)


async def _state(ens: Ens, visitor: Visitor) -> tuple[SpaceState, dict[str, Any] | None]:
    found = await ens.door.search(
        visitor.caller,
        "Consent",
        [("patient", visitor.patient_id), ("category", space_category_query()), ("_count", "10")],
        limit=10,
    )
    active = [c for c in found if c.get("status") == "active"]
    consent = max(
        active or found, key=lambda c: str((c.get("meta") or {}).get("lastUpdated", "")), default=None
    )
    return state_of(consent, await _created_us(ens, visitor), _rules(ens)), consent


async def _created_us(ens: Ens, visitor: Visitor) -> int:
    """When the space opened: the registration of the Patient (its first version)."""
    try:
        first = as_dict(
            await ens.door.call(visitor.caller, "GET", f"Patient/{visitor.patient_id}/_history/1")
        )
    except PortalError:
        first = await ens.door.read(visitor.caller, "Patient", visitor.patient_id) or {}
    return parse_us((first.get("meta") or {}).get("lastUpdated")) or ens.clock()


def as_dict(response: Any) -> dict[str, Any]:
    from hygie.web.portal.door import as_json  # noqa: PLC0415

    return as_json(response.body)


def _people(visitor: Visitor, record: list[dict[str, Any]]) -> set[str]:
    """Who counts as "the person" for their own entries: them, and their relatives acting for
    them (parents, aidants: the RelatedPersons of the record)."""
    relatives = {f"RelatedPerson/{r.get('id')}" for r in record if r.get("resourceType") == "RelatedPerson"}
    return {visitor.patient_ref, visitor.actor_ref} | relatives


def routes(ens: Ens) -> list[BaseRoute]:
    async def gate(request: Request, visitor: Visitor) -> Response | None:
        path = request.url.path
        if any(path == p or path.startswith(p + "/") for p in _OPEN_WHEN_CLOSED):
            return None
        if await space_closed(ens, visitor.patient_id):
            return RedirectResponse(_HOME, status_code=303)
        return None

    ens.services["gate"] = gate

    async def home(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        now = ens.clock()
        if visitor.space.relation == "aidant":
            closed = await space_closed(ens, visitor.patient_id)
            return await ens.page(
                request,
                visitor,
                "ens/espace/index.html",
                title="Mon espace",
                aidant=True,
                closed=closed,
                only_my_space=closed,  # the menu offers no page the gate bars
            )
        state, _consent = await _state(ens, visitor)
        return await ens.page(
            request,
            visitor,
            "ens/espace/index.html",
            title="Mon espace",
            aidant=False,
            closed=state.closed,
            only_my_space=state.closed,
            state=state,
            created=french_date(state.created_us),
            changed=french_date(state.changed_us),
            opt_out_until=french_date(state.opt_out_until_us),
            may_oppose=state.may_oppose(now),
            may_reopen=state.may_reopen(now),
            archive_until=french_date(state.archive_until_us),
            rules=_rules(ens),
        )

    async def _preview(visitor: Visitor, state: SpaceState) -> ClosingPreview:
        matches, _included = await everything(ens, visitor)
        return preview(
            matches,
            _people(visitor, matches),
            state,
            now_us=ens.clock(),
            rules=_rules(ens),
            patient_id=visitor.patient_id,
        )

    async def closing_page(
        request: Request,
        visitor: Visitor,
        form: Submitted | None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        if visitor.space.relation == "aidant":
            raise PortalError(403, "Seuls la personne et ses représentants légaux peuvent fermer son espace.")
        state, _consent = await _state(ens, visitor)
        if state.closed:
            return RedirectResponse(_HOME, status_code=303)
        shown = await _preview(visitor, state)
        return await ens.page(
            request,
            visitor,
            "ens/espace/fermer.html",
            status=status,
            title="Fermer mon espace" if shown.closure == "fermeture" else "Refuser mon espace",
            preview=shown,
            archive_until=french_date(shown.archive_until_us),
            rules=_rules(ens),
            errors=errors or FormErrors(),
        )

    async def close(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        if visitor.space.relation == "aidant":
            raise PortalError(403, "Seuls la personne et ses représentants légaux peuvent fermer son espace.")
        state, existing = await _state(ens, visitor)
        if state.closed:
            return await ens.done(visitor, form, _HOME, "Cet espace est déjà fermé.")
        if form.get("confirmation") != "oui":
            await ens.failed(visitor, form)
            errors = FormErrors()
            errors.add(
                "confirmation", "Cochez la case pour confirmer que vous avez compris ce qui va se passer."
            )
            return await closing_page(request, visitor, form, errors=errors, status=422)
        now = ens.clock()
        shown = await _preview(visitor, state)
        consent = closing_consent(
            visitor.patient_id, state, existing, by=visitor.actor_ref, now_us=now, rules=_rules(ens)
        )
        # erased with their history, not tombstoned: "supprimé définitivement" (FhirService.delete)
        entries: list[dict[str, Any]] = [
            {"request": {"method": "DELETE", "url": f"{ref}?_expunge=true"}} for ref in shown.deleted_refs
        ]
        if existing is not None and existing.get("id"):
            entries.append(
                {
                    "fullUrl": f"{ens.door.service.base_url}/Consent/{existing['id']}",
                    "resource": consent,
                    "request": {
                        "method": "PUT",
                        "url": f"Consent/{existing['id']}",
                        **({"ifMatch": f'W/"{state.version}"'} if state.version else {}),
                    },
                }
            )
        else:
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": consent,
                    "request": {
                        "method": "POST",
                        "url": "Consent",
                        "ifNoneExist": f"patient=Patient/{visitor.patient_id}&category={space_category_query()}",
                    },
                }
            )
        await ens.door.call(
            visitor.caller,
            "POST",
            "",
            resource={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        )
        what = "refusé" if shown.closure == "opposition" else "fermé"
        return await ens.done(
            visitor,
            form,
            _HOME,
            f"L’espace est {what}. Les professionnels n’y ont plus accès ; "
            f"il reste archivé jusqu’au {french_date(shown.archive_until_us)} et peut être rouvert d’ici là.",
        )

    async def reopen(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if visitor.space.relation == "aidant":
            raise PortalError(
                403, "Seuls la personne et ses représentants légaux peuvent rouvrir son espace."
            )
        state, existing = await _state(ens, visitor)
        if not state.closed:
            return await ens.done(visitor, form, "/ens", "Cet espace est ouvert.")
        now = ens.clock()
        if not state.may_reopen(now):
            raise PortalError(
                409, "La période de conservation de cet espace est terminée : il ne peut plus être rouvert."
            )
        consent = reopening_consent(visitor.patient_id, state, existing, by=visitor.actor_ref, now_us=now)
        await ens.door.update(visitor.caller, consent, version=state.version)
        return await ens.done(
            visitor, form, "/ens", "L’espace est rouvert : le dossier archivé est de nouveau accessible."
        )

    return [
        ens.route(_HOME, home),
        ens.route(f"{_HOME}/fermer", closing_page),
        ens.route(f"{_HOME}/fermer", close, methods=("POST",)),
        ens.route(f"{_HOME}/rouvrir", reopen, methods=("POST",)),
    ]
