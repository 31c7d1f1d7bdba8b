"""BSP « Messagerie »: secure messages between professionals, with patients, and the authority's alerts.

The rules are in ``domain/bsp/messaging.py`` (and, shared with the citizen's space,
``domain/ens/messaging.py``); every read and write goes through ``bsp.door`` as the professional.

* ``GET /bsp/messages`` — the conversations where I (or my structure) am sender or recipient,
  those with something new first; the alerts an authority sent me;
* ``GET|POST /bsp/messages/nouveau`` — write to a professional or a structure found in the
  directory (by name or MSSanté address: ``?qui=``, chosen with ``?a=``), about a patient of mine
  or none (``?patient=``), with documents of that patient's record and/or a file;
* ``GET /bsp/messages/{id}`` — one conversation (only to its parties: anyone else gets 404);
  opening it acknowledges what I received (``$mark-received``); ``POST …/repondre`` answers all
  the other parties (to a patient: the reply shows in their space);
* ``GET /bsp/messages/{id}/documents/{doc}`` — a document of the record attached to a message, if
  the access rules open it to me; ``GET /bsp/messages/{id}/fichiers/{n}`` — a file the message
  carries;
* ``GET /bsp/messages/alertes/{id}`` — one alert (acknowledged when opened).

The home page shows the unread messages and alerts (``web/bsp/home.py``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.bsp import messaging as pro
from hygie.domain.ens import messaging as msg
from hygie.domain.ens.alerts import ALERT_CATEGORY, is_alert, view_alert
from hygie.web.bsp.core import Bsp, patient_context
from hygie.web.bsp.home import Highlight, highlight
from hygie.web.portal.door import PortalError
from hygie.web.portal.files import document_content, file_response
from hygie.web.portal.forms import FormErrors, Submitted
from hygie.web.portal.messaging import post_message
from hygie.web.portal.session import PatientContext, Professional, person_name

__all__ = ["correspondent", "my_patients", "open_patient", "record_documents", "routes"]

_KINDS = ",".join(f"{msg.CATEGORY_SYSTEM}|{code}" for code in sorted(pro.KINDS))
_ALERTS = f"{ALERT_CATEGORY['system']}|{ALERT_CATEGORY['code']}"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_GONE = "Cette conversation n’existe pas ou ne vous est pas adressée."
_DOCUMENT_CLOSED = (
    "Ce document ne vous est pas accessible : les règles d’accès au dossier du patient ne vous "
    "l’ouvrent pas (relation de soins, catégorie du document, choix du patient)."
)
_MY_PATIENTS = 100


def _id(value: str, message: str = _GONE) -> str:
    if not _ID.fullmatch(value):
        raise PortalError(404, message)
    return value


def _box(visitor: Professional) -> msg.Mailbox:
    return pro.professional_mailbox(visitor.practitioner_ref, visitor.organization)


# what the inbox needs of a message: not its payload (the files it carries may be large)
_LISTED = "category,subject,topic,sent,received,sender,recipient,partOf,status"


async def _mine(bsp: Bsp, visitor: Professional) -> list[dict[str, Any]]:
    """The messages I (or my structure) sent or received, the most recent first, without their
    payload."""
    own = ",".join(sorted(_box(visitor).own))
    found: dict[str, dict[str, Any]] = {}
    for param in ("recipient", "sender"):
        for message in await bsp.door.search(
            visitor.caller,
            "Communication",
            [
                (param, own),
                ("category", _KINDS),
                ("_sort", "-sent"),
                ("_count", "200"),
                ("_elements", _LISTED),
            ],
            limit=1000,
        ):
            found[str(message.get("id"))] = message
    return list(found.values())


async def _alerts(bsp: Bsp, visitor: Professional) -> list[dict[str, Any]]:
    return await bsp.door.search(
        visitor.caller,
        "Communication",
        [
            ("recipient", visitor.practitioner_ref),
            ("category", _ALERTS),
            ("_sort", "-sent"),
            ("_count", "50"),
        ],
        limit=50,
    )


async def _names(bsp: Bsp, visitor: Professional, refs: list[str]) -> dict[str, str]:
    """Display names of the parties: directory entries, patients, relatives (as I may read them)."""
    names = await msg.names_of(bsp.door, visitor.caller, refs)
    for ref in refs:
        kind, _, rid = ref.partition("/")
        if kind in ("Patient", "RelatedPerson") and _ID.fullmatch(rid) and ref not in names:
            try:
                names[ref] = person_name(await bsp.door.read(visitor.caller, kind, rid))
            except PortalError as error:  # a record no longer open to me: the message's display
                if error.status != 403:
                    raise
    names[visitor.practitioner_ref] = visitor.name
    return {k: v for k, v in names.items() if v}


async def _thread(bsp: Bsp, visitor: Professional, root_id: str) -> list[dict[str, Any]]:
    """The messages of a conversation I am a party to (404 otherwise, even for a colleague who
    may read the patient's record)."""
    root = await bsp.door.read(visitor.caller, "Communication", _id(root_id))
    if root is None or not msg.is_message(root, pro.KINDS) or root.get("partOf"):
        raise PortalError(404, _GONE)
    replies = await bsp.door.search(
        visitor.caller,
        "Communication",
        [("part-of", f"Communication/{root_id}"), ("_count", "200")],
        limit=1000,
    )
    messages = [root, *(r for r in replies if msg.is_message(r, pro.KINDS))]
    if not pro.involves(messages, _box(visitor)):
        raise PortalError(404, _GONE)
    return messages


async def record_documents(bsp: Bsp, visitor: Professional, patient_id: str) -> list[dict[str, str]]:
    """The patient's current documents open to me (the most recent first): what I may attach."""
    found = await bsp.door.search(
        visitor.caller,
        "DocumentReference",
        [("patient", patient_id), ("status", "current"), ("_sort", "-date"), ("_count", "50")],
        limit=50,
    )
    return [
        {
            "id": str(d["id"]),
            "title": str(d.get("description") or (d.get("type") or {}).get("text") or "Document"),
            "date": str(d.get("date", ""))[:10],
        }
        for d in found
    ]


async def open_patient(bsp: Bsp, visitor: Professional, patient_id: str) -> PatientContext | None:
    """A patient whose record is open to me (None: unknown, or not open to me)."""
    if not _ID.fullmatch(patient_id):
        return None
    try:
        found = await bsp.door.read(visitor.caller, "Patient", patient_id)
    except PortalError as error:
        if error.status != 403:
            raise
        return None
    return patient_context(found) if found else None


async def my_patients(bsp: Bsp, visitor: Professional) -> list[PatientContext]:
    found = await bsp.door.search(visitor.caller, "Patient", [("_count", "100")], limit=_MY_PATIENTS)
    return sorted(
        (patient_context(p) for p in found if p.get("active") is not False),
        key=lambda c: (c.label.split(" ")[-1], c.label),
    )


async def correspondent(bsp: Bsp, visitor: Professional, ref: str) -> pro.Correspondent | None:
    """A professional or a structure of the directory, named by reference."""
    kind, _, rid = ref.partition("/")
    if kind not in ("Practitioner", "Organization") or not _ID.fullmatch(rid):
        return None
    found = await bsp.door.read(visitor.caller, kind, rid)
    if found is None:
        return None
    roles: list[dict[str, Any]] = []
    if kind == "Practitioner":
        roles = await bsp.door.search(
            visitor.caller, "PractitionerRole", [("practitioner", ref), ("_count", "10")], limit=10
        )
    return pro.correspondent_of(found, roles)


def _check_text(form: Submitted, errors: FormErrors) -> str:
    text = form.get("message")
    if not text:
        errors.add("message", "Écrivez votre message.")
    elif len(text) > msg.MAX_TEXT_CHARS:
        errors.add(
            "message", f"Le message est trop long ({len(text)} caractères, {msg.MAX_TEXT_CHARS} au plus)."
        )
    return text


def _check_files(form: Submitted, errors: FormErrors) -> tuple[str, bytes] | None:
    upload = form.files.get("piece")
    if "piece" in form.too_large:
        errors.add(
            "piece",
            f"Le fichier est trop volumineux : {msg.MAX_ATTACHMENT_BYTES // (1024 * 1024)} Mo au plus.",
        )
        return None
    if upload is None:
        return None
    problem = msg.attachment_problem(upload.content_type, upload.data)
    if problem:
        errors.add("piece", problem)
        return None
    return upload.filename, upload.data


def _check_documents(
    form: Submitted, errors: FormErrors, documents: list[dict[str, str]]
) -> list[tuple[str, str]]:
    """The chosen documents of the record, as (reference, title)."""
    available = {d["id"]: d["title"] for d in documents}
    chosen = list(dict.fromkeys(v for v in form.lists.get("documents", []) if v))
    if any(c not in available for c in chosen):
        errors.add("documents", "Choisissez les documents dans la liste.")
        return []
    return [(f"DocumentReference/{c}", available[c]) for c in chosen]


def routes(bsp: Bsp) -> list[BaseRoute]:
    async def unread(visitor: Professional) -> list[Highlight]:
        box = _box(visitor)
        messages = sum(1 for m in await _mine(bsp, visitor) if box.unread(m))
        alerts = sum(1 for a in await _alerts(bsp, visitor) if not a.get("received"))
        shown = []
        if messages:
            shown.append(
                Highlight(
                    f"{messages} message{'s' if messages > 1 else ''} non lu{'s' if messages > 1 else ''}",
                    "/bsp/messages",
                )
            )
        if alerts:
            shown.append(
                Highlight(
                    f"{alerts} alerte{'s' if alerts > 1 else ''} sanitaire{'s' if alerts > 1 else ''} à lire",
                    "/bsp/messages#alertes",
                )
            )
        return shown

    highlight(bsp, unread)

    async def inbox(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        box = _box(visitor)
        messages = await _mine(bsp, visitor)
        about = {
            str(m.get("id")): str((m.get("subject") or {}).get("reference") or "")
            for m in messages
            if not m.get("partOf")
        }
        refs = list(dict.fromkeys(r for m in messages for r in msg.correspondent_refs([m], box)))
        names = await _names(bsp, visitor, [*refs, *(r for r in set(about.values()) if r)])
        threads = pro.inbox_order(msg.group_threads(messages, box, names, pro.KINDS))
        alerts = [view_alert(a) for a in await _alerts(bsp, visitor)]
        return await bsp.page(
            request,
            visitor,
            "bsp/messages/liste.html",
            title="Messagerie",
            threads=threads,
            unread=sum(t.unread for t in threads),
            about=about,
            names=names,
            alerts=alerts,
            unread_alerts=sum(1 for a in alerts if a.unread),
        )

    async def compose_page(
        request: Request,
        visitor: Professional,
        *,
        values: dict[str, Any] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        query = request.query_params
        values = values or {"a": query.get("a", ""), "patient": query.get("patient", "")}
        wanted = " ".join(query.get("qui", "").split())[:100]
        errors = errors or FormErrors()
        recipient = await correspondent(bsp, visitor, str(values.get("a") or ""))
        if values.get("a") and recipient is None:
            errors.add("a", "Ce destinataire n’est pas dans l’annuaire : cherchez-le à nouveau.")
        found: list[pro.Correspondent] = []
        if wanted and recipient is None:
            found = [
                c
                for c in await pro.find_correspondents(bsp.door, visitor.caller, wanted)
                if c.reference != visitor.practitioner_ref
            ]
        patient = None
        if values.get("patient"):
            patient = await open_patient(bsp, visitor, str(values["patient"]))
            if patient is None:
                errors.add("patient", "Ce dossier ne vous est pas ouvert : choisissez un de vos patients.")
        return await bsp.page(
            request,
            visitor,
            "bsp/messages/nouveau.html",
            status=status,
            title="Nouveau message",
            recipient=recipient,
            wanted=wanted,
            found=found,
            searched=bool(wanted) and recipient is None,
            patient=patient,
            patients=await my_patients(bsp, visitor) if patient is None else [],
            documents=await record_documents(bsp, visitor, patient.patient_id) if patient else [],
            values=values,
            errors=errors.fields,
            max_mb=msg.MAX_ATTACHMENT_BYTES // (1024 * 1024),
        )

    async def compose(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        if form is None:
            return await compose_page(request, visitor)
        errors = FormErrors()
        values: dict[str, Any] = {
            "a": form.get("a"),
            "patient": form.get("patient"),
            "objet": form.get("objet"),
            "message": form.get("message"),
            "documents": form.lists.get("documents", []),
        }
        recipient = await correspondent(bsp, visitor, values["a"])
        if recipient is None or recipient.reference == visitor.practitioner_ref:
            errors.add("a", "Choisissez un destinataire dans l’annuaire.")
        patient = await open_patient(bsp, visitor, values["patient"]) if values["patient"] else None
        if values["patient"] and patient is None:
            errors.add("patient", "Ce dossier ne vous est pas ouvert : choisissez un de vos patients.")
        subject = values["objet"]
        if not subject:
            errors.add("objet", "Indiquez l’objet du message.")
        elif len(subject) > msg.MAX_SUBJECT_CHARS:
            errors.add("objet", f"L’objet est trop long ({msg.MAX_SUBJECT_CHARS} caractères au plus).")
        text = _check_text(form, errors)
        documents = await record_documents(bsp, visitor, patient.patient_id) if patient else []
        attached = _check_documents(form, errors, documents)
        upload = _check_files(form, errors)
        if errors or recipient is None:
            await bsp.failed(visitor, form)
            return await compose_page(request, visitor, values=values, errors=errors, status=400)
        message = pro.professional_message(
            patient_ref=f"Patient/{patient.patient_id}" if patient else None,
            sender=(visitor.practitioner_ref, visitor.name),
            recipients=[(recipient.reference, recipient.name)],
            subject=subject,
            text=text,
            now_us=bsp.clock(),
            documents=attached,
            files=[upload] if upload else [],
        )
        root = await post_message(bsp.door, visitor.caller, message)
        return await bsp.done(
            visitor, form, f"/bsp/messages/{root}", f"Votre message a été envoyé à {recipient.name}."
        )

    async def thread_page(
        request: Request,
        visitor: Professional,
        root_id: str,
        *,
        values: dict[str, Any] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        box = _box(visitor)
        messages = await _thread(bsp, visitor, root_id)
        fresh = {str(m["id"]) for m in messages if box.unread(m)}
        if status == 200:
            # opening the conversation acknowledges what I received (the sender sees "Lu le …")
            for message_id in sorted(fresh):
                await bsp.door.operation(visitor.caller, "POST", f"Communication/{message_id}/$mark-received")
        refs = msg.correspondent_refs(messages, box)
        subject_ref = str((messages[0].get("subject") or {}).get("reference") or "")
        names = await _names(bsp, visitor, [*refs, *([subject_ref] if subject_ref else [])])
        thread = msg.group_threads(messages, box, names, pro.KINDS)[0]
        patient_id = subject_ref.removeprefix("Patient/") if subject_ref.startswith("Patient/") else ""
        documents = await record_documents(bsp, visitor, patient_id) if patient_id else []
        return await bsp.page(
            request,
            visitor,
            "bsp/messages/conversation.html",
            status=status,
            title=thread.subject,
            thread=thread,
            fresh=fresh,
            with_patient=msg.is_message(messages[0]),
            about_id=patient_id,
            about=names.get(subject_ref, "") if patient_id else "",
            documents=documents,
            values=values or {},
            errors=(errors or FormErrors()).fields,
            max_mb=msg.MAX_ATTACHMENT_BYTES // (1024 * 1024),
        )

    async def conversation(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        return await thread_page(request, visitor, request.path_params["id"])

    async def reply(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        assert form is not None
        root_id = request.path_params["id"]
        box = _box(visitor)
        messages = await _thread(bsp, visitor, root_id)
        root = messages[0]
        subject_ref = str((root.get("subject") or {}).get("reference") or "")
        to_patient = msg.is_message(root)
        refs = msg.correspondent_refs(messages, box)
        if to_patient and subject_ref and subject_ref not in refs:
            refs.append(subject_ref)  # the person's space, whoever wrote from it
        errors = FormErrors()
        text = _check_text(form, errors)
        patient_id = subject_ref.removeprefix("Patient/") if subject_ref.startswith("Patient/") else ""
        documents = await record_documents(bsp, visitor, patient_id) if patient_id else []
        attached = _check_documents(form, errors, documents)
        upload = _check_files(form, errors)
        if not refs:
            errors.add("message", "Cette conversation n’a pas de destinataire à qui répondre.")
        if errors:
            await bsp.failed(visitor, form)
            values = {"message": form.get("message"), "documents": form.lists.get("documents", [])}
            return await thread_page(request, visitor, root_id, values=values, errors=errors, status=400)
        names = await _names(bsp, visitor, refs)
        last = max(messages, key=lambda m: (str(m.get("sent", "")), str(m.get("id", ""))))
        message = pro.professional_message(
            patient_ref=subject_ref or None,
            sender=(visitor.practitioner_ref, visitor.name),
            recipients=[(r, names.get(r, "")) for r in refs],
            subject=str((root.get("topic") or {}).get("text") or ""),
            text=text,
            now_us=bsp.clock(),
            root_id=root_id,
            in_response_to=str(last["id"]),
            documents=attached,
            files=[upload] if upload else [],
            to_patient=to_patient,
        )
        await post_message(bsp.door, visitor.caller, message)
        return await bsp.done(visitor, form, f"/bsp/messages/{root_id}", "Votre réponse a été envoyée.")

    async def _message(visitor: Professional, message_id: str) -> dict[str, Any]:
        message = await bsp.door.read(visitor.caller, "Communication", _id(message_id))
        if message is None or not msg.is_message(message, pro.KINDS):
            raise PortalError(404, _GONE)
        if not pro.involves([message], _box(visitor)):
            raise PortalError(404, _GONE)
        return message

    async def attached_document(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        message = await _message(visitor, request.path_params["id"])
        doc_id = _id(request.path_params["doc"], _DOCUMENT_CLOSED)
        titles = {
            str((p.get("contentReference") or {}).get("reference")): str(
                (p.get("contentReference") or {}).get("display") or "document"
            )
            for p in message.get("payload") or []
            if isinstance(p, dict) and isinstance(p.get("contentReference"), dict)
        }
        if f"DocumentReference/{doc_id}" not in titles:
            raise PortalError(404, _DOCUMENT_CLOSED)
        try:
            document = await bsp.door.read(visitor.caller, "DocumentReference", doc_id)
        except PortalError as error:
            if error.status != 403:
                raise
            document = None
        if document is None:
            raise PortalError(404, _DOCUMENT_CLOSED)
        content = await document_content(bsp.door, visitor.caller, document)
        if content is None:
            raise PortalError(404, "Le fichier de ce document n’est pas disponible.")
        title = str(document.get("description") or titles[f"DocumentReference/{doc_id}"])
        return file_response(content[0], content[1], title, inline=False)

    async def carried(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        message = await _message(visitor, request.path_params["id"])
        index = request.path_params["n"]
        found = pro.carried_file(message, int(index)) if index.isdigit() else None
        if found is None:
            raise PortalError(404, "Ce fichier n’existe pas ou n’est plus disponible.")
        data, kind, title = found
        return file_response(data, kind, title.rsplit(".", 1)[0], inline=False)

    async def alert(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        alert_id = _id(request.path_params["id"], "Cette alerte n’existe pas ou ne vous est pas adressée.")
        found = await bsp.door.read(visitor.caller, "Communication", alert_id)
        recipients = {str((r or {}).get("reference")) for r in (found or {}).get("recipient") or []}
        if found is None or not is_alert(found) or visitor.practitioner_ref not in recipients:
            raise PortalError(404, "Cette alerte n’existe pas ou ne vous est pas adressée.")
        view = view_alert(found)
        if not found.get("received"):
            await bsp.door.operation(visitor.caller, "POST", f"Communication/{alert_id}/$mark-received")
        return await bsp.page(request, visitor, "bsp/messages/alerte.html", title=view.title, alert=view)

    return [
        bsp.route("/bsp/messages", inbox),
        bsp.route("/bsp/messages/nouveau", compose, methods=("GET", "POST")),
        bsp.route("/bsp/messages/alertes/{id}", alert),
        bsp.route("/bsp/messages/{id}", conversation),
        bsp.route("/bsp/messages/{id}/repondre", reply, methods=("POST",)),
        bsp.route("/bsp/messages/{id}/documents/{doc}", attached_document),
        bsp.route("/bsp/messages/{id}/fichiers/{n}", carried),
    ]
