"""ENS "Mon profil": civil status, used names, contact details, care team, relatives and wishes.

The page reads the Patient, its RelatedPersons and CareTeams, the advance-directive flag and
documents, and the organ-donation Consent through the door (as the signed-in person); each
change is one FHIR write by the same door. The rules are in :mod:`hygie.domain.ens.profile`.

Personal declarations — a trusted person, advance directives, the position on organ donation —
are the person's own: a relative acting for them sees them but cannot change them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import profile as rules
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]

PARIS = ZoneInfo("Europe/Paris")
_TITLE = "Mon profil"
_DIRECTIVE_TYPE = f"{rules.LOINC}|{rules.DIRECTIVE_LOINC}"


def routes(ens: Ens) -> list[BaseRoute]:
    def moment() -> datetime:
        return datetime.fromtimestamp(ens.clock() / 1_000_000, PARIS)

    def now_iso() -> str:
        return moment().isoformat(timespec="seconds")

    def own_only(visitor: Visitor, what: str) -> None:
        if not visitor.space.own:
            raise PortalError(403, f"Seule la personne elle-même peut modifier {what}.")

    async def patient_of(visitor: Visitor) -> dict[str, Any]:
        patient = await ens.door.read(visitor.caller, "Patient", visitor.patient_id)
        if patient is None:
            raise PortalError(404, "Ce dossier n’existe pas ou n’est plus disponible.")
        return patient

    async def directive_flag(visitor: Visitor) -> dict[str, Any] | None:
        found = await ens.door.search(
            visitor.caller,
            "Observation",
            [("patient", visitor.patient_id), ("code", _DIRECTIVE_TYPE), ("_sort", "-date"), ("_count", "1")],
            limit=1,
        )
        return found[0] if found else None

    async def directive_documents(visitor: Visitor) -> list[dict[str, Any]]:
        found = await ens.door.search(
            visitor.caller,
            "DocumentReference",
            [
                ("patient", visitor.patient_id),
                ("type", _DIRECTIVE_TYPE),
                ("status", "current"),
                ("_sort", "-date"),
            ],
            limit=20,
        )
        out = []
        for doc in found:
            attachment = ((doc.get("content") or [{}])[0]).get("attachment") or {}
            out.append(
                {
                    "id": doc.get("id"),
                    "title": doc.get("description") or attachment.get("title") or "Directives anticipées",
                    "date": str(doc.get("date", ""))[:10],
                    "size": attachment.get("size"),
                    "own": visitor.actor_ref in {a.get("reference") for a in doc.get("author", []) or []},
                }
            )
        return out

    async def donation(visitor: Visitor) -> dict[str, Any] | None:
        found = await ens.door.search(
            visitor.caller,
            "Consent",
            [
                ("patient", visitor.patient_id),
                ("category", f"{rules.LOINC}|{rules.DONATION_CATEGORY}"),
                ("status", "active"),
                ("_sort", "-_lastUpdated"),
            ],
            limit=5,
        )
        return found[0] if found else None

    async def relatives(visitor: Visitor, patient: dict[str, Any]) -> list[rules.Related]:
        found = await ens.door.search(visitor.caller, "RelatedPerson", [("patient", visitor.patient_id)])
        majority = _majority_us(patient)
        return [
            rules.related_view(r, majority_us=majority, now_us=ens.clock())
            for r in found
            if r.get("active") is not False
        ]

    async def care(visitor: Visitor, patient: dict[str, Any]) -> tuple[list[str], list[dict[str, str]]]:
        """(names of the médecins traitants, [{name, role}] of the care teams' members)."""
        refs = [
            str(gp.get("reference", ""))
            for gp in patient.get("generalPractitioner", []) or []
            if isinstance(gp, dict)
        ]
        teams = await ens.door.search(
            visitor.caller, "CareTeam", [("patient", visitor.patient_id), ("status", "active")], limit=50
        )
        members: list[tuple[dict[str, Any], str]] = []
        for team in teams:
            for participant in team.get("participant", []) or []:
                member = participant.get("member") or {}
                role = ", ".join(
                    str(
                        r.get("text") or next((c.get("display") for c in r.get("coding", []) or []), "") or ""
                    )
                    for r in participant.get("role", []) or []
                )
                members.append((member, role or str(team.get("name", ""))))
        wanted = [r for r in refs if r.startswith("Practitioner/")] + [
            str(m.get("reference", ""))
            for m, _ in members
            if str(m.get("reference", "")).startswith("Practitioner/")
        ]
        names = await practitioner_names(visitor, wanted)
        gps = [
            names.get(str(gp.get("reference", ""))) or str(gp.get("display", "")) or "Médecin traitant"
            for gp in patient.get("generalPractitioner", []) or []
            if isinstance(gp, dict)
        ]
        team_rows = []
        seen = set()
        for member, role in members:
            ref = str(member.get("reference", ""))
            if ref in seen:
                continue
            seen.add(ref)
            team_rows.append(
                {"name": names.get(ref) or str(member.get("display", "")) or "Professionnel", "role": role}
            )
        return gps, team_rows

    async def practitioner_names(visitor: Visitor, refs: list[str]) -> dict[str, str]:
        ids = sorted({r.split("/", 1)[1] for r in refs if r.startswith("Practitioner/")})
        if not ids:
            return {}
        found = await ens.door.search(
            visitor.caller, "Practitioner", [("_id", ",".join(ids))], limit=len(ids)
        )
        return {f"Practitioner/{p.get('id')}": person_name(p) for p in found}

    # ------------------------------------------------------------------ the page
    async def index(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        patient = await patient_of(visitor)
        civil = rules.civil_status(patient)
        gps, team = await care(visitor, patient)
        return await ens.page(
            request,
            visitor,
            "ens/profil/index.html",
            title=_TITLE,
            civil=civil,
            contact=rules.contact_of(patient),
            gps=gps,
            team=team,
            relatives=await relatives(visitor, patient),
            flag=rules.flag_of(await directive_flag(visitor)),
            places=rules.DIRECTIVE_PLACES,
            documents=await directive_documents(visitor),
            donation=rules.donation_of(await donation(visitor)),
            donation_choices=rules.DONATION_CHOICES,
            organs=rules.ORGANS,
        )

    # ------------------------------------------------------------------ used names, contact
    async def names(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        patient = await patient_of(visitor)
        civil = rules.civil_status(patient)
        values = {"nom_usage": civil.used_name, "prenom_utilise": civil.used_given}
        errors: dict[str, str] = {}
        if form is not None:
            values = {k: form.get(k) for k in values}
            changed, errors = rules.with_used_names(patient, values)
            if not errors:
                await ens.door.update(visitor.caller, changed, version=_version(patient))
                return await ens.done(
                    visitor,
                    form,
                    "/ens/profil",
                    "Votre nom d’usage et votre prénom utilisé sont enregistrés.",
                )
            await ens.failed(visitor, form)
        return await ens.page(
            request,
            visitor,
            "ens/profil/noms.html",
            status=400 if errors else 200,
            title="Nom d’usage et prénom utilisé",
            civil=civil,
            values=values,
            errors=errors,
        )

    async def contact(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        patient = await patient_of(visitor)
        values = rules.contact_of(patient)
        errors: dict[str, str] = {}
        if form is not None:
            values = {k: form.get(k) for k in values}
            changed, errors = rules.with_contact(patient, values)
            if not errors:
                await ens.door.update(visitor.caller, changed, version=_version(patient))
                return await ens.done(visitor, form, "/ens/profil", "Vos coordonnées sont enregistrées.")
            await ens.failed(visitor, form)
        return await ens.page(
            request,
            visitor,
            "ens/profil/coordonnees.html",
            status=400 if errors else 200,
            title="Mes coordonnées",
            values=values,
            errors=errors,
        )

    # ------------------------------------------------------------------ trusted person
    async def trusted(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        own_only(visitor, "la personne de confiance")
        patient = await patient_of(visitor)
        current = [r for r in await relatives(visitor, patient) if r.trusted]
        values: dict[str, str] = {"acces": "non"}
        errors: dict[str, str] = {}
        if form is not None:
            values = {k: form.get(k) for k in ("nom", "prenom", "lien", "telephone", "courriel", "acces")}
            if current:
                errors = {
                    "nom": f"Vous avez déjà désigné {current[0].name} : retirez-la d’abord pour en désigner une autre."
                }
                resource = None
            else:
                resource, errors = rules.trusted_person(
                    values, patient_ref=visitor.patient_ref, today=moment().date()
                )
            if resource is not None:
                await ens.door.create(visitor.caller, resource)
                message = "Votre personne de confiance est enregistrée."
                if values.get("acces") == "oui":
                    message += " Vous lui avez aussi donné accès à votre dossier, comme aidant."
                return await ens.done(visitor, form, "/ens/profil#proches", message)
            await ens.failed(visitor, form)
        return await ens.page(
            request,
            visitor,
            "ens/profil/confiance.html",
            status=400 if errors else 200,
            title="Désigner ma personne de confiance",
            designated=current,
            links=rules.LINKS,
            values=values,
            errors=errors,
        )

    async def remove_related(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        own_only(visitor, "vos proches")
        related_id = request.path_params["related_id"]
        resource = await ens.door.read(visitor.caller, "RelatedPerson", related_id)
        if resource is None or str((resource.get("patient") or {}).get("reference")) != visitor.patient_ref:
            raise PortalError(404, "Cette personne n’existe pas ou n’est plus dans votre dossier.")
        patient = await patient_of(visitor)
        view = rules.related_view(resource, majority_us=_majority_us(patient), now_us=ens.clock())
        if not view.trusted:
            raise PortalError(
                403,
                "Seule une personne de confiance se retire ici ; pour un représentant légal, adressez-vous à l’Assurance maladie.",
            )
        if form is not None:
            await ens.door.delete(visitor.caller, "RelatedPerson", related_id)
            return await ens.done(
                visitor, form, "/ens/profil#proches", f"{view.name} n’est plus votre personne de confiance."
            )
        return await ens.page(
            request,
            visitor,
            "ens/profil/retirer.html",
            title="Retirer ma personne de confiance",
            related=view,
        )

    # ------------------------------------------------------------------ advance directives
    async def directives(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        current = rules.flag_of(await directive_flag(visitor))
        values = {
            "redigees": "" if current.has is None else ("oui" if current.has else "non"),
            "lieu": current.place,
            "precision": current.detail,
        }
        errors: dict[str, str] = {}
        upload_errors: dict[str, str] = {}
        if form is not None:
            own_only(visitor, "les directives anticipées")
            values = {k: form.get(k) for k in values}
            resource, errors = rules.directive_flag(
                values, patient_ref=visitor.patient_ref, actor_ref=visitor.actor_ref, now=now_iso()
            )
            if resource is not None:
                await ens.door.create(visitor.caller, resource)
                return await ens.done(
                    visitor,
                    form,
                    "/ens/profil#directives",
                    "Votre réponse sur les directives anticipées est enregistrée.",
                )
            await ens.failed(visitor, form)
        return await directives_page(request, visitor, values, errors, upload_errors, {})

    async def directives_page(
        request: Request,
        visitor: Visitor,
        values: dict[str, str],
        errors: dict[str, str],
        upload_errors: dict[str, str],
        upload_values: dict[str, str],
    ) -> Response:
        return await ens.page(
            request,
            visitor,
            "ens/profil/directives.html",
            status=400 if (errors or upload_errors) else 200,
            title="Mes directives anticipées",
            values=values,
            errors=errors,
            upload_errors=upload_errors,
            upload_values=upload_values,
            places=rules.DIRECTIVE_PLACES,
            documents=await directive_documents(visitor),
            limit_mb=_limit(ens) // (1024 * 1024),
        )

    async def directive_upload(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        own_only(visitor, "les directives anticipées")
        upload_values = {"titre": form.get("titre")}
        upload_errors: dict[str, str] = {}
        upload = form.files.get("fichier")
        if len(upload_values["titre"]) > 200:
            upload_errors["titre"] = "Ce titre est trop long (200 caractères au plus)."
        if "fichier" in form.too_large:
            upload_errors["fichier"] = (
                f"Le fichier est trop volumineux : {_limit(ens) // (1024 * 1024)} Mo au plus."
            )
        elif upload is None:
            upload_errors["fichier"] = "Choisissez le fichier PDF de vos directives anticipées."
        else:
            problem = rules.check_pdf(
                upload.filename, upload.content_type, upload.data, max_bytes=_limit(ens)
            )
            if problem:
                upload_errors["fichier"] = problem
        if upload_errors or upload is None:
            await ens.failed(visitor, form)
            current = rules.flag_of(await directive_flag(visitor))
            values = {
                "redigees": "" if current.has is None else ("oui" if current.has else "non"),
                "lieu": current.place,
                "precision": current.detail,
            }
            return await directives_page(request, visitor, values, {}, upload_errors, upload_values)
        document = rules.directive_document(
            filename=upload.filename,
            data=upload.data,
            patient_ref=visitor.patient_ref,
            actor_ref=visitor.actor_ref,
            now=now_iso(),
            title=upload_values["titre"],
        )
        await ens.door.create(visitor.caller, document)
        return await ens.done(
            visitor,
            form,
            "/ens/profil/directives",
            "Le document de vos directives anticipées est ajouté à votre dossier.",
        )

    async def directive_file(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        doc = await _directive(visitor, request.path_params["doc_id"])
        attachment = ((doc.get("content") or [{}])[0]).get("attachment") or {}
        import base64  # noqa: PLC0415

        data = base64.b64decode(attachment.get("data", "") or "")
        if not data and attachment.get("url"):
            response = await ens.door.call(
                visitor.caller, "GET", str(attachment["url"]), headers={"accept": "application/pdf"}
            )
            data = response.body if isinstance(response.body, bytes) else b""
        if not data:
            raise PortalError(404, "Le fichier de ce document n’est pas disponible.")
        return Response(
            data,
            media_type="application/pdf",
            headers={
                "Content-Disposition": 'attachment; filename="directives-anticipees.pdf"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def directive_delete(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        own_only(visitor, "les directives anticipées")
        doc = await _directive(visitor, request.path_params["doc_id"])
        if form is not None:
            await ens.door.delete(visitor.caller, "DocumentReference", str(doc["id"]))
            return await ens.done(
                visitor, form, "/ens/profil/directives", "Le document est retiré de votre dossier."
            )
        return await ens.page(
            request,
            visitor,
            "ens/profil/retirer-document.html",
            title="Retirer un document de directives anticipées",
            document={
                "id": doc.get("id"),
                "title": doc.get("description") or "Directives anticipées",
                "date": str(doc.get("date", ""))[:10],
            },
        )

    async def _directive(visitor: Visitor, doc_id: str) -> dict[str, Any]:
        doc = await ens.door.read(visitor.caller, "DocumentReference", doc_id)
        codes = {c.get("code") for c in ((doc or {}).get("type") or {}).get("coding", []) or []}
        if (
            doc is None
            or rules.DIRECTIVE_LOINC not in codes
            or str((doc.get("subject") or {}).get("reference")) != visitor.patient_ref
        ):
            raise PortalError(404, "Ce document n’existe pas ou n’est plus disponible.")
        return doc

    # ------------------------------------------------------------------ organ donation
    async def organ_donation(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        existing = await donation(visitor)
        current = rules.donation_of(existing)
        values = {"position": current.choice}
        organs = list(current.organs)
        errors: dict[str, str] = {}
        if form is not None:
            own_only(visitor, "la position sur le don d’organes")
            values = {"position": form.get("position")}
            organs = [o for o in form.lists.get("organes", []) if o]
            resource, errors = rules.donation_consent(
                values, organs, patient_ref=visitor.patient_ref, actor_ref=visitor.actor_ref, now=now_iso()
            )
            if resource is not None:
                if existing is not None:
                    await ens.door.update(
                        visitor.caller, {**resource, "id": existing["id"]}, version=_version(existing)
                    )
                else:
                    await ens.door.create(visitor.caller, resource)
                return await ens.done(
                    visitor, form, "/ens/profil#don", "Votre position sur le don d’organes est enregistrée."
                )
            await ens.failed(visitor, form)
        return await ens.page(
            request,
            visitor,
            "ens/profil/don.html",
            status=400 if errors else 200,
            title="Don d’organes et de tissus",
            values=values,
            chosen=organs,
            choices=rules.DONATION_CHOICES,
            organs=rules.ORGANS,
            errors=errors,
            position=current,
        )

    return [
        ens.route("/ens/profil", index),
        ens.route("/ens/profil/noms", names, methods=("GET", "POST")),
        ens.route("/ens/profil/coordonnees", contact, methods=("GET", "POST")),
        ens.route("/ens/profil/personne-de-confiance", trusted, methods=("GET", "POST")),
        ens.route("/ens/profil/proches/{related_id}/retirer", remove_related, methods=("GET", "POST")),
        ens.route("/ens/profil/directives", directives, methods=("GET", "POST")),
        ens.route("/ens/profil/directives/document", directive_upload, methods=("POST",)),
        ens.route("/ens/profil/directives/document/{doc_id}", directive_file),
        ens.route(
            "/ens/profil/directives/document/{doc_id}/retirer", directive_delete, methods=("GET", "POST")
        ),
        ens.route("/ens/profil/don-organes", organ_donation, methods=("GET", "POST")),
    ]


def _version(resource: dict[str, Any]) -> str | None:
    version = (resource.get("meta") or {}).get("versionId")
    return str(version) if version else None


def _limit(ens: Ens) -> int:
    runtime = ens.services.get("runtime")
    configured = runtime.settings.max_upload_bytes if runtime is not None else rules.MAX_PDF_BYTES
    return min(int(configured), rules.MAX_PDF_BYTES)


def _majority_us(patient: dict[str, Any]) -> int | None:
    """When the patient comes of age (18), in µs; None without a birth date."""
    raw = patient.get("birthDate")
    if not isinstance(raw, str) or len(raw) != 10:
        return None
    from datetime import date  # noqa: PLC0415

    born = date.fromisoformat(raw)
    try:
        of_age = born.replace(year=born.year + 18)
    except ValueError:  # 29 February
        of_age = born.replace(year=born.year + 18, day=28)
    return int(datetime(of_age.year, of_age.month, of_age.day, tzinfo=PARIS).timestamp() * 1_000_000)
