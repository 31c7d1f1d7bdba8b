"""The geographic search index: ``Location?near=`` (R4's ``special`` parameter).

Revision ID: 0005
Revises: 0004

``idx_geo`` holds one row per ``Location.position``: latitude and longitude (indexed together
with the type and parameter, so that a search narrows candidates with a box on an ordinary
B-tree) and the position as a point of the unit sphere, on which the exact distance test and
the nearest-first order are plain arithmetic (``domain/geo.py``, ``stores/sql.py``). The
Locations already stored get their rows here, as indexing now writes them (the table and its
rows are rebuilt if the migration runs again).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from hygie.domain.geo import unit_vector
from hygie.stores.sql import geo_schema_statements

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 1000


def _row(content: bytes) -> tuple[float, float, float, float, float] | None:
    """(lat, lng, x, y, z) of a stored Location, as ``fhir/indexing.py`` indexes it."""
    try:
        resource: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    position = resource.get("position") if isinstance(resource, dict) else None
    if not isinstance(position, dict):
        return None
    lat, lng = position.get("latitude"), position.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lng, int | float):
        return None
    if isinstance(lat, bool) or isinstance(lng, bool) or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return (float(lat), float(lng), *unit_vector(float(lat), float(lng)))


def upgrade() -> None:
    bind = op.get_bind()
    for statement in geo_schema_statements(bind.dialect.name):
        op.execute(statement)
    false = "FALSE" if bind.dialect.name == "postgresql" else "0"
    # re-running the migration (a database rewound to 0004) rebuilds the rows, never doubles them
    op.execute("DELETE FROM idx_geo WHERE res_type = 'Location'")
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                f"SELECT rid, content FROM resources WHERE res_type = 'Location' AND deleted = {false} "
                "AND rid > :last ORDER BY rid LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).fetchall()
        if not rows:
            return
        for rid, content in rows:
            last = rid
            found = _row(bytes(content))
            if found is not None:
                lat, lng, x, y, z = found
                bind.execute(
                    sa.text(
                        "INSERT INTO idx_geo (rid, res_type, param, lat, lng, x, y, z) "
                        "VALUES (:rid, 'Location', 'near', :lat, :lng, :x, :y, :z)"
                    ),
                    {"rid": rid, "lat": lat, "lng": lng, "x": x, "y": y, "z": z},
                )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idx_geo")
