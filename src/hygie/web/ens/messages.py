"""Messagerie: secure conversations with the care team (``domain/ens/messaging.py``).

* ``/ens/messages`` — the conversations, the unread ones marked;
* ``/ens/messages/nouveau`` — write to a professional or a structure of the care team who accepts
  messages, with an attached file (checked) or a document of the record;
* ``/ens/messages/{id}`` — one conversation; opening it acknowledges the messages received
  (``$mark-received``: the sender sees "Lu le …"); a reply form;
* ``/ens/messages/pieces/{id}`` — an attached file (the DocumentReference, read under the rules);
* ``/ens/messages/{id}/fichiers/{n}`` — a file a professional's message carries;
* ``/ens/messages/notifications`` — e-mail / SMS / none, for every event the space tells
  (``domain/ens/notifications.py``), and whether legal representatives are told too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import messaging as msg
from hygie.domain.ens import notifications as notif
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.files import file_response
from hygie.web.portal.forms import FormErrors, Submitted
from hygie.web.portal.messaging import post_message
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes", "unread_count"]

_CATEGORY = f"{msg.CATEGORY_SYSTEM}|message"


async def _messages(ens: Ens, visitor: Visitor) -> list[dict[str, Any]]:
    return await ens.door.search(
        visitor.caller,
        "Communication",
        [("subject", visitor.patient_ref), ("category", _CATEGORY), ("_sort", "-sent"), ("_count", "200")],
        limit=1000,
    )


async def unread_count(ens: Ens, visitor: Visitor) -> int:
    """Messages received in this space that nobody opened yet (for the home page)."""
    return sum(1 for m in await _messages(ens, visitor) if msg.unread_for_patient(m, visitor.patient_ref))


async def _thread(ens: Ens, visitor: Visitor, root_id: str) -> list[dict[str, Any]]:
    """The messages of one conversation of this space (404 when it is not one of theirs)."""
    root = await ens.door.read(visitor.caller, "Communication", root_id)
    if root is None or not msg.is_message(root) or root.get("partOf"):
        raise PortalError(404, "Cette conversation n’existe pas ou n’est plus disponible.")
    if (root.get("subject") or {}).get("reference") != visitor.patient_ref:
        raise PortalError(404, "Cette conversation n’existe pas ou n’est plus disponible.")
    replies = await ens.door.search(
        visitor.caller,
        "Communication",
        [("part-of", f"Communication/{root_id}"), ("subject", visitor.patient_ref), ("_count", "200")],
        limit=1000,
    )
    return [root, *(r for r in replies if msg.is_message(r))]


async def _actor_name(ens: Ens, visitor: Visitor) -> str:
    rtype, rid = visitor.actor_ref.split("/", 1)
    return person_name(await ens.door.read(visitor.caller, rtype, rid))


async def _documents(ens: Ens, visitor: Visitor) -> list[dict[str, str]]:
    """Documents of the record the person may attach (the most recent first)."""
    found = await ens.door.search(
        visitor.caller,
        "DocumentReference",
        [("patient", visitor.patient_ref), ("status", "current"), ("_sort", "-date"), ("_count", "50")],
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


def _check_text(form: Submitted, errors: FormErrors) -> str:
    text = form.get("message")
    if not text:
        errors.add("message", "Écrivez votre message.")
    elif len(text) > msg.MAX_TEXT_CHARS:
        errors.add(
            "message", f"Le message est trop long ({len(text)} caractères, {msg.MAX_TEXT_CHARS} au plus)."
        )
    return text


def _check_attachment(
    form: Submitted, errors: FormErrors, documents: list[dict[str, str]]
) -> tuple[tuple[str, bytes] | None, dict[str, str] | None]:
    """The uploaded file (name, bytes) or the chosen document of the record, checked."""
    upload = form.files.get("piece")
    chosen = form.get("document")
    if "piece" in form.too_large:
        errors.add("piece", "Le fichier est trop volumineux : 5 Mo au plus.")
        return None, None
    if upload is not None and chosen:
        errors.add("piece", "Joignez soit un fichier, soit un document de votre dossier, pas les deux.")
        return None, None
    if upload is not None:
        problem = msg.attachment_problem(upload.content_type, upload.data)
        if problem:
            errors.add("piece", problem)
            return None, None
        return (upload.filename, upload.data), None
    if chosen:
        document = next((d for d in documents if d["id"] == chosen), None)
        if document is None:
            errors.add("document", "Choisissez un document de la liste.")
        return None, document
    return None, None


async def _send(
    ens: Ens,
    visitor: Visitor,
    message: dict[str, Any],
    upload: tuple[str, bytes] | None,
    document: dict[str, str] | None,
) -> str:
    """Create the message (with its attached file) in one transaction; the message's id."""
    if upload is None and document is not None:
        message["payload"].append(
            {
                "contentReference": {
                    "reference": f"DocumentReference/{document['id']}",
                    "display": document["title"],
                }
            }
        )
    return await post_message(
        ens.door, visitor.caller, message, upload=upload, author_ref=visitor.actor_ref, now_us=ens.clock()
    )


