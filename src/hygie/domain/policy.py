"""The access rules: who may do what to which health data — one pure function.

:func:`decide` answers for one interaction on one target, from facts only (no I/O): the
:class:`Principal` (who asks, from the token or the portal session), the :class:`Target` (the
resource's type, patient compartment, document category and type, security labels, authors)
and the :class:`Relation` list between the principal and that patient (read from the derived
``access_relations`` index, see ``docs/decisions/0007-access-policy.md``). The same rules give
the :class:`SearchRestriction` a store adds to a search, so that totals, paging and includes
never see a refused row.

Rules (``docs/security.md`` has the full matrix):

* **patients** read and search their own compartment, except documents labelled
  ``INVISIBLE_PATIENT`` (until a professional releases them); they create their own entries and
  update or delete only what they authored;
* **legal representatives** act for the represented minor as the patient would, except documents
  labelled ``INVISIBLE_REPRESENTANTS_LEGAUX`` (and the adolescent's confidential documents);
  **aidants / trusted persons** act within the categories of their delegation;
* **professionals** reach a patient only through a relation — care team, médecin traitant,
  declared encounter, explicit grant (which may be limited to categories and expires) — or an
  open break-glass the patient did not refuse; the relations of the structure they work for
  (its encounters, care teams, grants, and its blocks) are theirs too, in reads as in searches;
  a block by the patient (of the person or of the structure) wins over everything,
  and so does a closed health space (``space_closed``, which also shuts helpers out);
  documents follow the profession × category matrix; a document labelled ``MASQUE_PS`` stays
  visible only to its authors and the médecin traitant; resources outside any patient
  compartment (directory, terminology, medication) are readable by any professional;
* **correspondence outside any record** — a ``Communication`` that names no patient (a message
  between professionals, an authority's alert to a professional) — is its parties': its sender
  and recipients (a professional also reads what is addressed to their structure); nobody else
  reads it, only a professional (or a structure's software) sends one, in their own name, and
  only its sender changes it (the recipient acknowledges it with ``$mark-received``);
* **backend services** (SMART ``system/``) act within their scopes: an unbound one is a platform
  job (imports, exports), trusted with every record its scopes name; one **bound to a structure**
  (a practice's or a hospital's software, registered with ``organization``) acts as that
  Organization — it reaches a patient only through a care relation whose actor is the structure
  itself (an encounter it provided, a care team it belongs to, the patient's grant to it), never
  a record that blocked the structure or a closed space, and no break-glass; the profession ×
  category matrix has no profession to apply, so it reads the record's uncategorised data, the
  documents it authored (the structure among their ``author``) and the categories a grant to it
  opens — never a document masked by the patient unless it wrote it, never a Binary (it deposits
  content, it does not read it back); it creates entries there, changes only what it authored,
  rewrites no content, writes none of the patient's consents or relatives and no reference data;
* **apps** never get more than their scopes: ``patient/`` scopes only for the launch patient,
  v2 query restrictions as extra criteria;
* deny wins, and "refused" looks like "absent" to the caller (the FHIR layer answers 404).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from hygie.auth.scopes import ScopeSet

__all__ = [
    "CategoryMatrix",
    "Principal",
    "Relation",
    "SearchRestriction",
    "Target",
    "Verdict",
    "decide",
    "restriction_for",
    "scope_refusal",
]

PrincipalKind = Literal[
    "patient", "representative", "aidant", "practitioner", "system", "operator", "anonymous"
]
RelationKind = Literal[
    "care_team",
    "medecin_traitant",
    "encounter",
    "grant",
    "representative",
    "aidant",
    "block",
    "emergency_refusal",
    "adolescent_confidential",
    "space_closed",
]
Interaction = Literal["read", "search", "create", "update", "delete", "history"]

MASKED_FROM_PROFESSIONALS = "MASQUE_PS"
HIDDEN_FROM_PATIENT = "INVISIBLE_PATIENT"
HIDDEN_FROM_REPRESENTATIVES = "INVISIBLE_REPRESENTANTS_LEGAUX"
CARE_RELATIONS: frozenset[str] = frozenset({"care_team", "medecin_traitant", "encounter", "grant"})
# the care relations a structure can hold (a médecin traitant is a person, never an Organization)
STRUCTURE_RELATIONS: frozenset[str] = frozenset({"care_team", "encounter", "grant"})
# what the patient declares about their own record: the relations a structure would gain by writing them
PATIENT_DECLARED: frozenset[str] = frozenset({"Consent", "RelatedPerson"})
# outside any patient record, these are letters between their parties (Target.parties)
CORRESPONDENCE: frozenset[str] = frozenset({"Communication"})
# entries a person signs: a patient or a relative creates them only in their own name
SIGNED_BY_WRITER: frozenset[str] = frozenset({"Communication", "QuestionnaireResponse"})
WRITES = frozenset({"create", "update", "delete"})
READS = frozenset({"read", "search", "history"})
_SCOPE_INTERACTION = {
    "read": "read",
    "search": "search",
    "history": "read",
    "create": "create",
    "update": "update",
    "delete": "delete",
}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    subject: str | None = None  # fhirUser: Patient/…, Practitioner/…, RelatedPerson/… (or a client id)
    profession: str | None = None  # TRE_G15 code: 10 doctor, 21 pharmacist, 40 dentist, 50 midwife, 60 nurse…
    organization: str | None = None
    scopes: ScopeSet | None = None  # None: a first-party session, not an app
    launch_patient: str | None = None
    break_glass: frozenset[str] = frozenset()  # patients with an open, unexpired emergency access

    @property
    def patient_id(self) -> str | None:
        if self.subject and self.subject.startswith("Patient/"):
            return self.subject.split("/", 1)[1]
        return None

    @property
    def structure(self) -> str | None:
        """The Organization a backend client acts as (None: a person, or a platform job)."""
        return self.organization if self.kind == "system" else None


@dataclass(frozen=True, slots=True)
class Relation:
    """A fact linking the principal to the target patient (from ``access_relations``)."""

    kind: RelationKind
    categories: frozenset[str] | None = None  # None: not limited to some document categories
    expires_us: int | None = None

    def live(self, now_us: int) -> bool:
        return self.expires_us is None or self.expires_us > now_us


@dataclass(frozen=True, slots=True)
class Target:
    resource_type: str
    patient: str | None  # the patient compartment; None: outside every patient compartment
    categories: frozenset[str] = frozenset()  # document class / type codes
    labels: frozenset[str] = frozenset()  # security label codes
    authors: frozenset[str] = frozenset()  # references of authors / recorders
    parties: frozenset[str] = frozenset()  # a correspondence's sender and recipients


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class CategoryMatrix:
    """Profession (TRE_G15) → document categories it may read; ``"*"`` is every category.

    It is data: the default below follows the digest (doctors see everything; pharmacists,
    nurses and others less) and an operator loads the ministerial table in its place.
    """

    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # the digest marks "the médecin traitant still sees a document masked by the patient" as
    # partly verified (§3.3, §11): an operator may turn it off in the same file
    masked_visible_to_medecin_traitant: bool = True

    def may_read(self, profession: str | None, categories: frozenset[str]) -> bool:
        if not categories:
            return True  # not a categorised document
        granted = self.allowed.get(profession or "", frozenset())
        return "*" in granted or bool(categories & granted)

    @classmethod
    def from_json(cls, data: bytes) -> CategoryMatrix:
        """``{"professions": {"10": {"classes": ["*"]}, …}, "masked_documents":
        {"visible_to_medecin_traitant": true}}`` (see ``category_matrix.json``)."""
        import orjson  # noqa: PLC0415

        loaded = orjson.loads(data)
        professions = loaded.get("professions") if isinstance(loaded, dict) else None
        if not isinstance(professions, dict):
            raise ValueError(  # noqa: TRY004 - a configuration error, reported as such
                'a category matrix is {"professions": {code: {"classes": [...]}}}'
            )
        allowed: dict[str, frozenset[str]] = {}
        for code, entry in professions.items():
            classes = entry.get("classes") if isinstance(entry, dict) else None
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise ValueError(f'profession {code!r}: classes must be a list of TRE_A03 codes or "*"')
            allowed[str(code)] = frozenset(classes)
        masked = loaded.get("masked_documents") or {}
        gp_sees = masked.get("visible_to_medecin_traitant", True) if isinstance(masked, dict) else None
        if not isinstance(gp_sees, bool):
            raise ValueError(  # noqa: TRY004 - a configuration error, reported as such
                'masked_documents is {"visible_to_medecin_traitant": true or false}'
            )
        return cls(allowed, gp_sees)

    @classmethod
    def default(cls) -> CategoryMatrix:
        """The table shipped as data beside this module (``category_matrix.json``)."""
        from importlib.resources import files  # noqa: PLC0415

        return cls.from_json(files("hygie.domain").joinpath("category_matrix.json").read_bytes())


def _unscoped(principal: Principal) -> Principal:
    """The person behind an app, as a first-party session: the rules alone, no scopes."""
    return replace(principal, scopes=None, launch_patient=None)


def _live(relations: Sequence[Relation], now_us: int) -> list[Relation]:
    return [r for r in relations if r.live(now_us)]


def _scopes_allow(principal: Principal, interaction: Interaction, target: Target) -> Verdict | None:
    """Refusal by the app's scopes, or None when the scopes do not stand in the way."""
    scopes = principal.scopes
    if scopes is None:
        return None
    action = _SCOPE_INTERACTION[interaction]
    if principal.kind == "system":
        ok, _ = scopes.permits("system", target.resource_type, action)
        return None if ok else Verdict(False, "scope: not granted to this backend client")
    ok_user, _ = scopes.permits("user", target.resource_type, action)
    ok_patient, _ = scopes.permits("patient", target.resource_type, action)
    if ok_user:
        return None
    if ok_patient:
        if target.patient is None and target.resource_type != "Patient":
            return None  # patient/ scopes still let an app read what the record points to
        if target.patient is not None and target.patient == principal.launch_patient:
            return None
        return Verdict(False, "scope: patient/ scopes reach only the launch patient")
    return Verdict(False, "scope: interaction not granted to this app")


