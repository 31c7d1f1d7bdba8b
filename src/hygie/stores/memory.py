"""The in-memory resource store: the pure-Python twin of the SQL stores, for unit tests.

Resources, their history and the index rows of every live resource are kept in dicts. A
:class:`~hygie.fhir.search.SearchQuery` is evaluated criterion by criterion with the semantics of
``stores/sql.py`` (each SQL condition has a small predicate here), sorted with the same keys and
sentinels (missing values sort last) and paged with the same cursors (``sql.encode_cursor``), so a
test run on this store says something about the real ones.

Where ``stores/sql.py`` relies on an SQL accident rather than a choice (``LIKE`` being
case-insensitive on SQLite only, a stored URI used as a ``LIKE`` pattern by ``:above``), this
store implements the intended rule: exact, case-sensitive prefix matches.

A transaction stages its writes in an overlay that only it sees (``read_for_update`` and
``search_keys`` included) and applies them when its block ends without an exception; an
:class:`asyncio.Lock` serialises transactions, as the SQLite store's writer lock does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any

from hygie.domain.policy import CORRESPONDENCE
from hygie.fhir.definitions import compartment_definition
from hygie.fhir.index_model import DATE_MAX, DATE_MIN, IndexEntries
from hygie.fhir.outcome import Conflict, InvalidRequest
from hygie.fhir.search import (
    CompositeValue,
    Criterion,
    DateValue,
    NearValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    SearchQuery,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    date_matches,
)
from hygie.ports import HistoryPage, ResourceKey, SearchPage, StoredResource, StoreTransaction, WriteOp
from hygie.stores import sql

if TYPE_CHECKING:
    from hygie.domain.policy import SearchRestriction

__all__ = ["MemoryResourceStore"]

_STRING_MAX = "\U0010ffff"
_NUM_MAX = 1e308

# index kind -> the IndexEntries attribute holding its rows
_KIND_FIELD = {
    "token": "tokens",
    "string": "strings",
    "date": "dates",
    "reference": "references",
    "quantity": "quantities",
    "number": "numbers",
    "uri": "uris",
    "composite": "composites",
    "relation": "relations",
    "geo": "geo",
}

Row = tuple[Any, ...]  # one index row without its leading param
Index = dict[str, dict[str, list[Row]]]  # kind -> param -> rows


def _group(entries: IndexEntries) -> Index:
    """The index rows of one resource by kind and param (the param column dropped)."""
    out: Index = {}
    for kind, attr in _KIND_FIELD.items():
        rows: list[tuple[Any, ...]] = getattr(entries, attr)
        if rows:
            by_param = out.setdefault(kind, {})
            for row in rows:
                by_param.setdefault(row[0], []).append(tuple(row[1:]))
    return out


@dataclass(frozen=True, slots=True)
class _Resource:
    """The current version of one resource, with its index when live."""

    rid: int
    resource_type: str
    id: str
    version: int
    last_updated: int
    deleted: bool
    patient: str | None
    content: bytes
    index: Index

    def stored(self) -> StoredResource:
        return StoredResource(
            self.resource_type,
            self.id,
            self.version,
            self.last_updated,
            self.deleted,
            self.content,
            self.rid,
            patient=self.patient,
        )

    def rows(self, kind: str, param: str) -> list[Row]:
        return self.index.get(kind, {}).get(param, [])


@dataclass(frozen=True, slots=True)
class _Version:
    hid: int
    rid: int
    resource_type: str
    id: str
    version: int
    last_updated: int
    deleted: bool
    method: str
    patient: str | None
    content: bytes

    def stored(self) -> StoredResource:
        return StoredResource(
            self.resource_type,
            self.id,
            self.version,
            self.last_updated,
            self.deleted,
            self.content,
            self.rid,
            self.method,
            patient=self.patient,
        )


# --------------------------------------------------------------------------------------------
# Predicates: one per SQL condition of stores/sql.py. A NULL column never satisfies a comparison
# (SQL's three-valued logic keeps only TRUE rows), so a None value makes every predicate False.
# --------------------------------------------------------------------------------------------


def _number_matches(prefix: Prefix, col: float | None, value: float, low: float, high: float) -> bool:
    """``sql._number_cond``: the implicit range ``[low, high)``, or the value itself."""
    if col is None:
        return False
    if prefix == "eq":
        return low <= col < high or col == value
    if prefix == "ne":
        return not (low <= col < high or col == value)
    if prefix in ("gt", "sa"):
        return col > value
    if prefix in ("lt", "eb"):
        return col < value
    if prefix == "ge":
        return col >= value
    if prefix == "le":
        return col <= value
    delta = abs(value) * 0.1
    return value - delta <= col <= value + delta


def _range_matches(prefix: Prefix, low: int | None, high: int | None, v: DateValue, now_us: int) -> bool:
    if low is None or high is None:
        return False
    return date_matches(prefix, v.low, v.high, low, high, now_us)


def _token_matches(v: TokenValue, row: Row, modifier: str | None) -> bool:
    system, code, text = row
    if modifier == "text":
        return text is not None and (v.text or "") in text
    if modifier == "of-type":
        return bool(system == v.system and code == v.code and text == v.text)
    if v.no_system:
        if system is not None:
            return False
    elif v.system is not None and system != v.system:
        return False
    return v.code is None or code == v.code


def _string_matches(v: StringValue, row: Row, modifier: str | None) -> bool:
    norm, exact = row
    if modifier == "exact":
        return bool(exact == v.exact)
    if modifier == "contains":
        return v.norm in norm
    return bool(norm.startswith(v.norm))


def _quantity_matches(v: QuantityValue, row: Row) -> bool:
    value, system, code, unit, cvalue, ccode = row
    plain = (
        _number_matches(v.prefix, value, v.value, v.low, v.high)
        and (v.system is None or system == v.system)
        and (v.code is None or v.code in (code, unit))
    )
    if plain:
        return True
    if v.canonical is None:
        return False
    clo, chi, canonical_code = v.canonical
    return ccode == canonical_code and _number_matches(v.prefix, cvalue, (clo + chi) / 2, clo, chi)


def _reference_matches(v: ReferenceValue, row: Row) -> bool:
    target_type, target_id, url = row
    if v.target_id is not None and v.target_type is not None:
        # a canonical written "Type/id" is indexed as a URL: match it too
        wanted = v.url or f"{v.target_type}/{v.target_id}"
        return bool((target_type == v.target_type and target_id == v.target_id) or url == wanted)
    if v.target_id is not None:
        return bool(target_id == v.target_id)
    return url is not None and url == v.url


def _uri_matches(v: UriValue, row: Row, modifier: str | None) -> bool:
    (value,) = row
    if modifier == "below":
        return bool(value.startswith(v.value))
    if modifier == "above":
        return v.value.startswith(value)
    return bool(value == v.value)


def _composite_matches(v: CompositeValue, row: Row, now_us: int) -> bool:
    system1, code1, system2, code2, number2, low2, high2, string2 = row
    first = v.first
    if first.no_system:
        if system1 is not None:
            return False
    elif first.system is not None and system1 != first.system:
        return False
    if first.code is not None and code1 != first.code:
        return False
    second = v.second
    if isinstance(second, TokenValue):
        if second.no_system:
            if system2 is not None:
                return False
        elif second.system is not None and system2 != second.system:
            return False
        return second.code is None or code2 == second.code
    if isinstance(second, QuantityValue):
        return (
            _number_matches(second.prefix, number2, second.value, second.low, second.high)
            and (second.system is None or system2 == second.system)
            and (second.code is None or code2 == second.code)
        )
    if isinstance(second, DateValue):
        return _range_matches(second.prefix, low2, high2, second, now_us)
    return string2 is not None and string2.startswith(second.norm)


def _chord2(row: Row, point: tuple[float, float, float]) -> float:
    """``sql._chord2_expr``: the squared chord between a geo row's point and ``point``."""
    x: float = row[2]
    y: float = row[3]
    z: float = row[4]
    return (x - point[0]) * (x - point[0]) + (y - point[1]) * (y - point[1]) + (z - point[2]) * (z - point[2])


