"""ENS "Documents": the shared medical record (DMP) — list, read, add, new versions, masking.

Pages (every read and write through ``ens.door`` as the visitor; the rules are in
``domain/ens/documents.py``, the rendering of structured contents in ``document_view.py``):

* ``GET /ens/documents`` — the documents, newest first, filtered (class, period, source, words
  of the title) and cut into pages;
* ``GET|POST /ens/documents/ajouter`` — add a PDF or a JPEG/PNG image: one FHIR transaction
  (Binary + DocumentReference); a small script shows the upload's progress;
* ``GET /ens/documents/{id}`` — one document: its details, its readable content when it is
  structured, its visibility, its versions;
* ``GET /ens/documents/{id}/fichier`` — its content, read as the visitor (``?voir=1``: shown in
  the browser rather than downloaded);
* ``GET|POST /ens/documents/{id}/nouvelle-version`` and ``…/supprimer`` — for the documents the
  visitor added themselves;
* ``POST /ens/documents/{id}/masquer`` and ``…/afficher`` — the ``$mask`` / ``$unmask`` operations.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from hygie.domain.ens import documents as rules
from hygie.domain.ens.document_view import render
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError, as_json, created_id
from hygie.web.portal.files import INLINE_TYPES, document_content, file_response
from hygie.web.portal.forms import Submitted
from hygie.web.portal.provenance import app_names
from hygie.web.portal.session import Visitor, display_names

__all__ = ["routes"]

PARIS = ZoneInfo("Europe/Paris")
DOCUMENT = "DocumentReference"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_MAX_LISTED = 1000  # documents read for the list (the newest ones when a record holds more)
_NOT_FOUND = "Ce document n’existe pas ou n’est plus disponible."


def _may_mask(visitor: Visitor) -> bool:
    """The patient and their legal representatives decide who sees the record (not an aidant)."""
    return visitor.space.relation in ("self", "representative")


def routes(ens: Ens) -> list[BaseRoute]:
    runtime = ens.services["runtime"]
    max_bytes = int(runtime.settings.max_upload_bytes)

    def clients() -> Any:
        return runtime.auth.clients if runtime.auth is not None else None

    def gp_sees_masked() -> bool:
        return bool(runtime.service.policy.matrix.masked_visible_to_medecin_traitant)

    def today() -> Any:
        return datetime.fromtimestamp(ens.clock() / 1_000_000, PARIS).date()

    def now_instant() -> str:
        return datetime.fromtimestamp(ens.clock() / 1_000_000, PARIS).isoformat(timespec="seconds")

    async def lines_of(visitor: Visitor, params: list[tuple[str, str]]) -> list[rules.DocumentLine]:
        found, included = await ens.door.search_with_includes(
            visitor.caller,
            DOCUMENT,
            [("patient", visitor.patient_id), ("_include", "DocumentReference:author"), *params],
            limit=_MAX_LISTED,
        )
        names = {**display_names(included), **await app_names(clients(), found)}
        return [
            rules.summarize(d, patient_ref=visitor.patient_ref, actor_ref=visitor.actor_ref, names=names)
            for d in found
            if not rules.hidden_from_patient(d)
        ]

    async def document_of(visitor: Visitor, document_id: str) -> rules.DocumentLine:
        """The document as the visitor may see it, in the space they are in (404 otherwise)."""
        if not _ID.fullmatch(document_id):
            raise PortalError(404, _NOT_FOUND)
        resource = await ens.door.read(visitor.caller, DOCUMENT, document_id)
        subject = str(((resource or {}).get("subject") or {}).get("reference", ""))
        if resource is None or subject != visitor.patient_ref or rules.hidden_from_patient(resource):
            raise PortalError(404, _NOT_FOUND)
        names = await app_names(clients(), [resource])
        for ref in {str(a.get("reference", "")) for a in resource.get("author") or [] if isinstance(a, dict)}:
            kind, _, rid = ref.partition("/")
            if kind in ("Practitioner", "Patient", "RelatedPerson", "Organization") and _ID.fullmatch(rid):
                author = await ens.door.read(visitor.caller, kind, rid)
                if author:
                    names.update(display_names({ref: author}))
        return rules.summarize(
            resource, patient_ref=visitor.patient_ref, actor_ref=visitor.actor_ref, names=names
        )

    async def versions_of(visitor: Visitor, line: rules.DocumentLine) -> list[rules.DocumentLine]:
        """Every version of the document the visitor may see, newest first."""
        chain = [line]
        seen = {line.id}
        newest = line
        for _ in range(50):  # the versions that replace it
            newer = await lines_of(visitor, [("relatesto", f"{DOCUMENT}/{newest.id}")])
            following = next((d for d in newer if newest.id in d.replaces and d.id not in seen), None)
            if following is None:
                break
            chain.insert(0, following)
            seen.add(following.id)
            newest = following
        oldest = line
        for _ in range(50):  # the versions it replaces
            previous_id = next((r for r in oldest.replaces if r not in seen and _ID.fullmatch(r)), None)
            if previous_id is None:
                break
            previous = await ens.door.read(visitor.caller, DOCUMENT, previous_id)
            if previous is None or rules.hidden_from_patient(previous):
                break
            oldest = rules.summarize(
                previous, patient_ref=visitor.patient_ref, actor_ref=visitor.actor_ref, names={}
            )
            chain.append(oldest)
            seen.add(oldest.id)
        return chain

    # -- the list ----------------------------------------------------------------------------

    async def listing(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        filters = rules.Filters.parse(request.query_params)
        every = await lines_of(visitor, [("status", "current"), ("_sort", "-date"), ("_count", "200")])
        kept = rules.sort_lines(d for d in every if filters.keeps(d))
        page = rules.page_of(kept, filters.page)
        return await ens.page(
            request,
            visitor,
            "ens/documents/liste.html",
            status=400 if filters.errors else 200,
            title="Mes documents",
            filters=filters,
            page=page,
            total=len(every),
            classes=rules.CLASS_LABELS,
            sources=rules.SOURCES,
            listed_max=len(every) >= _MAX_LISTED,
        )

    # -- one document ------------------------------------------------------------------------

    async def content_of(visitor: Visitor, line: rules.DocumentLine) -> tuple[bytes, str] | None:
        return await document_content(ens.door, visitor.caller, line.raw)

    async def show(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        line = await document_of(visitor, request.path_params["id"])
        versions = await versions_of(visitor, line)
        rendered = None
        media = line.content_type.split(";")[0].strip().lower()
        if media not in ("application/pdf", "image/jpeg", "image/png"):
            content = await content_of(visitor, line)
            if content is not None:
                rendered = render(content[0], content[1] or line.content_type)
        sections = [
            {"title": s.title, "html": Markup(s.html), "level": s.level}
            for s in (rendered.sections if rendered else [])
        ]
        return await ens.page(
            request,
            visitor,
            "ens/documents/document.html",
            title=line.title,
            doc=line,
            newest=versions[0],
            versions=versions,
            rendered=rendered,
            sections=sections,
            image=media in ("image/jpeg", "image/png"),
            inline=media in INLINE_TYPES,
            may_mask=_may_mask(visitor),
            gp_sees_masked=gp_sees_masked(),
            may_change=line.mine and line.status == "current",
            size=rules.fr_size(line.size),
        )

    async def download(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        line = await document_of(visitor, request.path_params["id"])
        content = await content_of(visitor, line)
        if content is None:
            raise PortalError(404, "Le fichier de ce document n’est pas disponible.")
        data, declared = content
        return file_response(data, declared, line.title, inline=request.query_params.get("voir") == "1")

    # -- adding, replacing, deleting ---------------------------------------------------------

    def blank(kind: str = "", title: str = "", day: str = "") -> dict[str, str]:
        return {"titre": title, "type": kind, "date": day}

    async def form_page(
        request: Request,
        visitor: Visitor,
        *,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        file_sent: bool = False,
        replaces: rules.DocumentLine | None = None,
        status: int = 200,
    ) -> Response:
        return await ens.page(
            request,
            visitor,
            "ens/documents/ajout.html",
            status=status,
            title="Nouvelle version d’un document" if replaces else "Ajouter un document",
            values=values,
            errors=errors or {},
            file_sent=file_sent,
            types=rules.PATIENT_TYPES,
            replaces=replaces,
            limit=rules.fr_size(max_bytes),
            action=f"/ens/documents/{replaces.id}/nouvelle-version" if replaces else "/ens/documents/ajouter",
        )

    async def own_current(visitor: Visitor, document_id: str) -> rules.DocumentLine:
        line = await document_of(visitor, document_id)
        if not line.mine:
            raise PortalError(
                403,
                "Ce document a été déposé par quelqu’un d’autre : vous pouvez le lire et le masquer, "
                "pas le modifier ni le supprimer.",
            )
        if line.status != "current":
            raise PortalError(409, "Cette version a déjà été remplacée : ouvrez la version actuelle.")
        return line

    def done_for_script(request: Request, response: Response) -> Response:
        """The upload script follows the page it is sent to itself (one GET, its message kept)."""
        if request.headers.get("x-requested-with") == "XMLHttpRequest" and "location" in response.headers:
            return JSONResponse({"location": response.headers["location"]})
        return response

    async def save(
        request: Request, visitor: Visitor, form: Submitted, replaces: rules.DocumentLine | None
    ) -> Response:
        upload = form.files.get("fichier")
        draft, errors = rules.validate_upload(
            form.values,
            upload.data if upload else None,
            too_large="fichier" in form.too_large,
            max_bytes=max_bytes,
            today=today(),
        )
        if draft is None:
            await ens.failed(visitor, form)
            return await form_page(
                request,
                visitor,
                values={k: form.get(k) for k in ("titre", "type", "date")},
                errors=errors,
                file_sent=upload is not None or bool(form.too_large),
                replaces=replaces,
                status=400,
            )
        bundle = rules.upload_bundle(
            draft,
            patient_ref=visitor.patient_ref,
            author_ref=visitor.actor_ref,
            now_instant=now_instant(),
            replaces=dict(replaces.raw) if replaces else None,
        )
        answer = as_json((await ens.door.call(visitor.caller, "POST", "", resource=bundle)).body)
        created = created_id(answer, DOCUMENT)
        target = f"/ens/documents/{created}" if created else "/ens/documents"
        message = (
            "La nouvelle version a été enregistrée ; l’ancienne reste consultable dans l’historique."
            if replaces
            else "Le document a été ajouté à votre dossier."
        )
        return done_for_script(request, await ens.done(visitor, form, target, message))

    async def add(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if form is None:
            return await form_page(request, visitor, values=blank(day=today().isoformat()))
        return await save(request, visitor, form, None)

    async def new_version(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        line = await own_current(visitor, request.path_params["id"])
        if form is None:
            codes = {
                str(c.get("code"))
                for c in (line.raw.get("type") or {}).get("coding") or []
                if isinstance(c, dict)
            }
            kind = next((t.key for t in rules.PATIENT_TYPES if t.loinc in codes), "")
            values = blank(kind=kind, title=line.title, day=today().isoformat())
            return await form_page(request, visitor, values=values, replaces=line)
        return await save(request, visitor, form, line)

    async def delete(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        line = await own_current(visitor, request.path_params["id"])
        versions = await versions_of(visitor, line)
        if form is None:
            return await ens.page(
                request,
                visitor,
                "ens/documents/suppression.html",
                title="Supprimer un document",
                doc=line,
                count=len(versions),
            )
        # the document and its former versions, if they are the visitor's own
        chain = [v.raw for v in versions if v.mine]
        await ens.door.call(visitor.caller, "POST", "", resource=rules.deletion_bundle(chain))
        return await ens.done(visitor, form, "/ens/documents", "Le document a été supprimé de votre dossier.")

    # -- masking -----------------------------------------------------------------------------

    async def set_mask(request: Request, visitor: Visitor, form: Submitted | None, mask: bool) -> Response:
        line = await document_of(visitor, request.path_params["id"])
        if not _may_mask(visitor):
            raise PortalError(
                403, "Seuls la personne et ses représentants légaux peuvent masquer un document."
            )
        operation = "$mask" if mask else "$unmask"
        await ens.door.operation(visitor.caller, "POST", f"{DOCUMENT}/{line.id}/{operation}")
        message = (
            "Le document est masqué : les professionnels de santé ne le voient plus (sauf exceptions rappelées ci-dessous)."
            if mask
            else "Le document n’est plus masqué : les professionnels qui vous soignent peuvent le voir."
        )
        return await ens.done(visitor, form, f"/ens/documents/{line.id}", message)

    async def mask(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        return await set_mask(request, visitor, form, True)

    async def unmask(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        return await set_mask(request, visitor, form, False)

    return [
        ens.route("/ens/documents", listing),
        ens.route("/ens/documents/ajouter", add, methods=("GET", "POST")),
        ens.route("/ens/documents/{id}", show),
        ens.route("/ens/documents/{id}/fichier", download),
        ens.route("/ens/documents/{id}/nouvelle-version", new_version, methods=("GET", "POST")),
        ens.route("/ens/documents/{id}/supprimer", delete, methods=("GET", "POST")),
        ens.route("/ens/documents/{id}/masquer", mask, methods=("POST",)),
        ens.route("/ens/documents/{id}/afficher", unmask, methods=("POST",)),
    ]
