"""ENS "Qui voit mon dossier": who can see the record, the person's rules, history, shares, apps.

Pages (``/ens/controles``):

* the overview — who can see the record (médecin traitant, care team, grants, delegations),
  blocked professionals, the emergency-access choice, the last accesses, documents masked from
  professionals, connected apps;
* ``/historique`` — the access history with its purpose, by period and by who, page by page;
  ``/historique/{id}`` — one access, and "je ne reconnais pas cet accès" (``$dispute``);
* ``/partage`` — a temporary share by code and QR code (``$share``);
* ``/bloquer`` — find a professional in the directory and block them;
* ``/regles/{key}`` — one rule (grant, block…) and its withdrawal;
* ``/urgence``, ``/applications/{family}/retirer`` — the emergency choice, revoking an app.

Every change of a rule is a Consent written through the door as the visitor; apps are the
authorisation server's grants of the signed-in account (``auth/server.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.auth.scopes import InvalidScope, parse_scopes
from hygie.domain.audit import PLATFORM_ROLE
from hygie.domain.ens.controls import (
    CLASS_LABELS,
    HistoryLine,
    Rule,
    block_consent,
    delegation_kind,
    emergency_refusal_consent,
    french_date,
    french_datetime,
    hidden_from_viewer,
    history_line,
    rules_of,
    without_rule,
)
from hygie.domain.ens.lifecycle import instant
from hygie.web.ens.core import Ens
from hygie.web.oauth import scope_label
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import FormErrors, Submitted
from hygie.web.portal.session import Visitor, person_name

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["routes"]

_SHOWN_SHARE = "ens-share-shown"  # session id -> the last share code created (shown until it expires)
_PERIODS = {"7": 7, "30": 30, "365": 365, "tout": None}
# whose accesses the history shows (the ``qui`` parameter)
WHO = {
    "autres": "Les professionnels, mes proches et les applications",
    "plateforme": "Les mêmes et les traitements techniques de la plateforme",
    "tous": "Tout le monde, moi compris",
}
_PAGE = 20
_DISPUTE_REASONS = {
    "inconnu": "Je ne connais pas ce professionnel",
    "pas-de-soin": "Je n’ai pas été soigné(e) par cette personne à cette date",
    "autre": "Autre raison",
}
_SHARE_DAYS = {"1": "1 jour", "7": "7 jours", "30": "30 jours", "90": "3 mois"}
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_DAY_US = 86_400 * 1_000_000


def _runtime(ens: Ens) -> Runtime:
    runtime: Runtime = ens.services["runtime"]
    return runtime


def _may_change(visitor: Visitor) -> bool:
    """The person, or their legal representative, sets the rules of the record (not a helper)."""
    return visitor.space.relation in ("self", "representative")


async def names_of(ens: Ens, visitor: Visitor, refs: Sequence[str]) -> dict[str, str]:
    """Display names of references (practitioners, structures, relatives), read through the door."""
    by_type: dict[str, list[str]] = {}
    for ref in dict.fromkeys(refs):
        rtype, _, rid = ref.partition("/")
        if rtype in ("Practitioner", "Organization", "RelatedPerson", "PractitionerRole") and _ID.match(rid):
            by_type.setdefault(rtype, []).append(rid)
    names: dict[str, str] = {}
    for rtype, ids in by_type.items():
        for chunk in range(0, len(ids), 50):
            part = ids[chunk : chunk + 50]
            found = await ens.door.search(
                visitor.caller, rtype, [("_id", ",".join(part)), ("_count", "50")], limit=50
            )
            for resource in found:
                label = (
                    str(resource.get("name") or "")
                    if rtype == "Organization"
                    else person_name(resource) or rtype
                )
                names[f"{rtype}/{resource.get('id')}"] = label
    return names


def _rule_view(rule: Rule, names: dict[str, str]) -> dict[str, Any]:
    return {
        "key": rule.key,
        "kind": rule.kind,
        "who": ", ".join(names.get(a, "Professionnel non trouvé dans l’annuaire") for a in rule.actors),
        "what": rule.classes_label,
        "until": french_date(rule.end_us) if rule.end_us else "",
        "since": french_date(rule.start_us or rule.recorded_us),
        "temporary": rule.end_us is not None,
    }


async def _history_page(
    ens: Ens,
    visitor: Visitor,
    *,
    since_days: int | None,
    who: str,
    cursor: str | None,
    wanted: int,
) -> tuple[list[HistoryLine], str | None]:
    """Lines of the access history (newest first) and the cursor of the next page, if any.

    ``who`` is a key of :data:`WHO`: by default the visitor's own accesses and the platform's
    technical processes (notifications, probes, loading) are left out by the trail itself, so the
    accesses of professionals, relatives and apps are not buried under them.

    Lines about documents the visitor may not see are left out (an adolescent's confidential
    document read by a professional is not shown to the parents)."""
    others_only = who != "tous"
    visible = await _visible_documents(ens, visitor)
    params: list[tuple[str, str]] = [("_count", "50")]
    if since_days is not None:
        params.append(("_since", instant(ens.clock() - since_days * _DAY_US)))
    lines: list[HistoryLine] = []
    pages = 0
    following = cursor
    names: dict[str, str] = {}
    related = [s.related_id for s in visitor.spaces if s.related_id]
    if others_only:
        # left out by the trail itself: the visitor's own reads would otherwise fill the pages
        params += [
            ("exclude-agent", ref) for ref in {visitor.actor_ref, *(f"RelatedPerson/{r}" for r in related)}
        ]
    if who == "autres":
        params.append(("exclude-role", PLATFORM_ROLE))
    while True:
        query = [*params, *([("_cursor", following)] if following else [])]
        bundle = await ens.door.operation(
            visitor.caller, "GET", f"Patient/{visitor.patient_id}/$access-history", query
        )
        events = [e.get("resource") or {} for e in bundle.get("entry", []) or []]
        refs = [
            r
            for e in events
            for a in e.get("agent", []) or []
            if a.get("requestor")
            for r in [str(((a.get("who") or {}).get("identifier") or {}).get("value") or "")]
            if r.startswith("RelatedPerson/") and r not in names
        ]
        if refs:
            names.update(await names_of(ens, visitor, refs))
        names[visitor.patient_ref] = "Vous" if visitor.space.own else visitor.space.label
        if visitor.space.related_id:
            names[visitor.actor_ref] = "Vous"
        for event in events:
            line = history_line(event, names)
            if hidden_from_viewer(line, visible):
                continue
            if others_only and (line.who_ref == visitor.actor_ref or line.who_ref in related):
                continue
            lines.append(line)
        following = next(
            (
                _cursor_of(link.get("url", ""))
                for link in bundle.get("link", []) or []
                if link.get("relation") == "next"
            ),
            None,
        )
        pages += 1
        if following is None or len(lines) >= wanted or pages >= 10:
            return lines, following


def _cursor_of(url: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit  # noqa: PLC0415

    values = parse_qs(urlsplit(url).query).get("_cursor")
    return values[0] if values else None


async def _visible_documents(ens: Ens, visitor: Visitor) -> set[str]:
    """References of the documents (and their contents) the visitor may see."""
    documents = await ens.door.search(
        visitor.caller, "DocumentReference", [("patient", visitor.patient_id), ("_count", "500")], limit=5000
    )
    visible = set()
    for document in documents:
        visible.add(f"DocumentReference/{document.get('id')}")
        for content in document.get("content", []) or []:
            url = str(((content or {}).get("attachment") or {}).get("url") or "")
            if "Binary/" in url:
                visible.add("Binary/" + url.rsplit("Binary/", 1)[1].split("/", maxsplit=1)[0])
    return visible


async def _consents(ens: Ens, visitor: Visitor) -> list[dict[str, Any]]:
    return await ens.door.search(
        visitor.caller, "Consent", [("patient", visitor.patient_id), ("_count", "200")], limit=2000
    )


def routes(ens: Ens) -> list[BaseRoute]:
    async def overview(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        now = ens.clock()
        patient = await ens.door.read(visitor.caller, "Patient", visitor.patient_id) or {}
        teams, included = await ens.door.search_with_includes(
            visitor.caller,
            "CareTeam",
            [("patient", visitor.patient_id), ("status", "active"), ("_include", "CareTeam:participant")],
            limit=100,
        )
        related = await ens.door.search(
            visitor.caller, "RelatedPerson", [("patient", visitor.patient_id)], limit=100
        )
        rules = [r for r in rules_of(await _consents(ens, visitor)) if r.live(now)]
        gps = [
            str(g.get("reference"))
            for g in patient.get("generalPractitioner", []) or []
            if isinstance(g, dict) and g.get("reference")
        ]
        actors = [a for r in rules for a in r.actors] + gps
        names = await names_of(ens, visitor, actors)
        for ref, resource in included.items():
            names.setdefault(ref, person_name(resource) or str(resource.get("name") or ""))
        who: list[dict[str, Any]] = [
            {
                "who": names.get(ref, "Médecin traitant"),
                "why": "Votre médecin traitant",
                "what": "tout le dossier",
            }
            for ref in gps
        ]
        for team in teams:
            until = french_date(_end_us(team.get("period")))
            for participant in team.get("participant", []) or []:
                ref = str(((participant or {}).get("member") or {}).get("reference") or "")
                if ref:
                    who.append(
                        {
                            "who": names.get(ref, "Membre de l’équipe"),
                            "why": f"Équipe de soins{' : ' + team['name'] if team.get('name') else ''}",
                            "what": "tout le dossier (selon sa profession)",
                            "until": until,
                        }
                    )
        grants = [_rule_view(r, names) for r in rules if r.kind == "grant"]
        who.extend(
            {
                "who": grant["who"],
                "why": "Partage temporaire" if grant["temporary"] else "Votre autorisation",
                "what": grant["what"],
                "until": grant["until"],
                "key": grant["key"],
            }
            for grant in grants
        )
        delegations = []
        for person in related:
            if person.get("active") is False:
                continue
            kind = delegation_kind(person)
            delegations.append(
                {
                    "who": person_name(person) or "Un proche",
                    "why": "Représentant légal"
                    if kind == "representative"
                    else "Aidant ou personne de confiance",
                    "what": "tout le dossier" if kind == "representative" else "ce que vous lui avez délégué",
                    "until": french_date(_end_us(person.get("period"))),
                }
            )
        blocked = [_rule_view(r, names) for r in rules if r.kind == "block"]
        refusal = [r for r in rules if r.kind == "emergency_refusal"]
        masked = await ens.door.search(
            visitor.caller,
            "DocumentReference",
            [("patient", visitor.patient_id), ("security-label", "MASQUE_PS"), ("_count", "50")],
            limit=50,
        )
        recent: list[HistoryLine] = []
        history_refused = False
        try:
            recent, _following = await _history_page(
                ens, visitor, since_days=None, who="autres", cursor=None, wanted=5
            )
        except PortalError as error:
            if error.status not in (403, 404):
                raise
            history_refused = True
        apps = await _apps(ens, visitor) if visitor.space.own else []
        return await ens.page(
            request,
            visitor,
            "ens/controles/index.html",
            title="Qui voit mon dossier",
            who=who,
            delegations=delegations,
            blocked=blocked,
            emergency_refused=bool(refusal),
            recent=recent[:5],
            history_refused=history_refused,
            masked=[
                {
                    "id": d.get("id"),
                    "title": d.get("description") or (d.get("type") or {}).get("text") or "Document",
                    "date": french_date(_start_us(d.get("date"))),
                }
                for d in masked
            ],
            apps=apps,
            may_change=_may_change(visitor),
        )

    async def history(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        period = request.query_params.get("periode", "tout")
        if period not in _PERIODS:
            period = "tout"
        who = request.query_params.get("qui", "autres")
        if who not in WHO:
            who = "autres"
        cursor = request.query_params.get("apres") or None
        if cursor is not None and not cursor.isdigit():
            cursor = None
        try:
            lines, following = await _history_page(
                ens,
                visitor,
                since_days=_PERIODS[period],
                who=who,
                cursor=cursor,
                wanted=_PAGE,
            )
        except PortalError as error:
            if error.status in (403, 404):
                raise PortalError(
                    403, "Seuls la personne et ses représentants légaux consultent l’historique des accès."
                ) from error
            raise
        next_url = (
            "/ens/controles/historique?" + urlencode({"periode": period, "qui": who, "apres": following})
            if following
            else None
        )
        return await ens.page(
            request,
            visitor,
            "ens/controles/historique.html",
            title="Historique des accès à mon dossier",
            lines=lines,
            period=period,
            who=who,
            whos=list(WHO.items()),
            next_url=next_url,
            first_url=(
                "/ens/controles/historique?" + urlencode({"periode": period, "qui": who}) if cursor else None
            ),
            periods=[
                ("7", "7 derniers jours"),
                ("30", "30 derniers jours"),
                ("365", "12 derniers mois"),
                ("tout", "Depuis l’ouverture"),
            ],
        )

    async def _one_line(visitor: Visitor, event_id: str) -> HistoryLine:
        partition, _, seq = event_id.rpartition(".")
        if partition != visitor.patient_id or not seq.isdigit():
            raise PortalError(404, "Cet accès n’existe pas dans votre historique.")
        bundle = await ens.door.operation(
            visitor.caller,
            "GET",
            f"Patient/{visitor.patient_id}/$access-history",
            [("_count", "1"), ("_cursor", str(int(seq) + 1))],
        )
        events = [e.get("resource") or {} for e in bundle.get("entry", []) or []]
        if not events or events[0].get("id") != event_id:
            raise PortalError(404, "Cet accès n’existe pas dans votre historique.")
        names = {visitor.patient_ref: "Vous" if visitor.space.own else visitor.space.label}
        if visitor.space.related_id:
            names[visitor.actor_ref] = "Vous"
        requestor: dict[str, Any] = next(
            (a for a in events[0].get("agent", []) or [] if a.get("requestor")), {}
        )
        ref = str(((requestor.get("who") or {}).get("identifier") or {}).get("value") or "")
        if ref.startswith("RelatedPerson/") and ref not in names:
            names.update(await names_of(ens, visitor, [ref]))
        line = history_line(events[0], names)
        if hidden_from_viewer(line, await _visible_documents(ens, visitor)):
            raise PortalError(404, "Cet accès n’existe pas dans votre historique.")
        return line

    async def history_entry(
        request: Request,
        visitor: Visitor,
        form: Submitted | None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        event_id = request.path_params["event_id"]
        line = await _one_line(visitor, event_id)
        return await ens.page(
            request,
            visitor,
            "ens/controles/acces.html",
            status=status,
            title="Un accès à mon dossier",
            line=line,
            may_dispute=visitor.space.own and line.dispute_status is None,
            reasons=_DISPUTE_REASONS,
            errors=errors or FormErrors(),
            typed=form.values if form else {},
        )

    async def dispute(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        event_id = request.path_params["event_id"]
        errors = FormErrors()
        reason = form.get("motif")
        details = form.get("precisions")
        if not visitor.space.own:
            raise PortalError(403, "Seule la personne concernée peut signaler un accès.")
        if reason not in _DISPUTE_REASONS:
            errors.add("motif", "Choisissez la raison de votre signalement.")
        if reason == "autre" and len(details) < 10:
            errors.add("precisions", "Expliquez en quelques mots (au moins 10 caractères) ce qui ne va pas.")
        if len(details) > 2000:
            errors.add("precisions", "Votre explication est trop longue (2 000 caractères au plus).")
        if errors:
            await ens.failed(visitor, form)
            return await history_entry(request, visitor, form, errors=errors, status=422)
        await _one_line(visitor, event_id)  # 404 when it is not one of the visitor's lines
        comment = _DISPUTE_REASONS[reason] + (f" : {details}" if details else "")
        try:
            await ens.door.operation(
                visitor.caller,
                "POST",
                f"AuditEvent/{event_id}/$dispute",
                resource={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "comment", "valueString": comment}],
                },
            )
        except PortalError as error:
            if error.status == 422:
                return await ens.done(
                    visitor, form, f"/ens/controles/historique/{event_id}", "Cet accès a déjà été signalé."
                )
            raise
        return await ens.done(
            visitor,
            form,
            f"/ens/controles/historique/{event_id}",
            "Votre signalement a été transmis au délégué à la protection des données de la structure concernée.",
        )

    async def share_form(
        request: Request,
        visitor: Visitor,
        form: Submitted | None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        return await ens.page(
            request,
            visitor,
            "ens/controles/partage.html",
            status=status,
            title="Partager mon dossier avec un code",
            durations=_SHARE_DAYS,
            classes=CLASS_LABELS,
            errors=errors or FormErrors(),
            typed=form.values if form else {},
            typed_classes=set(form.lists.get("classe", [])) if form else set(),
            may_change=_may_change(visitor),
        )

    async def share(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        errors = FormErrors()
        days = form.get("duree")
        classes = form.lists.get("classe", [])
        if days not in _SHARE_DAYS:
            errors.add("duree", "Choisissez pour combien de temps vous partagez votre dossier.")
        if any(c not in CLASS_LABELS for c in classes):
            errors.add("classe", "Choisissez parmi les types de documents proposés.")
        if not _may_change(visitor):
            raise PortalError(403, "Seuls la personne et ses représentants légaux partagent le dossier.")
        if errors:
            await ens.failed(visitor, form)
            return await share_form(request, visitor, form, errors=errors, status=422)
        parameters: list[dict[str, Any]] = [{"name": "days", "valueDecimal": float(days)}]
        parameters += [{"name": "category", "valueString": c} for c in classes]
        body = await ens.door.operation(
            visitor.caller,
            "POST",
            f"Patient/{visitor.patient_id}/$share",
            resource={"resourceType": "Parameters", "parameter": parameters},
        )
        values = {
            p.get("name"): next((v for k, v in p.items() if k.startswith("value")), None)
            for p in body.get("parameter", [])
        }
        expires = _start_us(values.get("expires")) or ens.clock()
        await ens.forms.kv.put(
            _SHOWN_SHARE,
            visitor.session.session_id,
            {
                "code": values.get("code"),
                "qr": values.get("qr"),
                "expires": expires,
                "patient": visitor.patient_id,
                "days": days,
                "classes": classes,
            },
            expires_us=expires,
        )
        return await ens.done(visitor, form, "/ens/controles/partage/code")

    async def share_code(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        shown = await ens.forms.kv.get(_SHOWN_SHARE, visitor.session.session_id)
        if not shown or shown.get("patient") != visitor.patient_id:
            return RedirectResponse("/ens/controles/partage", status_code=303)
        code = str(shown.get("code") or "")
        return await ens.page(
            request,
            visitor,
            "ens/controles/code.html",
            title="Votre code de partage",
            code=code,
            spoken=" ".join(code[i : i + 4] for i in range(0, len(code), 4)),
            letters=", ".join(code),
            qr=shown.get("qr"),
            expires=french_datetime(int(shown.get("expires") or 0)),
            duration=_SHARE_DAYS.get(str(shown.get("days")), ""),
            what=", ".join(CLASS_LABELS.get(c, c) for c in shown.get("classes") or []) or "tout le dossier",
        )

    async def rule_page(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        rule = await _rule(visitor, request.path_params["key"])
        names = await names_of(ens, visitor, rule.actors)
        return await ens.page(
            request,
            visitor,
            "ens/controles/regle.html",
            title={
                "grant": "Une autorisation d’accès",
                "block": "Un professionnel bloqué",
                "emergency_refusal": "Votre refus de l’accès d’urgence",
                "confidential": "Des documents tenus confidentiels",
            }.get(rule.kind, "Une règle d’accès"),
            rule=_rule_view(rule, names),
            may_change=_may_change(visitor),
        )

    async def _rule(visitor: Visitor, key: str) -> Rule:
        consent_id, _, path = key.partition("~")
        path = "" if path == "racine" else path
        if not _ID.match(consent_id) or not re.fullmatch(r"(\d+(\.\d+)*)?", path):
            raise PortalError(404, "Cette règle n’existe pas ou a déjà été retirée.")
        consent = await ens.door.read(visitor.caller, "Consent", consent_id)
        if consent is None or (consent.get("patient") or {}).get("reference") != visitor.patient_ref:
            raise PortalError(404, "Cette règle n’existe pas ou a déjà été retirée.")
        rule = next((r for r in rules_of([consent]) if r.path == path), None)
        if rule is None:
            raise PortalError(404, "Cette règle n’existe pas ou a déjà été retirée.")
        return rule

    async def withdraw(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if not _may_change(visitor):
            raise PortalError(403, "Seuls la personne et ses représentants légaux changent ces règles.")
        rule = await _rule(visitor, request.path_params["key"])
        consent = await ens.door.read(visitor.caller, "Consent", rule.consent_id)
        assert consent is not None
        await ens.door.update(visitor.caller, without_rule(consent, rule.path), version=rule.version)
        message = {
            "grant": "L’autorisation est retirée : ce professionnel n’a plus accès à votre dossier par elle.",
            "block": "Le professionnel est débloqué.",
            "emergency_refusal": "Les professionnels pourront de nouveau accéder à votre dossier en cas d’urgence.",
        }.get(rule.kind, "La règle est retirée.")
        return await ens.done(visitor, form, "/ens/controles", message)

    async def block_search(
        request: Request,
        visitor: Visitor,
        form: Submitted | None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        query = request.query_params.get("nom", "").strip()[:80]
        errors = errors or FormErrors()
        found: list[dict[str, Any]] = []
        searched = False
        if "nom" in request.query_params:
            if len(query) < 2:
                errors.add("nom", "Saisissez au moins 2 lettres du nom du professionnel.")
                status = 400
            else:
                searched = True
                results = await ens.door.search(
                    visitor.caller, "Practitioner", [("name", query), ("_count", "20")], limit=20
                )
                found = [
                    {"id": p.get("id"), "name": person_name(p) or "Professionnel", "detail": _identifier(p)}
                    for p in results
                    if p.get("active") is not False
                ]
        return await ens.page(
            request,
            visitor,
            "ens/controles/bloquer.html",
            status=status,
            title="Bloquer un professionnel",
            query=query,
            found=found,
            searched=searched,
            errors=errors,
            may_change=_may_change(visitor),
        )

    async def block(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        if not _may_change(visitor):
            raise PortalError(403, "Seuls la personne et ses représentants légaux changent ces règles.")
        practitioner_id = form.get("professionnel")
        practitioner = (
            await ens.door.read(visitor.caller, "Practitioner", practitioner_id)
            if _ID.match(practitioner_id)
            else None
        )
        if practitioner is None:
            await ens.failed(visitor, form)
            errors = FormErrors()
            errors.add(
                "professionnel",
                "Ce professionnel n’a pas été trouvé dans l’annuaire. Cherchez-le de nouveau.",
            )
            return await block_search(request, visitor, form, errors=errors, status=422)
        ref = f"Practitioner/{practitioner_id}"
        rules = rules_of(await _consents(ens, visitor))
        if any(r.kind == "block" and ref in r.actors and r.live(ens.clock()) for r in rules):
            return await ens.done(visitor, form, "/ens/controles", "Ce professionnel est déjà bloqué.")
        await ens.door.create(
            visitor.caller,
            block_consent(visitor.patient_id, ref, by=visitor.actor_ref, now=instant(ens.clock())),
        )
        return await ens.done(
            visitor,
            form,
            "/ens/controles",
            f"{person_name(practitioner)} est bloqué : il ne peut plus accéder à votre dossier, même en urgence.",
        )

    async def emergency(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        if not _may_change(visitor):
            raise PortalError(403, "Seuls la personne et ses représentants légaux changent ces règles.")
        choice = form.get("urgence")
        if choice not in ("refuser", "autoriser"):
            raise PortalError(400, "Choisissez d’autoriser ou de refuser l’accès d’urgence.")
        consents = await _consents(ens, visitor)
        refusals = [r for r in rules_of(consents) if r.kind == "emergency_refusal"]
        if choice == "refuser":
            if not refusals:
                await ens.door.create(
                    visitor.caller,
                    emergency_refusal_consent(
                        visitor.patient_id, by=visitor.actor_ref, now=instant(ens.clock())
                    ),
                )
            message = "Vous refusez l’accès d’urgence : aucun professionnel ne pourra ouvrir votre dossier sans lien de soin, même en urgence."
        else:
            by_id = {c.get("id"): c for c in consents}
            grouped: dict[str, list[Rule]] = {}
            for rule in refusals:
                grouped.setdefault(rule.consent_id, []).append(rule)
            for consent_id, items in grouped.items():
                changed = by_id[consent_id]
                # deepest and last rules first: the paths of the others stay valid
                for rule in sorted(
                    items, key=lambda r: [int(x) for x in r.path.split(".") if x], reverse=True
                ):
                    changed = without_rule(changed, rule.path)
                await ens.door.update(visitor.caller, changed, version=items[0].version)
            message = "En cas d’urgence, un professionnel pourra accéder à votre dossier ; chaque accès vous est signalé."
        return await ens.done(visitor, form, "/ens/controles", message)

    async def _apps(ens: Ens, visitor: Visitor) -> list[dict[str, Any]]:
        auth = _runtime(ens).auth
        if auth is None:
            return []
        out = []
        for grant in await auth.grants_of(visitor.subject.account_id):
            client = await auth.clients.get(grant.client_id)
            try:
                scopes = parse_scopes(grant.scope)
            except InvalidScope:
                continue
            labels = [scope_label(s) for s in scopes.resources] + [
                scope_label(o) for o in sorted(scopes.others) if o not in ("openid",)
            ]
            out.append(
                {
                    "family": grant.family,
                    "name": client.name if client else grant.client_id,
                    "scopes": labels,
                    "since": french_date(grant.created_us),
                    "used": french_datetime(grant.last_used_us),
                    "until": french_date(grant.until_us) if grant.until_us else None,
                }
            )
        return out

    async def revoke_app(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        auth = _runtime(ens).auth
        family = request.path_params["family"]
        grants = await auth.grants_of(visitor.subject.account_id) if auth else []
        grant = next((g for g in grants if g.family == family), None)
        if auth is None or grant is None or not await auth.revoke_grant(visitor.subject.account_id, family):
            raise PortalError(404, "Cette application n’est plus connectée à votre compte.")
        # the Consent the grant was recorded as ends with it (store/consents.py)
        screen = ens.auth.oauth.consent_screen
        if screen is not None and grant.patient:
            await screen.consents.withdraw(visitor.subject.account_id, grant.patient, family)
        return await ens.done(
            visitor,
            form,
            "/ens/controles",
            "L’application est déconnectée : elle n’a plus accès à votre dossier.",
        )

    return [
        ens.route("/ens/controles", overview),
        ens.route("/ens/controles/historique", history),
        ens.route("/ens/controles/historique/{event_id}", history_entry),
        ens.route("/ens/controles/historique/{event_id}/signaler", dispute, methods=("POST",)),
        ens.route("/ens/controles/partage", share_form),
        ens.route("/ens/controles/partage", share, methods=("POST",)),
        ens.route("/ens/controles/partage/code", share_code),
        ens.route("/ens/controles/regles/{key}", rule_page),
        ens.route("/ens/controles/regles/{key}/retirer", withdraw, methods=("POST",)),
        ens.route("/ens/controles/bloquer", block_search),
        ens.route("/ens/controles/bloquer", block, methods=("POST",)),
        ens.route("/ens/controles/urgence", emergency, methods=("POST",)),
        ens.route("/ens/controles/applications/{family}/retirer", revoke_app, methods=("POST",)),
    ]


def _identifier(practitioner: dict[str, Any]) -> str:
    for identifier in practitioner.get("identifier", []) or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            return (
                f"RPPS {identifier['value']}"
                if str(identifier["value"]).startswith("8")
                else str(identifier["value"])
            )
    return ""


def _start_us(value: Any) -> int | None:
    from hygie.domain.ens.controls import parse_us  # noqa: PLC0415

    return parse_us(value)


def _end_us(period: Any) -> int | None:
    from hygie.domain.ens.controls import parse_us  # noqa: PLC0415

    return parse_us((period or {}).get("end"), end=True) if isinstance(period, dict) else None
