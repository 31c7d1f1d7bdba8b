"""Alembic migrations of the resource store schema (run by ``hygie migrate`` and at start-up)."""
