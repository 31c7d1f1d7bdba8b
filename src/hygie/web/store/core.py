"""The app store's two back offices on the portal frame: publishers (``/editeur``) and
authorities (``/autorite``).

A visitor is a :class:`StoreMember`: a signed-in account of kind ``publisher`` or ``authority``
that the store knows (``StoreService.member``: which publisher, which agency). The frame does
what it does for every portal (sign-in redirect, CSRF, one-time forms, French errors); no health
data is read here — the catalogue's records are the store's (``store/service.py``), and a
:class:`~hygie.store.service.StoreError` becomes a French page with its status (or, in a form,
messages beside the fields).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from hygie.auth.accounts import Account
from hygie.auth.server import Subject
from hygie.store.service import Member, StoreService
from hygie.web.oauth import SessionData
from hygie.web.portal.core import NavItem, Portal
from hygie.web.portal.door import Door
from hygie.web.portal.forms import Forms
from hygie.web.portal.session import PortalAuth, _SignedIn

__all__ = ["AUTHORITY_NAV", "PUBLISHER_NAV", "MemberPortal", "StoreMember"]

PUBLISHER_NAV: tuple[NavItem, ...] = (
    NavItem(
        "/editeur/applications", "Mes applications", "fr-icon-window-line", "Vos applications et leur état"
    ),
    NavItem(
        "/editeur/nouvelle",
        "Déposer une application",
        "fr-icon-add-circle-line",
        "Une nouvelle fiche, en brouillon",
    ),
    NavItem(
        "/editeur/grille", "Grille des critères", "fr-icon-list-check", "Ce qui est exigé, selon la catégorie"
    ),
)
AUTHORITY_NAV: tuple[NavItem, ...] = (
    NavItem(
        "/autorite/evaluations", "Évaluations", "fr-icon-survey-line", "Demandes de référencement à instruire"
    ),
    NavItem(
        "/autorite/signalements", "Signalements", "fr-icon-alarm-warning-line", "Votre file, avec ses délais"
    ),
    NavItem(
        "/autorite/campagnes",
        "Contrôles",
        "fr-icon-search-line",
        "Campagnes de contrôle a posteriori, par le risque",
    ),
    NavItem(
        "/autorite/catalogue", "Catalogue", "fr-icon-window-line", "Toutes les applications et leur état"
    ),
    NavItem(
        "/autorite/grille",
        "Grille des critères",
        "fr-icon-list-check",
        "Réviser la grille (nouvelle version)",
    ),
)


@dataclass(frozen=True, slots=True)
class StoreMember(_SignedIn):
    subject: Subject
    session: SessionData
    account: Account
    member: Member
    name: str  # how the header names them: their login, and their publisher or agency

    @property
    def publisher_id(self) -> str:
        assert self.member.publisher_id is not None
        return self.member.publisher_id


class MemberPortal(Portal[StoreMember]):
    """A back office of the store: ``role`` "publisher" or "authority"."""

    def __init__(
        self,
        role: str,
        door: Door,
        auth: PortalAuth,
        forms: Forms,
        clock: Callable[[], int],
        store: StoreService,
    ) -> None:
        publisher = role == "publisher"
        super().__init__(
            door,
            forms,
            clock,
            {"store": store},
            self._member,
            PUBLISHER_NAV if publisher else AUTHORITY_NAV,
            home="/editeur" if publisher else "/autorite",
            tagline="Espace éditeurs du catalogue santé" if publisher else "Autorités du catalogue santé",
        )
        self.role = role
        self.auth = auth
        self.store = store

    async def _member(self, request: Request) -> StoreMember | None:
        session = await self.auth.oauth.session(request)
        if session is None or session.subject is None or session.subject.kind != self.role:
            return None
        account = await self.auth.accounts.get(session.subject.account_id)
        if account is None or not account.active:
            return None
        member = await self.store.member(account.id)
        if member is None or member.role != self.role:
            return None
        if member.publisher_id:
            publisher = await self.store.publisher(member.publisher_id)
            name = f"{account.login} — {publisher.name}" if publisher else account.login
        else:
            name = f"{account.login} — {member.actor}"
        return StoreMember(session.subject, session, account, member, name)
