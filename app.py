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
    from campaigns import fanout as campaign_fanout
    from core import housekeeping, rollups
    from core.scheduler import Periodic
    from coupons import jobs as coupon_jobs
    from games import jobs as games_jobs
    from guide_distribution import jobs_commission as guide_jobs
    from members import jobs as member_jobs
    from points import jobs as points_jobs
    from shop import jobs as shop_jobs
    from shop import jobs_aftersale as shop_aftersale_jobs
    from wechat import inbound

    return [
        Periodic("outbox-cleanup", housekeeping.purge_finished_jobs, every=3600),
        Periodic("exports-cleanup", housekeeping.purge_expired_exports, every=600),
        # the callback's inbound log, buffered in Redis, persisted in batches
        Periodic("wechat-inbound-flush", inbound.flush_inbound, every=10),
        # members: downgrade tiers on their review date, tag members lapsed 90 days
        Periodic("members-tier-review", member_jobs.review_due_tiers, every=3600),
        Periodic("members-lapsed-tags", member_jobs.tag_lapsed_members, every=3600),
        # points: release pending points, expire lots, remind, sync the WeChat card
        Periodic("points-release", points_jobs.release_all, every=300),
        Periodic("points-expire", points_jobs.expire_all, every=300),
        Periodic("points-remind", points_jobs.remind_all, every=3600),
        Periodic("points-sync", points_jobs.sync_all, every=60),
        # coupons: expire, remind members of coupons about to expire
        Periodic("coupons-expire", coupon_jobs.expire_due, every=300),
        Periodic("coupons-remind", coupon_jobs.remind_expiring, every=3600),
        # shop: receive and complete orders on time, ask WeChat Pay about pending refunds,
        # reconcile yesterday's trade bill (once a day per brand, after the bill is out)
        Periodic("shop-fulfilment", shop_aftersale_jobs.fulfilment_all, every=3600),
        Periodic("shop-refund-query", shop_aftersale_jobs.refunds_query_all, every=300),
        Periodic("shop-reconcile", shop_aftersale_jobs.reconcile_all, every=3600),
        # reports: add each brand's recent ledger rows to the rollups; compare them daily
        Periodic("rollups-advance", rollups.advance_all, every=300),
        Periodic("rollups-check", rollups.check_all, every=86400),
        # shop: close unpaid orders past their deadline; ask WeChat Pay about late payments
        Periodic("shop-release-due", shop_jobs.release_due, every=60),
        Periodic("shop-query-pending", shop_jobs.query_pending, every=60),
        # games: grant prizes a dead worker left pending, the hourly figures, end campaigns
        Periodic("games-record-plays", games_jobs.record_plays, every=5),
        Periodic("games-recover-grants", games_jobs.recover_grants, every=60),
        Periodic("games-stats", games_jobs.stats_all, every=60),
        Periodic("games-end-due", games_jobs.end_due, every=60),
        # guide commission: settle what is due, monthly statements, transfers' outcome
        Periodic("guide-settle", guide_jobs.settle_all, every=3600),
        Periodic("guide-statements", guide_jobs.statements_all, every=21600),
        Periodic("guide-transfer-query", guide_jobs.query_transfers_all, every=300),
        # campaigns: start due pushes, send abandoned chunks again, complete finished ones
        Periodic("campaigns-tick", campaign_fanout.tick_job, every=30),
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

    from core import auth, crypto, errors, guard, i18n, jobs, logs, metrics, scheduler, storage
    from core import redis as core_redis
    from core.db import db

    logs.configure(app)
    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True, compare_type=True
    )
    core_redis.init_app(app)
    csrf.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    guard.init_app(app)
    metrics.init_app(app)
    jobs.init_app(app)
    scheduler.init_app(app, periodic_jobs)
    storage.init_app(app)

    _register_packages(app)
    _register_health(app)
    if app.config.get("CHECK_DATA_KEYS"):
        with app.app_context():
            crypto.check_keys()
    return app


def _register_packages(app: Flask) -> None:
    from core import cli as core_cli
    from core import console, exports_view, pickers

    app.register_blueprint(console.bp)
    app.register_blueprint(pickers.bp)
    app.register_blueprint(exports_view.bp)
    core_cli.init_app(app)

    import campaigns
    import coupons
    import games
    import guide_distribution
    import members
    import org
    import points
    import shop
    import wechat

    org.init_app(app)
    wechat.init_app(app)
    members.init_app(app)
    points.init_app(app)
    coupons.init_app(app)
    shop.init_app(app)
    guide_distribution.init_app(app)
    guide_distribution.init_workbench(app)
    games.init_app(app)
    campaigns.init_app(app)
    if app.config.get("SANDBOX_ENABLED"):
        _mount_sandbox(app)


def _mount_sandbox(app: Flask) -> None:
    """The fake WeChat API and phone simulator, wired to what it shows (the brand's store and
    guide QR codes to scan); product code never imports the sandbox."""
    from members import demo as members_demo
    from members.activation import qrcodes
    from wechat import sandbox
    from wechat.sandbox import demo as sandbox_demo
    from wechat.sandbox import phone

    sandbox.init_app(app)
    phone.register_scan_source(qrcodes.simulator_targets)
    members_demo.use_demo_openids(sandbox_demo.demo_member_openid)


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
