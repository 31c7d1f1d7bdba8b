"""The professionals' portal (BSP) on the portal frame: its menu, its visitor, the patient banner.

A section is a module of ``web/bsp/`` with ``routes(bsp) -> list[Route]``; :class:`Bsp` is the
:class:`~hygie.web.portal.core.Portal` of health professionals (what the frame does for every
page — sign-in, CSRF, one-time forms, French errors, one audit write per page — is described
there). Every read and write of health data goes through ``bsp.door`` as ``visitor.caller``, the
professional as the access policy sees them: profession, structure, care relations, open
break-glass accesses.

A patient's pages live under ``/bsp/patients/{patient}/…``: the patient is named by the URL, never
by the session alone, so that two tabs on two patients never mix their records. Every such page
shows the patient banner — name, birth date, INS and identity status, always visible — from what
the professional saw when they opened the record (``PortalAuth.work_on``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hygie.domain.identity.fr_core import identity_state_of, ins_of
from hygie.domain.identity.status import IdentityError
from hygie.web.portal.core import NavItem, Portal
from hygie.web.portal.door import Door
from hygie.web.portal.forms import Forms, Submitted
from hygie.web.portal.session import PatientContext, PortalAuth, Professional, person_name

__all__ = ["NAV", "Bsp", "Handler", "patient_context"]

Handler = Callable[[Request, Professional, Submitted | None], Awaitable[Response]]

# the portal's sections, in the order of the menu and of the home page
NAV: tuple[NavItem, ...] = (
    NavItem(
        "/bsp/patients",
        "Patients",
        "fr-icon-team-line",
        "Identifier un patient par son INS, ouvrir son dossier",
    ),
    NavItem(
        "/bsp/ordonnances",
        "Ordonnances",
        "fr-icon-capsule-line",
        "Demandes de renouvellement, ordonnances rédigées",
    ),
    NavItem(
        "/bsp/officine",
        "Officine",
        "fr-icon-first-aid-kit-line",
        "Lire une ordonnance numérique et la délivrer",
    ),
    NavItem("/bsp/messages", "Messagerie", "fr-icon-mail-line", "Messagerie sécurisée de santé"),
    NavItem(
        "/bsp/agenda",
        "Agenda",
        "fr-icon-calendar-line",
        "Téléconsultations et demandes de télé-expertise",
    ),
    NavItem("/bsp/annuaire", "Annuaire", "fr-icon-search-line", "Professionnels et structures, au plus près"),
    NavItem(
        "/bsp/applications",
        "Applications",
        "fr-icon-window-line",
        "Applications référencées, ouvertes dans le contexte du patient",
    ),
    NavItem("/bsp/activite", "Mon activité", "fr-icon-bar-chart-box-line", "Patients, documents, messages"),
)

# a patient's record, in the order of its tabs
RECORD_TABS: tuple[tuple[str, str], ...] = (
    ("", "Synthèse"),
    ("/documents", "Documents"),
    ("/prescrire", "Prescrire"),
    ("/applications", "Applications"),
    ("/acces", "Accès au dossier"),
)

STATUS_BADGES = {"QUAL": "success", "VALI": "info", "RECUP": "info", "PROV": "warning"}


def patient_context(patient: dict[str, Any]) -> PatientContext:
    """What the banner shows of a Patient resource: names, birth, INS and identity status."""
    try:
        state = identity_state_of(patient)
        status: str | None = state.status.value
        status_label = state.status.label
    except IdentityError:  # an unreadable reliability extension: shown as unknown, never guessed
        status, status_label = None, "statut d’identité illisible"
    ins = ins_of(patient)
    return PatientContext(
        str(patient.get("id", "")),
        person_name(patient) or "Patient sans nom",
        str(patient.get("birthDate") or ""),
        str(patient.get("gender") or ""),
        ins.matricule if ins is not None else None,
        status,
        status_label,
    )


class Bsp(Portal[Professional]):
    """The professionals' portal: a visitor is a professional of the directory
    (``PortalAuth.professional``)."""

    def __init__(
        self,
        door: Door,
        auth: PortalAuth,
        forms: Forms,
        clock: Callable[[], int],
        services: dict[str, Any],
    ) -> None:
        super().__init__(
            door,
            forms,
            clock,
            services,
            auth.professional,
            NAV,
            home="/bsp",
            tagline="Services aux professionnels de santé",
            layout=self._banner,
        )
        self.auth = auth

    async def _banner(self, request: Request, visitor: Professional) -> dict[str, Any]:
        patient_id = request.path_params.get("patient")
        if not isinstance(patient_id, str):
            return {}
        context = await self.auth.working_on(visitor, patient_id)
        return {
            "patient": context,
            "patient_id": patient_id,
            "record_tabs": RECORD_TABS,
            "status_badges": STATUS_BADGES,
            "emergency": patient_id in visitor.emergency,
        }
