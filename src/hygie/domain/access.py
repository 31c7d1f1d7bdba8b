"""The one door to health data: every interaction asks :class:`AccessPolicy` first.

Every FHIR interaction (read, vread, search with its includes, history, each entry of a batch or
transaction, ``$everything``, exports, portal pages) names its :class:`Caller` and its target
and asks the policy. The policy gathers the facts the rules need — the access relations between
the caller and the target's patient, read from the store's derived index (ADR 0007) — and hands
them to the pure rules of :mod:`hygie.domain.policy`. The :class:`Decision`, granted or refused,
is what the audit trail records (``domain/audit.py``).

Searches do not decide row by row: :meth:`AccessPolicy.restriction` gives the
:class:`~hygie.domain.policy.SearchRestriction` the store adds to the query, so that refused rows
never exist for totals, paging, includes or conditional matches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hygie.domain.policy import (
    CategoryMatrix,
    Principal,
    Relation,
    SearchRestriction,
    Target,
    decide,
    restriction_for,
    scope_refusal,
)

__all__ = [
    "EXPUNGE",
    "FIRST_PARTY_CLIENTS",
    "PORTAL_CLIENT",
    "AccessPolicy",
    "AccessRequest",
    "Caller",
    "Decision",
    "Interaction",
    "RelationSource",
    "erase_refusal",
]

Interaction = Literal[
    "read",
    "vread",
    "search",
    "history",
    "create",
    "update",
    "patch",
    "delete",
    "transaction",
    "batch",
    "operation",
    "capabilities",
]

# the interactions of the REST API, as the rules know them
_RULE_INTERACTION: dict[str, Literal["read", "search", "create", "update", "delete", "history"]] = {
    "read": "read",
    "vread": "read",
    "operation": "read",
    "search": "search",
    "history": "history",
    "create": "create",
    "update": "update",
    "patch": "update",
    "delete": "delete",
}

# the client of Hygie's own portals' sessions (ENS, BSP): no app scopes, the policy alone decides
PORTAL_CLIENT = "hygie-portal"
# the clients that are Hygie itself: what they write carries no app provenance
FIRST_PARTY_CLIENTS: frozenset[str] = frozenset({PORTAL_CLIENT})

RelationSource = Callable[[str, Sequence[str], int], Awaitable[list[tuple[str, str | None, int | None]]]]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, resolved from an access token (``auth/principals.py``) or a portal session.

    ``principal`` is what the rules decide on; the other fields are what the audit trail shows:
    ``display`` (a name), ``identifier`` (IdNat_PS / INS with its ``identifier_system``),
    ``purpose`` (purpose-of-use codes), ``client_id`` (the app) and ``address`` (the network peer).
    """

    kind: Literal["anonymous", "patient", "representative", "aidant", "practitioner", "system", "operator"]
    subject: str | None = None
    client_id: str | None = None
    principal: Principal = field(default_factory=lambda: Principal("anonymous"))
    display: str | None = None
    identifier: str | None = None
    identifier_system: str | None = None
    purpose: tuple[str, ...] = ()
    address: str | None = None

    @classmethod
    def anonymous(cls) -> Caller:
        return cls("anonymous")

    @classmethod
    def operator(cls, name: str = "cli") -> Caller:
        """A local operator (``hygie import``, ``hygie demo``): trusted, still recorded."""
        return cls("operator", subject=name, principal=Principal("operator", f"Operator/{name}"))

    @classmethod
    def of(cls, principal: Principal, **audit: object) -> Caller:
        """The caller acting as ``principal`` (its kind and subject), with audit details."""
        return cls(principal.kind, principal.subject, principal=principal, **audit)  # type: ignore[arg-type]

    @property
    def app(self) -> str | None:
        """The third-party app (client id) this caller acts through: None for Hygie's own portals
        and for operators. What it writes carries its provenance (``domain/provenance.py``)."""
        if self.kind == "operator" or not self.client_id or self.client_id in FIRST_PARTY_CLIENTS:
            return None
        return self.client_id

    @property
    def trusted(self) -> bool:
        """Platform actors (operators, backend services bound to no structure) see every record
        their scopes allow; a backend client bound to a structure acts as that structure."""
        return self.kind == "operator" or (self.kind == "system" and self.principal.structure is None)

    @property
    def unrestricted(self) -> bool:
        """A platform actor without app scopes: every row is theirs to see, none needs deciding."""
        return self.trusted and self.principal.scopes is None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    caller: Caller
    interaction: Interaction
    resource_type: str | None = None
    resource_id: str | None = None
    patient: str | None = None  # the patient compartment concerned, when known
    detail: str | None = None  # search string, operation name…