def _near_matches(v: NearValue, row: Row) -> bool:
    """``sql._near_cond``: in the box, then within the distance."""
    lat, lng = row[0], row[1]
    return v.box.contains(lat, lng) and _chord2(row, v.point) <= v.max_chord2


def _value_matches(crit: Criterion, v: object, row: Row, now_us: int) -> bool:
    if isinstance(v, TokenValue):
        return _token_matches(v, row, crit.modifier)
    if isinstance(v, StringValue):
        return _string_matches(v, row, crit.modifier)
    if isinstance(v, DateValue):
        return _range_matches(v.prefix, row[0], row[1], v, now_us)
    if isinstance(v, NumberValue):
        return _number_matches(v.prefix, row[0], v.value, v.low, v.high)
    if isinstance(v, QuantityValue):
        return _quantity_matches(v, row)
    if isinstance(v, ReferenceValue):
        return _reference_matches(v, row)
    if isinstance(v, UriValue):
        return _uri_matches(v, row, crit.modifier)
    if isinstance(v, CompositeValue):
        return _composite_matches(v, row, now_us)
    if isinstance(v, NearValue):
        return _near_matches(v, row)
    raise TypeError(f"unexpected search value {v!r}")


# --------------------------------------------------------------------------------------------
# Criteria: compiled against one view of the resources (committed, or a transaction's overlay).
# --------------------------------------------------------------------------------------------

