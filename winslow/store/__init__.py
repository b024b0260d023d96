"""SQL store: SQLite (WAL) by default, PostgreSQL by URL; schema by Alembic migrations."""
