"""Tenancy: brand A's admin can reach none of brand B's objects through any URL."""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import re

import pytest
from sqlalchemy import select

from core import exports, jobs
from core.db import db, utcnow
from core.tenancy import BrandScoped, NoBrandContext, use_brand
from org.models import Staff, Store
from tests import factories as f
from tests.support.apps import build_app


def _brand_scoped_models():
    return {
        m.class_.__tablename__: m.class_
        for m in db.Model.registry.mappers
        if issubclass(m.class_, BrandScoped)
    }


# URL arguments whose name does not say their table.
ARG_TABLES = {"rule_id": "wechat_keyword", "tag_id": "tag_definition", "qr_id": "member_qr_code"}


def _object_for(arg: str, brand_b, models) -> int | None:
    """An id of brand B's object for a URL argument such as ``store_id``."""
    if arg == "job_id":
        row_id = jobs.enqueue("tests.core.test_jobs.record_effect", "x", brand_id=brand_b.id)
        db.session.commit()
        return row_id
    if arg == "export_id":  # a finished export of brand B, still downloadable
        with use_brand(brand_b.id):
            row = exports.ExportFile(
                kind="members",
                params={},
                requested_by="s:1",
                filename="members.csv",
                status=exports.DONE,
                path=f"{brand_b.id}/export.csv",
                expires_at=utcnow() + dt.timedelta(hours=1),
            )
            db.session.add(row)
            db.session.commit()
            path = os.path.join(exports.exports_dir(), row.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("卡号,手机号\n0000000001,13800000001\n")
            return row.id
    name = ARG_TABLES.get(arg) or arg.removesuffix("_id")
    candidates = [
        cls for table, cls in models.items() if table == name or table.endswith("_" + name)
    ]
    for cls in candidates:
        with use_brand(brand_b.id):
            obj = db.session.execute(select(cls).limit(1)).scalar_one_or_none()
        if obj is not None:
            return obj.id
    return None


def test_every_object_url_of_another_brand_answers_404(app, client, runner, ctx):
    import tests.core.test_jobs  # noqa: F401 - registers the job used for job_id

    # brand B: the demo brand with all its objects; its WeChat calls (QR codes) go to the
    # sandbox in-process, as under `make run`
    nowhere = "http://127.0.0.1:9"
    seeding = build_app(
        WECHAT_SANDBOX_INPROCESS="1",
        PUBLIC_URL=nowhere,
        WECHAT_API_BASE=nowhere + "/sandbox/wechat",
    )
    # (in a fresh context: the CLI would otherwise reuse this test's app context)
    result = contextvars.Context().run(seeding.test_cli_runner().invoke, args=["demo"])
    assert result.exit_code == 0, result.output
    assert "QR codes: 9 created" in result.output, result.output
    from org.models import Brand

    brand_b = Brand.by_slug("demo")
    brand_a = f.brand()
    admin_a = f.staff(brand_a)
    assert f.login(client, brand_a, admin_a).status_code == 302
    token = f.csrf_token(client, "/console/stores/new")

    models = _brand_scoped_models()
    checked, unbuildable = [], []
    for rule in app.url_map.iter_rules():
        int_args = [
            a for a, conv in rule._converters.items() if type(conv).__name__ == "IntegerConverter"
        ]
        if not int_args or set(rule.arguments) != set(int_args):
            continue
        values = {a: _object_for(a, brand_b, models) for a in int_args}
        if any(v is None for v in values.values()):
            unbuildable.append(rule.rule)
            continue
        url = rule.rule
        for a, v in values.items():
            url = re.sub(rf"<int:{a}>", str(v), url)
        for method in sorted(rule.methods & {"GET", "POST"}):
            if method == "GET":
                r = client.get(url)
            else:
                r = client.post(url, data={"csrf_token": token})
            body = r.get_data(as_text=True)

            assert r.status_code == 404, (method, url, r.status_code, body[:3000])
            assert "南京西路" not in body and "13800000" not in body
            checked.append((method, rule.rule))
    assert not unbuildable, f"no brand-B object to build these URLs with: {unbuildable}"
    assert ("GET", "/console/stores/<int:store_id>") in checked
    assert ("POST", "/console/staff/<int:staff_id>") in checked
    assert ("POST", "/console/jobs/<int:job_id>/retry") in checked


def test_brand_scoped_query_without_brand_raises(ctx):
    b = f.brand()
    f.store(b)
    with pytest.raises(NoBrandContext):
        db.session.execute(select(Store)).all()
    # the deliberate cross-brand query
    rows = db.session.execute(select(Store).execution_options(all_brands=True)).all()
    assert len(rows) == 1


def test_queries_only_see_the_current_brand(ctx):
    a, b = f.brand(), f.brand()
    f.store(a, code="A1")
    f.store(b, code="B1")
    f.staff(b)
    with use_brand(a.id):
        assert [s.code for s in db.session.execute(select(Store)).scalars()] == ["A1"]
        assert db.session.execute(select(Staff)).all() == []
    with use_brand(b.id):
        assert [s.code for s in db.session.execute(select(Store)).scalars()] == ["B1"]


def test_secrets_are_encrypted_at_rest(ctx):
    from sqlalchemy import text

    f.brand(
        slug="enc",
        appid="wx1",
        secret="the-app-secret",
        token="tok123",
        aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    )
    raw = db.session.execute(
        text("SELECT secret, token, aes_key FROM brand WHERE slug='enc'")
    ).one()
    assert "the-app-secret" not in raw.secret
    assert raw.token != "tok123"
    assert "abcdefghij" not in raw.aes_key
    from org.models import Brand

    db.session.expire_all()
    assert Brand.by_slug("enc").secret == "the-app-secret"
