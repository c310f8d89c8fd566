"""Operations basics: settings, health, metrics, logs, the command line."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from config import Config, ConfigError
from config import TestConfig as _TestConfig
from core.db import db
from core.tenancy import use_brand
from org.models import Brand, Staff, Store
from tests.support.apps import build_app

ENGINES = {"DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"}


def test_production_refuses_to_start_without_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config({"APP_ENV": "production"})
    cfg = Config({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "METRICS_TOKEN": "t", **ENGINES})
    assert cfg.SESSION_COOKIE_SECURE is True


def test_one_database_and_one_redis_everywhere():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Config({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    with pytest.raises(ConfigError, match="PostgreSQL"):
        Config({"DATABASE_URL": "sqlite:///x.db", "REDIS_URL": "redis://127.0.0.1:6379/0"})
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Config({"DATABASE_URL": "postgresql://u@h/db"})
    cfg = Config({"DATABASE_URL": "postgres://u@h/db", "REDIS_URL": "redis://h:6379/0"})
    assert cfg.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@h/db"
    assert cfg.JOBS_INLINE is False
    assert _TestConfig({}).SQLALCHEMY_DATABASE_URI.startswith("postgresql+psycopg://")


def test_healthz_is_503_when_redis_is_down(app):
    broken = build_app(REDIS_URL="redis://127.0.0.1:1/0")
    r = broken.test_client().get("/healthz")
    assert r.status_code == 503
    assert r.json["checks"]["database"] == "ok"
    assert r.json["checks"]["redis"].startswith("error")


def _healthz_ok_count(text: str) -> float:
    for ln in text.splitlines():
        if (
            ln.startswith("wmb_http_requests_total{")
            and 'endpoint="/healthz"' in ln
            and 'status="200"' in ln
        ):
            return float(ln.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_and_show_queue_depth(client):
    before = _healthz_ok_count(client.get("/metrics").get_data(as_text=True))
    client.get("/healthz")
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert _healthz_ok_count(text) == before + 2
    assert "wmb_http_request_duration_seconds_bucket" in text
    assert 'wmb_queue_depth{queue="default"}' in text


def test_logs_are_json_with_the_request_id(capsys):
    logged = build_app(LOG_JSON="1", LOG_LEVEL="INFO")
    logger = logging.getLogger("wmb.test")

    @logged.get("/_log_probe")
    def _probe():
        logger.info("probe 探针")
        return "ok"

    root = logging.getLogger()
    try:
        r = logged.test_client().get("/_log_probe", headers={"X-Request-ID": "req-123"})
        assert r.headers["X-Request-ID"] == "req-123"
        generated = logged.test_client().get("/healthz").headers["X-Request-ID"]
        assert len(generated) == 32
    finally:
        for h in list(root.handlers):
            if getattr(h, "_wmb", False):
                root.removeHandler(h)
        root.setLevel(logging.WARNING)
    line = [ln for ln in capsys.readouterr().err.splitlines() if "probe" in ln][-1]
    record = json.loads(line)
    assert record["msg"] == "probe 探针" and record["request_id"] == "req-123"
    assert record["level"] == "INFO" and record["logger"] == "wmb.test"


def test_cli_brand_and_staff(runner, ctx):
    r = runner.invoke(
        args=[
            "brand",
            "create",
            "--slug",
            "acme",
            "--name",
            "Acme 服饰",
            "--appid",
            "wxacme",
            "--secret",
            "s3cret",
            "--token",
            "tok",
            "--aes-key",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        ]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(args=["brand", "create", "--slug", "acme", "--name", "again"])
    assert r.exit_code != 0 and "已存在" in r.output
    r = runner.invoke(args=["brand", "create", "--slug", "Bad Slug", "--name", "x"])
    assert r.exit_code != 0
    r = runner.invoke(args=["brand", "list"])
    assert "acme" in r.output and "wxacme" in r.output
    brand = Brand.by_slug("acme")
    with use_brand(brand.id):
        from org.services import create_store

        create_store(code="S1", name="一店", city="北京")
        db.session.commit()
    r = runner.invoke(
        args=[
            "staff",
            "create",
            "--brand",
            "acme",
            "--phone",
            "13712345678",
            "--role",
            "guide",
            "--store",
            "S1",
            "--password",
            "pass-word-1",
        ]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        args=[
            "staff",
            "create",
            "--brand",
            "acme",
            "--phone",
            "123",
            "--role",
            "guide",
            "--store",
            "S1",
            "--password",
            "pass-word-1",
        ]
    )
    assert r.exit_code != 0 and "手机号无效" in r.output
    r = runner.invoke(
        args=[
            "staff",
            "create",
            "--brand",
            "acme",
            "--phone",
            "13712345679",
            "--role",
            "guide",
            "--store",
            "NOPE",
            "--password",
            "pass-word-1",
        ]
    )
    assert r.exit_code != 0
    with use_brand(brand.id):
        staff = db.session.execute(select(Staff)).scalars().all()
        assert [(s.phone, s.role, s.store.code) for s in staff] == [("13712345678", "guide", "S1")]


def test_demo_is_idempotent(runner, ctx):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "demo" in first.output and "13800000000" in first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    brand = Brand.by_slug("demo")
    with use_brand(brand.id):
        stores = db.session.execute(select(Store)).scalars().all()
        staff = db.session.execute(select(Staff)).scalars().all()
    assert len(stores) == 3 and len({s.city for s in stores}) == 2
    roles = sorted(s.role for s in staff)
    assert roles.count("guide") == 6 and roles.count("brand_admin") == 1
    assert roles.count("store_manager") == 3
