"""The access policy's search restriction, as SQL (ADR 0007).

:func:`restriction_sql` turns a :class:`~hygie.domain.policy.SearchRestriction` into one boolean
condition on a resource row, added by the search compiler to the match query, its count and
every include and conditional match — so that refused rows never exist for totals, paging or
includes. Patient membership goes through ``resources.patient`` (the partition key) and the
``idx_relation`` access index; labels and document categories through the search index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hygie.domain.policy import CORRESPONDENCE

if TYPE_CHECKING:
    from hygie.domain.policy import SearchRestriction
    from hygie.stores.sql import Params

__all__ = ["restriction_sql"]

DOCUMENT_TYPE = "DocumentReference"


def _list(p: Params, values: frozenset[str] | set[str]) -> str:
    return ", ".join(p(v) for v in sorted(values))


def _categorised(p: Params) -> str:
    """The rows of DocumentReferences that carry a document category."""
    return f"SELECT rid FROM idx_token WHERE res_type = {p(DOCUMENT_TYPE)} AND param = {p('category')}"


def _actor_is(p: Params, column: str, actors: str | frozenset[str]) -> str:
    """``column`` names ``actors`` (one reference, or a professional and their structure): the
    ``idx_relation_actor`` index on (actor, param, patient) serves ``=`` and ``IN`` alike."""
    if isinstance(actors, str):
        return f"{column} = {p(actors)}"
    if len(actors) == 1:
        return f"{column} = {p(next(iter(actors)))}"
    return f"{column} IN ({_list(p, actors)})"


def _live_relation(p: Params, actors: str | frozenset[str], kinds: frozenset[str], now_us: int) -> str:
    return (
        f"SELECT patient FROM idx_relation WHERE {_actor_is(p, 'actor', actors)} "
        f"AND param IN ({_list(p, kinds)}) AND (expires IS NULL OR expires > {p(now_us)})"
    )


def _covering_grant(p: Params, actors: str | frozenset[str], alias: str, now_us: int) -> str:
    """A live grant of ``actors`` on the row's patient covers one of the row's document categories."""
    # categories are stored comma-separated: ",11,42," contains ",11,"
    return (
        f"EXISTS (SELECT 1 FROM idx_relation g JOIN idx_token t ON t.rid = {alias}.rid "
        f"AND t.param = {p('category')} WHERE {_actor_is(p, 'g.actor', actors)} AND g.param = {p('grant')} "
        f"AND g.patient = {alias}.patient AND (g.expires IS NULL OR g.expires > {p(now_us)}) "
        f"AND (g.categories IS NULL OR ',' || g.categories || ',' LIKE '%,' || t.code || ',%'))"
    )


def restriction_sql(
    p: Params, restriction: SearchRestriction, alias: str, now_us: int, *, driven: bool = False
) -> str | None:
    """A condition on ``alias`` (a ``resources`` row), or None when nothing is restricted.

    ``driven``: a reference to given targets already selects a few candidate rows (a patient's
    reference list: ``sql._by_reference``); the restriction must then only filter them. A label
    exclusion probes each candidate's tokens through ``idx_token_rid`` instead of listing every
    labelled resource of the database (no index leads with ``param``: PostgreSQL walked all of
    ``idx_token_value`` for it, 38 ms, on every citizen's search); on SQLite the patient column
    is written ``+alias.patient``, so that the planner does not walk the patient's whole
    partition through ``resources_patient`` (every type of their record, for their
    Observations).
    """
    if restriction.nothing:
        return "1 = 0"
    patient = f"+{alias}.patient" if driven and not p.pg else f"{alias}.patient"
    conds: list[str] = []
    members: list[str] = []
    if restriction.patients is not None:
        members.append(
            f"{patient} IN ({_list(p, restriction.patients)})" if restriction.patients else "1 = 0"
        )
    if restriction.relation_actor is not None:
        kinds = restriction.relation_kinds or frozenset({"care_team"})
        # a professional's relations and their structure's (SearchRestriction.actor_structure)
        actors = restriction.with_structure(restriction.relation_actor)
        members.append(f"{patient} IN ({_live_relation(p, actors, kinds, now_us)})")
    if members:
        if restriction.extra_patients:
            members.append(f"{patient} IN ({_list(p, restriction.extra_patients)})")
        if restriction.outside_compartments:
            members.append(f"{patient} IS NULL")
        conds.append("(" + " OR ".join(members) + ")")
    if restriction.blocked_for_actor is not None:
        # a block of the professional or of their structure
        blocked_actors = restriction.with_structure(restriction.blocked_for_actor)
        blocked = _live_relation(p, blocked_actors, frozenset({"block"}), now_us)
        # a closed health space is a relation of everyone ("*") to its patient
        closed = _live_relation(p, "*", frozenset({"space_closed"}), now_us)
        conds.append(f"({patient} IS NULL OR ({patient} NOT IN ({blocked}) AND {patient} NOT IN ({closed})))")
    if restriction.exclude_labels:
        # labels in meta.security (_security) or, on documents, DocumentReference.securityLabel
        # (each placeholder is created only if the text uses it: PostgreSQL types them from it)
        if driven:
            probe = (
                f"SELECT 1 FROM idx_token l WHERE l.rid = {alias}.rid "
                f"AND l.param IN ({p('_security')}, {p('security-label')}) "
                f"AND l.code IN ({_list(p, restriction.exclude_labels)})"
            )
            keep = [f"NOT EXISTS ({probe})"]
        else:
            labelled = (
                f"SELECT rid FROM idx_token WHERE param IN ({p('_security')}, {p('security-label')}) "
                f"AND code IN ({_list(p, restriction.exclude_labels)})"
            )
            keep = [f"{alias}.rid NOT IN ({labelled})"]
        if restriction.unless_author and "/" in restriction.unless_author:
            rtype, _, rid = restriction.unless_author.partition("/")
            keep.append(
                f"{alias}.rid IN (SELECT rid FROM idx_reference WHERE param = {p('author')} "
                f"AND target_type = {p(rtype)} AND target_id = {p(rid)})"
            )
        if restriction.unless_relation and restriction.relation_actor is not None:
            # the médecin traitant is the person, never their structure
            related = _live_relation(p, restriction.relation_actor, restriction.unless_relation, now_us)
            keep.append(f"{patient} IN ({related})")
        conds.append("(" + " OR ".join(keep) + ")")
    if restriction.categories is not None:
        categorised = _categorised(p)
        allowed = (
            f"{alias}.rid IN ({categorised} AND code IN ({_list(p, restriction.categories)}))"
            if restriction.categories
            else "1 = 0"
        )
        conds.append(
            f"({alias}.res_type <> {p(DOCUMENT_TYPE)} OR {alias}.rid NOT IN ({categorised}) OR {allowed})"
        )
    if restriction.grant_categories_actor is not None:
        # "only grants" weighs the relations of the professional and of their structure together
        grantees = restriction.with_structure(restriction.grant_categories_actor)
        categorised = _categorised(p)
        full = _live_relation(p, grantees, frozenset({"care_team", "medecin_traitant", "encounter"}), now_us)
        granted = _live_relation(p, grantees, frozenset({"grant"}), now_us)
        covering = _covering_grant(p, grantees, alias, now_us)
        keep = [
            f"{alias}.res_type <> {p(DOCUMENT_TYPE)}",
            f"{alias}.rid NOT IN ({categorised})",
            f"{patient} IN ({full})",
            f"{patient} NOT IN ({granted})",
            covering,
        ]
        if restriction.extra_patients:
            keep.append(f"{patient} IN ({_list(p, restriction.extra_patients)})")
        conds.append("(" + " OR ".join(keep) + ")")
    if restriction.structure_actor is not None:
        # a structure reads the categorised documents it authored or a grant to it covers; no Binary
        actor = restriction.structure_actor
        rtype, _, rid = actor.partition("/")
        authored = (
            f"{alias}.rid IN (SELECT rid FROM idx_reference WHERE param = {p('author')} "
            f"AND target_type = {p(rtype)} AND target_id = {p(rid)})"
        )
        conds.append(f"{alias}.res_type <> {p('Binary')}")
        conds.append(
            f"({alias}.res_type <> {p(DOCUMENT_TYPE)} OR {alias}.rid NOT IN ({_categorised(p)}) "
            f"OR {authored} OR {_covering_grant(p, actor, alias, now_us)})"
        )
    if restriction.correspondent is not None:
        # a Communication outside any record: only its parties' (domain/policy.py _correspondence)
        parties = [
            f"(target_type = {p(rtype)} AND target_id = {p(rid)})"
            for rtype, _, rid in (ref.partition("/") for ref in sorted(restriction.correspondent))
        ]
        party = (
            f"{alias}.rid IN (SELECT rid FROM idx_reference WHERE param IN ({p('sender')}, "
            f"{p('recipient')}) AND ({' OR '.join(parties)}))"
            if parties
            else "1 = 0"
        )
        conds.append(
            f"({patient} IS NOT NULL OR {alias}.res_type NOT IN ({_list(p, CORRESPONDENCE)}) OR {party})"
        )
    if restriction.confidential_for_actor is not None:
        kinds = frozenset({"adolescent_confidential"})
        confidential = _live_relation(p, restriction.confidential_for_actor, kinds, now_us)
        categorised = _categorised(p)
        conds.append(
            f"({alias}.res_type <> {p(DOCUMENT_TYPE)} OR {alias}.rid NOT IN ({categorised}) "
            f"OR {patient} NOT IN ({confidential}))"
        )
    return " AND ".join(conds) if conds else None