Predicate = Callable[[_Resource], bool]


class _Evaluator:
    """Compiles criteria to predicates over the resources of one view."""

    def __init__(
        self, view: Mapping[ResourceKey, _Resource], now_us: int, restriction: SearchRestriction | None = None
    ) -> None:
        self.view = view
        self.now_us = now_us
        self.allowed = self._restriction(restriction)

    def _related(self, actor: str | frozenset[str], kinds: frozenset[str]) -> set[str]:
        """Patients linked to ``actor`` (one reference, or a professional and their structure) by a
        live relation of one of ``kinds`` (idx_relation's twin)."""
        actors = frozenset({actor}) if isinstance(actor, str) else actor
        out: set[str] = set()
        for r in self.live():
            for kind, rows in r.index.get("relation", {}).items():
                if kind in kinds:
                    out.update(
                        row[0]
                        for row in rows
                        if row[1] in actors and (row[3] is None or row[3] > self.now_us)
                    )
        return out

    def _grants(self, actor: str | frozenset[str]) -> dict[str, list[frozenset[str] | None]]:
        """Patient -> categories of the actors' live grants (None: every category)."""
        actors = frozenset({actor}) if isinstance(actor, str) else actor
        out: dict[str, list[frozenset[str] | None]] = {}
        for r in self.live():
            for row in r.index.get("relation", {}).get("grant", []):
                if row[1] in actors and (row[3] is None or row[3] > self.now_us):
                    out.setdefault(row[0], []).append(frozenset(row[2].split(",")) if row[2] else None)
        return out

    def _restriction(self, res: SearchRestriction | None) -> Predicate:
        """The access policy's restriction, as stores/restriction.py compiles it to SQL."""
        if res is None:
            return lambda r: True
        if res.nothing:
            return lambda r: False
        fixed = res.patients
        # a professional's relations, blocks and grants are theirs and their structure's
        related = (
            self._related(
                res.with_structure(res.relation_actor), res.relation_kinds or frozenset({"care_team"})
            )
            if (res.relation_actor is not None)
            else None
        )
        restricted = fixed is not None or related is not None
        blocked = (
            self._related(res.with_structure(res.blocked_for_actor), frozenset({"block"}))
            | self._related("*", frozenset({"space_closed"}))
            if res.blocked_for_actor
            else set()
        )
        keep_related = (  # the médecin traitant: the person alone
            self._related(res.relation_actor, res.unless_relation)
            if res.unless_relation and res.relation_actor
            else set()
        )
        author = (
            tuple(res.unless_author.split("/", 1)) if res.unless_author and "/" in res.unless_author else None
        )
        confidential = (
            self._related(res.confidential_for_actor, frozenset({"adolescent_confidential"}))
            if res.confidential_for_actor
            else set()
        )
        grantees = res.with_structure(res.grant_categories_actor) if res.grant_categories_actor else None
        fully = (
            self._related(grantees, frozenset({"care_team", "medecin_traitant", "encounter"}))
            if grantees
            else set()
        )
        grants = self._grants(grantees) if grantees else {}
        structure = res.structure_actor
        structure_ref = tuple(structure.split("/", 1)) if structure and "/" in structure else None
        structure_grants = self._grants(structure) if structure else {}
        correspondent = (
            {tuple(ref.split("/", 1)) for ref in res.correspondent if "/" in ref}
            if res.correspondent is not None
            else None
        )

        def ok(r: _Resource) -> bool:
            if restricted:
                member = (
                    (fixed is not None and r.patient in fixed)
                    or (related is not None and r.patient in related)
                    or (r.patient is not None and r.patient in res.extra_patients)
                    or (res.outside_compartments and r.patient is None)
                )
                if not member:
                    return False
            if r.patient is not None and r.patient in blocked:
                return False
            if res.exclude_labels:
                labels = {row[1] for p in ("_security", "security-label") for row in r.rows("token", p)}
                if labels & res.exclude_labels:
                    authored = author is not None and any(
                        (row[0], row[1]) == author for row in r.rows("reference", "author")
                    )
                    if not (authored or r.patient in keep_related):
                        return False
            if res.categories is not None and r.resource_type == "DocumentReference":
                categories = {row[1] for row in r.rows("token", "category")}
                if categories and not (categories & res.categories):
                    return False
            if (
                grants
                and r.resource_type == "DocumentReference"
                and r.patient in grants
                and r.patient not in fully
                and r.patient not in res.extra_patients
            ):
                codes = {row[1] for row in r.rows("token", "category")}
                if codes and not any(c is None or codes & c for c in grants[r.patient]):
                    return False
            if structure is not None:
                if r.resource_type == "Binary":
                    return False
                codes = (
                    {row[1] for row in r.rows("token", "category")}
                    if r.resource_type == "DocumentReference"
                    else set()
                )
                if codes:
                    authored = structure_ref is not None and any(
                        (row[0], row[1]) == structure_ref for row in r.rows("reference", "author")
                    )
                    covered = any(c is None or codes & c for c in structure_grants.get(r.patient or "", []))
                    if not (authored or covered):
                        return False
            if (
                correspondent is not None
                and r.patient is None
                and r.resource_type in CORRESPONDENCE
                and not any(
                    (row[0], row[1]) in correspondent
                    for param in ("sender", "recipient")
                    for row in r.rows("reference", param)
                )
            ):
                return False
            hidden = confidential and r.resource_type == "DocumentReference" and r.patient in confidential
            return not (hidden and r.rows("token", "category"))

        return ok

    def live(self, resource_type: str | None = None) -> Iterator[_Resource]:
        for r in self.view.values():
            if not r.deleted and (resource_type is None or r.resource_type == resource_type):
                yield r

    def query(self, query: SearchQuery) -> Predicate:
        preds = [self.criterion(c) for c in query.criteria]
        rtype = query.resource_type

        allowed = self.allowed

        def matches(r: _Resource) -> bool:
            if r.deleted or (rtype is not None and r.resource_type != rtype):
                return False
            return allowed(r) and all(p(r) for p in preds)

        return matches

    def criterion(self, crit: Criterion) -> Predicate:
        if crit.kind == "id":
            ids = {v.code for v in crit.values if isinstance(v, TokenValue)}
            return lambda r: r.id in ids
        if crit.kind == "lastUpdated":
            dates = [v for v in crit.values if isinstance(v, DateValue)]
            now = self.now_us
            return lambda r: any(
                date_matches(v.prefix, v.low, v.high, r.last_updated, r.last_updated, now) for v in dates
            )
        if crit.kind == "has":
            return self._has(crit)
        if crit.chain is not None:
            return self._chain(crit)
        return self._indexed(crit)

    def _has(self, crit: Criterion) -> Predicate:
        inner, has_type, has_param = crit.chain, crit.has_type, crit.has_param
        assert inner is not None and has_type and has_param
        pred = self.criterion(inner)
        # (target type, target id) referenced through has_param by matching live has_type resources
        targets: set[tuple[str | None, str | None]] = set()
        for h in self.live(has_type):
            rows = h.rows("reference", has_param)
            if rows and self.allowed(h) and pred(h):
                targets.update((row[0], row[1]) for row in rows)
        return lambda r: (r.resource_type, r.id) in targets

    def _chain(self, crit: Criterion) -> Predicate:
        inner, target = crit.chain, crit.chain_target
        assert inner is not None and target is not None
        pred = self.criterion(inner)
        matching = {h.id for h in self.live(target) if self.allowed(h) and pred(h)}
        any_type = crit.resource_type == "Resource"

        def chained(r: _Resource) -> bool:
            if not any_type and r.resource_type != crit.resource_type:
                return False
            return any(row[0] == target and row[1] in matching for row in r.rows("reference", crit.param))

        return chained

    def _indexed(self, crit: Criterion) -> Predicate:
        if crit.kind not in _KIND_FIELD:
            raise TypeError(f"unexpected criterion kind {crit.kind!r}")
        kind, param, now = crit.kind, crit.param, self.now_us
        any_type = crit.resource_type == "Resource"

        def rows_of(r: _Resource) -> list[Row]:
            if not any_type and r.resource_type != crit.resource_type:
                return []
            return r.rows(kind, param)

        if crit.modifier == "missing":
            missing = bool(crit.missing)
            return lambda r: (not rows_of(r)) == missing
        values = crit.values

        def found(r: _Resource) -> bool:
            return any(_value_matches(crit, v, row, now) for row in rows_of(r) for v in values)

        if crit.negate:
            return lambda r: not found(r)
        return found


