"""The citizen portal (ENS) on the portal frame: its menu, its visitor (a citizen in one of their
spaces), its error page.

A section is a module of ``web/ens/`` with ``routes(ens) -> list[Route]``; :class:`Ens` is the
:class:`~hygie.web.portal.core.Portal` of citizens (what the frame does for every page is
described there). Every read and write of health data goes through ``ens.door`` as
``visitor.caller``: the access policy decides and the audit trail records, exactly as for the
FHIR API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hygie.web.portal.core import NavItem, Portal
from hygie.web.portal.door import Door
from hygie.web.portal.forms import Forms, Submitted
from hygie.web.portal.session import PortalAuth, Visitor

__all__ = ["NAV", "Ens", "Handler", "NavItem"]

Handler = Callable[[Request, Visitor, Submitted | None], Awaitable[Response]]


# the portal's sections, in the order of the menu and of the home page
NAV: tuple[NavItem, ...] = (
    NavItem(
        "/ens/profil", "Mon profil", "fr-icon-user-line", "Identité, proches, médecin traitant, directives"
    ),
    NavItem(
        "/ens/carnet",
        "Carnet de santé",
        "fr-icon-heart-pulse-line",
        "Allergies, antécédents, traitements, vaccins",
    ),
    NavItem(
        "/ens/documents",
        "Documents",
        "fr-icon-file-text-line",
        "Comptes rendus, ordonnances, résultats, vos ajouts",
    ),
    NavItem(
        "/ens/mesures",
        "Mesures",
        "fr-icon-line-chart-line",
        "Poids, tension, glycémie… et vos seuils d’alerte",
    ),
    NavItem(
        "/ens/ordonnances", "Ordonnances", "fr-icon-capsule-line", "Vos prescriptions et leur délivrance"
    ),
    NavItem(
        "/ens/agenda",
        "Agenda",
        "fr-icon-calendar-line",
        "Rendez-vous, rappels de prévention et de vaccination",
    ),
    NavItem("/ens/messages", "Messagerie", "fr-icon-mail-line", "Échanges sécurisés avec vos soignants"),
    NavItem(
        "/ens/controles",
        "Qui voit mon dossier",
        "fr-icon-lock-line",
        "Accès, historique, partages, applications",
    ),
    NavItem(
        "/ens/applications",
        "Applications",
        "fr-icon-window-line",
        "Applications référencées, à connecter à votre espace",
    ),
    NavItem("/ens/alertes", "Alertes santé", "fr-icon-alarm-warning-line", "Messages des autorités de santé"),
    NavItem("/ens/questionnaires", "Questionnaires", "fr-icon-survey-line", "Votre avis sur vos soins"),
    NavItem(
        "/ens/annuaire",
        "Annuaire santé",
        "fr-icon-search-line",
        "Trouver un professionnel ou une structure près de chez vous",
    ),
    NavItem("/ens/export", "Exporter", "fr-icon-download-line", "Tout votre dossier, en fichier ou en PDF"),
    NavItem(
        "/ens/mon-espace", "Mon espace", "fr-icon-settings-5-line", "Ouverture, fermeture et conservation"
    ),
    NavItem(
        "/ens/compte",
        "Connexion et sécurité",
        "fr-icon-shield-line",
        "Mot de passe, double authentification, dernières connexions",
    ),
)


class Ens(Portal[Visitor]):
    """The citizens' portal: a visitor is a citizen in one of their spaces (``PortalAuth.citizen``)."""

    def __init__(
        self,
        door: Door,
        auth: PortalAuth,
        forms: Forms,
        clock: Callable[[], int],
        services: dict[str, Any],
    ) -> None:
        super().__init__(
            door, forms, clock, services, auth.citizen, NAV, home="/ens", tagline="Mon espace santé"
        )
        self.auth = auth