def scope_refusal(principal: Principal, interaction: Interaction, resource_type: str) -> str | None:
    """Why the app's scopes refuse ``interaction`` on every ``resource_type`` (None: they may not)."""
    scopes = principal.scopes
    if scopes is None:
        return None
    action = _SCOPE_INTERACTION[interaction]
    contexts: tuple[Literal["patient", "user", "system"], ...] = (
        ("system",) if principal.kind == "system" else ("user", "patient")
    )
    if any(scopes.permits(context, resource_type, action)[0] for context in contexts):
        return None
    return f"scope: {action} of {resource_type} is not granted to this app"


def decide(
    principal: Principal,
    interaction: Interaction,
    target: Target,
    relations: Sequence[Relation] = (),
    *,
    matrix: CategoryMatrix | None = None,
    now_us: int = 0,
) -> Verdict:
    """May ``principal`` perform ``interaction`` on ``target``? Deny wins; scopes only narrow."""
    refused = _scopes_allow(principal, interaction, target)
    if refused is not None:
        return refused
    kind = principal.kind
    if kind == "anonymous":
        return Verdict(False, "not authenticated")
    if target.patient is None and target.resource_type in CORRESPONDENCE:
        return _correspondence(principal, interaction, target)
    if principal.structure is not None:
        return _structure(principal.structure, interaction, target, _live(relations, now_us))
    if kind in ("operator", "system"):
        return Verdict(True, f"{kind}: trusted platform actor")
    live = _live(relations, now_us)
    if target.patient is None:
        # directory, terminology, medications…: readable by every signed-in person; writes by professionals
        if interaction in WRITES and kind != "practitioner":
            return Verdict(False, "only professionals write shared reference data")
        return Verdict(True, "outside any patient record")
    if kind == "patient":
        return _patient(principal, interaction, target)
    if kind in ("representative", "aidant"):
        return _delegate(principal, interaction, target, live)
    return _professional(principal, interaction, target, live, matrix or CategoryMatrix.default())


