"""The Store santé's records and what changes them: publishers, apps, reviews, reports, audits.

The catalogue is not health data: publishers, app records, their changelogs, reviews, audit
campaigns and the criteria grid live in the platform's durable key-value store (SQLite or
PostgreSQL, as the OAuth clients do), one record per object. An app's state and its public
changelog are one record, written together; a state change holds a short lock on the app so that
two reviewers cannot both decide.

What the store does to the rest of the platform goes through the authorisation server's client
registry — the only bridge: an app **listed with data exchange** gets a SMART client registration
(``app-<id>``) built from its declaration (scopes, redirect URIs, JWKS, launch URL, audience); a
suspension, a delisting or lapsed technical checks suspend that client, and its tokens stop
working at the next call (``auth/tokens.py`` checks the client's status at every call, through a
one-second cache); a reinstatement reactivates it. Nothing of the person's record is read here,
except the sample of what an app wrote that the probes check — through the access policy, as the
platform's ``store-probe`` operator, in the audit trail like every read.

Reports (a malfunction, a harmful effect) are kept here, outside the person's record: the text
is the reporter's, routed by :func:`~hygie.domain.store.triage.triage` to the surveillance queue
of the digital-health authority or to the medicines agency's control queue; the public app page
shows a report's category, severity, status and outcome, never its text or its reporter.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hygie.auth.clients import ClientRegistry, import_jwks
from hygie.auth.scopes import InvalidScope, parse_scope
from hygie.domain.store.catalogue import (
    LISTED,
    App,
    TransitionRefused,
    pathway,
    siret_valid,
    submission_problems,
    transition,
)
from hygie.domain.store.grid import Grid, GridError, shipped_grid
from hygie.domain.store.sampling import Risk, draw, risk_of
from hygie.ports import KeyValueStore
from hygie.store.probes import Check, Prober, ProbeTarget, uri_problem

__all__ = [
    "AGENCIES",
    "Member",
    "Publisher",
    "StoreError",
    "StoreService",
]

_APP, _PUBLISHER, _MEMBER, _GRID, _LOCK = (
    "store-app",
    "store-publisher",
    "store-member",
    "store-grid",
    "store-lock",
)
_REPORT, _CAMPAIGN = "store-report", "store-campaign"
_VERSION = "store-version"  # app / report -> a mark replaced at every write of that kind
_DAY_US = 86_400 * 1_000_000

# the authorities of the store: who reviews and watches (surveillance queue), who controls
# medical devices and harm to health (control queue)
AGENCIES = {
    "ans": "Autorité du numérique en santé",
    "ansm": "Agence du médicament (ANSM)",
}
QUEUE_OF_AGENCY = {"ans": "surveillance", "ansm": "controle"}
REPORT_STATUSES = {"recu": "Reçu", "en_cours": "En cours d’instruction", "clos": "Clos"}
PROBE_ACTOR = "Contrôle technique automatique"
PUBLISHER_ACTOR = "L’éditeur"


class StoreError(ValueError):
    """A request the store refuses: ``problems`` are (form field, French message)."""

    def __init__(self, problems: Iterable[tuple[str, str]] | str, status: int = 422) -> None:
        items = [("", problems)] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(m for _, m in items))
        self.problems = items
        self.status = status

    @property
    def by_field(self) -> dict[str, str]:
        return self.beside()

    def beside(self, known: Sequence[str] | None = None, fallback: str = "") -> dict[str, str]:
        """The messages by form field; with ``known``, a message about another field (or none)
        goes beside ``fallback``."""
        out: dict[str, str] = {}
        for name, message in self.problems:
            key = name if known is None or name in known else fallback
            out[key] = f"{out[key]} {message}" if key in out else message
        return out


@dataclass(frozen=True, slots=True)
class Publisher:
    id: str
    name: str
    siret: str
    email: str
    created: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "siret": self.siret,
            "email": self.email,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Member:
    """What a publisher's or an authority's account may do in the store."""

    account_id: str
    role: str  # publisher | authority
    publisher_id: str | None = None
    agency: str | None = None  # ans | ansm

    @property
    def actor(self) -> str:
        """How the public changelog names them."""
        if self.role == "authority" and self.agency:
            return AGENCIES.get(self.agency, self.agency)
        return PUBLISHER_ACTOR


Sampler = Callable[[str], Awaitable[list[dict[str, Any]]]]  # client_id -> resources it wrote


class StoreService:
    def __init__(
        self,
        kv: KeyValueStore,
        clients: ClientRegistry,
        clock: Callable[[], int],
        *,
        prober: Prober | None = None,
        written_by: Sampler | None = None,
    ) -> None:
        self.kv = kv
        self.clients = clients
        self.clock = clock
        self.prober = prober
        self.written_by = written_by
        # decoded records, kept while the store's version marks say nothing changed (see _cached)
        self._cache: dict[str, tuple[str, Any]] = {}

    async def _cached(self, kind: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """Every record of ``kind``, decoded once per change instead of once per request.

        Each write of an app or a report replaces a small version mark (``store-version``) after
        the record itself; a reader reads the mark first, and reuses what it decoded under the same
        mark — across processes too, since the mark is in the shared store. A reader that raced a
        write decoded under the old mark, and the new mark makes the next reader load again."""
        mark = await self.kv.get(_VERSION, kind)
        version = str(mark["v"]) if mark else ""
        held = self._cache.get(kind)
        if held is not None and held[0] == version and version:
            return held[1]
        value = await load()
        self._cache[kind] = (version, value)
        return value

    async def _changed(self, kind: str) -> None:
        await self.kv.put(_VERSION, kind, {"v": secrets.token_hex(8)})

    # -- the grid ----------------------------------------------------------------------------

    async def grid(self, version: int | None = None) -> Grid:
        """The grid in force (or a given version): the latest the authority published, else the
        shipped version 1."""
        if version is not None:
            found = await self.kv.get(_GRID, str(version))
            if found is not None:
                return Grid.from_json(found)
            return shipped_grid()
        versions = await self.kv.list(_GRID)
        if not versions:
            return shipped_grid()
        latest = max(versions, key=lambda kv: int(kv[0]))
        return Grid.from_json(latest[1])

    async def publish_grid(self, data: Mapping[str, Any], member: Member) -> Grid:
        """A revised grid, as the next version: it applies to submissions from now on."""
        self._authority(member)
        current = await self.grid()
        published = datetime.fromtimestamp(self.clock() / 1_000_000, UTC).date().isoformat()
        proposed = {**data, "version": current.version + 1, "published": published}
        try:
            grid = Grid.from_json(proposed)
        except GridError as error:
            raise StoreError([("grille", p) for p in error.problems]) from error
        if not await self.kv.add(_GRID, str(grid.version), grid.to_json()):
            raise StoreError("Une autre version vient d’être publiée : rechargez la grille.", status=409)
        return grid

    # -- publishers and members -----------------------------------------------------------------

    async def create_publisher(self, name: str, siret: str, email: str) -> Publisher:
        siret = siret.replace(" ", "")
        problems = []
        if not name.strip():
            problems.append(("nom", "Indiquez la raison sociale."))
        if not siret_valid(siret):
            problems.append(("siret", "Le SIRET compte 14 chiffres et sa clé doit être juste."))
        if "@" not in email:
            problems.append(("courriel", "Indiquez une adresse électronique de contact."))
        if problems:
            raise StoreError(problems)
        for _, other in await self.kv.list(_PUBLISHER):
            if other.get("siret") == siret:
                raise StoreError([("siret", "Un éditeur est déjà inscrit avec ce SIRET.")], status=409)
        publisher = Publisher(
            secrets.token_hex(8), " ".join(name.split()), siret, email.strip(), self.clock()
        )
        await self.kv.put(_PUBLISHER, publisher.id, publisher.to_json())
        return publisher

    async def publishers(self) -> dict[str, Publisher]:
        """Every publisher, by id (one read of the store's publishers)."""
        return {key: Publisher(**value) for key, value in await self.kv.list(_PUBLISHER)}

    async def publisher(self, publisher_id: str) -> Publisher | None:
        found = await self.kv.get(_PUBLISHER, publisher_id)
        return Publisher(**found) if found else None

    async def add_member(
        self, account_id: str, role: str, *, publisher_id: str | None = None, agency: str | None = None
    ) -> Member:
        if role == "publisher":
            if publisher_id is None or await self.publisher(publisher_id) is None:
                raise StoreError("Éditeur inconnu.")
            agency = None
        elif role == "authority":
            if agency not in AGENCIES:
                raise StoreError(f"Autorité inconnue : {agency!r} ({', '.join(AGENCIES)}).")
            publisher_id = None
        else:
            raise StoreError(f"Rôle inconnu : {role!r}.")
        member = Member(account_id, role, publisher_id, agency)
        await self.kv.put(_MEMBER, account_id, {"role": role, "publisher_id": publisher_id, "agency": agency})
        return member

    async def member(self, account_id: str) -> Member | None:
        found = await self.kv.get(_MEMBER, account_id)
        if found is None:
            return None
        return Member(account_id, str(found["role"]), found.get("publisher_id"), found.get("agency"))

    # -- apps -----------------------------------------------------------------------------------

    async def app(self, app_id: str) -> App | None:
        found = await self.kv.get(_APP, app_id)
        return App.from_json(found) if found else None

    async def apps(self) -> list[App]:
        """Every app, by name (decoded once per change of the catalogue: ``_cached``)."""

        async def load() -> list[App]:
            return sorted(
                (App.from_json(v) for _, v in await self.kv.list(_APP)),
                key=lambda a: (a.name.casefold(), a.id),
            )

        return list(await self._cached(_APP, load))

    async def _all_reports(self) -> list[dict[str, Any]]:
        async def load() -> list[dict[str, Any]]:
            return [v for _, v in await self.kv.list(_REPORT)]

        return list(await self._cached(_REPORT, load))

    async def apps_of(self, publisher_id: str) -> list[App]:
        return [a for a in await self.apps() if a.publisher_id == publisher_id]

    async def app_of_client(self, client_id: str) -> App | None:
        if not client_id.startswith("app-"):
            return None
        found = await self.app(client_id[4:])
        return found if found is not None and found.client_id == client_id else None

    async def save_draft(self, member: Member, app: App) -> App:
        """Create or update a publisher's draft (anything may be incomplete in a draft)."""
        if member.role != "publisher" or member.publisher_id is None:
            raise StoreError("Seul un éditeur dépose des applications.", status=403)
        now = self.clock()
        if app.id:
            async with self._locked(app.id):
                known = await self._own(member, app.id)
                if known.state != "draft":
                    raise StoreError(
                        "Une application soumise ne se modifie plus : attendez la décision, ou son renvoi.",
                        status=409,
                    )
                saved = replace(
                    app,
                    publisher_id=known.publisher_id,
                    state="draft",
                    created=known.created,
                    updated=now,
                    changelog=known.changelog,
                    client_id=known.client_id,
                    review_note=known.review_note,
                )
                await self._put(saved)
                return saved
        saved = replace(
            app, id=secrets.token_hex(6), publisher_id=member.publisher_id, created=now, updated=now
        )
        await self._put(saved)
        return saved

    async def submit(self, member: Member, app_id: str) -> App:
        """Submit a draft: refused with every missing piece at once; a self-assessed app is listed
        at once, an app needing evaluation waits in the authority's queue."""
        async with self._locked(app_id):
            app = await self._own(member, app_id)
            if app.state != "draft":
                raise StoreError(
                    f"Seul un brouillon se soumet : l’application est « {app.state_label} ».", status=409
                )
            grid = await self.grid()
            problems = submission_problems(app, grid)
            problems += self._uri_problems(app)
            problems += _registration_problems(app)
            if problems:
                raise StoreError(problems)
            now = self.clock()
            app = replace(app, grid_version=grid.version)
            app = transition(app, "submit", at=now, by=member.actor)
            if pathway(app) == "auto":
                app = transition(app, "list_self", at=now, by=member.actor)
            await self._put(app)
            return app

    def _uri_problems(self, app: App) -> list[tuple[str, str]]:
        # the tests' knob lifts the guard for the loopback only (uri_problem), where their apps run
        allow = self.prober is not None and self.prober.allow_private
        declared = [("redirections", uri) for uri in app.redirect_uris]
        if app.launch_url:
            declared.append(("adresse_lancement", app.launch_url))
        problems = []
        for name, uri in declared:
            problem = uri_problem(uri, app.hosts, allow_private=allow)
            if problem:
                problems.append((name, f"{uri} : {problem}"))
        return problems

    # -- review and decisions -------------------------------------------------------------------

    async def review_queue(self) -> list[App]:
        """Submissions waiting for the authority, oldest first."""
        waiting = [a for a in await self.apps() if a.state in ("submitted", "under_review")]
        return sorted(waiting, key=lambda a: a.updated)

    async def take(self, member: Member, app_id: str) -> App:
        return await self._decide(member, app_id, "take", "")

    async def approve(self, member: Member, app_id: str, note: str, *, data_exchange: bool) -> App:
        """List an evaluated app; with ``data_exchange``, its SMART registration becomes active."""
        return await self._decide(member, app_id, "approve_data" if data_exchange else "approve", note)

    async def send_back(self, member: Member, app_id: str, note: str) -> App:
        return await self._decide(member, app_id, "return", note)

    async def decide(self, member: Member, app_id: str, decision: str, note: str) -> App:
        """An audit or report decision on a listed app: keep, warn, suspend, reinstate, delist."""
        if decision not in ("keep", "warn", "suspend", "reinstate", "delist"):
            raise StoreError(f"Décision inconnue : {decision}.")
        return await self._decide(member, app_id, decision, note)

    async def _decide(self, member: Member, app_id: str, event: str, note: str) -> App:
        self._authority(member)
        async with self._locked(app_id):
            app = await self.app(app_id)
            if app is None:
                raise StoreError("Application inconnue.", status=404)
            try:
                changed = transition(app, event, at=self.clock(), by=member.actor, note=note)
            except TransitionRefused as error:
                raise StoreError(str(error), status=409) from error
            changed = await self._sync_client(changed)
            await self._put(changed)
            return changed

    async def _sync_client(self, app: App) -> App:
        """The app's SMART registration follows its state: active only when listed with data
        exchange; registered the first time it is."""
        if app.state == "listed_data":
            if not app.client_id:
                return replace(app, client_id=await self._register(app))
            await self.clients.set_status(app.client_id, "active")
        elif app.client_id and await self.clients.get(app.client_id) is not None:
            await self.clients.set_status(app.client_id, "suspended")
        return app

    async def _register(self, app: App) -> str:
        client_id = f"app-{app.id}"
        audiences = {
            "citoyens": ("citizen",),
            "professionnels": ("professional",),
            "tous": ("citizen", "professional"),
        }
        launchable = bool(app.launch_url) and "launch" in app.scopes.split()
        known = await self.clients.get(client_id)
        if known is not None:
            await self.clients.set_status(client_id, "active")
            return client_id
        try:
            await self.clients.register(
                name=app.name,
                scope=app.scopes,
                redirect_uris=list(app.redirect_uris),
                jwks=app.jwks,
                launch="both" if launchable else "standalone",
                client_id=client_id,
                launch_url=app.launch_url if launchable else None,
                audience=audiences.get(app.audience, ()) if launchable else (),
                description=app.summary,
            )
        except ValueError as error:
            raise StoreError(f"Enregistrement SMART impossible : {error}", status=422) from error
        return client_id

    # -- probes ---------------------------------------------------------------------------------

    async def probe(self, app_id: str) -> App:
        """Run the executable checks on a listed app; an app listed with data exchange whose checks
        fail loses its data exchange (downgrade), and gets it back once they pass again."""
        if self.prober is None:
            raise StoreError("Les contrôles techniques ne sont pas configurés.", status=503)
        app = await self.app(app_id)
        if app is None or app.state not in LISTED:
            raise StoreError("Seule une application référencée est contrôlée.", status=409)
        client = await self.clients.get(app.client_id) if app.client_id else None
        written = tuple(await self.written_by(app.client_id)) if self.written_by and app.client_id else ()
        checks: list[Check] = await self.prober.probe(ProbeTarget(app.hosts, app.scopes, client, written))
        if client is not None and client.status == "suspended" and app.state == "listed":
            # a downgraded app: its registration is suspended, which is not a fault of the app
            checks = [
                replace(c, ok=True, detail="enregistrement suspendu par le déclassement")
                if c.code == "registration"
                else c
                for c in checks
            ]
        ok = all(c.ok for c in checks)
        now = self.clock()
        async with self._locked(app_id):
            app = await self.app(app_id)
            assert app is not None
            app = replace(app, checks=tuple(c.to_json() for c in checks), checked_at=now)
            failed = ", ".join(c.label for c in checks if not c.ok)
            if app.state == "listed_data" and not ok:
                app = transition(app, "downgrade", at=now, by=PROBE_ACTOR, note=f"En échec : {failed}.")
                app = await self._sync_client(app)
            elif app.state == "listed" and ok and _was_downgraded(app):
                app = transition(app, "restore", at=now, by=PROBE_ACTOR)
                app = await self._sync_client(app)
            await self._put(app)
            return app

    async def probe_all(self) -> list[App]:
        return [await self.probe(a.id) for a in await self.apps() if a.state in LISTED]

    # -- reports --------------------------------------------------------------------------------

    async def report(
        self,
        app_id: str,
        text: str,
        *,
        declared: str | None,
        reporter: str | None,
        reporter_kind: str,
        contact: str = "",
    ) -> dict[str, Any]:
        """File a report about an app: triaged, routed, given a deadline. Returns it (its ``id`` is
        the reporter's follow-up key: unguessable)."""
        from hygie.domain.store.triage import triage  # noqa: PLC0415

        app = await self.app(app_id)
        if app is None or app.state in ("draft",):
            raise StoreError("Application inconnue.", status=404)
        text = text.strip()
        if len(text) < 10:
            raise StoreError([("texte", "Décrivez ce qui s’est passé (10 caractères au moins).")])
        if len(text) > 5000:
            raise StoreError([("texte", "Votre description dépasse 5 000 caractères : raccourcissez-la.")])
        if declared not in (None, "dysfonctionnement", "effet_indesirable", "autre"):
            raise StoreError([("nature", "Choisissez la nature du problème.")])
        decided = triage(text, declared=declared, medical_device=app.category == "1")
        now = self.clock()
        report: dict[str, Any] = {
            "id": secrets.token_urlsafe(16),
            "app_id": app_id,
            "at": now,
            "reporter": reporter,
            "reporter_kind": reporter_kind,
            "contact": contact.strip(),
            "declared": declared,
            "text": text,
            "triage": decided.to_json(),
            "queue": decided.queue,
            "severity": decided.severity,
            "category": decided.category,
            "due": now + decided.deadline_days * _DAY_US,
            "status": "recu",
            "outcome": "",
            "closed_at": 0,
            "history": [{"at": now, "by": "Tri automatique", "status": "recu", "note": ""}],
        }
        await self._put_report(report)
        return report

    async def report_of(self, report_id: str) -> dict[str, Any] | None:
        return await self.kv.get(_REPORT, report_id)

    async def reports(self, *, queue: str | None = None, app_id: str | None = None) -> list[dict[str, Any]]:
        found = await self._all_reports()
        if queue is not None:
            found = [r for r in found if r["queue"] == queue]
        if app_id is not None:
            found = [r for r in found if r["app_id"] == app_id]
        # open reports by deadline, then closed ones newest first
        return sorted(
            found,
            key=lambda r: (r["status"] == "clos", r["due"] if r["status"] != "clos" else -r["closed_at"]),
        )

    async def reports_of(self, account_id: str) -> list[dict[str, Any]]:
        mine = [r for r in await self._all_reports() if r["reporter"] == account_id]
        return sorted(mine, key=lambda r: -int(r["at"]))

    async def handle_report(self, member: Member, report_id: str, status: str, note: str) -> dict[str, Any]:
        """The queue's agency instructs a report: in progress, or closed with an outcome the
        reporter reads."""
        self._authority(member)
        report = await self.report_of(report_id)
        if report is None:
            raise StoreError("Signalement inconnu.", status=404)
        if QUEUE_OF_AGENCY.get(member.agency or "") != report["queue"]:
            raise StoreError("Ce signalement relève d’une autre file.", status=403)
        if status not in ("en_cours", "clos"):
            raise StoreError([("statut", "Choisissez « en cours » ou « clos ».")])
        if status == "clos" and not note.strip():
            raise StoreError([("issue", "Indiquez l’issue : le déclarant la lira.")])
        if report["status"] == "clos":
            raise StoreError("Ce signalement est déjà clos.", status=409)
        now = self.clock()
        report = {
            **report,
            "status": status,
            "outcome": note.strip() if status == "clos" else report["outcome"],
            "closed_at": now if status == "clos" else 0,
            "history": [
                *report["history"],
                {"at": now, "by": member.actor, "status": status, "note": note.strip()},
            ],
        }
        await self._put_report(report)
        return report

    # -- audit campaigns ------------------------------------------------------------------------

    async def risks(self) -> list[Risk]:
        now = self.clock()
        reports = await self._all_reports()
        out = []
        for app in await self.apps():
            if app.state not in LISTED:
                continue
            mine = [r for r in reports if r["app_id"] == app.id]
            open_ = sum(1 for r in mine if r["status"] != "clos")
            out.append(risk_of(app, now_us=now, open_reports=open_, closed_reports=len(mine) - open_))
        return out

    async def start_campaign(
        self, member: Member, name: str, size: int, seed: int | None = None
    ) -> dict[str, Any]:
        self._authority(member)
        if not name.strip():
            raise StoreError([("nom", "Nommez la campagne.")])
        if not 1 <= size <= 500:
            raise StoreError([("taille", "Tirez entre 1 et 500 applications.")])
        seed = secrets.randbelow(2**31) if seed is None else seed
        drawn = draw(await self.risks(), size, seed)
        campaign_id = secrets.token_hex(6)
        campaign: dict[str, Any] = {
            "id": campaign_id,
            "name": name.strip(),
            "at": self.clock(),
            "by": member.actor,
            "seed": seed,
            "drawn": [{"app_id": r.app_id, "weight": r.weight, "reasons": list(r.reasons)} for r in drawn],
            "findings": {},
        }
        await self.kv.put(_CAMPAIGN, campaign_id, campaign)
        return campaign

    async def campaigns(self) -> list[dict[str, Any]]:
        return sorted((v for _, v in await self.kv.list(_CAMPAIGN)), key=lambda c: -int(c["at"]))

    async def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        return await self.kv.get(_CAMPAIGN, campaign_id)

    async def record_finding(
        self, member: Member, campaign_id: str, app_id: str, finding: str, decision: str
    ) -> dict[str, Any]:
        """An auditor's finding on a drawn app, and the decision it leads to (applied to the app)."""
        self._authority(member)
        campaign = await self.campaign(campaign_id)
        if campaign is None:
            raise StoreError("Campagne inconnue.", status=404)
        if app_id not in {d["app_id"] for d in campaign["drawn"]}:
            raise StoreError("Cette application n’a pas été tirée dans cette campagne.", status=409)
        if not finding.strip():
            raise StoreError([("constat", "Décrivez le constat.")])
        await self.decide(member, app_id, decision, finding)
        campaign["findings"][app_id] = {
            "finding": finding.strip(),
            "decision": decision,
            "at": self.clock(),
            "by": member.actor,
        }
        await self.kv.put(_CAMPAIGN, campaign_id, campaign)
        return campaign

    # -- dashboard ------------------------------------------------------------------------------

    async def dashboard(self) -> dict[str, Any]:
        apps = await self.apps()
        reports = await self._all_reports()
        now = self.clock()
        by_state: dict[str, dict[str, int]] = {}
        for app in apps:
            by_state.setdefault(app.state, {}).setdefault(app.category, 0)
            by_state[app.state][app.category] += 1
        queues: dict[str, dict[str, Any]] = {}
        for queue in ("surveillance", "controle"):
            mine = [r for r in reports if r["queue"] == queue]
            open_ = [r for r in mine if r["status"] != "clos"]
            closed = [r for r in mine if r["status"] == "clos"]
            delays = [(r["closed_at"] - r["at"]) / _DAY_US for r in closed]
            queues[queue] = {
                "open": len(open_),
                "overdue": sum(1 for r in open_ if r["due"] < now),
                "closed": len(closed),
                "mean_days": round(sum(delays) / len(delays), 1) if delays else None,
                "late_closed": sum(1 for r in closed if r["closed_at"] > r["due"]),
            }
        return {"by_state": by_state, "queues": queues, "total": len(apps)}

    # -- helpers --------------------------------------------------------------------------------

    def _authority(self, member: Member) -> None:
        if member.role != "authority":
            raise StoreError("Réservé aux autorités.", status=403)

    async def _own(self, member: Member, app_id: str) -> App:
        app = await self.app(app_id)
        if app is None or app.publisher_id != member.publisher_id:
            raise StoreError("Application inconnue.", status=404)
        return app

    async def _put(self, app: App) -> None:
        await self.kv.put(_APP, app.id, app.to_json())
        await self._changed(_APP)

    async def _put_report(self, report: dict[str, Any]) -> None:
        await self.kv.put(_REPORT, str(report["id"]), report)
        await self._changed(_REPORT)

    @asynccontextmanager
    async def _locked(self, app_id: str) -> Any:
        """A short lock on one app (10 s at most, if its holder died): one decision at a time."""
        token = secrets.token_hex(8)
        for _ in range(100):
            if await self.kv.add(_LOCK, app_id, {"token": token}, expires_us=self.clock() + 10_000_000):
                break
            await asyncio.sleep(0.05)
        else:
            raise StoreError("Cette application est en cours de modification : réessayez.", status=409)
        try:
            yield
        finally:
            held = await self.kv.get(_LOCK, app_id)
            if held is not None and held.get("token") == token:
                await self.kv.delete(_LOCK, app_id)


def _registration_problems(app: App) -> list[tuple[str, str]]:
    """What the authorisation server would refuse of the declaration when the app gets its SMART
    registration (at approval): said at submission, beside the field, not after the review."""
    problems = []
    for scope in app.scopes.split():
        try:
            parse_scope(scope)
        except InvalidScope:
            problems.append(("portees", f"« {scope} » n’est pas une portée SMART reconnue."))
    if app.jwks is not None:
        try:
            import_jwks(app.jwks)
        except ValueError:
            problems.append(("jwks", "Le JWKS ne contient pas de clé publique lisible (RFC 7517)."))
    return problems


def _was_downgraded(app: App) -> bool:
    """Listed after losing its data exchange (and not since sent back through evaluation)."""
    last = next(
        (
            e
            for e in reversed(app.changelog)
            if e.event in ("downgrade", "restore", "approve", "approve_data")
        ),
        None,
    )
    return last is not None and last.event == "downgrade"
