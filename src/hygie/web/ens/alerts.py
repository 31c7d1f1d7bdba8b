"""Alertes santé: messages of the health authorities (``domain/ens/alerts.py``).

* ``/ens/alertes`` — the alerts received, newest first, each with why the person received it;
  showing them acknowledges them (``$mark-received``);
* ``/ens/alertes/preferences`` — the topics the person accepts; refusing one writes their opt-out
  ``Consent``, which the next broadcasts respect.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import alerts as al
from hygie.web.ens.core import Ens
from hygie.web.portal.forms import FormErrors, Submitted
from hygie.web.portal.session import Visitor

__all__ = ["routes"]

_ALERTS = f"{al.COMMUNICATION_CATEGORY}|alert"
_OPT_OUT = f"{al.OPT_OUT_CATEGORY['system']}|{al.OPT_OUT_CATEGORY['code']}"


async def _opt_out(ens: Ens, visitor: Visitor) -> dict[str, Any] | None:
    found = await ens.door.search(
        visitor.caller,
        "Consent",
        [("patient", visitor.patient_ref), ("category", _OPT_OUT), ("_count", "10")],
        limit=10,
    )
    return found[0] if found else None


def routes(ens: Ens) -> list[BaseRoute]:
    async def listing(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        found = await ens.door.search(
            visitor.caller,
            "Communication",
            [("subject", visitor.patient_ref), ("category", _ALERTS), ("_sort", "-sent"), ("_count", "100")],
            limit=200,
        )
        alerts = [al.view_alert(a) for a in found if al.is_alert(a)]
        for alert in alerts:
            if alert.unread:  # shown now: acknowledged (the page still marks it as new)
                await ens.door.operation(visitor.caller, "POST", f"Communication/{alert.id}/$mark-received")
        refused = al.opted_out_topics(await _opt_out(ens, visitor))
        return await ens.page(
            request,
            visitor,
            "ens/alertes/liste.html",
            title="Alertes santé",
            alerts=alerts,
            refused=[al.TOPICS[t] for t in sorted(refused)],
        )

    async def preferences(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        existing = await _opt_out(ens, visitor)
        refused = al.opted_out_topics(existing)
        errors = FormErrors()
        if form is not None:
            accepted = set(form.lists.get("themes", []))
            unknown = accepted - set(al.TOPICS)
            if unknown:
                errors.add("themes", "Un des thèmes choisis n’existe pas. Rechargez la page et recommencez.")
                await ens.failed(visitor, form)
                refused = set(al.TOPICS) - (accepted & set(al.TOPICS))
            else:
                consent = al.opt_out_consent(
                    visitor.patient_ref, set(al.TOPICS) - accepted, ens.clock(), existing
                )
                if existing is None:
                    if consent["status"] == "active":
                        await ens.door.create(visitor.caller, consent)
                else:
                    version = str((existing.get("meta") or {}).get("versionId") or "") or None
                    await ens.door.update(visitor.caller, consent, version=version)
                return await ens.done(visitor, form, "/ens/alertes", "Vos choix d’alertes sont enregistrés.")
        return await ens.page(
            request,
            visitor,
            "ens/alertes/preferences.html",
            status=400 if errors else 200,
            title="Choisir mes alertes",
            topics=al.TOPICS,
            refused=refused,
            errors=errors.fields,
        )

    return [
        ens.route("/ens/alertes", listing),
        ens.route("/ens/alertes/preferences", preferences, methods=("GET", "POST")),
    ]
