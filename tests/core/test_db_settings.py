"""PostgreSQL settings the app relies on, set per connection and per console transaction."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from core.db import db
from tests.support.apps import build_app


def test_every_connection_runs_without_jit_and_bounds_idle_transactions(ctx):
    assert db.session.execute(text("SHOW jit")).scalar() == "off"
    idle = db.session.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
    assert idle == "5min"


def test_console_requests_get_a_statement_timeout_and_others_do_not(ctx):
    probe = Blueprint("probe", __name__)

    @probe.get("/console/_probe/timeout")
    def console_probe():
        return db.session.execute(text("SHOW statement_timeout")).scalar()

    @probe.get("/api/_probe/timeout")
    def api_probe():
        return db.session.execute(text("SHOW statement_timeout")).scalar()

    app = build_app(CONSOLE_STATEMENT_TIMEOUT_MS=1234)
    app.register_blueprint(probe)
    client = app.test_client()
    assert client.get("/console/_probe/timeout").get_data(as_text=True) == "1234ms"
    assert client.get("/api/_probe/timeout").get_data(as_text=True) == "0"
