"""Migrations: `flask db upgrade` from an empty PostgreSQL database gives the models' schema."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from core.db import db
from tests.support.apps import PG_ADMIN, TEST_DB, build_app

MIGRATE_DB = TEST_DB + "_migrations"


def _fresh_database() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{MIGRATE_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{MIGRATE_DB}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + MIGRATE_DB


def test_upgrade_from_empty_matches_the_models():
    url = _fresh_database()
    migrated = build_app(DATABASE_URL=url)
    with migrated.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata
            )
        assert diff == []
        # and the way back down works too
        downgrade(revision="base")
        with db.engine.connect() as conn:
            tables = (
                conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                .scalars()
                .all()
            )
        assert set(tables) <= {"alembic_version"}
        db.engine.dispose()
