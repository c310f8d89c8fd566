"""Test fixtures: a real PostgreSQL database and a real Redis, wiped between tests.

The database, Redis and the app builder are in tests/support/apps.py; fixtures shared by
several packages live in the tests/support plugin modules listed in ``pytest_plugins``.
"""

from __future__ import annotations

import ipaddress
import socket
import weakref

import pytest
from sqlalchemy import text

from core.db import db
from core.tenancy import use_brand
from tests import factories
from tests.support.apps import build_app, recreate_database

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.wechat_sandbox",
    "tests.support.live_server",
]


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    recreate_database()
    # Export files go to a folder of the run's own, not the instance folder.
    application = build_app(EXPORTS_DIR=tmp_path_factory.mktemp("exports"))
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(app):
    yield
    from wechat.sandbox import push

    push.wait_pushes()  # the sandbox's late events write to the tables emptied below
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
def brand(ctx):
    """A brand (Asia/Shanghai), current for the whole test."""
    b = factories.brand()
    with use_brand(b.id):
        yield b


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


def _package_signals():
    """Every signal the packages declare (coupons, members, shop)."""
    from blinker import Signal

    from coupons import signals as coupon_signals
    from members import signals as member_signals
    from shop import signals as shop_signals

    return [
        value
        for module in (coupon_signals, member_signals, shop_signals)
        for value in vars(module).values()
        if isinstance(value, Signal)
    ]


def _receiver_name(receiver) -> str:
    if isinstance(receiver, weakref.ref):  # blinker keeps weak receivers as references
        receiver = receiver()
    return f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', receiver)}"


@pytest.fixture(scope="session")
def _package_receivers(app):
    """The receivers the packages connect when the app is built: signal -> {id: name}."""
    return {
        sig: {rid: _receiver_name(r) for rid, r in sig.receivers.items()}
        for sig in _package_signals()
    }


@pytest.fixture(autouse=True)
def _package_receivers_stay(_package_receivers):
    """A test disconnects only what it connected (``Signal.connected_to``): were it to clear
    a signal's receivers, the ledgers and counters that listen to it would miss every later
    test's orders."""
    yield
    for sig, receivers in _package_receivers.items():
        missing = sorted(name for rid, name in receivers.items() if rid not in sig.receivers)
        assert not missing, f"receivers of {sig.name!r} disconnected by the test: {missing}"


@pytest.fixture(autouse=True)
def _no_outbound_network(monkeypatch):
    """Any connection outside this machine fails the test: WeChat is faked by the sandbox."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