def routes(ens: Ens) -> list[BaseRoute]:
    async def inbox(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        messages = await _messages(ens, visitor)
        refs = {r for m in messages for r in msg.correspondent_refs([m], visitor.patient_ref)}
        names = await msg.names_of(ens.door, visitor.caller, refs)
        threads = msg.group_threads(messages, visitor.patient_ref, names)
        unread = sum(t.unread for t in threads)
        contacts = await msg.care_contacts(ens.door, visitor.caller, visitor.patient_id)
        return await ens.page(
            request,
            visitor,
            "ens/messages/liste.html",
            title="Messagerie",
            threads=threads,
            unread=unread,
            can_write=bool(contacts),
        )

    async def compose_page(
        request: Request,
        visitor: Visitor,
        *,
        values: dict[str, str] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        contacts = await msg.care_contacts(ens.door, visitor.caller, visitor.patient_id)
        return await ens.page(
            request,
            visitor,
            "ens/messages/nouveau.html",
            status=status,
            title="Écrire un message",
            contacts=contacts,
            documents=await _documents(ens, visitor),
            values=values or {"destinataire": request.query_params.get("a", "")},
            errors=(errors or FormErrors()).fields,
            max_mb=msg.MAX_ATTACHMENT_BYTES // (1024 * 1024),
        )

    async def compose(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if form is None:
            return await compose_page(request, visitor)
        errors = FormErrors()
        contacts = await msg.care_contacts(ens.door, visitor.caller, visitor.patient_id)
        recipient = next((c for c in contacts if c.reference == form.get("destinataire")), None)
        if recipient is None:
            errors.add("destinataire", "Choisissez à qui écrire dans la liste.")
        subject = form.get("objet")
        if not subject:
            errors.add("objet", "Indiquez l’objet de votre message.")
        elif len(subject) > msg.MAX_SUBJECT_CHARS:
            errors.add("objet", f"L’objet est trop long ({msg.MAX_SUBJECT_CHARS} caractères au plus).")
        text = _check_text(form, errors)
        documents = await _documents(ens, visitor)
        upload, document = _check_attachment(form, errors, documents)
        if errors or recipient is None:
            await ens.failed(visitor, form)
            values = {k: form.get(k) for k in ("destinataire", "objet", "message", "document")}
            return await compose_page(request, visitor, values=values, errors=errors, status=400)
        message = msg.new_message(
            patient_ref=visitor.patient_ref,
            sender=(visitor.actor_ref, await _actor_name(ens, visitor)),
            recipients=[(recipient.reference, recipient.name)],
            subject=subject,
            text=text,
            now_us=ens.clock(),
        )
        root = await _send(ens, visitor, message, upload, document)
        return await ens.done(
            visitor, form, f"/ens/messages/{root}", f"Votre message a été envoyé à {recipient.name}."
        )

    async def thread_page(
        request: Request,
        visitor: Visitor,
        root_id: str,
        *,
        values: dict[str, str] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        messages = await _thread(ens, visitor, root_id)
        fresh = {str(m["id"]) for m in messages if msg.unread_for_patient(m, visitor.patient_ref)}
        if status == 200:
            # opening the conversation acknowledges what was received (the sender sees "Lu le …")
            # (the page still shows them as new: they were, until now)
            for message in messages:
                if msg.unread_for_patient(message, visitor.patient_ref):
                    await ens.door.operation(
                        visitor.caller, "POST", f"Communication/{message['id']}/$mark-received"
                    )
        refs = msg.correspondent_refs(messages, visitor.patient_ref)
        names = await msg.names_of(ens.door, visitor.caller, refs)
        thread = msg.group_threads(messages, visitor.patient_ref, names)[0]
        return await ens.page(
            request,
            visitor,
            "ens/messages/conversation.html",
            status=status,
            title=thread.subject,
            thread=thread,
            can_reply=bool(refs),
            fresh=fresh,
            documents=await _documents(ens, visitor),
            values=values or {},
            errors=(errors or FormErrors()).fields,
            max_mb=msg.MAX_ATTACHMENT_BYTES // (1024 * 1024),
        )

    async def conversation(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        return await thread_page(request, visitor, request.path_params["id"])

    async def reply(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        root_id = request.path_params["id"]
        messages = await _thread(ens, visitor, root_id)
        refs = msg.correspondent_refs(messages, visitor.patient_ref)
        errors = FormErrors()
        text = _check_text(form, errors)
        documents = await _documents(ens, visitor)
        upload, document = _check_attachment(form, errors, documents)
        if not refs:
            errors.add("message", "Cette conversation n’a pas de destinataire à qui répondre.")
        if errors:
            await ens.failed(visitor, form)
            values = {k: form.get(k) for k in ("message", "document")}
            return await thread_page(request, visitor, root_id, values=values, errors=errors, status=400)
        names = await msg.names_of(ens.door, visitor.caller, refs)
        last = messages[-1] if len(messages) == 1 else max(messages, key=lambda m: str(m.get("sent", "")))
        message = msg.new_message(
            patient_ref=visitor.patient_ref,
            sender=(visitor.actor_ref, await _actor_name(ens, visitor)),
            recipients=[(r, names.get(r, "")) for r in refs],
            subject=str((messages[0].get("topic") or {}).get("text") or ""),
            text=text,
            now_us=ens.clock(),
            root_id=root_id,
            in_response_to=str(last["id"]),
        )
        await _send(ens, visitor, message, upload, document)
        return await ens.done(visitor, form, f"/ens/messages/{root_id}", "Votre réponse a été envoyée.")

    async def attachment(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        document = await ens.door.read(visitor.caller, "DocumentReference", request.path_params["id"])
        if document is None or (document.get("subject") or {}).get("reference") != visitor.patient_ref:
            raise PortalError(404, "Ce document n’existe pas ou n’est plus disponible.")
        attached = ((document.get("content") or [{}])[0] or {}).get("attachment") or {}
        data = await _attachment_bytes(ens, visitor, attached)
        kind = str(attached.get("contentType") or "application/octet-stream")
        title = str(attached.get("title") or document.get("description") or "document")
        safe = "".join(c for c in title if c.isascii() and (c.isalnum() or c in "._- ")) or "document"
        return Response(
            data,
            media_type=kind,
            headers={
                "Content-Disposition": f'attachment; filename="{safe}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def carried(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        """A file a professional's message carries (read as the person, like the message)."""
        message = await ens.door.read(visitor.caller, "Communication", request.path_params["id"])
        index = request.path_params["n"]
        if (
            message is None
            or not msg.is_message(message)
            or (message.get("subject") or {}).get("reference") != visitor.patient_ref
            or not index.isdigit()
            or (found := msg.carried_file(message, int(index))) is None
        ):
            raise PortalError(404, "Ce fichier n’existe pas ou n’est plus disponible.")
        data, kind, title = found
        return file_response(data, kind, title.rsplit(".", 1)[0], inline=False)

    async def notifications(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        patient = await ens.door.read(visitor.caller, "Patient", visitor.patient_id)
        if patient is None:
            raise PortalError(404, "Ce dossier n’existe pas ou n’est plus disponible.")
        email, mobile = notif.email_of(patient), notif.mobile_of(patient)
        # while legal representatives run the space, they are told too (notifications.py's rule)
        runtime = ens.services.get("runtime")
        try:
            related = await ens.door.search(
                visitor.caller, "RelatedPerson", [("patient", visitor.patient_id)], limit=200
            )
        except PortalError:  # an aidant may not see the relatives: nothing to say then
            related = []
        representatives = notif.representing(
            patient,
            related,
            majority_age=runtime.settings.majority_age if runtime is not None else 18,
            now_us=ens.clock(),
        )
        choices = {
            k: v
            for k, v in notif.CHOICES.items()
            if (k != "email" or email) and (k != "sms" or mobile) and (k != "both" or (email and mobile))
        }
        errors = FormErrors()
        if form is not None:
            choice = form.get("choix")
            if choice not in choices:
                errors.add("choix", "Choisissez comment être prévenu(e).")
                await ens.failed(visitor, form)
            else:
                updated = notif.apply_choice(patient, choice)  # type: ignore[arg-type]
                await ens.door.update(
                    visitor.caller,
                    updated,
                    version=str((patient.get("meta") or {}).get("versionId") or "") or None,
                )
                return await ens.done(
                    visitor, form, "/ens/messages", "Vos préférences de notification sont enregistrées."
                )
        return await ens.page(
            request,
            visitor,
            "ens/messages/notifications.html",
            status=400 if errors else 200,
            title="Être prévenu(e)",
            choices=choices,
            representatives=len(representatives),
            acting_for=visitor.space.relation == "representative",
            chosen=notif.choice_of(patient),
            email=(email or {}).get("value"),
            mobile=(mobile or {}).get("value"),
            errors=errors.fields,
        )

    return [
        ens.route("/ens/messages", inbox),
        ens.route("/ens/messages/nouveau", compose, methods=("GET", "POST")),
        ens.route("/ens/messages/notifications", notifications, methods=("GET", "POST")),
        ens.route("/ens/messages/pieces/{id}", attachment),
        ens.route("/ens/messages/{id}", conversation),
        ens.route("/ens/messages/{id}/repondre", reply, methods=("POST",)),
        ens.route("/ens/messages/{id}/fichiers/{n}", carried),
    ]


async def _attachment_bytes(ens: Ens, visitor: Visitor, attached: dict[str, Any]) -> bytes:
    """The attached file: inline, or the Binary of the record it points to."""
    raw = attached.get("data")
    url = str(attached.get("url") or "")
    if not raw and url.startswith("Binary/"):
        binary = await ens.door.read(visitor.caller, "Binary", url.split("/", 1)[1])
        raw = (binary or {}).get("data")
    if not isinstance(raw, str):
        raise PortalError(404, "Le fichier de ce document n’est pas disponible.")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PortalError(500, "Le fichier de ce document est illisible.", str(exc)) from exc
