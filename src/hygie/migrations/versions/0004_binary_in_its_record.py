"""File each Binary in the patient record its ``securityContext`` names.

Revision ID: 0004
Revises: 0003

Until now a Binary (a document's content) was outside every patient record: R4 puts no Binary
in the Patient compartment. Indexing now files it in the record its ``securityContext`` names
(``fhir/indexing.py``), so the access rules of that record guard it. This migration does the
same for the Binaries already stored: their current row and their history rows get that patient.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 1000


def _patient_of(content: bytes) -> str | None:
    try:
        resource = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    context = resource.get("securityContext") if isinstance(resource, dict) else None
    ref = context.get("reference") if isinstance(context, dict) else None
    if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1 and len(ref) > 8:
        return ref[8:]
    return None


def upgrade() -> None:
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT rid, res_id, content FROM resources WHERE res_type = 'Binary' AND patient IS NULL "
                "AND rid > :last ORDER BY rid LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).fetchall()
        if not rows:
            return
        for rid, res_id, content in rows:
            last = rid
            patient = _patient_of(bytes(content))
            if patient is None:
                continue
            bind.execute(
                sa.text("UPDATE resources SET patient = :p WHERE rid = :rid"), {"p": patient, "rid": rid}
            )
            bind.execute(
                sa.text(
                    "UPDATE history SET patient = :p WHERE res_type = 'Binary' AND res_id = :id AND patient IS NULL"
                ),
                {"p": patient, "id": res_id},
            )


def downgrade() -> None:
    """Nothing to undo: a Binary filed in its record is what indexing does from now on."""
