"""Codes are shown by their Chinese names: the tables cover every code the models know, and
the pages that show them (a member, the audit log, the jobs) carry no raw code or JSON."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core import jobs
from core.db import db
from core.labels import TABLES, has_label, label
from core.tenancy import use_brand
from coupons import models as coupon_models
from members import models as member_models
from members.identities import attach_identity, create_member_row
from org import models as org_models
from org.models import Store
from tests import factories as f


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("member_status", member_models.STATUSES),
        ("member_source", member_models.SOURCES),
        ("identity_kind", member_models.IDENTITY_KINDS),
        ("tag_kind", member_models.TAG_KINDS),
        ("gender", ("m", "f")),
        ("coupon_kind", coupon_models.KINDS),
        ("coupon_status", ("available", "redeemed", "expired", "transferred", "void")),
        ("staff_role", org_models.ROLES),
        ("points_kind", ("earn", "release", "spend", "expire", "refund", "adjust", "welcome")),
    ],
)
def test_every_code_has_a_chinese_name(app, kind, codes):
    with app.test_request_context():
        for code in codes:
            assert has_label(code, kind), f"{kind}: {code} has no name"
            assert re.search(r"[\u4e00-\u9fff]", label(code, kind)), (kind, code)


def test_every_job_has_a_chinese_name(app):
    with app.test_request_context():
        nameless = [name for name in jobs.REGISTRY if not name.startswith("tests.")]
        nameless = [n for n in nameless if not has_label(n, "job")]
        assert nameless == []
        for name in TABLES["job"]:
            assert re.search(r"[\u4e00-\u9fff]", label(name, "job")), name


RAW = re.compile(r"\b(oa_openid|mp_openid|oa|system|quick tag|first_touch|create|update)\b")


def _visible_text(html: str) -> str:
    """What a person reads: no tags, attributes, scripts or styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_member_page_names_source_channel_and_gender_in_chinese(app, ctx):
    b = f.brand()
    admin = f.staff(b)
    with use_brand(b.id):
        member_id, _ = create_member_row(phone="13812345678", source="oa", gender="f")
        attach_identity(member_id=member_id, kind="oa_openid", value="o" + "x" * 27)
        db.session.commit()
    c = app.test_client()
    f.login(c, b, admin)
    html = c.get(f"/console/members/{member_id}").get_data(as_text=True)
    text = _visible_text(html)
    assert "公众号" in text and "女" in text
    assert not RAW.search(text), RAW.search(text)
    assert "13812345678" not in text


def test_audit_log_reads_as_changes_with_operator_names(app, ctx):
    b = f.brand()
    admin = f.staff(b, phone="13800001234")
    c = app.test_client()
    f.login(c, b, admin)
    token = f.csrf_token(c, "/console/stores/new")
    c.post(
        "/console/stores/new",
        data={"code": "S-1", "name": "旧名", "city": "上海", "csrf_token": token},
    )
    with use_brand(b.id):
        store = db.session.execute(select(Store).where(Store.code == "S-1")).scalar_one()
    c.post(
        f"/console/stores/{store.id}",
        data={"code": "S-1", "name": "新名", "city": "上海", "active": "y", "csrf_token": token},
    )
    html = c.get("/console/audit").get_data(as_text=True)
    text = _visible_text(html[html.find("<tbody") : html.find("</tbody>")])
    assert re.search(r"名称\s*:\s*旧名\s*→\s*新名", text), text[text.find("操作日志") :][:800]
    assert "修改" in text and "新建" in text and "门店" in text
    # the operator by name, their phone masked
    assert admin.name in text and "13800001234" not in text and "138****1234" in text
    assert not RAW.search(text) and "{" not in text
    # searching by the Chinese name of the object finds its entries
    found = _visible_text(c.get("/console/audit?q=门店").get_data(as_text=True))
    assert "旧名" in found


def test_jobs_page_names_the_job_and_what_it_concerns(app, ctx):
    from coupons.jobs import send_reminder

    b = f.brand()
    admin = f.staff(b)
    with use_brand(b.id):
        jobs.enqueue(send_reminder, 42, [7, 8, 9], brand_id=b.id)
        db.session.commit()
    c = app.test_client()
    f.login(c, b, admin)
    text = _visible_text(c.get("/console/jobs?status=pending").get_data(as_text=True))
    assert "优惠券到期提醒" in text and "会员：42" in text and "优惠券：3 项" in text
    assert "coupons.jobs" not in text and "kwargs" not in text
