"""Who is on a portal page: the signed-in person, the space they are in, and their caller.

Two kinds of visitor: a citizen in one of their spaces (:class:`Visitor`, the ENS) and a health
professional with, perhaps, the patient they are working on (:class:`Professional`, the BSP).

The sign-in pages (``web/oauth.py``) keep the browser session; a portal page turns it into a
:class:`Visitor`. A citizen may hold several spaces: their own, and those they act in as a
RelatedPerson (a parent for a child, a guardian, an aidant) — bindings the identity service puts
on the account (``Account.related_ids``), never the person. In a space the visitor's
:class:`~hygie.domain.access.Caller` is built exactly as for a first-party token (client
``hygie-portal``, no app scopes): the patient themselves, or the RelatedPerson whose
representative or aidant relation the access policy checks at every read.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hygie.auth.accounts import Account, AccountService
from hygie.auth.principals import PrincipalResolver
from hygie.auth.scopes import parse_scopes
from hygie.auth.server import Subject
from hygie.auth.tokens import AccessToken
from hygie.domain.access import PORTAL_CLIENT, Caller  # the first-party client (domain/access.py)
from hygie.ports import KeyValueStore
from hygie.web.oauth import SESSION_TTL_US, OAuthWeb, SessionData
from hygie.web.portal.door import Door

__all__ = [
    "PORTAL_CLIENT",
    "PatientContext",
    "PortalAuth",
    "Professional",
    "Space",
    "Visitor",
    "display_names",
    "person_name",
]

_SPACE_KIND = "portal-space"  # session id -> the patient whose space is open
_PATIENT_KIND = "portal-patient"  # session id -> the patient a professional works on (banner)


@dataclass(frozen=True, slots=True)
class Space:
    """A patient's space the visitor may open: their own, or a relative's."""

    patient_id: str
    label: str  # "Léa BERNARD"
    relation: str  # self | representative | aidant
    related_id: str | None = None  # the RelatedPerson the visitor acts as

    @property
    def own(self) -> bool:
        return self.relation == "self"


class _SignedIn:
    """The browser session's CSRF token, for every kind of visitor."""

    __slots__ = ()
    session: SessionData

    @property
    def csrf(self) -> str:
        return self.session.csrf

    def csrf_ok(self, form: dict[str, Any]) -> bool:
        return secrets.compare_digest(str(form.get("csrf", "")), self.session.csrf)


@dataclass(frozen=True, slots=True)
class Visitor(_SignedIn):
    subject: Subject
    session: SessionData
    account: Account | None
    spaces: tuple[Space, ...]
    space: Space
    caller: Caller

    @property
    def patient_id(self) -> str:
        return self.space.patient_id

    @property
    def patient_ref(self) -> str:
        return f"Patient/{self.space.patient_id}"

    @property
    def actor_ref(self) -> str:
        """Who writes, as FHIR sees them: the patient, or the RelatedPerson acting for them."""
        if self.space.related_id:
            return f"RelatedPerson/{self.space.related_id}"
        return f"Patient/{self.space.patient_id}"


@dataclass(frozen=True, slots=True)
class PatientContext:
    """The patient a professional is working on, as the banner shows them on every page.

    Kept with the browser session when the professional opens a record (from an identification,
    whose answer carries no health data, or from their list of patients), so that the banner —
    with the identity status, always visible — costs no read per page (``PortalAuth.work_on``)."""

    patient_id: str
    label: str  # "Claire DUPONT"
    birth_date: str = ""  # ISO
    gender: str = ""
    ins: str | None = None
    status: str | None = None  # PROV, RECUP, VALI, QUAL
    status_label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient_id,
            "label": self.label,
            "birth_date": self.birth_date,
            "gender": self.gender,
            "ins": self.ins,
            "status": self.status,
            "status_label": self.status_label,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PatientContext:
        return cls(
            str(data["patient"]),
            str(data.get("label") or ""),
            str(data.get("birth_date") or ""),
            str(data.get("gender") or ""),
            data.get("ins"),
            data.get("status"),
            str(data.get("status_label") or ""),
        )


@dataclass(frozen=True, slots=True)
class Professional(_SignedIn):
    """A health professional signed in to the BSP, and the patient they are working on (if any)."""

    subject: Subject
    session: SessionData
    account: Account
    practitioner_id: str
    name: str
    profession: str | None  # TRE_G15 code
    organization: str | None  # Organization/…
    idnat: str | None
    caller: Caller
    emergency: frozenset[str]  # patients with an open break-glass access

    @property
    def practitioner_ref(self) -> str:
        return f"Practitioner/{self.practitioner_id}"


def person_name(resource: dict[str, Any] | None) -> str:
    """ "Prénom NOM" of a Patient, Practitioner or RelatedPerson (its official or first name)."""
    if not resource:
        return ""
    names = resource.get("name") or [{}]
    if isinstance(names, dict):
        names = [names]
    chosen = next((n for n in names if n.get("use") == "usual"), None) or next(
        (n for n in names if n.get("use") == "official"), names[0]
    )
    given = " ".join(chosen.get("given", [])[:1])
    family = str(chosen.get("family", "")).upper()
    prefix = " ".join(chosen.get("prefix", []))
    return " ".join(p for p in (prefix, given, family) if p) or chosen.get("text", "")