# --------------------------------------------------------------------------------------------
# Sorting and keyset paging
# --------------------------------------------------------------------------------------------


def _sort_value(r: _Resource, key: SortKey) -> Any:
    """``sql._sort_expr``: MIN (ascending) or MAX (descending) of the param's values, or a sentinel."""
    if key.kind == "id":
        return r.id
    if key.kind == "lastUpdated":
        return r.last_updated
    if key.kind == "geo" and key.near is not None:
        point = key.near.point
        distances = [_chord2(row, point) for row in r.rows("geo", key.param)]
        return min(distances) if distances else _NUM_MAX
    pick = max if key.descending else min
    if key.kind == "date":
        col = 1 if key.descending else 0
        sentinel: Any = DATE_MIN if key.descending else DATE_MAX
    elif key.kind in ("string", "token", "uri", "reference"):
        col = {"string": 0, "token": 1, "uri": 0, "reference": 1}[key.kind]
        sentinel = "" if key.descending else _STRING_MAX
    else:  # number, quantity
        col = 0
        sentinel = -_NUM_MAX if key.descending else _NUM_MAX
    values = [row[col] for row in r.rows(key.kind, key.param) if row[col] is not None]
    return pick(values) if values else sentinel


def _compare(a: Sequence[Any], b: Sequence[Any], descs: Sequence[bool]) -> int:
    """Order of two key tuples (sort values then rid), each column ascending or descending."""
    for x, y, desc in zip(a, b, descs, strict=True):
        if x == y:
            continue
        before = x < y
        return (1 if before else -1) if desc else (-1 if before else 1)
    return 0


