"""Persistence: SQLAlchemy models and Alembic migrations, for SQLite and PostgreSQL alike."""