def correspondent_refs(principal: Principal) -> frozenset[str]:
    """The references that make ``principal`` a party to a correspondence: themselves, and for a
    professional or a structure's software, the structure (a structure's mailbox is its members')."""
    refs = {principal.subject} if principal.subject and "/" in principal.subject else set()
    if principal.kind in ("practitioner", "system") and principal.organization:
        refs.add(principal.organization)
    return frozenset(refs)


def _correspondence(principal: Principal, interaction: Interaction, target: Target) -> Verdict:
    """A Communication outside any patient record: a letter between its parties."""
    if principal.kind == "operator" or (principal.kind == "system" and principal.structure is None):
        return Verdict(True, f"{principal.kind}: trusted platform actor")
    me = correspondent_refs(principal)
    if interaction == "create":
        if principal.kind not in ("practitioner", "system"):
            return Verdict(False, "only professionals write to each other outside a record")
        if not target.authors & me:
            return Verdict(False, "a message is sent in one's own name or one's structure's")
        return Verdict(True, "the sender of the correspondence")
    if interaction in ("update", "delete"):
        if target.authors & me:
            return Verdict(True, "the sender of the correspondence")
        return Verdict(False, "only its sender changes a message")
    if target.parties & me:
        return Verdict(True, "a party to the correspondence")
    return Verdict(False, "a correspondence between other people")


