"""Console: login, CSRF, throttling, roles, bad input, audit log, failed jobs."""

from __future__ import annotations

import re

from sqlalchemy import func, select, text

from core import jobs
from core.audit import AuditLog
from core.db import db
from core.tenancy import use_brand
from org.models import Staff, Store
from tests import factories as f
from tests.support import pager


def count(model, brand) -> int:
    with use_brand(brand.id):
        return db.session.execute(select(func.count()).select_from(model)).scalar()


def test_pages_speak_chinese_by_default_and_english_on_request(client, ctx):
    page = client.get("/console/login").get_data(as_text=True)
    assert "登录" in page and "密码" in page
    page = client.get("/console/login?lang=en").get_data(as_text=True)
    assert "Log in" in page and "Password" in page
    # the choice sticks
    assert "Log in" in client.get("/console/login").get_data(as_text=True)


def test_session_cookie_is_httponly_and_samesite(client, ctx):
    b = f.brand()
    admin = f.staff(b)
    r = f.login(client, b, admin)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_post_without_csrf_token_is_refused_and_writes_nothing(client, ctx):
    b = f.brand()
    admin = f.staff(b)
    f.login(client, b, admin)
    r = client.post("/console/stores/new", data={"code": "X1", "name": "门店", "city": "上海"})
    assert r.status_code == 400
    assert count(Store, b) == 0
    token = f.csrf_token(client, "/console/stores/new")
    r = client.post(
        "/console/stores/new",
        data={"code": "X1", "name": "门店", "city": "上海", "csrf_token": token + "tampered"},
    )
    assert r.status_code == 400
    assert count(Store, b) == 0


def test_login_without_csrf_is_refused(client, ctx):
    b = f.brand()
    admin = f.staff(b)
    r = client.post(
        "/console/login", data={"brand": b.slug, "account": admin.phone, "password": f.PASSWORD}
    )
    assert r.status_code == 400
    assert client.get("/console/stores").status_code == 302  # still logged out


def test_wrong_passwords_are_throttled(app, client, ctx):
    b = f.brand()
    admin = f.staff(b)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        r = f.login(client, b, admin, password="wrong-password")
        assert r.status_code == 401
        assert "错误" in r.get_data(as_text=True)
    r = f.login(client, b, admin)  # the right password, but the account is locked for now
    assert r.status_code == 429
    assert client.get("/console/stores").status_code == 302
    other = f.staff(b)  # another account from the same address still gets in
    assert f.login(client, b, other).status_code == 302


def test_unknown_account_and_disabled_staff_cannot_log_in(client, ctx):
    b = f.brand()
    admin = f.staff(b)
    r = client.post(
        "/console/login",
        data={
            "brand": "nope",
            "account": admin.phone,
            "password": f.PASSWORD,
            "csrf_token": f.csrf_token(client, "/console/login"),
        },
    )
    assert r.status_code == 401
    with use_brand(b.id):
        db.session.get(Staff, admin.id).active = False
        db.session.commit()
    assert f.login(client, b, admin).status_code == 401


def _visible_codes(client) -> set[str]:
    page = client.get("/console/stores").get_data(as_text=True)
    return set(re.findall(r">(S-[A-Z0-9]+)<", page))


def test_each_role_sees_exactly_what_it_may(app, ctx):
    b = f.brand()
    s1, s2 = f.store(b, code="S-ONE"), f.store(b, code="S-TWO")
    admin = f.staff(b)
    manager = f.staff(b, "store_manager", s1)
    guide1 = f.staff(b, "guide", s1)
    guide2 = f.staff(b, "guide", s2)

    c = app.test_client()
    f.login(c, b, admin)
    assert _visible_codes(c) == {"S-ONE", "S-TWO"}
    staff_page = c.get("/console/staff").get_data(as_text=True)
    assert guide1.phone in staff_page and guide2.phone in staff_page
    assert c.get("/console/audit").status_code == 200

    c = app.test_client()
    f.login(c, b, manager)
    assert _visible_codes(c) == {"S-ONE"}
    assert c.get(f"/console/stores/{s2.id}").status_code == 404
    assert c.get(f"/console/stores/{s1.id}").status_code == 200
    assert c.get("/console/stores/new").status_code == 403
    staff_page = c.get("/console/staff").get_data(as_text=True)
    assert guide1.phone in staff_page and guide2.phone not in staff_page
    assert admin.phone not in staff_page
    assert c.get(f"/console/staff/{guide2.id}").status_code == 404
    assert c.get(f"/console/staff/{admin.id}").status_code == 404
    assert c.get("/console/audit").status_code == 403
    assert c.get("/console/brand").status_code == 403
    token = f.csrf_token(c, f"/console/stores/{s1.id}")
    r = c.post(
        f"/console/stores/{s1.id}",
        data={"code": "S-ONE", "name": "改名", "city": "x", "csrf_token": token},
    )
    assert r.status_code == 403
    # a manager adds a guide to their own store, and only a guide
    r = c.post(
        "/console/staff/new",
        data={
            "name": "新导购",
            "phone": "13911112222",
            "role": "brand_admin",
            "store_id": s1.id,
            "password": "long-enough-1",
            "csrf_token": token,
        },
    )
    assert r.status_code == 400
    r = c.post(
        "/console/staff/new",
        data={
            "name": "新导购",
            "phone": "13911112222",
            "role": "guide",
            "store_id": s1.id,
            "password": "long-enough-1",
            "csrf_token": token,
        },
    )
    assert r.status_code == 302
    with use_brand(b.id):
        new = Staff.by_phone("13911112222")
        assert (new.role, new.store_id) == ("guide", s1.id)

    c = app.test_client()
    f.login(c, b, guide1)
    assert c.get("/console/stores").status_code == 403
    assert c.get("/console/staff").status_code == 403
    assert c.get(f"/console/staff/{guide1.id}").status_code == 403
    me = c.get("/console/me").get_data(as_text=True)
    assert guide1.phone in me and guide2.phone not in me


