"""Application factory."""

from __future__ import annotations

import os

from flask import Flask, jsonify
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import text

from config import BASE_DIR, Config

csrf = CSRFProtect()
migrate = Migrate()


def periodic_jobs():
    """Every periodic job of the product, in one place."""
    from core import housekeeping
    from core.scheduler import Periodic

    return [
        Periodic("outbox-cleanup", housekeeping.purge_finished_jobs, every=3600),
    ]


def create_app(config: Config | dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
    )
    if config is None:
        config = Config()
    app.config.update(config.as_dict() if isinstance(config, Config) else config)
    os.makedirs(app.config.get("INSTANCE_PATH", app.instance_path), exist_ok=True)

    from core import auth, errors, i18n, jobs, logs, metrics
    from core import redis as core_redis
    from core.db import db

    logs.configure(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    core_redis.init_app(app)
    csrf.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    metrics.init_app(app)
    jobs.init_app(app)

    _register_packages(app)
    _register_health(app)
    return app


def _register_packages(app: Flask) -> None:
    from core import cli as core_cli
    from core import console
    from org import cli as org_cli
    from org import views as org_views

    app.register_blueprint(console.bp)
    app.register_blueprint(org_views.bp)
    core_cli.init_app(app)
    org_cli.init_app(app)

    import wechat

    wechat.init_app(app)


def _register_health(app: Flask) -> None:
    from core.db import db
    from core.redis import get_redis

    @app.get("/healthz")
    def healthz():
        checks = {}
        try:
            db.session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["database"] = f"error: {type(exc).__name__}"
        finally:
            db.session.rollback()
        try:
            get_redis().ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