# who only professionals and structures may name as an entry's author
_PROFESSIONAL_AUTHORS = ("Practitioner/", "PractitionerRole/", "Organization/", "CareTeam/")


def _signed_by_another(principal: Principal, interaction: Interaction, target: Target) -> bool:
    """A patient or a delegate creating an entry in someone else's name: a message or an answer
    not signed by them, or any entry presented as a professional's (an allergy "recorded by"
    a doctor would then look like a professional's and be read-only for its real author)."""
    if interaction != "create":
        return False
    if target.resource_type in SIGNED_BY_WRITER and principal.subject not in target.authors:
        return True
    if target.resource_type == "Appointment":  # a patient may propose one with a professional
        return False
    return any(author.startswith(_PROFESSIONAL_AUTHORS) for author in target.authors)


# a Binary names no author: whose document it holds is unknown, so a patient or a delegate adds
# content (a document's new version) but never rewrites or deletes any, a professional's included
_CONTENT_IS_FIXED = "a document's content is not rewritten: a new version replaces it"


def _patient(principal: Principal, interaction: Interaction, target: Target) -> Verdict:
    if target.patient != principal.patient_id:
        return Verdict(False, "another person's record")
    if _signed_by_another(principal, interaction, target):
        return Verdict(False, "an entry is written in one's own name, not a professional's")
    if HIDDEN_FROM_PATIENT in target.labels:
        return Verdict(False, "document hidden from the patient until it is announced")
    if interaction in ("update", "delete") and target.authors and principal.subject not in target.authors:
        return Verdict(False, "entries from professionals are read-only for the patient")
    if interaction in ("update", "delete") and target.resource_type == "Binary":
        return Verdict(False, _CONTENT_IS_FIXED)
    return Verdict(True, "own record")


def _delegate(
    principal: Principal, interaction: Interaction, target: Target, live: list[Relation]
) -> Verdict:
    wanted = "representative" if principal.kind == "representative" else "aidant"
    links = [r for r in live if r.kind == wanted]
    if not links:
        return Verdict(False, f"no {wanted} link to this patient")
    if _signed_by_another(principal, interaction, target):
        return Verdict(False, "an entry is written in one's own name, not a professional's")
    if wanted == "aidant" and any(r.kind == "space_closed" for r in live):
        # legal representatives run a closed space (they may reopen it); helpers lose it
        return Verdict(False, "the patient's health space is closed")
    if HIDDEN_FROM_PATIENT in target.labels:
        return Verdict(False, "document hidden from the patient until it is announced")
    if any(r.kind == "adolescent_confidential" for r in live) and target.categories:
        return Verdict(False, "the patient keeps their documents confidential from this person")
    if principal.kind == "representative":
        if HIDDEN_FROM_REPRESENTATIVES in target.labels:
            return Verdict(False, "document not visible to legal representatives")
    elif (
        not any(r.categories is None or (target.categories & r.categories) for r in links)
        and target.categories
    ):
        return Verdict(False, "outside the categories of the delegation")
    if interaction in ("update", "delete") and target.authors and principal.subject not in target.authors:
        return Verdict(False, "entries from professionals are read-only")
    if interaction in ("update", "delete") and target.resource_type == "Binary":
        return Verdict(False, _CONTENT_IS_FIXED)
    return Verdict(True, f"{wanted} of the patient")


