"""Test fixtures: a real PostgreSQL database and a real Redis, wiped between tests.

WMB_TEST_DB and WMB_TEST_REDIS_DB choose the database and Redis db number, so that two
suites can run side by side on one machine.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import socket

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from app import create_app
from config import TestConfig
from core.db import db

pytest_plugins = ["tests.support.redis_server"]

TEST_DB = os.environ.get("WMB_TEST_DB", "wmb_test")
REDIS_DB = os.environ.get("WMB_TEST_REDIS_DB", "15")
PG_ADMIN = os.environ.get("WMB_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_URL = os.environ.get(
    "WMB_TEST_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}"
)
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def _recreate_database() -> None:
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


@pytest.fixture(scope="session")
def app():
    _recreate_database()
    application = build_app()
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(app):
    yield
    with app.app_context():
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            # A connection a failed test left inside a transaction would block the TRUNCATE
            # forever: end it, and never wait long for a lock.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state LIKE 'idle in transaction%'"
                )
            )
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        from core.redis import get_redis

        get_redis().flushdb()


@pytest.fixture
def ctx(app):
    """An application context for tests that call services directly."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise RuntimeError(f"outbound connection to {address!r} in a test")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _router_registrations():
    """Handlers and keywords a test registers (or removes) do not outlive it."""
    from wechat import router

    saved = router.snapshot()
    yield
    router.restore(saved)


@pytest.fixture(autouse=True)
def _no_outbound_network(monkeypatch):
    """Any connection outside this machine fails the test: WeChat is faked by the sandbox."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
