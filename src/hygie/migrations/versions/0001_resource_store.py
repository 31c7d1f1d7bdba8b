"""Resource store: resources, history and the typed search index tables.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from hygie.stores.sql import INDEX_TABLES, schema_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in schema_statements(dialect):
        op.execute(statement)


def downgrade() -> None:
    for table in [*INDEX_TABLES, "history", "resources"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