def _professional(
    principal: Principal,
    interaction: Interaction,
    target: Target,
    live: list[Relation],
    matrix: CategoryMatrix,
) -> Verdict:
    if any(r.kind == "space_closed" for r in live):
        return Verdict(False, "the patient's health space is closed")
    if any(r.kind == "block" for r in live):
        return Verdict(False, "the patient has blocked this professional or structure")
    care = [r for r in live if r.kind in CARE_RELATIONS]
    emergency = False
    if not care:
        if target.patient in principal.break_glass and not any(r.kind == "emergency_refusal" for r in live):
            emergency = True
        else:
            return Verdict(False, "no care relationship with this patient")
    if MASKED_FROM_PROFESSIONALS in target.labels:
        is_author = principal.subject in target.authors
        is_gp = matrix.masked_visible_to_medecin_traitant and any(r.kind == "medecin_traitant" for r in live)
        if not (is_author or is_gp):
            return Verdict(False, "document masked from professionals by the patient")
    if interaction in ("read", "search", "history") and target.categories:
        if not matrix.may_read(principal.profession, target.categories):
            return Verdict(False, "document category not open to this profession")
        grants = [r for r in care if r.kind == "grant"]
        # an open emergency access reaches the whole record, as the search restriction lets it
        # (a grant limited to some classes does not narrow a break-glass)
        in_emergency = target.patient in principal.break_glass and not any(
            r.kind == "emergency_refusal" for r in live
        )
        only_grants = bool(grants) and len(grants) == len(care) and not in_emergency
        if only_grants and not any(
            r.categories is None or (target.categories & r.categories) for r in grants
        ):
            return Verdict(False, "outside the categories of the patient's grant")
    if emergency:
        return Verdict(True, "break-glass emergency access", break_glass=True)
    return Verdict(True, "care relationship: " + ", ".join(sorted({r.kind for r in care})))


def _structure(structure: str, interaction: Interaction, target: Target, live: list[Relation]) -> Verdict:
    """A backend client bound to ``structure`` (``Organization/…``): the structure's own relations.

    No person answers for its requests, so it borrows no professional's relation, has no
    profession for the category matrix and no break-glass; what it authored stays its own.
    """
    if target.resource_type == "Binary" and interaction in READS:
        return Verdict(False, "a structure's software deposits content, it does not read it back")
    if target.patient is None:
        if interaction in WRITES:
            return Verdict(False, "shared reference data is the platform's, not a structure's")
        return Verdict(True, "outside any patient record")
    if any(r.kind == "space_closed" for r in live):
        return Verdict(False, "the patient's health space is closed")
    if any(r.kind == "block" for r in live):
        return Verdict(False, "the patient has blocked this structure")
    care = [r for r in live if r.kind in STRUCTURE_RELATIONS]
    if not care:
        return Verdict(False, "no care relationship between this structure and the patient")
    if interaction in WRITES and target.resource_type in PATIENT_DECLARED:
        return Verdict(False, "the patient's consents and relatives are theirs to declare")
    authored = structure in target.authors
    # depositing a masked document (and its content, which names no author) is no reading of it
    if MASKED_FROM_PROFESSIONALS in target.labels and not authored and interaction != "create":
        return Verdict(False, "document masked from professionals by the patient")
    if interaction in ("update", "delete"):
        if target.resource_type == "Binary":
            return Verdict(False, _CONTENT_IS_FIXED)
        if target.authors and not authored:
            return Verdict(False, "a structure changes only the entries it authored")
    if interaction in READS and target.categories and not authored:
        grants = [r for r in care if r.kind == "grant"]
        if not any(r.categories is None or (target.categories & r.categories) for r in grants):
            return Verdict(False, "a structure reads the documents it authored or those a grant opens")
    return Verdict(True, "structure's care relationship: " + ", ".join(sorted({r.kind for r in care})))