def display_names(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """How a page names the authors, senders… it read (by ``Type/id``): a structure by its name,
    a person as :func:`person_name`; those without a name are left out."""
    out = {
        ref: str(r.get("name") or "") if r.get("resourceType") == "Organization" else person_name(r)
        for ref, r in resources.items()
    }
    return {ref: name for ref, name in out.items() if name}


class PortalAuth:
    """Resolves the :class:`Visitor` of a request (None when nobody is signed in)."""

    def __init__(
        self,
        oauth: OAuthWeb,
        accounts: AccountService,
        resolver: PrincipalResolver,
        door: Door,
        kv: KeyValueStore,
        directory_read: Callable[[str, str], Any],
        break_glass: Callable[[str], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        self.oauth = oauth
        self.accounts = accounts
        self.resolver = resolver
        self.door = door
        self.kv = kv
        self.directory_read = directory_read
        self.break_glass = break_glass

    async def professional(self, request: Request) -> Professional | None:
        """The professional signed in on this browser (None: not signed in, or not a professional
        linked to a Practitioner of the directory). Their open break-glass accesses are read at
        every page, as for every API request, so that one ends exactly when it expires."""
        session = await self.oauth.session(request)
        if session is None or session.subject is None or session.subject.kind != "professional":
            return None
        subject = session.subject
        fhir_user = subject.fhir_user or ""
        if not fhir_user.startswith("Practitioner/"):
            return None
        account = await self.accounts.get(subject.account_id)
        if account is None or not account.active:
            return None
        emergency = await self.break_glass(fhir_user) if self.break_glass is not None else frozenset()
        token = AccessToken(
            subject=subject.account_id,
            client_id=PORTAL_CLIENT,
            kind="professional",
            scopes=parse_scopes(""),
            fhir_user=fhir_user,
        )
        address = request.client.host if request.client else None
        caller = await self.resolver.caller(token, break_glass=emergency, address=address)
        practitioner_id = fhir_user.split("/", 1)[1]
        facts = await self.resolver.practitioner(practitioner_id)
        return Professional(
            subject,
            session,
            account,
            practitioner_id,
            facts.name or "Professionnel de santé",
            facts.profession,
            facts.organization,
            facts.idnat,
            caller,
            emergency,
        )

    async def work_on(self, visitor: Professional, patient: PatientContext) -> None:
        """Keep what the banner shows of a patient the professional opens, for this session.

        The patient is named by every page's URL (``/bsp/patients/{id}/…``), never by the session
        alone: two tabs on two patients never mix their records."""
        await self.kv.put(
            _PATIENT_KIND,
            f"{visitor.session.session_id}:{patient.patient_id}",
            patient.to_json(),
            expires_us=self.oauth.clock() + SESSION_TTL_US,
        )

    async def working_on(self, visitor: Professional, patient_id: str) -> PatientContext | None:
        found = await self.kv.get(_PATIENT_KIND, f"{visitor.session.session_id}:{patient_id}")
        return PatientContext.from_json(found) if found else None

    async def citizen(self, request: Request) -> Visitor | None:
        session = await self.oauth.session(request)
        if session is None or session.subject is None or session.subject.kind != "citizen":
            return None
        subject = session.subject
        account = await self.accounts.get(subject.account_id)
        if account is None or not account.active:
            return None
        spaces = await self._spaces(subject, account)
        if not spaces:
            return None
        chosen = await self.kv.get(_SPACE_KIND, session.session_id)
        space = next((s for s in spaces if chosen and s.patient_id == chosen.get("patient")), spaces[0])
        address = request.client.host if request.client else None
        return Visitor(subject, session, account, spaces, space, await self._caller(subject, space, address))

    async def choose_space(self, visitor: Visitor, patient_id: str) -> bool:
        if not any(s.patient_id == patient_id for s in visitor.spaces):
            return False
        await self.kv.put(_SPACE_KIND, visitor.session.session_id, {"patient": patient_id})
        return True

    async def caller_for(self, account_id: str, patient_id: str, address: str | None = None) -> Caller | None:
        """The caller an account has in one of its spaces, without a browser session (a calendar
        feed, a job acting for the person): built as for a page, so the access policy and the
        audit trail see the same person. None when the account is gone, disabled or not a
        citizen's, or no longer holds that space (a relation ended)."""
        from hygie.auth.sign_in import subject_of  # noqa: PLC0415

        account = await self.accounts.get(account_id)
        if account is None or not account.active or account.kind != "citizen":
            return None
        subject = subject_of(account, auth_time_s=0, amr=())
        space = next((s for s in await self._spaces(subject, account) if s.patient_id == patient_id), None)
        if space is None:
            return None
        return await self._caller(subject, space, address)

    async def _spaces(self, subject: Subject, account: Account) -> tuple[Space, ...]:
        spaces: list[Space] = []
        if subject.patient:
            own = await self.directory_read("Patient", subject.patient)
            spaces.append(Space(subject.patient, person_name(own) or "Mon espace", "self"))
        for related_id in account.related_ids:
            related = await self.directory_read("RelatedPerson", related_id)
            if not related or related.get("active") is False:
                continue
            ref = str((related.get("patient") or {}).get("reference", ""))
            if not ref.startswith("Patient/"):
                continue
            patient_id = ref.split("/", 1)[1]
            kind = await self.resolver.related_kind(related_id)
            patient = await self.directory_read("Patient", patient_id)
            spaces.append(Space(patient_id, person_name(patient) or "Un proche", kind, related_id))
        return tuple(spaces)

    async def _caller(self, subject: Subject, space: Space, address: str | None) -> Caller:
        fhir_user = f"RelatedPerson/{space.related_id}" if space.related_id else subject.fhir_user
        token = AccessToken(
            subject=subject.account_id,
            client_id=PORTAL_CLIENT,
            kind="citizen",
            scopes=parse_scopes(""),
            patient=space.patient_id,
            fhir_user=fhir_user,
        )
        return await self.resolver.caller(token, address=address)


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/connexion?retour={quote(target, safe='')}", status_code=303)
