"""Key-value records (OAuth, accounts, sessions) and the derived access relations.

Revision ID: 0003
Revises: 0002

``kv`` holds small records with expiry (``stores/kv.py``). ``idx_relation`` is the access index
of ``docs/decisions/0007-access-policy.md``: one row per relation a resource establishes
(``param`` = relation kind), keyed by the resource's ``rid`` like the search index tables.
"""

from __future__ import annotations

from alembic import op

from hygie.stores.sql import relation_schema_statements

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    blob = "BYTEA" if pg else "BLOB"
    op.execute(
        f"CREATE TABLE IF NOT EXISTS kv (kind TEXT NOT NULL, key TEXT NOT NULL, value {blob} NOT NULL, "
        "expires BIGINT, PRIMARY KEY (kind, key))"
    )
    for statement in relation_schema_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idx_relation")
    op.execute("DROP TABLE IF EXISTS kv")
