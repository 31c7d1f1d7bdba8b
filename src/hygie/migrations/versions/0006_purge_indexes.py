"""What the purge at the end of a health space's archive period finds things by.

Revision ID: 0006
Revises: 0005

* ``history_patient``: every resource ever filed in a record — deleted ones included, whose
  current row no longer names the patient — is found by the ``patient`` of its versions
  (``ResourceStore.filed_in``), not by reading the whole history;
* ``ens-archive-until``, Hygie's search parameter on the space's lifecycle Consent
  (``fhir/searchparams.py``): the Consents already stored get their ``idx_date`` row, as
  indexing now writes it (rows are replaced, never doubled, if the migration runs again).
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from hygie.fhir.indexing import extract_index
from hygie.stores.sql import purge_schema_statements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1000
_PARAM = "ens-archive-until"


def upgrade() -> None:
    bind = op.get_bind()
    for statement in purge_schema_statements():
        op.execute(statement)
    false = "FALSE" if bind.dialect.name == "postgresql" else "0"
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                f"SELECT rid, content FROM resources WHERE res_type = 'Consent' AND deleted = {false} "
                "AND rid > :last ORDER BY rid LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).fetchall()
        if not rows:
            return
        for rid, content in rows:
            last = rid
            raw = bytes(content)
            if _PARAM.encode() not in raw:
                continue
            try:
                dates = [d for d in extract_index(orjson.loads(raw)).dates if d[0] == _PARAM]
            except (orjson.JSONDecodeError, ValueError):
                continue
            bind.execute(
                sa.text("DELETE FROM idx_date WHERE rid = :rid AND param = :param"),
                {"rid": rid, "param": _PARAM},
            )
            for _, low, high in dates:
                bind.execute(
                    sa.text(
                        "INSERT INTO idx_date (rid, res_type, param, low, high) "
                        "VALUES (:rid, 'Consent', :param, :low, :high)"
                    ),
                    {"rid": rid, "param": _PARAM, "low": low, "high": high},
                )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS history_patient")
    op.execute(f"DELETE FROM idx_date WHERE res_type = 'Consent' AND param = '{_PARAM}'")