@dataclass(frozen=True, slots=True)
class Decision:
    request: AccessRequest
    allowed: bool
    reason: str
    break_glass: bool = False


# the detail of a delete that erases for good instead of leaving a tombstone (``_expunge=true``)
EXPUNGE = "_expunge=true"
# who may erase for good what they may delete: the person and their legal representatives (their
# own entries, as closing a space does, in Hygie's portal or their own session — never through a
# third-party app), and the platform (its operator, a backend job bound to no structure); never a
# professional, whose deletion of a care entry must leave its history (the record is medico-legal)
_ERASERS = frozenset({"patient", "representative"})


def erase_refusal(caller: Caller) -> str | None:
    """Why ``caller`` may not erase for good (None: the delete rule then decides as for a delete)."""
    if caller.trusted:
        return None
    if caller.kind not in _ERASERS:
        return "erasing for good is for the person, their legal representatives and the platform"
    if caller.app is not None:
        return "a third-party app may delete, never erase for good"
    return None


@dataclass
class AccessPolicy:
    """The policy decision point: facts from the store, verdicts from ``domain/policy.py``.

    ``relations(patient, actors, now_us)`` reads the live access relations (the store's
    ``relations`` method); ``matrix`` is the profession × document-category table.
    """

    relations: RelationSource
    clock: Callable[[], int]
    matrix: CategoryMatrix = field(default_factory=CategoryMatrix.default)

    async def facts(
        self, caller: Caller, patient: str | None, cache: dict[str, list[Relation]] | None = None
    ) -> list[Relation]:
        """The live relations between the caller (and its structure) and ``patient``; a backend
        client bound to a structure has the structure's relations only."""
        principal = caller.principal
        structure = principal.structure
        if patient is None or (
            principal.kind not in ("practitioner", "representative", "aidant") and structure is None
        ):
            return []
        if cache is not None and patient in cache:
            return cache[patient]
        actors = [structure] if structure else [a for a in (principal.subject, principal.organization) if a]
        rows = await self.relations(patient, actors, self.clock())
        found = [
            Relation(kind, frozenset(categories.split(",")) if categories else None, expires)  # type: ignore[arg-type]
            for kind, categories, expires in rows
        ]
        if cache is not None:
            cache[patient] = found
        return found

    async def decide(
        self,
        request: AccessRequest,
        target: Target | None,
        cache: dict[str, list[Relation]] | None = None,
    ) -> Decision:
        """The decision on one interaction; ``target`` None for interactions on no resource."""
        principal = request.caller.principal
        if request.interaction in ("capabilities",):
            return Decision(request, True, "the capability statement is public")
        if principal.kind == "anonymous":
            return Decision(request, False, "not authenticated")
        if target is None:
            # batch/transaction containers, searches: their entries and rows are decided one by one
            return Decision(request, True, "decided per entry")
        if request.interaction == "delete" and request.detail == EXPUNGE:
            refusal = erase_refusal(request.caller)
            if refusal is not None:
                return Decision(request, False, refusal)
        rule = _RULE_INTERACTION[request.interaction]
        relations = await self.facts(request.caller, target.patient, cache)
        verdict = decide(principal, rule, target, relations, matrix=self.matrix, now_us=self.clock())
        return Decision(request, verdict.allowed, verdict.reason, verdict.break_glass)

    async def restriction(
        self, caller: Caller, resource_type: str | None, cache: dict[str, list[Relation]] | None = None
    ) -> SearchRestriction | None:
        """What a search by ``caller`` may see, as a store restriction (None: everything).

        An app with ``patient/`` scopes reaches its launch patient only: for a professional or a
        delegate, the relations with that patient decide whether the record is open."""
        principal = caller.principal
        launch = None
        if principal.scopes is not None and principal.launch_patient is not None:
            launch = await self.facts(caller, principal.launch_patient, cache)
        restriction = restriction_for(
            principal, resource_type, matrix=self.matrix, launch_relations=launch, now_us=self.clock()
        )
        return None if restriction == SearchRestriction() else restriction

    def scope_refusal(self, caller: Caller, interaction: Interaction, resource_type: str) -> str | None:
        """Why the caller's app scopes refuse this interaction on this type (None: they do not)."""
        rule = _RULE_INTERACTION.get(interaction)
        if rule is None:
            return None
        return scope_refusal(caller.principal, rule, resource_type)