@dataclass(frozen=True, slots=True)
class SearchRestriction:
    """What a store must add to a search so that only permitted rows exist for it.

    ``patients`` None means no restriction by patient; ``relation_actor`` asks the store to keep the
    patients linked to that actor in ``access_relations`` (kinds in ``relation_kinds``) — plus
    ``extra_patients`` (break-glass); ``blocked_for_actor`` drops the patients who blocked that
    actor and those whose space is closed (``space_closed``); ``exclude_labels`` drop labelled resources (with
    ``unless_author`` the principal's own documents stay); ``categories`` restricts documents;
    ``structure_actor`` keeps a structure's categorised documents to those it authored or a grant
    to it covers, and drops Binary rows (see :func:`_structure`).

    A professional's ``actor_structure`` is the Organization they work for: as :func:`decide`
    weighs the relations of both (``AccessPolicy.facts``), its care relations, blocks and grants
    count with the person's for ``relation_actor``, ``blocked_for_actor`` and
    ``grant_categories_actor`` (the store asks for ``actor IN (person, structure)``); the
    médecin-traitant exception (``unless_relation``) and authorship (``unless_author``) stay the
    person's — a médecin traitant is a person, never an Organization (``domain/relations.py``).
    """

    nothing: bool = False
    patients: frozenset[str] | None = None
    relation_actor: str | None = None
    relation_kinds: frozenset[str] = frozenset()
    extra_patients: frozenset[str] = frozenset()
    blocked_for_actor: str | None = None
    outside_compartments: bool = True
    exclude_labels: frozenset[str] = frozenset()
    unless_author: str | None = None
    # labelled rows stay visible when the actor holds one of these relations to their patient
    unless_relation: frozenset[str] = frozenset()
    categories: frozenset[str] | None = None
    # documents (categorised DocumentReferences) of patients who keep them confidential from the actor
    confidential_for_actor: str | None = None
    # a professional whose only link to a patient is grants sees that patient's categorised
    # documents within the grants' categories (the patients related otherwise see them all)
    grant_categories_actor: str | None = None
    # a structure (bound backend client): categorised documents only when it is among their
    # authors or one of its live grants covers their category; no Binary rows at all
    structure_actor: str | None = None
    # correspondence outside any record (CORRESPONDENCE types without a patient): only the rows
    # naming one of these references as sender or recipient (None: every row, a platform actor)
    correspondent: frozenset[str] | None = None
    # a professional's structure: its relations, blocks and grants are the professional's too
    actor_structure: str | None = None

    def with_structure(self, actor: str) -> frozenset[str]:
        """``actor`` and, for a professional, their structure: the actors whose care relations,
        blocks and grants are the principal's (``unless_relation`` stays with ``actor`` alone)."""
        return frozenset({actor, self.actor_structure}) if self.actor_structure else frozenset({actor})