# --------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------


class _Overlay(Mapping[ResourceKey, _Resource]):
    """The committed resources with a transaction's staged versions on top."""

    def __init__(
        self,
        base: Mapping[ResourceKey, _Resource],
        staged: Mapping[ResourceKey, _Resource],
        erased: set[ResourceKey] | None = None,
    ) -> None:
        self.base = base
        self.staged = staged
        self.erased = erased if erased is not None else set()  # expunged by the transaction

    def __getitem__(self, key: ResourceKey) -> _Resource:
        found = self.staged.get(key)
        if found is not None:
            return found
        if key in self.erased:
            raise KeyError(key)
        return self.base[key]

    def __iter__(self) -> Iterator[ResourceKey]:
        yield from self.staged
        yield from (k for k in self.base if k not in self.staged and k not in self.erased)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _MemoryTransaction:
    def __init__(self, store: MemoryResourceStore) -> None:
        self.store = store
        self.staged: dict[ResourceKey, _Resource] = {}
        self.versions: list[_Version] = []
        self.next_rid = store._next_rid
        self.next_hid = store._next_hid
        self.erased: set[ResourceKey] = set()
        self.view = _Overlay(store._resources, self.staged, self.erased)

    async def read_for_update(self, resource_type: str, id: str) -> StoredResource | None:
        found = self.view.get((resource_type, id))
        return found.stored() if found is not None else None

    async def write(self, op: WriteOp) -> None:
        key = (op.resource_type, op.id)
        existing = self.view.get(key)
        if existing is not None:
            if existing.version != op.version - 1:
                raise Conflict(
                    f"{op.resource_type}/{op.id} changed concurrently (version {existing.version} is current)"
                )
            rid = existing.rid
        else:
            if op.version != 1:
                raise Conflict(f"{op.resource_type}/{op.id} does not exist at version {op.version - 1}")
            rid = self.next_rid
            self.next_rid += 1
        index = _group(op.index) if op.index is not None and not op.deleted else {}
        self.staged[key] = _Resource(
            rid,
            op.resource_type,
            op.id,
            op.version,
            op.last_updated,
            op.deleted,
            op.patient,
            op.content,
            index,
        )
        self.versions.append(
            _Version(
                self.next_hid,
                rid,
                op.resource_type,
                op.id,
                op.version,
                op.last_updated,
                op.deleted,
                op.method,
                op.patient,
                op.content,
            )
        )
        self.next_hid += 1

    async def search_keys(self, query: SearchQuery, limit: int) -> list[ResourceKey]:
        return self.store._keys(self.view, query, limit, time.time_ns() // 1000)

    def _versions_of(self, key: ResourceKey) -> list[_Version]:
        """The versions of one resource this transaction sees (none once it expunged it)."""
        committed = (
            [] if key in self.erased else [v for v in self.store._history if (v.resource_type, v.id) == key]
        )
        return committed + [v for v in self.versions if (v.resource_type, v.id) == key]

    async def expunge(self, resource_type: str, id: str) -> list[StoredResource]:
        key = (resource_type, id)
        erased = sorted(self._versions_of(key), key=lambda v: v.version)
        self.staged.pop(key, None)
        self.versions = [v for v in self.versions if (v.resource_type, v.id) != key]
        self.erased.add(key)
        return [v.stored() for v in erased]

    async def naming(self, resource_type: str, texts: Sequence[str]) -> set[str]:
        needles = {text: text.encode() for text in texts}
        # committed versions of what this transaction did not expunge, then its own new versions
        contents = [
            v.content
            for v in self.store._history
            if v.resource_type == resource_type and (v.resource_type, v.id) not in self.erased
        ] + [v.content for v in self.versions if v.resource_type == resource_type]
        return {text for text, needle in needles.items() if any(needle in c for c in contents)}


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class MemoryResourceStore:
    """ResourceStore held in dicts: the unit-test twin of the SQLite and PostgreSQL stores."""

    def __init__(self) -> None:
        self._resources: dict[ResourceKey, _Resource] = {}
        self._by_rid: dict[int, ResourceKey] = {}
        self._history: list[_Version] = []  # in hid order
        self._versions: dict[tuple[str, str, int], _Version] = {}
        self._next_rid = 1
        self._next_hid = 1
        self._lock = asyncio.Lock()
        self._closed = False

    # -- reads ---------------------------------------------------------------------------------

    async def read(self, resource_type: str, id: str) -> StoredResource | None:
        found = self._resources.get((resource_type, id))
        return found.stored() if found is not None else None

    async def vread(self, resource_type: str, id: str, version: int) -> StoredResource | None:
        found = self._versions.get((resource_type, id, version))
        return found.stored() if found is not None else None

    async def read_many(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        out: list[StoredResource] = []
        seen: set[ResourceKey] = set()
        for key in keys:
            found = self._resources.get(key)
            if found is not None and not found.deleted and key not in seen:
                seen.add(key)
                out.append(found.stored())
        return out

    # -- search --------------------------------------------------------------------------------

    def _snapshot(self) -> int:
        return max(self._by_rid, default=0)

    def _matching(
        self, view: Mapping[ResourceKey, _Resource], query: SearchQuery, now_us: int
    ) -> Iterable[_Resource]:
        pred = _Evaluator(view, now_us, query.restriction).query(query)
        return (r for r in view.values() if pred(r))

    def _keys(
        self, view: Mapping[ResourceKey, _Resource], query: SearchQuery, limit: int, now_us: int
    ) -> list[ResourceKey]:
        found = sorted(self._matching(view, query, now_us), key=lambda r: r.rid)
        return [(r.resource_type, r.id) for r in found[: max(limit, 0)]]

    async def search(self, query: SearchQuery, *, now_us: int) -> SearchPage:
        cursor = sql.decode_cursor(query.cursor) if query.cursor else None
        forward = cursor.forward if cursor else True
        keys = list(query.sort)
        # the column directions of this page's order (reversed when paging backwards)
        descs = [k.descending != (not forward) for k in keys] + [not forward]
        rows: list[tuple[Any, ...]] = []
        for r in self._matching(self._resources, query, now_us):
            if cursor is not None and r.rid > cursor.snapshot:
                continue
            sort_values = tuple(_sort_value(r, k) for k in keys)
            rows.append(
                (
                    r.rid,
                    r.resource_type,
                    r.id,
                    r.version,
                    r.last_updated,
                    r.deleted,
                    r.content,
                    r.patient,
                    *sort_values,
                )
            )
        nkeys = len(keys)

        def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
            return (*row[sql.SORT_OFFSET : sql.SORT_OFFSET + nkeys], row[0])

        def order(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
            return _compare(key_of(a), key_of(b), descs)

        try:
            if cursor is not None:
                if len(cursor.keys) != nkeys + 1:
                    raise InvalidRequest("paging cursor does not match the sort order", expression="_cursor")
                rows = [row for row in rows if _compare(key_of(row), cursor.keys, descs) > 0]
            rows.sort(key=cmp_to_key(order))
        except TypeError as exc:  # cursor values of another type than the sort keys
            raise InvalidRequest("invalid or expired paging cursor", expression="_cursor") from exc
        rows = rows[: query.count + 1]
        return sql.page_from_rows(rows, query, cursor, nkeys, self._snapshot, _stored_from_row)

    async def count(self, query: SearchQuery, *, now_us: int) -> int:
        cursor = sql.decode_cursor(query.cursor) if query.cursor else None
        snapshot = cursor.snapshot if cursor else None
        return sum(
            1 for r in self._matching(self._resources, query, now_us) if snapshot is None or r.rid <= snapshot
        )

    async def lastn(
        self, query: SearchQuery, *, group: str, by: str, per_group: int, now_us: int
    ) -> list[StoredResource]:
        """``sql.compile_lastn``'s twin: the group is the smallest ``system|code`` of the
        resource's ``group`` tokens, the date its latest ``by`` instant, newest (then newest rid)
        first, ``per_group`` kept per group, groups in code order."""
        latest = SortKey(query.resource_type or "Resource", by, "date", True)
        groups: dict[str, list[tuple[int, int, _Resource]]] = {}
        for r in self._matching(self._resources, query, now_us):
            codes = [f"{row[0] or ''}|{row[1]}" for row in r.rows("token", group) if row[1] is not None]
            if codes:
                groups.setdefault(min(codes), []).append((_sort_value(r, latest), r.rid, r))
        out: list[StoredResource] = []
        for key in sorted(groups):
            ranked = sorted(groups[key], key=lambda item: (item[0], item[1]), reverse=True)
            out.extend(r.stored() for _, _, r in ranked[:per_group])
        return out

    async def references_from(
        self, rids: Sequence[int], source_type: str, param: str, target_type: str | None
    ) -> list[ResourceKey]:
        out: list[ResourceKey] = []
        seen: set[ResourceKey] = set()
        for rid in rids:
            key = self._by_rid.get(rid)
            if key is None or key[0] != source_type:
                continue
            for row in self._resources[key].rows("reference", param):
                rtype, rid_ = row[0], row[1]
                if rtype and rid_ is not None and (not target_type or rtype == target_type):
                    found = (rtype, rid_)
                    if found not in seen:
                        seen.add(found)
                        out.append(found)
        return out

    async def targets_of(self, rids: Sequence[int]) -> list[ResourceKey]:
        wanted = set(rids)
        out: set[ResourceKey] = set()
        for r in self._resources.values():
            if r.rid in wanted and not r.deleted:
                for rows in r.index.get("reference", {}).values():
                    out.update((row[0], row[1]) for row in rows if row[0] and row[1])
        return sorted(out)

    async def referencing(
        self, keys: Sequence[ResourceKey], source_type: str, param: str, limit: int
    ) -> list[StoredResource]:
        wanted = set(keys)
        found = [
            r
            for r in self._resources.values()
            if r.resource_type == source_type
            and not r.deleted
            and any((row[0], row[1]) in wanted for row in r.rows("reference", param))
        ]
        found.sort(key=lambda r: r.rid)
        return [r.stored() for r in found[: max(limit, 0)]]

    async def compartment(
        self, patient_id: str, types: Sequence[str] | None, since_us: int | None, after_rid: int, limit: int
    ) -> list[StoredResource]:
        params_of = {
            rtype: params
            for rtype, params in compartment_definition().items()
            if types is None or rtype in types
        }

        def member(r: _Resource) -> bool:
            if r.resource_type == "Patient" and r.id == patient_id:
                return True
            params = params_of.get(r.resource_type, ())
            return any(
                row[0] == "Patient" and row[1] == patient_id
                for param in params
                for row in r.rows("reference", param)
            )

        found = [
            r
            for r in self._resources.values()
            if not r.deleted
            and r.rid > after_rid
            and (types is None or r.resource_type in types)
            and (since_us is None or r.last_updated >= since_us)
            and member(r)
        ]
        found.sort(key=lambda r: r.rid)
        return [r.stored() for r in found[: max(limit, 0)]]

    async def filed_in(self, patient_id: str) -> list[StoredResource]:
        keys = {(v.resource_type, v.id) for v in self._history if v.patient == patient_id}
        keys.update(k for k, r in self._resources.items() if r.patient == patient_id)
        found = [self._resources[k] for k in keys if k in self._resources]
        return [r.stored() for r in sorted(found, key=lambda r: r.rid)]

    async def referrers(self, keys: Sequence[ResourceKey]) -> list[StoredResource]:
        wanted = set(keys)
        found = [
            r
            for r in self._resources.values()
            if not r.deleted
            and any(
                (row[0], row[1]) in wanted for rows in r.index.get("reference", {}).values() for row in rows
            )
        ]
        return [r.stored() for r in sorted(found, key=lambda r: r.rid)]

    async def relations(
        self, patient: str, actors: Sequence[str], *, now_us: int
    ) -> list[tuple[str, str | None, int | None]]:
        wanted = {*actors, "*"}
        out: list[tuple[str, str | None, int | None]] = []
        for resource in self._resources.values():
            if resource.deleted:
                continue
            for kind, rows in resource.index.get("relation", {}).items():
                for rel_patient, actor, categories, expires in rows:
                    if rel_patient == patient and actor in wanted and (expires is None or expires > now_us):
                        out.append((kind, categories, expires))
        return out

    async def history(
        self,
        resource_type: str | None,
        id: str | None,
        *,
        since_us: int | None,
        count: int,
        cursor: str | None,
    ) -> HistoryPage:
        before: int | None = None
        if cursor is not None:
            try:
                before = int(cursor)
            except ValueError as exc:
                raise InvalidRequest("invalid history cursor", expression="_cursor") from exc
        rows: list[tuple[Any, ...]] = []
        limit = count + 1
        for v in reversed(self._history):
            if len(rows) >= limit:
                break
            if (
                (resource_type is not None and v.resource_type != resource_type)
                or (id is not None and v.id != id)
                or (since_us is not None and v.last_updated < since_us)
                or (before is not None and v.hid >= before)
            ):
                continue
            rows.append(
                (v.hid, v.resource_type, v.id, v.version, v.last_updated, v.deleted, v.content, v.method)
            )
        # as in the SQL stores, a history entry's ``rid`` is its ``hid``
        return sql.history_page(rows, count, cursor)

    # -- writes --------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        if self._closed:
            raise RuntimeError("the memory store is closed")
        async with self._lock:
            tx = _MemoryTransaction(self)
            yield tx  # an exception here discards everything staged
            self._apply(tx)

    def _apply(self, tx: _MemoryTransaction) -> None:
        if tx.erased:
            for key in tx.erased:
                gone = self._resources.pop(key, None)
                if gone is not None:
                    self._by_rid.pop(gone.rid, None)
            self._history = [v for v in self._history if (v.resource_type, v.id) not in tx.erased]
            self._versions = {k: v for k, v in self._versions.items() if (k[0], k[1]) not in tx.erased}
        for key, resource in tx.staged.items():
            self._resources[key] = resource
            self._by_rid[resource.rid] = key
        for v in tx.versions:
            self._history.append(v)
            self._versions[(v.resource_type, v.id, v.version)] = v
        self._next_rid = tx.next_rid
        self._next_hid = tx.next_hid

    async def close(self) -> None:
        self._closed = True


def _stored_from_row(r: Sequence[Any]) -> StoredResource:
    return sql.stored_from_row(r)
