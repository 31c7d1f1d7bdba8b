"""SQL shared by the SQLite and PostgreSQL resource stores: the schema and the search compiler.

Tables (one row per resource in ``resources``, every version in ``history``, typed search
index tables keyed by the resource's internal ``rid``)::

    resources(rid, res_type, res_id, version, last_updated, deleted, patient, content)
    history(hid, rid, res_type, res_id, version, last_updated, deleted, method, patient, content)
    idx_token(rid, res_type, param, system, code, text)
    idx_string(rid, res_type, param, norm, exact)
    idx_date(rid, res_type, param, low, high)
    idx_reference(rid, res_type, param, target_type, target_id, url)
    idx_quantity(rid, res_type, param, value, system, code, unit, cvalue, ccode)
    idx_number(rid, res_type, param, value)
    idx_uri(rid, res_type, param, value)
    idx_composite(rid, res_type, param, system1, code1, system2, code2, number2, low2, high2, string2)
    idx_relation(rid, res_type, param, patient, actor, categories, expires)   -- access relations (ADR 0007)
    idx_geo(rid, res_type, param, lat, lng, x, y, z)   -- Location.position (near), migration 0005

``patient`` is the partition key (the first patient compartment of the resource). ``rid`` grows
with each new resource: it orders results by default and bounds paging snapshots.

The compiler turns a :class:`~hygie.fhir.search.SearchQuery` into one SELECT with keyset paging.
A ``near`` criterion is a latitude range and one or two longitude ranges on ``idx_geo (res_type,
param, lat, lng)``, then the exact test on the squared chord between unit-sphere points; its
sort key is that squared chord (nearest first), plain arithmetic in both dialects.
Placeholders are produced by a :class:`Params` object, ``?`` for SQLite and ``$n`` for asyncpg.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from hygie.fhir.definitions import compartment_definition
from hygie.fhir.index_model import DATE_MAX, DATE_MIN, IndexEntries
from hygie.fhir.outcome import InvalidRequest
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
)
from hygie.ports import HistoryPage, SearchPage, StoredResource, WriteOp
from hygie.stores.restriction import restriction_sql

if TYPE_CHECKING:
    from hygie.domain.policy import SearchRestriction

__all__ = [
    "INDEX_TABLES",
    "Cursor",
    "Params",
    "compile_count",
    "compile_search",
    "decode_cursor",
    "encode_cursor",
    "geo_schema_statements",
    "index_rows",
    "schema_statements",
]

# table -> column names after (rid, res_type)
INDEX_TABLES: dict[str, tuple[str, ...]] = {
    "idx_token": ("param", "system", "code", "text"),
    "idx_string": ("param", "norm", "exact"),
    "idx_date": ("param", "low", "high"),
    "idx_reference": ("param", "target_type", "target_id", "url"),
    "idx_quantity": ("param", "value", "system", "code", "unit", "cvalue", "ccode"),
    "idx_number": ("param", "value"),
    "idx_uri": ("param", "value"),
    "idx_composite": ("param", "system1", "code1", "system2", "code2", "number2", "low2", "high2", "string2"),
    "idx_relation": ("param", "patient", "actor", "categories", "expires"),
    "idx_geo": ("param", "lat", "lng", "x", "y", "z"),
}

_ENTRY_FIELD = {
    "idx_token": "tokens",
    "idx_string": "strings",
    "idx_date": "dates",
    "idx_reference": "references",
    "idx_quantity": "quantities",
    "idx_number": "numbers",
    "idx_uri": "uris",
    "idx_composite": "composites",
    "idx_relation": "relations",
    "idx_geo": "geo",
}

_KIND_TABLE = {
    "token": "idx_token",
    "string": "idx_string",
    "date": "idx_date",
    "reference": "idx_reference",
    "quantity": "idx_quantity",
    "number": "idx_number",
    "uri": "idx_uri",
    "composite": "idx_composite",
    "geo": "idx_geo",
}

_STRING_MAX = "\U0010ffff"
_NUM_MAX = 1e308


HISTORY_INSERT_COLUMNS = "rid, res_type, res_id, version, last_updated, deleted, method, patient, content"


def history_values(rid: int, op: WriteOp) -> tuple[Any, ...]:
    """The ``history`` row of one written version, in HISTORY_INSERT_COLUMNS order."""
    return (
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


def index_rows(rid: int, resource_type: str, entries: IndexEntries) -> dict[str, list[tuple[Any, ...]]]:
    """The rows to insert in each index table for one resource."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, attr in _ENTRY_FIELD.items():
        rows = getattr(entries, attr)
        if rows:
            out[table] = [(rid, resource_type, *row) for row in rows]
    return out


