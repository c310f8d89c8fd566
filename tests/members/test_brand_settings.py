"""Settings rows that member pages read on every request (tier levels and settings, points
rules, distribution rules, system tags, the welcome coupon) are cached in the process under
the brand's generation marker (``wechat.brand_settings``): read once, and reloaded by every
process as soon as a change made through the app is committed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sqlalchemy import event, text

from core.db import db
from core.tenancy import use_brand
from members.tiers_tags import tiers
from points import rules
from tests import factories
from tests.support.apps import DATABASE_URL, REDIS_URL, build_app
from wechat import brand_cache, brand_settings

ROOT = __file__.rsplit("/tests/", 1)[0]


def _levels(brand) -> list:
    with use_brand(brand.id):
        levels = [
            tiers.create_level(code="normal", name="普通会员", rank=0, threshold=0),
            tiers.create_level(code="gold", name="金卡会员", rank=1, threshold=100_000),
        ]
        db.session.commit()
        return [lv.id for lv in levels]


def _card(client, brand) -> str:
    res = client.get(f"/m/{brand.slug}/")
    assert res.status_code == 200, res.status_code
    return res.get_data(as_text=True)


def _rename_level_in_another_process(level_id: int, brand_id: int, name: str) -> None:
    """What the console does from another process: the level changed through the service
    and committed."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        os.environ.update(DATABASE_URL={DATABASE_URL!r}, REDIS_URL={REDIS_URL!r})
        from app import create_app
        from config import TestConfig
        from core.db import db
        from core.tenancy import use_brand
        from members.tiers_tags import tiers
        app = create_app(TestConfig(dict(os.environ)))
        with app.app_context(), use_brand({brand_id}):
            tiers.update_level(level_id={level_id}, name={name!r})
            db.session.commit()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=120)


class _Statements:
    """Counts the statements that read a table."""

    def __init__(self, table: str):
        self.table, self.seen = table, 0

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {self.table}" in statement:
            self.seen += 1


def test_levels_are_read_once_then_a_change_in_another_process_is_seen_at_once(app, brand):
    normal, _gold = _levels(brand)
    member = factories.member(phone="13900000011", activated=True)
    member.tier_id = normal
    db.session.commit()
    client = app.test_client()
    factories.sign_in_member(client, brand, member.id)
    brand_cache.clear()
    with _Statements("tier_level") as reads:
        pages = [_card(client, brand) for _ in range(3)]
    assert all("普通会员" in p and "金卡会员" in p for p in pages)
    assert reads.seen == 1
    # Changed behind the app's back (raw SQL, nobody tells Redis): the cached copy stands,
    # which shows the pages read the cache.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE tier_level SET name = '暗改' WHERE id = :i"), {"i": normal})
    assert "暗改" not in _card(client, brand)
    # Changed through the app in another process: the next page shows it.
    _rename_level_in_another_process(normal, brand.id, "银卡会员")
    page = _card(client, brand)
    assert "银卡会员" in page and "暗改" not in page


def test_another_app_instance_sees_points_rules_changed_in_this_one(app, brand):
    member = factories.member(phone="13900000012", activated=True).id
    other = build_app()  # another gunicorn worker
    client = other.test_client()
    factories.sign_in_member(client, brand, member)
    _card(client, brand)
    seen = []
    with other.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        brand_cache.current(brand.slug)
        seen.append(rules.get_settings().welcome_points)
    with use_brand(brand.id):
        rules.update_settings(welcome_points=321)
        db.session.commit()
    with other.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        brand_cache.current(brand.slug)
        seen.append(rules.get_settings().welcome_points)
    assert seen[1] == 321 and seen[0] != 321


def test_the_console_and_jobs_read_the_database_not_the_cache(app, brand):
    normal, _gold = _levels(brand)
    with app.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        brand_cache.current(brand.slug)
        assert [lv.name for lv in tiers.list_levels()] == ["普通会员", "金卡会员"]
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE tier_level SET name = '暗改' WHERE id = :i"), {"i": normal})
    db.session.expire_all()  # a new request's session
    # No cached brand in this request (a console page, a job): the row as it is.
    with app.app_context(), app.test_request_context("/console/tiers"), use_brand(brand.id):
        assert [lv.name for lv in tiers.list_levels()][0] == "暗改"


def test_a_rolled_back_change_keeps_the_marker_and_copies_are_the_callers_own(app, brand):
    _levels(brand)
    with app.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        keys = brand_cache.current(brand.slug)
        first = tiers.list_levels()
        first[0].name = "改了我的副本"
        assert tiers.list_levels()[0].name == "普通会员"
    with use_brand(brand.id):
        rules.update_settings(welcome_points=5)
        db.session.rollback()
    with app.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        assert brand_cache.current(brand.slug).gen == keys.gen
    with use_brand(brand.id):
        rules.update_settings(welcome_points=6)
        db.session.commit()
    with app.test_request_context(f"/m/{brand.slug}/"), use_brand(brand.id):
        assert brand_cache.current(brand.slug).gen != keys.gen
        assert rules.get_settings().welcome_points == 6
    brand_settings.clear()
