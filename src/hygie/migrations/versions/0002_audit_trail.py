"""Audit trail: hash-chained events, chain heads, signed checkpoints, disputes.

Revision ID: 0002
Revises: 0001

``audit_events`` and ``audit_checkpoints`` are append-only. On both dialects triggers refuse
UPDATE and DELETE (and, on PostgreSQL, TRUNCATE); PostgreSQL also revokes those privileges from
PUBLIC. Triggers and revocations stop the application, not a table owner or superuser, who can
disable them: in production run the migrations under an owner role and the application under a
role that owns neither table and is granted only what it needs, e.g.::

    GRANT SELECT, INSERT ON audit_events, audit_checkpoints TO hygie_app;
    GRANT SELECT, INSERT, UPDATE ON audit_heads, audit_disputes TO hygie_app;

What an owner could still do (rewrite and re-hash a chain) is what signed checkpoints and
``hygie audit verify`` detect.
"""

from __future__ import annotations

from alembic import op

from hygie.stores.audit_sql import AUDIT_TABLES, audit_schema_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in audit_schema_statements(dialect):
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(AUDIT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