def restriction_for(
    principal: Principal,
    resource_type: str | None,
    *,
    matrix: CategoryMatrix | None = None,
    launch_relations: Sequence[Relation] | None = None,
    now_us: int = 0,
) -> SearchRestriction:
    """The search restriction equivalent to :func:`decide` for every row of a search.

    ``launch_relations`` are the relations between the principal and its launch patient: an app
    with ``patient/`` scopes used by a professional or a delegate reaches that one record, and
    only if these relations open it (without them, no record at all).
    """
    if principal.scopes is not None and resource_type is not None:
        scoped = _scopes_allow(principal, "search", Target(resource_type, principal.launch_patient))
        if scoped is not None:
            return SearchRestriction(nothing=True)
        only_patient_scopes = (
            principal.kind != "system" and not principal.scopes.permits("user", resource_type, "search")[0]
        )
        if only_patient_scopes:
            if principal.launch_patient is None:
                return SearchRestriction(nothing=True)
            base = restriction_for(
                _unscoped(principal),
                resource_type,
                matrix=matrix,
            )
            if base.relation_actor is not None:
                # the store adds the actor's related patients to ``patients``: decide here instead
                return _launch_restriction(
                    principal, resource_type, base, launch_relations or (), matrix, now_us
                )
            allowed = frozenset({principal.launch_patient})
            if base.patients is not None:
                allowed = allowed & base.patients
            return SearchRestriction(
                nothing=base.nothing or not allowed,
                patients=allowed,
                relation_actor=base.relation_actor,
                relation_kinds=base.relation_kinds,
                extra_patients=base.extra_patients,
                blocked_for_actor=base.blocked_for_actor,
                outside_compartments=base.outside_compartments,
                exclude_labels=base.exclude_labels,
                unless_author=base.unless_author,
                unless_relation=base.unless_relation,
                categories=base.categories,
                confidential_for_actor=base.confidential_for_actor,
                correspondent=base.correspondent,
                actor_structure=base.actor_structure,
            )
    kind = principal.kind
    if kind == "anonymous":
        return SearchRestriction(nothing=True)
    structure = principal.structure
    if structure is not None:
        return SearchRestriction(
            relation_actor=structure,
            relation_kinds=STRUCTURE_RELATIONS,
            blocked_for_actor=structure,
            exclude_labels=frozenset({MASKED_FROM_PROFESSIONALS}),
            unless_author=structure,
            structure_actor=structure,
            correspondent=correspondent_refs(principal),
        )
    if kind in ("operator", "system"):
        return SearchRestriction()
    if kind == "patient":
        own = principal.patient_id
        if own is None:
            return SearchRestriction(nothing=True)
        return SearchRestriction(
            patients=frozenset({own}),
            exclude_labels=frozenset({HIDDEN_FROM_PATIENT}),
            correspondent=correspondent_refs(principal),
        )
    if kind in ("representative", "aidant"):
        wanted = "representative" if kind == "representative" else "aidant"
        labels = {HIDDEN_FROM_PATIENT}
        if kind == "representative":
            labels.add(HIDDEN_FROM_REPRESENTATIVES)
        return SearchRestriction(
            relation_actor=principal.subject,
            relation_kinds=frozenset({wanted}),
            exclude_labels=frozenset(labels),
            confidential_for_actor=principal.subject,
            # a helper loses closed spaces (the store drops them with blocked patients)
            blocked_for_actor=principal.subject if kind == "aidant" else None,
            correspondent=correspondent_refs(principal),
        )
    m = matrix or CategoryMatrix.default()
    granted = m.allowed.get(principal.profession or "", frozenset())
    return SearchRestriction(
        relation_actor=principal.subject,
        relation_kinds=CARE_RELATIONS,
        extra_patients=principal.break_glass,
        blocked_for_actor=principal.subject,
        exclude_labels=frozenset({MASKED_FROM_PROFESSIONALS}),
        unless_author=principal.subject,
        unless_relation=frozenset({"medecin_traitant"})
        if m.masked_visible_to_medecin_traitant
        else frozenset(),
        categories=None if "*" in granted else frozenset(granted),
        grant_categories_actor=principal.subject,
        correspondent=correspondent_refs(principal),
        # the structure's encounters, care teams, grants and blocks are the professional's (decide)
        actor_structure=principal.organization,
    )


def _launch_restriction(
    principal: Principal,
    resource_type: str,
    base: SearchRestriction,
    relations: Sequence[Relation],
    matrix: CategoryMatrix | None,
    now_us: int,
) -> SearchRestriction:
    """The restriction of a ``patient/``-scoped app whose user reaches records through relations
    (professional, representative, aidant): the launch patient's record if the rules open it —
    decided here from ``relations`` — and the resources outside every record."""
    launch = principal.launch_patient
    assert launch is not None
    unscoped = _unscoped(principal)
    live = _live(relations, now_us)
    record = decide(unscoped, "search", Target(resource_type, launch), live, matrix=matrix, now_us=now_us)
    if not record.allowed:
        return SearchRestriction(patients=frozenset())
    kinds = {r.kind for r in live}
    labels = base.exclude_labels
    if kinds & base.unless_relation:
        labels = labels - {MASKED_FROM_PROFESSIONALS}
    categories = base.categories
    if principal.kind == "practitioner":
        care = [r for r in live if r.kind in CARE_RELATIONS]
        if care and all(r.kind == "grant" for r in care) and all(r.categories is not None for r in care):
            granted = frozenset(c for r in care for c in r.categories or ())
            categories = granted if categories is None else categories & granted
    elif principal.kind == "aidant":
        links = [r for r in live if r.kind == "aidant"]
        if links and all(r.categories is not None for r in links):
            delegated = frozenset(c for r in links for c in r.categories or ())
            categories = delegated if categories is None else categories & delegated
    return SearchRestriction(
        patients=frozenset({launch}),
        blocked_for_actor=base.blocked_for_actor,
        outside_compartments=base.outside_compartments,
        exclude_labels=labels,
        unless_author=base.unless_author,
        categories=categories,
        confidential_for_actor=base.confidential_for_actor,
        correspondent=base.correspondent,
        actor_structure=base.actor_structure,
    )
