"""What an attacker tried against the console and the shared request layer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from config import ConfigError
from core.db import db
from core.tenancy import use_brand
from org import services as org
from org.models import Staff
from tests import factories as f
from tests.support.apps import build_app


def _admin_and_client(client):
    b = f.brand()
    admin = f.staff(b)
    assert f.login(client, b, admin).status_code == 302
    return b, admin


def _cookie(client) -> str:
    return client.get_cookie("session").value


def _replay(app, cookie: str, path: str = "/console/staff", ua: str = "other-agent"):
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get(path, headers={"User-Agent": ua})


# --- sessions that end --------------------------------------------------------------------


def test_a_saved_cookie_is_dead_after_logout(app, client, ctx):
    _admin_and_client(client)
    saved = _cookie(client)
    assert _replay(app, saved).status_code == 200
    token = f.csrf(client, "/console/")
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    r = _replay(app, saved)
    assert r.status_code == 302 and "/console/login" in r.headers["Location"]
    r = _replay(app, saved, ua=client.application.name)
    assert r.status_code == 302


def test_password_role_and_deactivation_end_every_session_of_that_user(app, client, ctx):
    b, admin = _admin_and_client(client)
    clerk = f.staff(b, role="brand_admin")
    clerk_client = app.test_client()
    assert f.login(clerk_client, b, clerk).status_code == 302
    assert clerk_client.get("/console/staff").status_code == 200
    with use_brand(b.id):
        person = db.session.get(Staff, clerk.id)
        person.set_password("another-pass-77")
        db.session.commit()
    assert clerk_client.get("/console/staff").status_code == 302
    # the admin who made the change is still signed in
    assert client.get("/console/staff").status_code == 200

    assert f.login(clerk_client, b, clerk, password="another-pass-77").status_code == 302
    with use_brand(b.id):
        person = db.session.get(Staff, clerk.id)
        person.role = "store_manager"
        person.store_id = f.store(b).id
        db.session.commit()
    assert clerk_client.get("/console/stores").status_code == 302

    assert f.login(clerk_client, b, clerk, password="another-pass-77").status_code == 302
    assert clerk_client.get("/console/stores").status_code == 200
    with use_brand(b.id):
        db.session.get(Staff, clerk.id).active = False
        db.session.commit()
    assert clerk_client.get("/console/stores").status_code == 302


# --- lockouts that hold --------------------------------------------------------------------


def _login(client, b, account, password):
    token = f.csrf(client, "/console/login")
    return client.post(
        "/console/login",
        data={"brand": b.slug, "account": account, "password": password, "csrf_token": token},
    )


@pytest.mark.parametrize(
    "spelling",
    ["+8613800008888", "008613800008888", "138-0000-8888", "138 0000 8888", "８６13800008888"],
)
def test_the_lockout_holds_however_the_phone_is_spelt(client, ctx, spelling):
    b = f.brand()
    f.staff(b, phone="13800008888")
    for _ in range(5):
        assert _login(client, b, "13800008888", "wrong-password").status_code == 401
    r = _login(client, b, spelling, f.PASSWORD)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0


def test_one_brands_failures_from_a_network_do_not_lock_out_another_brand(app, client, ctx):
    a, other = f.brand(), f.brand()
    f.staff(a)
    person = f.staff(other)
    for i in range(app.config["LOGIN_IP_FAILURES_PER_MINUTE"]):
        _login(client, a, f"1370000{i:04d}", "wrong-password")
    # brand a's logins from this address now wait a minute, not fifteen
    r = _login(client, a, "13700009999", "wrong-password")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= 60
    assert _login(client, other, person.phone, f.PASSWORD).status_code == 302


# --- NUL bytes, deep JSON, next ---------------------------------------------------------------


def test_nul_bytes_get_a_4xx_and_never_a_500(client, ctx):
    b, _admin = _admin_and_client(client)
    for path in (
        "/m/de%00mo/",
        f"/m/{b.slug}%00/card",
        "/api/mp/de%00mo/stores",
        "/api/pos/de%00mo/coupons/check",
        "/console/stores/1%00",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
    for path in ("/console/stores?q=a%00b", "/console/staff?q=%00", "/console/audit?q=x%00"):
        assert client.get(path).status_code == 400, path
    anon = client.application.test_client()
    token = f.csrf(anon, "/console/login")
    r = anon.post(
        "/console/login",
        data={"brand": b.slug, "account": "138\x000000000", "password": "x", "csrf_token": token},
    )
    assert r.status_code == 400
    r = anon.post("/api/pos/demo/coupons/check", json={"code": "A\x00B"})
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "bad_request"


def test_deeply_nested_json_is_refused_everywhere(client, ctx):
    b = f.brand()
    deep = "[" * 100_000 + "]" * 100_000
    for path in (f"/api/pos/{b.slug}/coupons/check", f"/api/mp/{b.slug}/login"):
        r = client.post(path, data=deep, content_type="application/json")
        assert r.status_code == 400, path
    # ordinary nesting still parses: the POS check then asks for its key
    r = client.post(f"/api/pos/{b.slug}/coupons/check", json={"code": "x", "a": [[1]]})
    assert r.status_code == 403


def test_next_with_control_characters_is_ignored_after_login(client, ctx):
    b = f.brand()
    admin = f.staff(b)
    token = f.csrf(client, "/console/login")
    r = client.post(
        "/console/login?next=/console/staff%0D%0ASet-Cookie:%20x=1",
        data={"brand": b.slug, "account": admin.phone, "password": f.PASSWORD, "csrf_token": token},
    )
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/console/")
    assert "x=1" not in r.headers.get("Set-Cookie", "")


# --- a lost Redis --------------------------------------------------------------------------


def test_a_lost_redis_answers_503_and_recovers(app, ctx, own_redis):
    from coupons.pos_api import create_key

    b = f.brand()
    admin = f.staff(b)
    shop = f.store(b)
    with use_brand(b.id):
        _row, till_key = create_key(store_id=shop.id, label="till 1")
        db.session.commit()
    served = build_app(REDIS_URL=own_redis.url)
    web = served.test_client()
    assert f.login(web, b, admin).status_code == 302
    with served.app_context():
        from members.api import create_session

        mp_token = create_session(brand_id=b.id, openid="o-mp-1", unionid=None, session_key="")
    token = f.csrf(web, "/console/stores/new")
    own_redis.stop()
    try:
        page = web.get("/console/staff")
        assert page.status_code == 503 and page.headers["Retry-After"]
        assert "服务暂时不可用" in page.get_data(as_text=True)
        anon = served.test_client()
        r = anon.post(
            "/console/login",
            data={"brand": b.slug, "account": admin.phone, "password": f.PASSWORD},
        )
        # the CSRF check needs no Redis: without a token it is a 400, with one a 503
        assert r.status_code == 400
        api = anon.post(
            f"/api/pos/{b.slug}/coupons/check",
            json={"code": "X123456789", "order_amount_fen": 1000},
            headers={"Authorization": f"Bearer {till_key}"},
        )
        assert api.status_code == 503 and api.headers["Retry-After"]
        assert api.get_json()["error"]["code"] == "unavailable"
        mp = anon.get(f"/api/mp/{b.slug}/profile", headers={"Authorization": f"Bearer {mp_token}"})
        assert mp.status_code == 503 and mp.headers["Retry-After"]
        assert mp.get_json()["error"]["code"] == "unavailable"
        mp_login = anon.post(f"/api/mp/{b.slug}/login", json={"code": "a-code-from-wx-login"})
        assert mp_login.status_code == 503
        assert web.post(
            "/console/stores/new",
            data={"code": "S9", "name": "门店", "city": "上海", "csrf_token": token},
        ).status_code in (503, 302)
    finally:
        own_redis.start()
    assert web.get("/console/staff").status_code in (200, 302)
    assert f.login(web, b, admin).status_code == 302
    assert web.get("/console/staff").status_code == 200


# --- headers, endpoints, settings ---------------------------------------------------------


def test_pages_carry_a_csp_and_only_this_origin_may_frame_them(client, ctx):
    _admin_and_client(client)
    r = client.get("/console/staff")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/healthz").headers.get("X-Frame-Options") is None


def test_metrics_need_a_token_or_this_machine(app, ctx):
    assert app.test_client().get("/metrics").status_code == 200
    outside = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 404
    guarded = build_app(METRICS_TOKEN="s3cret-token").test_client()
    assert guarded.get("/metrics").status_code == 404
    ok = guarded.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and b"wmb_http_requests_total" in ok.data


def test_production_refuses_the_development_secret_key():
    from config import DEV_SECRET_KEY, Config

    base = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://u@h/db",
        "REDIS_URL": "redis://h:6379/0",
        "METRICS_TOKEN": "t",
    }
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config({**base, "SECRET_KEY": DEV_SECRET_KEY})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config({**base, "SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        Config({**base, "SECRET_KEY": "k" * 40, "METRICS_TOKEN": ""})


def test_wrong_data_encryption_keys_stop_the_start_up(app, ctx):
    b = f.brand()
    with use_brand(b.id):
        brand = db.session.execute(select(type(b)).where(type(b).id == b.id)).scalar_one()
        org.update_brand_credentials(
            brand=brand,
            name=brand.name,
            timezone="Asia/Shanghai",
            appid="wx1234567890abcdef",
            secret="s" * 32,
            token="tok",
            aes_key="",
            mp_appid="",
            mp_secret="",
        )
        db.session.commit()
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEYS"):
        build_app(CHECK_DATA_KEYS=1, DATA_ENCRYPTION_KEYS="a-different-key")
    build_app(CHECK_DATA_KEYS=1)  # the right keys start


def test_trace_and_other_wrong_methods_say_what_is_allowed(client, ctx):
    r = client.open("/console/login", method="TRACE")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]


def test_a_transaction_postgresql_aborted_answers_503_and_other_database_errors_500(app):
    """A deadlock victim or a lock timeout changed nothing and succeeds when sent again: 503
    with Retry-After (a till or a page retries); any other database error stays a 500."""
    import psycopg
    import sqlalchemy.exc

    served = build_app()

    def aborted():
        raise sqlalchemy.exc.OperationalError(
            "UPDATE x", {}, psycopg.errors.DeadlockDetected("deadlock detected")
        )

    def broken():
        raise sqlalchemy.exc.OperationalError("SELECT", {}, psycopg.OperationalError("gone"))

    served.add_url_rule("/_aborted", "aborted", aborted)
    served.add_url_rule("/_broken", "broken", broken)
    web = served.test_client()
    r = web.get("/_aborted", headers={"Accept": "application/json"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.get_json()["error"]["code"] == "unavailable"
    assert web.get("/_aborted").status_code == 503
    assert web.get("/_broken", headers={"Accept": "application/json"}).status_code == 500
