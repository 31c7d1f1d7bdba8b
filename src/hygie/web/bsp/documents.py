"""BSP "Documents" of a patient's record: what the profession may read, and depositing.

Pages (every read and write through ``bsp.door`` as the professional: the profession ×
document-class matrix, masking and the patient's choices apply as for the API; the metadata
rules are in ``domain/bsp/documents.py``):

* ``GET /bsp/patients/{patient}/documents`` — the current documents, newest first, by class;
* ``GET|POST /bsp/patients/{patient}/documents/deposer`` — deposit a PDF, an image, a CDA R2
  document or a typed text, with its metadata and visibility choices: one FHIR transaction
  (Binary + DocumentReference);
* ``GET /bsp/patients/{patient}/documents/{id}`` — one document: metadata, readable content,
  visibility; ``…/fichier`` its content;
* ``GET|POST …/{id}/nouvelle-version`` — replace a document the professional wrote (the new
  version ``replaces`` it, the old one becomes ``superseded``, in the same transaction);
* ``POST …/{id}/annoncer`` — a document hidden from the patient until an announcement
  consultation is released (its ``INVISIBLE_PATIENT`` label removed) by its author.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.bsp import documents as rules
from hygie.domain.ens import documents as doc_rules
from hygie.domain.ens.document_view import render
from hygie.domain.identity.nos import TRE_A07_VISIBILITY
from hygie.domain.policy import HIDDEN_FROM_PATIENT, HIDDEN_FROM_REPRESENTATIVES
from hygie.web.bsp.core import Bsp
from hygie.web.bsp.patients import require_id
from hygie.web.portal.door import PortalError, as_json, created_id
from hygie.web.portal.files import INLINE_TYPES, document_content, file_response
from hygie.web.portal.forms import Submitted
from hygie.web.portal.provenance import app_names
from hygie.web.portal.session import Professional, display_names

__all__ = ["routes"]

PARIS = ZoneInfo("Europe/Paris")
DOCUMENT = "DocumentReference"
_MAX_LISTED = 500
_NOT_FOUND = "Ce document n’existe pas, ou votre profession ne permet pas de le consulter."


def _labels(resource: dict[str, Any]) -> set[str]:
    return {
        str(c.get("code"))
        for label in resource.get("securityLabel") or []
        if isinstance(label, dict)
        for c in label.get("coding") or []
        if isinstance(c, dict)
    }


def routes(bsp: Bsp) -> list[BaseRoute]:
    runtime = bsp.services["runtime"]
    max_bytes = int(runtime.settings.max_upload_bytes)

    def now() -> datetime:
        return datetime.fromtimestamp(bsp.clock() / 1_000_000, PARIS)

    def line_of(
        visitor: Professional, patient_id: str, resource: dict[str, Any], names: dict[str, str]
    ) -> Any:
        return doc_rules.summarize(
            resource, patient_ref=f"Patient/{patient_id}", actor_ref=visitor.practitioner_ref, names=names
        )

    async def document_of(
        visitor: Professional, patient_id: str, document_id: str
    ) -> tuple[Any, dict[str, Any]]:
        require_id(document_id)
        resource = await bsp.door.read(visitor.caller, DOCUMENT, document_id)
        subject = str(((resource or {}).get("subject") or {}).get("reference", ""))
        if resource is None or subject != f"Patient/{patient_id}":
            raise PortalError(404, _NOT_FOUND)
        names = await app_names(bsp.services["runtime"].auth.clients, [resource])
        for author in resource.get("author") or []:
            ref = str((author or {}).get("reference", ""))
            kind, _, rid = ref.partition("/")
            if kind in ("Practitioner", "Organization") and rid:
                found = await bsp.door.read(visitor.caller, kind, require_id(rid))
                if found:
                    names.update(display_names({ref: found}))
        return line_of(visitor, patient_id, resource, names), resource

    async def listing(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        found, included = await bsp.door.search_with_includes(
            visitor.caller,
            DOCUMENT,
            [
                ("patient", patient_id),
                ("status", "current"),
                ("_sort", "-date"),
                ("_count", "100"),
                ("_include", "DocumentReference:author"),
            ],
            limit=_MAX_LISTED,
        )
        names = {**display_names(included), **await app_names(bsp.services["runtime"].auth.clients, found)}
        lines = doc_rules.sort_lines(line_of(visitor, patient_id, d, names) for d in found)
        wanted = request.query_params.get("classe", "")
        shown = [d for d in lines if not wanted or d.class_code == wanted]
        return await bsp.page(
            request,
            visitor,
            "bsp/documents/liste.html",
            title="Documents du dossier",
            lines=shown,
            total=len(lines),
            classes={
                k: v for k, v in doc_rules.CLASS_LABELS.items() if any(d.class_code == k for d in lines)
            },
            wanted=wanted,
            hidden={str(d.get("id")) for d in found if HIDDEN_FROM_PATIENT in _labels(d)},
        )

    async def show(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        line, resource = await document_of(visitor, patient_id, request.path_params["id"])
        media = line.content_type.split(";")[0].strip().lower()
        rendered = None
        if media not in ("application/pdf", "image/jpeg", "image/png"):
            content = await document_content(bsp.door, visitor.caller, resource)
            if content is not None:
                rendered = render(content[0], content[1] or line.content_type)
        labels = _labels(resource)
        return await bsp.page(
            request,
            visitor,
            "bsp/documents/document.html",
            title=line.title,
            doc=line,
            rendered=rendered,
            sections=[
                {"title": s.title, "html": Markup(s.html), "level": s.level}
                for s in (rendered.sections if rendered else [])
            ],
            inline=media in INLINE_TYPES,
            hidden_from_patient=HIDDEN_FROM_PATIENT in labels,
            hidden_from_representatives=HIDDEN_FROM_REPRESENTATIVES in labels,
            mine=line.mine,
            size=doc_rules.fr_size(line.size),
        )

    async def download(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        line, resource = await document_of(visitor, patient_id, request.path_params["id"])
        content = await document_content(bsp.door, visitor.caller, resource)
        if content is None:
            raise PortalError(404, "Le fichier de ce document n’est pas disponible.")
        return file_response(
            content[0], content[1], line.title, inline=request.query_params.get("voir") == "1"
        )

    async def form_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        replaces: Any = None,
        status: int = 200,
    ) -> Response:
        patient_id = request.path_params["patient"]
        return await bsp.page(
            request,
            visitor,
            "bsp/documents/depot.html",
            status=status,
            title="Nouvelle version d’un document" if replaces else "Déposer un document",
            values=values,
            errors=errors or {},
            types=rules.PRO_TYPES,
            replaces=replaces,
            limit=doc_rules.fr_size(max_bytes),
            action=(
                f"/bsp/patients/{patient_id}/documents/{replaces.id}/nouvelle-version"
                if replaces
                else f"/bsp/patients/{patient_id}/documents/deposer"
            ),
        )

    async def save(request: Request, visitor: Professional, form: Submitted, replaces: Any) -> Response:
        patient_id = require_id(request.path_params["patient"])
        upload = form.files.get("fichier")
        draft, errors = rules.validate_deposit(
            form.values,
            upload.data if upload else None,
            too_large="fichier" in form.too_large,
            max_bytes=max_bytes,
            today=now().date(),
        )
        if draft is None:
            await bsp.failed(visitor, form)
            keep = ("type", "titre", "date", "texte", "invisible_patient", "invisible_representants")
            return await form_page(
                request,
                visitor,
                values={k: form.get(k) for k in keep},
                errors=errors,
                replaces=replaces,
                status=400,
            )
        instant = now().isoformat(timespec="seconds")
        document = rules.professional_document(
            draft,
            patient_ref=f"Patient/{patient_id}",
            author_ref=visitor.practitioner_ref,
            author_display=visitor.name,
            custodian_ref=visitor.organization,
            now_instant=instant,
        )
        bundle = doc_rules.document_transaction(
            document,
            draft.content_type,
            draft.data,
            patient_ref=f"Patient/{patient_id}",
            replaces=dict(replaces.raw) if replaces else None,
            keep_labels=False,
        )
        answer = as_json((await bsp.door.call(visitor.caller, "POST", "", resource=bundle)).body)
        created = created_id(answer, DOCUMENT)
        base = f"/bsp/patients/{patient_id}/documents"
        message = (
            "La nouvelle version a été déposée ; l’ancienne est remplacée."
            if replaces
            else "Le document a été déposé dans le dossier du patient."
        )
        return await bsp.done(visitor, form, f"{base}/{created}" if created else base, message)

    async def deposit(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        require_id(request.path_params["patient"])
        if form is None:
            return await form_page(request, visitor, values={"date": now().date().isoformat()})
        return await save(request, visitor, form, None)

    async def own_current(
        visitor: Professional, patient_id: str, document_id: str
    ) -> tuple[Any, dict[str, Any]]:
        line, resource = await document_of(visitor, patient_id, document_id)
        if not line.mine:
            raise PortalError(
                403, "Seul l’auteur d’un document peut en déposer une nouvelle version ou l’annoncer."
            )
        if line.status != "current":
            raise PortalError(409, "Cette version a déjà été remplacée : ouvrez la version actuelle.")
        return line, resource

    async def new_version(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        line, resource = await own_current(visitor, patient_id, request.path_params["id"])
        if form is None:
            codes = {str(c.get("code")) for c in (resource.get("type") or {}).get("coding") or []}
            kind = next((t.key for t in rules.PRO_TYPES if t.code in codes), "")
            labels = _labels(resource)
            values = {
                "type": kind,
                "titre": line.title,
                "date": now().date().isoformat(),
                "invisible_patient": "oui" if HIDDEN_FROM_PATIENT in labels else "",
                "invisible_representants": "oui" if HIDDEN_FROM_REPRESENTATIVES in labels else "",
            }
            return await form_page(request, visitor, values=values, replaces=line)
        return await save(request, visitor, form, line)

    async def announce(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        patient_id = require_id(request.path_params["patient"])
        line, resource = await own_current(visitor, patient_id, request.path_params["id"])
        resource["securityLabel"] = [
            label
            for label in resource.get("securityLabel") or []
            if not any(
                c.get("system") == TRE_A07_VISIBILITY and c.get("code") == HIDDEN_FROM_PATIENT
                for c in (label or {}).get("coding") or []
            )
        ]
        await bsp.door.update(visitor.caller, resource, version=line.version or None)
        return await bsp.done(
            visitor,
            form,
            f"/bsp/patients/{patient_id}/documents/{line.id}",
            "Le document est annoncé : le patient peut maintenant le voir dans son espace santé.",
        )

    base = "/bsp/patients/{patient}/documents"
    return [
        bsp.route(base, listing),
        bsp.route(f"{base}/deposer", deposit, methods=("GET", "POST")),
        bsp.route(f"{base}/{{id}}", show),
        bsp.route(f"{base}/{{id}}/fichier", download),
        bsp.route(f"{base}/{{id}}/nouvelle-version", new_version, methods=("GET", "POST")),
        bsp.route(f"{base}/{{id}}/annoncer", announce, methods=("POST",)),
    ]