def schema_statements(dialect: str) -> list[str]:
    """DDL creating the whole schema (used by the first Alembic migration)."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    blob = "BYTEA" if pg else "BLOB"
    boolean = "BOOLEAN" if pg else "INTEGER"
    rid = "BIGSERIAL PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    big = "BIGINT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    return [
        f"""CREATE TABLE resources (
            rid {rid},
            res_type {text} NOT NULL,
            res_id {text} NOT NULL,
            version INTEGER NOT NULL,
            last_updated {big} NOT NULL,
            deleted {boolean} NOT NULL,
            patient {text},
            content {blob} NOT NULL,
            UNIQUE (res_type, res_id)
        )""",
        "CREATE INDEX resources_patient ON resources (patient, res_type)",
        "CREATE INDEX resources_type_updated ON resources (res_type, last_updated)",
        f"""CREATE TABLE history (
            hid {rid},
            rid {big} NOT NULL,
            res_type {text} NOT NULL,
            res_id {text} NOT NULL,
            version INTEGER NOT NULL,
            last_updated {big} NOT NULL,
            deleted {boolean} NOT NULL,
            method {text} NOT NULL,
            patient {text},
            content {blob} NOT NULL,
            UNIQUE (res_type, res_id, version)
        )""",
        "CREATE INDEX history_type ON history (res_type, hid)",
        "CREATE INDEX history_updated ON history (last_updated)",
        f"""CREATE TABLE idx_token (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            system {text}, code {text}, text {text})""",
        "CREATE INDEX idx_token_value ON idx_token (res_type, param, code, system)",
        "CREATE INDEX idx_token_rid ON idx_token (rid, param)",
        f"""CREATE TABLE idx_string (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            norm {text} NOT NULL, exact {text} NOT NULL)""",
        "CREATE INDEX idx_string_value ON idx_string (res_type, param, norm)",
        "CREATE INDEX idx_string_rid ON idx_string (rid, param)",
        f"""CREATE TABLE idx_date (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            low {big} NOT NULL, high {big} NOT NULL)""",
        "CREATE INDEX idx_date_value ON idx_date (res_type, param, low, high)",
        "CREATE INDEX idx_date_rid ON idx_date (rid, param)",
        f"""CREATE TABLE idx_reference (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            target_type {text}, target_id {text}, url {text})""",
        "CREATE INDEX idx_reference_target ON idx_reference (target_id, target_type, res_type, param)",
        "CREATE INDEX idx_reference_url ON idx_reference (url)",
        "CREATE INDEX idx_reference_rid ON idx_reference (rid, param)",
        f"""CREATE TABLE idx_quantity (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            value {real} NOT NULL, system {text}, code {text}, unit {text}, cvalue {real}, ccode {text})""",
        "CREATE INDEX idx_quantity_value ON idx_quantity (res_type, param, value)",
        "CREATE INDEX idx_quantity_rid ON idx_quantity (rid, param)",
        f"""CREATE TABLE idx_number (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            value {real} NOT NULL)""",
        "CREATE INDEX idx_number_value ON idx_number (res_type, param, value)",
        "CREATE INDEX idx_number_rid ON idx_number (rid, param)",
        f"""CREATE TABLE idx_uri (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            value {text} NOT NULL)""",
        "CREATE INDEX idx_uri_value ON idx_uri (res_type, param, value)",
        "CREATE INDEX idx_uri_rid ON idx_uri (rid, param)",
        f"""CREATE TABLE idx_composite (rid {big} NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            system1 {text}, code1 {text}, system2 {text}, code2 {text}, number2 {real}, low2 {big}, high2 {big},
            string2 {text})""",
        "CREATE INDEX idx_composite_value ON idx_composite (res_type, param, code1)",
        "CREATE INDEX idx_composite_rid ON idx_composite (rid, param)",
    ]


# every table of the resource store and its derived indexes (tests empty them between runs)
STORE_TABLES: tuple[str, ...] = ("resources", "history", *INDEX_TABLES)


def relation_schema_statements(dialect: str) -> list[str]:
    """The access-relations index (ADR 0007), added by migration 0003."""
    text = 'TEXT COLLATE "C"' if dialect == "postgresql" else "TEXT"
    return [
        f"""CREATE TABLE idx_relation (rid BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            patient {text} NOT NULL, actor {text} NOT NULL, categories {text}, expires BIGINT)""",
        "CREATE INDEX idx_relation_actor ON idx_relation (actor, param, patient)",
        "CREATE INDEX idx_relation_patient ON idx_relation (patient, param)",
        "CREATE INDEX idx_relation_rid ON idx_relation (rid)",
    ]


def geo_schema_statements(dialect: str) -> list[str]:
    """The geographic index (``Location.near``), added by migration 0005."""
    pg = dialect == "postgresql"
    text = 'TEXT COLLATE "C"' if pg else "TEXT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    return [
        f"""CREATE TABLE IF NOT EXISTS idx_geo (rid BIGINT NOT NULL, res_type {text} NOT NULL, param {text} NOT NULL,
            lat {real} NOT NULL, lng {real} NOT NULL, x {real} NOT NULL, y {real} NOT NULL, z {real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS idx_geo_box ON idx_geo (res_type, param, lat, lng)",
        "CREATE INDEX IF NOT EXISTS idx_geo_rid ON idx_geo (rid, param)",
    ]


class Params:
    """Collects query arguments and renders placeholders for the dialect."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.args: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.args.append(value)
        # numbered placeholders in both dialects: the text may be built in any order
        return f"${len(self.args)}" if self.pg else f"?{len(self.args)}"

    def false(self) -> str:
        return "FALSE" if self.pg else "0"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _type_filter(p: Params, table_alias: str, resource_type: str) -> str:
    if resource_type == "Resource":
        return "TRUE" if p.pg else "1"
    return f"{table_alias}.res_type = {p(resource_type)}"


def _token_cond(p: Params, v: TokenValue, alias: str, modifier: str | None) -> str:
    if modifier == "text":
        return f"{alias}.text LIKE {p('%' + _like_escape(v.text or '') + '%')} ESCAPE '\\'"
    if modifier == "of-type":
        return (
            f"({alias}.system = {p(v.system)} AND {alias}.code = {p(v.code)} AND {alias}.text = {p(v.text)})"
        )
    parts = []
    if v.no_system:
        parts.append(f"{alias}.system IS NULL")
    elif v.system is not None:
        parts.append(f"{alias}.system = {p(v.system)}")
    if v.code is not None:
        parts.append(f"{alias}.code = {p(v.code)}")
    return "(" + " AND ".join(parts) + ")"


def _range_cond(p: Params, prefix: Prefix, lo_col: str, hi_col: str, qlo: int, qhi: int, now_us: int) -> str:
    """Date semantics of R4 search (see fhir.search.date_matches)."""
    if prefix == "eq":
        return f"({lo_col} >= {p(qlo)} AND {hi_col} <= {p(qhi)})"
    if prefix == "ne":
        return f"NOT ({lo_col} >= {p(qlo)} AND {hi_col} <= {p(qhi)})"
    if prefix == "gt":
        return f"{hi_col} > {p(qhi)}"
    if prefix == "lt":
        return f"{lo_col} < {p(qlo)}"
    if prefix == "ge":
        return f"({hi_col} > {p(qhi)} OR ({lo_col} >= {p(qlo)} AND {hi_col} <= {p(qhi)}))"
    if prefix == "le":
        return f"({lo_col} < {p(qlo)} OR ({lo_col} >= {p(qlo)} AND {hi_col} <= {p(qhi)}))"
    if prefix == "sa":
        return f"{lo_col} > {p(qhi)}"
    if prefix == "eb":
        return f"{hi_col} < {p(qlo)}"
    gap = abs(now_us - (qlo + qhi) // 2) // 10
    return f"({lo_col} <= {p(min(qhi + gap, DATE_MAX))} AND {hi_col} >= {p(max(qlo - gap, DATE_MIN))})"


def _number_cond(p: Params, prefix: Prefix, col: str, value: float, low: float, high: float) -> str:
    # the implicit range [low, high) of the value's precision; floats can collapse it to a point
    if prefix == "eq":
        return f"(({col} >= {p(low)} AND {col} < {p(high)}) OR {col} = {p(value)})"
    if prefix == "ne":
        return f"NOT (({col} >= {p(low)} AND {col} < {p(high)}) OR {col} = {p(value)})"
    if prefix in ("gt", "sa"):
        return f"{col} > {p(value)}"
    if prefix in ("lt", "eb"):
        return f"{col} < {p(value)}"
    if prefix == "ge":
        return f"{col} >= {p(value)}"
    if prefix == "le":
        return f"{col} <= {p(value)}"
    delta = abs(value) * 0.1
    return f"({col} >= {p(value - delta)} AND {col} <= {p(value + delta)})"


def _quantity_cond(p: Params, v: QuantityValue, alias: str) -> str:
    direct = _number_cond(p, v.prefix, f"{alias}.value", v.value, v.low, v.high)
    unit = []
    if v.system is not None:
        unit.append(f"{alias}.system = {p(v.system)}")
    if v.code is not None:
        unit.append(f"({alias}.code = {p(v.code)} OR {alias}.unit = {p(v.code)})")
    plain = "(" + " AND ".join([direct, *unit]) + ")"
    if v.canonical is None:
        return plain
    clo, chi, ccode = v.canonical
    mid = (clo + chi) / 2
    canonical = _number_cond(p, v.prefix, f"{alias}.cvalue", mid, clo, chi)
    return f"({plain} OR ({alias}.ccode = {p(ccode)} AND {canonical}))"


def _reference_cond(p: Params, v: ReferenceValue, alias: str) -> str:
    if v.target_id is not None and v.target_type is not None:
        # a canonical written "Type/id" is indexed as a URL: match it too
        url = v.url or f"{v.target_type}/{v.target_id}"
        return (
            f"(({alias}.target_type = {p(v.target_type)} AND {alias}.target_id = {p(v.target_id)}) "
            f"OR {alias}.url = {p(url)})"
        )
    if v.target_id is not None:
        return f"{alias}.target_id = {p(v.target_id)}"
    return f"{alias}.url = {p(v.url)}"


def _composite_cond(p: Params, v: CompositeValue, alias: str, now_us: int) -> str:
    first = v.first
    parts = []
    if first.no_system:
        parts.append(f"{alias}.system1 IS NULL")
    elif first.system is not None:
        parts.append(f"{alias}.system1 = {p(first.system)}")
    if first.code is not None:
        parts.append(f"{alias}.code1 = {p(first.code)}")
    second = v.second
    if isinstance(second, TokenValue):
        if second.no_system:
            parts.append(f"{alias}.system2 IS NULL")
        elif second.system is not None:
            parts.append(f"{alias}.system2 = {p(second.system)}")
        if second.code is not None:
            parts.append(f"{alias}.code2 = {p(second.code)}")
    elif isinstance(second, QuantityValue):
        parts.append(
            _number_cond(p, second.prefix, f"{alias}.number2", second.value, second.low, second.high)
        )
        if second.system is not None:
            parts.append(f"{alias}.system2 = {p(second.system)}")
        if second.code is not None:
            parts.append(f"{alias}.code2 = {p(second.code)}")
    elif isinstance(second, DateValue):
        parts.append(
            _range_cond(p, second.prefix, f"{alias}.low2", f"{alias}.high2", second.low, second.high, now_us)
        )
    else:
        parts.append(f"{alias}.string2 LIKE {p(_like_escape(second.norm) + '%')} ESCAPE '\\'")
    return "(" + " AND ".join(parts) + ")"


def _chord2_expr(p: Params, point: tuple[float, float, float], alias: str) -> str:
    """The squared chord between the row's unit-sphere point and ``point`` (domain/geo.py)."""
    x, y, z = (p(c) for c in point)  # numbered placeholders: each is bound once, used twice
    return (
        f"(({alias}.x - {x}) * ({alias}.x - {x}) + ({alias}.y - {y}) * ({alias}.y - {y}) "
        f"+ ({alias}.z - {z}) * ({alias}.z - {z}))"
    )


def _near_cond(p: Params, v: NearValue, alias: str) -> str:
    """Within the box (the index narrows), then within the distance (exact)."""
    box = v.box
    lngs = [f"{alias}.lng BETWEEN {p(lo)} AND {p(hi)}" for lo, hi in box.lng_ranges]
    lng = lngs[0] if len(lngs) == 1 else "(" + " OR ".join(lngs) + ")"
    return (
        f"({alias}.lat BETWEEN {p(box.lat_low)} AND {p(box.lat_high)} AND {lng} "
        f"AND {_chord2_expr(p, v.point, alias)} <= {p(v.max_chord2)})"
    )


def _value_cond(p: Params, crit: Criterion, v: Any, alias: str, now_us: int) -> str:
    if isinstance(v, TokenValue):
        return _token_cond(p, v, alias, crit.modifier)
    if isinstance(v, StringValue):
        if crit.modifier == "exact":
            return f"{alias}.exact = {p(v.exact)}"
        if crit.modifier == "contains":
            return f"{alias}.norm LIKE {p('%' + _like_escape(v.norm) + '%')} ESCAPE '\\'"
        return f"{alias}.norm LIKE {p(_like_escape(v.norm) + '%')} ESCAPE '\\'"
    if isinstance(v, DateValue):
        return _range_cond(p, v.prefix, f"{alias}.low", f"{alias}.high", v.low, v.high, now_us)
    if isinstance(v, NumberValue):
        return _number_cond(p, v.prefix, f"{alias}.value", v.value, v.low, v.high)
    if isinstance(v, QuantityValue):
        return _quantity_cond(p, v, alias)
    if isinstance(v, ReferenceValue):
        return _reference_cond(p, v, alias)
    if isinstance(v, UriValue):
        # prefix tests by substring, not LIKE: case-sensitive on both databases, no wildcards
        if crit.modifier == "below":
            searched = p(v.value)
            return f"substr({alias}.value, 1, length({searched})) = {searched}"
        if crit.modifier == "above":
            # the stored uri is a prefix of the searched one
            searched = p(v.value)
            return f"substr({searched}, 1, length({alias}.value)) = {alias}.value"
        return f"{alias}.value = {p(v.value)}"
    if isinstance(v, CompositeValue):
        return _composite_cond(p, v, alias, now_us)
    if isinstance(v, NearValue):
        return _near_cond(p, v, alias)
    raise TypeError(f"unexpected search value {v!r}")


def criterion_sql(
    p: Params,
    crit: Criterion,
    alias: str,
    now_us: int,
    counter: list[int],
    restriction: SearchRestriction | None = None,
    *,
    driver: bool = True,
) -> str:
    """A boolean SQL condition on the resource row ``alias`` for one criterion.

    ``restriction`` (the access policy's) also applies to the resources a chain or ``_has``
    looks at, so that a criterion cannot reveal what the caller may not see.
    """
    counter[0] += 1
    sub = f"x{counter[0]}"
    if crit.kind == "id":
        ids = [v.code for v in crit.values if isinstance(v, TokenValue)]
        return f"{alias}.res_id IN ({', '.join(p(i) for i in ids)})"
    if crit.kind == "lastUpdated":
        conds = [
            _range_cond(p, v.prefix, f"{alias}.last_updated", f"{alias}.last_updated", v.low, v.high, now_us)
            for v in crit.values
            if isinstance(v, DateValue)
        ]
        return "(" + " OR ".join(conds) + ")"
    if crit.kind == "has":
        inner = crit.chain
        assert inner is not None and crit.has_type and crit.has_param
        h = f"h{counter[0]}"
        # the referenced type as a constant when it is known: the subquery is then evaluated once
        # (PostgreSQL hashes it) instead of once per candidate row, as a correlation forces
        target = p(crit.resource_type) if crit.resource_type != "Resource" else f"{alias}.res_type"
        head = (
            f"{alias}.res_id IN (SELECT {sub}.target_id FROM idx_reference {sub} "
            f"JOIN resources {h} ON {h}.rid = {sub}.rid "
            f"WHERE {sub}.res_type = {p(crit.has_type)} AND {sub}.param = {p(crit.has_param)} "
            f"AND {sub}.target_type = {target} AND {h}.deleted = {p.false()} AND "
        )
        inner_sql = criterion_sql(p, inner, h, now_us, counter, restriction)
        guard = restriction_sql(p, restriction, h, now_us) if restriction is not None else None
        return head + inner_sql + (f" AND {guard}" if guard else "") + ")"
    if crit.chain is not None:
        t = f"t{counter[0]}"
        head = (
            f"{alias}.rid IN (SELECT {sub}.rid FROM idx_reference {sub} "
            f"JOIN resources {t} ON {t}.res_type = {sub}.target_type AND {t}.res_id = {sub}.target_id "
            f"WHERE {_type_filter(p, sub, crit.resource_type)} AND {sub}.param = {p(crit.param)} "
            f"AND {sub}.target_type = {p(crit.chain_target)} AND {t}.deleted = {p.false()} AND "
        )
        inner_sql = criterion_sql(p, crit.chain, t, now_us, counter, restriction)
        guard = restriction_sql(p, restriction, t, now_us) if restriction is not None else None
        return head + inner_sql + (f" AND {guard}" if guard else "") + ")"
    table = _KIND_TABLE[crit.kind]
    where = f"{_type_filter(p, sub, crit.resource_type)} AND {sub}.param = {p(crit.param)}"
    cond: str | None = None
    if crit.modifier != "missing":
        ors = [_value_cond(p, crit, v, sub, now_us) for v in crit.values]
        cond = ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")"
    absent = crit.missing if cond is None else crit.negate
    if not driver:
        # a correlated probe through the (rid, param) index: never materialises a large value set
        # (e.g. every vital-sign observation) when another criterion already narrowed the rows
        probe = f"SELECT 1 FROM {table} {sub} WHERE {sub}.rid = {alias}.rid AND {where}"
        if cond is not None:
            probe += f" AND {cond}"
        return f"{'NOT ' if absent else ''}EXISTS ({probe})"
    base = f"SELECT {sub}.rid FROM {table} {sub} WHERE {where}"
    if cond is not None:
        base += f" AND {cond}"
    return f"{alias}.rid {'NOT IN' if absent else 'IN'} ({base})"


def _sort_expr(p: Params, key: SortKey, alias: str) -> str:
    if key.kind == "id":
        return f"{alias}.res_id"
    if key.kind == "lastUpdated":
        return f"{alias}.last_updated"
    if key.kind == "geo" and key.near is not None:
        # the distance to the searched point as a squared chord: nearest first, none last
        return (
            f"COALESCE((SELECT MIN({_chord2_expr(p, key.near.point, 's')}) FROM idx_geo s "
            f"WHERE s.rid = {alias}.rid AND s.param = {p(key.param)}), {p(_NUM_MAX)})"
        )
    agg = "MAX" if key.descending else "MIN"
    if key.kind == "date":
        col = "high" if key.descending else "low"
        sentinel = DATE_MIN if key.descending else DATE_MAX
    elif key.kind == "string":
        col, sentinel_s = "norm", ("" if key.descending else _STRING_MAX)
        return (
            f"COALESCE((SELECT {agg}(s.{col}) FROM idx_string s WHERE s.rid = {alias}.rid "
            f"AND s.param = {p(key.param)}), {p(sentinel_s)})"
        )
    elif key.kind in ("token", "uri", "reference"):
        table = _KIND_TABLE[key.kind]
        col = {"token": "code", "uri": "value", "reference": "target_id"}[key.kind]
        return (
            f"COALESCE((SELECT {agg}(s.{col}) FROM {table} s WHERE s.rid = {alias}.rid "
            f"AND s.param = {p(key.param)}), {p('' if key.descending else _STRING_MAX)})"
        )
    else:  # number, quantity
        col = "value"
        sentinel_f = -_NUM_MAX if key.descending else _NUM_MAX
        table = _KIND_TABLE[key.kind]
        return (
            f"COALESCE((SELECT {agg}(s.{col}) FROM {table} s WHERE s.rid = {alias}.rid "
            f"AND s.param = {p(key.param)}), {p(sentinel_f)})"
        )
    return (
        f"COALESCE((SELECT {agg}(s.{col}) FROM idx_date s WHERE s.rid = {alias}.rid "
        f"AND s.param = {p(key.param)}), {p(sentinel)})"
    )


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a result list: the sort values and rid of a boundary row."""

    snapshot: int  # only rows with rid <= snapshot belong to the result
    forward: bool  # True: rows after ``keys``; False: rows before (previous page)
    keys: tuple[Any, ...]  # sort values of the boundary row, then its rid
    offset: int = 0  # position of the first row of the page (for Bundle links only)


def encode_cursor(c: Cursor) -> str:
    raw = orjson.dumps({"s": c.snapshot, "f": c.forward, "k": list(c.keys), "o": c.offset})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
        return Cursor(int(data["s"]), bool(data["f"]), tuple(data["k"]), int(data.get("o", 0)))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(
            "invalid or expired paging cursor", code="invalid", expression="_cursor"
        ) from exc


def _selectivity(crit: Criterion) -> int:
    """How narrow a criterion usually is (higher: fewer rows), to pick the one that drives."""
    if crit.negate or crit.modifier == "missing" or crit.kind in ("has", "lastUpdated"):
        return 0
    if crit.kind == "id":
        return 100
    if crit.chain is not None:
        # a chain to nearby places (location.near) is as narrow as the box; other chains are wide
        return 65 if crit.chain.kind == "geo" and crit.chain.values else 10
    if crit.kind == "reference":
        return (
            90 if all(isinstance(v, ReferenceValue) and (v.target_id or v.url) for v in crit.values) else 10
        )
    if crit.kind == "token":
        specific = all(isinstance(v, TokenValue) and v.system and v.code for v in crit.values)
        return 60 if specific or crit.param.endswith((":identifier", "identifier")) else 30
    if crit.kind == "string":
        return 50 if crit.modifier == "exact" else 40
    if crit.kind == "geo":
        # a box of a few kilometres: a small part of the directory, narrower than "every doctor"
        return 65 if crit.values else 0
    if crit.kind in ("uri", "composite", "quantity", "number"):
        return 35
    return 20  # dates: usually wide ranges


def _driver(criteria: list[Criterion]) -> int | None:
    """The criterion that selects the candidate rows (an IN list); the others probe them."""
    best, best_score = None, 0
    for i, crit in enumerate(criteria):
        score = _selectivity(crit)
        if score > best_score:
            best, best_score = i, score
    return best


def _by_reference(crit: Criterion) -> bool:
    """Whether a driving criterion is a reference to given targets (``patient=…``): a short
    list of rows, narrower than any index of ``resources`` could give."""
    return crit.kind == "reference" and crit.chain is None and _selectivity(crit) >= 90


def _where(p: Params, query: SearchQuery, alias: str, now_us: int) -> str:
    conds = [f"{alias}.deleted = {p.false()}"]
    lead = _driver(query.criteria)
    # A reference to given targets drives: SQLite must start from its rows (``rid IN (…)``, a
    # rowid lookup each: a patient's few hundred) rather than walk every resource of the type
    # through ``resources_type_updated`` and test each against the list — for one patient's
    # weights on the demo data, 18,000 Observations walked, 270 searches/s instead of 930.
    # Without statistics its planner prefers the type index; a unary ``+`` makes the type a
    # plain filter. Not for other drivers: ``_id`` is looked up through (res_type, res_id), and
    # a token's list (every active Goal of the database) can be longer than the patient's
    # partition the restriction would start from. PostgreSQL plans from its statistics (and
    # has no unary ``+`` on text).
    driven = lead is not None and _by_reference(query.criteria[lead])
    if query.resource_type is not None:
        plain = "+" if driven and not p.pg else ""
        conds.append(f"{plain}{alias}.res_type = {p(query.resource_type)}")
    counter = [0]
    conds.extend(
        criterion_sql(p, c, alias, now_us, counter, query.restriction, driver=(i == lead))
        for i, c in enumerate(query.criteria)
    )
    if query.restriction is not None:
        restricted = restriction_sql(p, query.restriction, alias, now_us, driven=driven)
        if restricted:
            conds.append(restricted)
    return " AND ".join(conds)


RESOURCE_COLUMNS = "rid, res_type, res_id, version, last_updated, deleted, content, patient"
SORT_OFFSET = 8  # sort-key columns follow the resource columns in a search row


def stored_from_row(r: Sequence[Any]) -> StoredResource:
    """A StoredResource from a row of RESOURCE_COLUMNS (every store reads rows this way)."""
    return StoredResource(r[1], r[2], r[3], r[4], bool(r[5]), bytes(r[6]), r[0], patient=r[7])


def compile_search(
    dialect: str, query: SearchQuery, cursor: Cursor | None, limit: int, now_us: int
) -> tuple[str, list[Any], int]:
    """SELECT for one page; returns (sql, args, number of sort-key columns before rid)."""
    p = Params(dialect)
    keys = list(query.sort)
    sort_cols = [f"{_sort_expr(p, k, 'r')} AS k{i}" for i, k in enumerate(keys)]
    where = _where(p, query, "r", now_us)
    # order the matches by rid and sort keys only; the stored JSON is read for the page alone
    inner = f"SELECT r.rid{''.join(', ' + c for c in sort_cols)} FROM resources r WHERE {where}"
    outer_conds: list[str] = []
    forward = cursor.forward if cursor else True
    if cursor is not None:
        outer_conds.append(f"m.rid <= {p(cursor.snapshot)}")
        names = [f"m.k{i}" for i in range(len(keys))] + ["m.rid"]
        descs = [k.descending for k in keys] + [False]
        if len(cursor.keys) != len(names):
            raise InvalidRequest("paging cursor does not match the sort order", expression="_cursor")
        alternatives = []
        for i in range(len(names)):
            eqs = [f"{names[j]} = {p(cursor.keys[j])}" for j in range(i)]
            after = descs[i] != (not forward)  # descending xor backwards
            cmp = "<" if after else ">"
            alternatives.append("(" + " AND ".join([*eqs, f"{names[i]} {cmp} {p(cursor.keys[i])}"]) + ")")
        outer_conds.append("(" + " OR ".join(alternatives) + ")")
    order = []
    for i, k in enumerate(keys):
        desc = k.descending != (not forward)
        order.append(f"m.k{i} {'DESC' if desc else 'ASC'}")
    order.append(f"m.rid {'ASC' if forward else 'DESC'}")
    where_outer = (" WHERE " + " AND ".join(outer_conds)) if outer_conds else ""
    page = f"SELECT * FROM ({inner}) m{where_outer} ORDER BY {', '.join(order)} LIMIT {int(limit)}"
    key_cols = "".join(f", m.k{i}" for i in range(len(keys)))
    sql = (
        f"SELECT r.{RESOURCE_COLUMNS.replace(', ', ', r.')}{key_cols} FROM ({page}) m "
        f"JOIN resources r ON r.rid = m.rid ORDER BY {', '.join(order)}"
    )
    return sql, p.args, len(keys)


def compile_count(
    dialect: str, query: SearchQuery, snapshot: int | None, now_us: int
) -> tuple[str, list[Any]]:
    p = Params(dialect)
    where = _where(p, query, "r", now_us)
    if snapshot is not None:
        where += f" AND r.rid <= {p(snapshot)}"
    return f"SELECT COUNT(*) FROM resources r WHERE {where}", p.args


def compile_lastn(
    dialect: str, query: SearchQuery, group: str, by: str, per_group: int, now_us: int
) -> tuple[str, list[Any]]:
    """``$lastn``: the ``per_group`` newest matches of each group, in one SELECT.

    The matches are those of the search (its criteria and the access restriction, so that a
    refused row is never ranked); each gets its group — the smallest ``system|code`` of its
    ``group`` token rows, through the ``(rid, param)`` index — and its date — the latest instant
    of its ``by`` dates, as ``_sort=-date`` sorts — and ``ROW_NUMBER() OVER (PARTITION BY group
    ORDER BY date DESC, rid DESC)`` keeps the first ``per_group`` of each. Rows without a coded
    group are left out. The stored JSON is read for the kept rows only.
    """
    p = Params(dialect)
    collate = ' COLLATE "C"' if p.pg else ""
    where = _where(p, query, "r", now_us)
    grp = (
        f"(SELECT MIN(COALESCE(g.system, '') || '|' || g.code) FROM idx_token g "
        f"WHERE g.rid = r.rid AND g.param = {p(group)} AND g.code IS NOT NULL)"
    )
    when = (
        f"COALESCE((SELECT MAX(d.high) FROM idx_date d WHERE d.rid = r.rid AND d.param = {p(by)}), "
        f"{p(DATE_MIN)})"
    )
    # materialised: each match's group and date are computed once, not once per reference
    matches = f"SELECT r.rid, {grp} AS grp, {when} AS k FROM resources r WHERE {where}"
    ranked = (
        "SELECT m.rid, m.grp, m.k, ROW_NUMBER() OVER (PARTITION BY m.grp ORDER BY m.k DESC, m.rid DESC) AS n "
        "FROM m WHERE m.grp IS NOT NULL"
    )
    sql = (
        f"WITH m AS MATERIALIZED ({matches}) "
        f"SELECT r.{RESOURCE_COLUMNS.replace(', ', ', r.')} FROM ({ranked}) w JOIN resources r ON r.rid = w.rid "
        f"WHERE w.n <= {int(per_group)} ORDER BY w.grp{collate}, w.k DESC, w.rid DESC"
    )
    return sql, p.args


def in_list(p: Params, values: Sequence[Any]) -> str:
    return ", ".join(p(v) for v in values)


def page_from_rows(
    rows: Sequence[Sequence[Any]],
    query: SearchQuery,
    cursor: Cursor | None,
    nkeys: int,
    snapshot: Callable[[], int],
    make: Callable[[Sequence[Any]], StoredResource],
) -> SearchPage:
    """Turn count+1 fetched rows into a page with its next/previous cursors."""
    forward = cursor.forward if cursor else True
    has_more = len(rows) > query.count
    rows = list(rows[: query.count])
    if not forward:
        rows.reverse()
    resources = [make(r) for r in rows]
    snap = cursor.snapshot if cursor else None

    def keys_of(r: Sequence[Any]) -> tuple[Any, ...]:
        return (*r[SORT_OFFSET : SORT_OFFSET + nkeys], r[0])

    next_cursor = prev_cursor = None
    if rows:
        more_after = has_more if forward else True
        more_before = (cursor is not None) if forward else has_more
        if more_after:
            if snap is None:
                snap = snapshot()
            next_cursor = encode_cursor(Cursor(snap, True, keys_of(rows[-1])))
        if more_before and snap is not None:
            prev_cursor = encode_cursor(Cursor(snap, False, keys_of(rows[0])))
    total = None
    if cursor is None and not has_more:
        total = len(resources)
    return SearchPage(resources, total, next_cursor, prev_cursor)


def compile_compartment(
    p: Params, patient_id: str, types: Sequence[str] | None, since_us: int | None, after_rid: int, limit: int
) -> str:
    """Live resources of a patient's compartment, the Patient included, in rid order.

    The members are collected first (a materialised CTE over the reference index, a few hundred
    or thousand rows) and only then joined to ``resources``: ordering by rid must not tempt the
    planner into walking the whole table in rid order.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for rtype, params in compartment_definition().items():
        if types is None or rtype in types:
            groups.setdefault(params, []).append(rtype)
    branches = [
        f"(x.res_type IN ({in_list(p, sorted(rtypes))}) AND x.param IN ({in_list(p, params)}))"
        for params, rtypes in sorted(groups.items())
    ]
    members = f"SELECT r0.rid FROM resources r0 WHERE r0.res_type = 'Patient' AND r0.res_id = {p(patient_id)}"
    if branches:
        members += (
            f" UNION SELECT x.rid FROM idx_reference x WHERE x.target_id = {p(patient_id)} "
            f"AND x.target_type = 'Patient' AND ({' OR '.join(branches)})"
        )
    conds = [f"r.deleted = {p.false()}", f"r.rid > {p(after_rid)}"]
    if types is not None:
        conds.append(f"r.res_type IN ({in_list(p, list(types))})")
    if since_us is not None:
        conds.append(f"r.last_updated >= {p(since_us)}")
    return (
        f"WITH m AS MATERIALIZED ({members}) "
        f"SELECT r.{RESOURCE_COLUMNS.replace(', ', ', r.')} FROM m JOIN resources r ON r.rid = m.rid "
        f"WHERE {' AND '.join(conds)} ORDER BY r.rid LIMIT {int(limit)}"
    )


def compile_relations(p: Params, patient: str, actors: Sequence[str], now_us: int) -> str:
    """Live access relations between ``actors`` (and everyone, ``*``) and one patient."""
    return (
        f"SELECT param, categories, expires FROM idx_relation WHERE patient = {p(patient)} "
        f"AND actor IN ({in_list(p, [*actors, '*'])}) AND (expires IS NULL OR expires > {p(now_us)})"
    )


HISTORY_COLUMNS = "hid, res_type, res_id, version, last_updated, deleted, content, method"


def compile_history(
    p: Params, resource_type: str | None, id: str | None, since_us: int | None, limit: int, cursor: str | None
) -> str:
    """Versions newest first; the cursor is the last ``hid`` already returned."""
    conds = []
    if resource_type is not None:
        conds.append(f"res_type = {p(resource_type)}")
    if id is not None:
        conds.append(f"res_id = {p(id)}")
    if since_us is not None:
        conds.append(f"last_updated >= {p(since_us)}")
    if cursor is not None:
        try:
            before = int(cursor)
        except ValueError as exc:
            raise InvalidRequest("invalid history cursor", expression="_cursor") from exc
        conds.append(f"hid < {p(before)}")
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    return f"SELECT {HISTORY_COLUMNS} FROM history{where} ORDER BY hid DESC LIMIT {int(limit)}"


def history_page(rows: Sequence[Sequence[Any]], count: int, cursor: str | None) -> HistoryPage:
    entries = [
        StoredResource(r[1], r[2], r[3], r[4], bool(r[5]), bytes(r[6]), int(r[0]), r[7]) for r in rows[:count]
    ]
    next_cursor = str(rows[count - 1][0]) if len(rows) > count > 0 else None
    return HistoryPage(entries, next_cursor)


# --------------------------------------------------------------------------------------------
# Expunge: the physical erasure at the end of a retention period (``domain/ens/purge.py``)
# --------------------------------------------------------------------------------------------


def purge_schema_statements() -> list[str]:
    """The history's patient index, added by migration 0006: a purge finds every resource ever
    filed in a record — deleted ones too, whose current row no longer names the patient — by
    the ``patient`` of its versions, without reading the whole history."""
    return ["CREATE INDEX IF NOT EXISTS history_patient ON history (patient)"]


EXPUNGE_HISTORY_COLUMNS = "rid, res_type, res_id, version, last_updated, deleted, content, patient, method"


def expunged_versions(rows: Sequence[Sequence[Any]]) -> list[StoredResource]:
    """The erased versions (rows of EXPUNGE_HISTORY_COLUMNS, oldest first)."""
    return [
        StoredResource(r[1], r[2], r[3], r[4], bool(r[5]), bytes(r[6]), r[0], r[8], patient=r[7])
        for r in rows
    ]


def compile_filed_in(p: Params, patient_id: str) -> str:
    """Current rows of every resource filed in a patient's record at any version (the Patient's
    own row names itself), through the ``patient`` indexes of ``resources`` and ``history``."""
    who = p(patient_id)
    return (
        f"SELECT {RESOURCE_COLUMNS} FROM resources WHERE rid IN ("
        f"SELECT rid FROM resources WHERE patient = {who} "
        f"UNION SELECT rid FROM history WHERE patient = {who}) ORDER BY rid"
    )


def compile_referrers(p: Params, keys: Sequence[tuple[str, str]]) -> str:
    """Live resources pointing at any of ``keys`` through any reference parameter."""
    ors = " OR ".join(f"(x.target_id = {p(i)} AND x.target_type = {p(t)})" for t, i in keys)
    return (
        f"SELECT {', '.join('r.' + c for c in RESOURCE_COLUMNS.split(', '))} FROM resources r "
        f"WHERE r.deleted = {p.false()} AND r.rid IN (SELECT x.rid FROM idx_reference x WHERE {ors}) "
        "ORDER BY r.rid"
    )