def test_platform_admin_switches_brand(app, runner, ctx):
    a, b = f.brand(name="甲品牌"), f.brand(name="乙品牌")
    f.store(a, code="S-AAA")
    f.store(b, code="S-BBB")
    assert (
        runner.invoke(
            args=["platform-admin", "create", "--username", "ops", "--password", "ops-password-1"]
        ).exit_code
        == 0
    )
    c = app.test_client()
    token = f.csrf_token(c, "/console/login")
    r = c.post(
        "/console/login",
        data={"brand": "", "account": "ops", "password": "ops-password-1", "csrf_token": token},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/brands")
    assert c.get("/console/stores").status_code == 302  # no brand chosen yet
    page = c.get("/console/brands").get_data(as_text=True)
    assert "甲品牌" in page and "乙品牌" in page
    token = f.csrf_token(c, "/console/brands")
    c.post("/console/brands", data={"brand_id": b.id, "csrf_token": token})
    assert _visible_codes(c) == {"S-BBB"}
    c.post("/console/brands", data={"brand_id": a.id, "csrf_token": token})
    assert _visible_codes(c) == {"S-AAA"}
    # a brand admin cannot reach the brand switch
    admin = f.staff(a)
    c2 = app.test_client()
    f.login(c2, a, admin)
    assert c2.get("/console/brands").status_code == 403


def test_store_search_and_pagination(app, ctx):
    b = f.brand()
    for i in range(25):
        f.store(b, code=f"S-{i:03d}", city="杭州" if i % 5 == 0 else "上海")
    admin = f.staff(b)
    c = app.test_client()
    f.login(c, b, admin)
    first = c.get("/console/stores").get_data(as_text=True)
    assert "S-000" in first and "S-024" not in first and pager.total(first) == "共 25 条"
    second = c.get(pager.link(first, "older")).get_data(as_text=True)
    assert "S-024" in second and "S-000" not in second
    assert pager.link(second, "older") is None
    back = c.get(pager.link(second, "newer")).get_data(as_text=True)
    assert set(re.findall(r">(S-\d+)<", back)) == {f"S-{i:03d}" for i in range(20)}
    hz = c.get("/console/stores?q=杭州").get_data(as_text=True)
    assert set(re.findall(r">(S-\d+)<", hz)) == {"S-000", "S-005", "S-010", "S-015", "S-020"}


def test_bad_input_on_every_form_shows_an_error_and_writes_nothing(app, ctx):
    b = f.brand()
    s = f.store(b, code="S-1")
    admin = f.staff(b)
    c = app.test_client()
    f.login(c, b, admin)
    token = f.csrf_token(c, "/console/stores/new")
    bad_stores = [
        {"code": "", "name": "店", "city": "上海"},
        {"code": "has space", "name": "店", "city": "上海"},
        {"code": "S-2", "name": "", "city": "上海"},
        {"code": "S-2", "name": "店", "city": ""},
        {"code": "S-1", "name": "重复", "city": "上海"},  # duplicate code
        {"code": "S-2", "name": "店" * 500, "city": "上海"},
    ]
    for data in bad_stores:
        r = c.post("/console/stores/new", data={**data, "csrf_token": token})
        assert r.status_code in (400, 409), data
        assert 'class="error"' in r.get_data(as_text=True)
    assert count(Store, b) == 1
    r = c.post(
        f"/console/stores/{s.id}", data={"code": "", "name": "x", "city": "y", "csrf_token": token}
    )
    assert r.status_code == 400
    with use_brand(b.id):
        assert db.session.get(Store, s.id).name == s.name

    bad_staff = [
        {"name": "甲", "phone": "12345", "role": "guide", "store_id": s.id, "password": "x" * 9},
        {
            "name": "甲",
            "phone": "13900000001",
            "role": "guide",
            "store_id": "",
            "password": "x" * 9,
        },
        {
            "name": "甲",
            "phone": "13900000001",
            "role": "boss",
            "store_id": s.id,
            "password": "x" * 9,
        },
        {
            "name": "甲",
            "phone": "13900000001",
            "role": "guide",
            "store_id": s.id,
            "password": "short",
        },
        {"name": "甲", "phone": "13900000001", "role": "guide", "store_id": s.id, "password": ""},
        {
            "name": "",
            "phone": "13900000001",
            "role": "guide",
            "store_id": s.id,
            "password": "x" * 9,
        },
        {
            "name": "甲",
            "phone": admin.phone,
            "role": "guide",
            "store_id": s.id,
            "password": "x" * 9,
        },
        {
            "name": "甲",
            "phone": "13900000001",
            "role": "guide",
            "store_id": 999999,
            "password": "x" * 9,
        },
    ]
    before = count(Staff, b)
    for data in bad_staff:
        r = c.post("/console/staff/new", data={**data, "csrf_token": token})
        assert 400 <= r.status_code < 500, data
    assert count(Staff, b) == before

    r = c.post(
        "/console/brand", data={"name": "品牌", "timezone": "Mars/Olympus", "csrf_token": token}
    )
    assert r.status_code == 400
    r = c.post(
        "/console/brand",
        data={
            "name": "品牌",
            "timezone": "Asia/Shanghai",
            "aes_key": "!" * 43,
            "csrf_token": token,
        },
    )
    assert r.status_code == 400
    db.session.expire_all()
    from org.models import Brand

    assert Brand.by_slug(b.slug).timezone == "Asia/Shanghai"
    assert Brand.by_slug(b.slug).aes_key is None


def test_changes_are_in_the_audit_log(app, ctx):
    b = f.brand()
    admin = f.staff(b)
    c = app.test_client()
    f.login(c, b, admin)
    token = f.csrf_token(c, "/console/stores/new")
    c.post(
        "/console/stores/new",
        data={"code": "S-9", "name": "旧名", "city": "上海", "csrf_token": token},
    )
    with use_brand(b.id):
        store = Store.by_code("S-9")
    c.post(
        f"/console/stores/{store.id}",
        data={"code": "S-9", "name": "新名", "city": "上海", "active": "y", "csrf_token": token},
    )
    c.post(
        f"/console/staff/{admin.id}",
        data={
            "name": admin.name,
            "phone": admin.phone,
            "role": "brand_admin",
            "store_id": "",
            "active": "y",
            "password": "a-new-password",
            "csrf_token": token,
        },
    )
    entries = (
        db.session.execute(select(AuditLog).where(AuditLog.brand_id == b.id).order_by(AuditLog.id))
        .scalars()
        .all()
    )
    assert [(e.action, e.object_type) for e in entries] == [
        ("create", "store"),
        ("update", "store"),
        ("update", "staff"),
    ]
    assert entries[0].actor_label == admin.display_name
    assert entries[1].before == {"name": "旧名"} and entries[1].after == {"name": "新名"}
    assert entries[2].after == {"password_hash": "***(changed)"}
    page = c.get("/console/audit").get_data(as_text=True)
    assert "旧名" in page and "新名" in page and "scrypt" not in page


def test_failed_jobs_are_listed_and_can_be_retried(app, ctx):
    import tests.core.test_jobs as tj

    b = f.brand()
    admin = f.staff(b)
    tj.FAILURES.clear()
    row_id = jobs.enqueue(tj.flaky, "console", 3, brand_id=b.id)
    db.session.commit()
    for _ in range(3):
        jobs.run_outbox_job(row_id)
    c = app.test_client()
    f.login(c, b, admin)
    page = c.get("/console/jobs").get_data(as_text=True)
    assert "tests.core.test_jobs.flaky" in page and "boom 3" in page
    assert "失败 (1)" in page and "已完成 (0)" in page
    # A busy brand's done jobs: the tab counts up to 1,000, and the list pages by cursor.
    db.session.execute(
        text(
            "INSERT INTO outbox_job (brand_id, func, args, queue, status, attempts,"
            " max_attempts, available_at, created_at)"
            " SELECT :b, 'tests.core.test_jobs.flaky', '[]', 'default', 'done', 1, 3, now(),"
            " now() FROM generate_series(1, 1001)"
        ),
        {"b": b.id},
    )
    db.session.commit()
    page = c.get("/console/jobs?status=done").get_data(as_text=True)
    assert "已完成 (1,000+)" in page and pager.total(page) == "共 1,000+ 条"
    assert "status=done" in pager.link(page, "older")
    token = f.csrf_token(c, "/console/jobs")
    r = c.post(f"/console/jobs/{row_id}/retry", data={"csrf_token": token})
    assert r.status_code == 302
    db.session.expire_all()
    row = db.session.get(jobs.OutboxJob, row_id)
    assert row.status in (jobs.QUEUED, jobs.PENDING)
    jobs.run_outbox_job(row_id)
    db.session.expire_all()
    assert db.session.get(jobs.OutboxJob, row_id).status == jobs.DONE
