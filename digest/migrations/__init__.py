"""Alembic migrations of digest's schema, for SQLite and PostgreSQL alike.

Applied by ``digest db upgrade`` (``Store.open(url, upgrade=True)``); a new,
empty database is brought to the latest schema on first use.
"""
