"""The test database, Redis and app builder that every fixture and test starts from.

WMB_TEST_DB and WMB_TEST_REDIS_DB choose the database and Redis db number, so that two
suites can run side by side on one machine.
"""

from __future__ import annotations

import contextvars
import os

import psycopg
from flask.testing import FlaskClient

from app import create_app
from config import TestConfig

TEST_DB = os.environ.get("WMB_TEST_DB", "wmb_test")
REDIS_DB = os.environ.get("WMB_TEST_REDIS_DB", "15")
PG_ADMIN = os.environ.get("WMB_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_URL = os.environ.get(
    "WMB_TEST_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}"
)
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def recreate_database() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEST_DB}"')


def make_config(**overrides) -> TestConfig:
    env = dict(os.environ)
    env.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL)
    env.update({k: str(v) for k, v in overrides.items()})
    return TestConfig(env)


class IsolatedClient(FlaskClient):
    """A test client whose requests run as they would in production: each in its own app
    context, never inside the test's own (which would share ``g``, the database session and
    the current brand between the test and the request)."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def build_app(**overrides):
    application = create_app(make_config(**overrides))
    application.test_client_class = IsolatedClient
    return application
