"""The QR code list in the browser, at a laptop's 1366x900: pages by its links, filters by
kind, searches by name; a store manager sees their store's codes only."""

from __future__ import annotations

import os
import re

from playwright.sync_api import expect
from sqlalchemy import select, text

from core.db import db
from core.tenancy import use_brand
from members.models import MemberQrCode
from org.models import Brand, Store
from tests import factories as f
from tests.browser import walk
from tests.browser import walk_console as console

URL = "/console/members/qrcodes"
# Stores (with their codes) beyond the demo's, so that the list has a second page.
EXTRA = """
WITH s AS (
  INSERT INTO store (brand_id, code, name, city, region, address, active, created_at, updated_at)
  SELECT :b, 'QB' || lpad(g::text, 3, '0'), '翻页门店' || g, '上海', '', '', true, now(), now()
  FROM generate_series(1, 60) g RETURNING id, code
)
INSERT INTO member_qr_code (brand_id, kind, store_id, scene, ticket, url, created_at)
SELECT :b, 'store', id, 's:' || code, 't-' || code, 'https://example.invalid/' || code, now()
FROM s
"""


def _scenes(w) -> list[str]:
    return w.page.locator("main table tbody tr[data-scene]").evaluate_all(
        "rows => rows.map(r => r.dataset.scene)"
    )


def _shot(w, name: str) -> None:
    folder = os.environ.get("WMB_QR_SHOTS")
    if folder:
        w.page.screenshot(path=os.path.join(folder, name), full_page=True)


def test_qr_codes_page_as_admin_and_as_store_manager(browser, live_server):
    live_server.invoke("demo")
    with live_server.app.app_context():
        brand = db.session.execute(select(Brand).where(Brand.slug == console.BRAND)).scalar_one()
        db.session.execute(text(EXTRA), {"b": brand.id})
        db.session.commit()
        with use_brand(brand.id):
            codes = list(db.session.execute(select(MemberQrCode)).scalars())
            guide_scenes = {q.scene for q in codes if q.kind == "guide"}
            store = db.session.get(Store, next(q.store_id for q in codes if q.kind == "guide"))
            mine = {q.scene for q in codes if q.store_id == store.id}
        manager_phone = f.staff(brand, "store_manager", store).phone
    assert guide_scenes and len(codes) > 50

    w = console.console(browser, live_server)
    try:
        console.log_in(w)
        w.open(URL)
        page = w.page
        expect(page.locator("h1")).to_have_text("门店与导购二维码")
        first = _scenes(w)
        assert len(first) == 50
        _shot(w, "qr-admin-1.png")
        w.follow(page.get_by_test_id("pager-older"), form=False)
        second = _scenes(w)
        assert set(first).isdisjoint(second) and len(first) + len(second) == len(codes)
        w.follow(page.get_by_test_id("pager-newer"), form=False)
        assert _scenes(w) == first

        page.get_by_label("类型").select_option(label="导购")
        w.follow(page.get_by_role("button", name="搜索"), form=False)
        assert set(_scenes(w)) == guide_scenes
        page.get_by_label("类型").select_option(label="全部类型")
        page.get_by_placeholder("门店或导购名称、门店编号").fill("翻页门店7")
        w.follow(page.get_by_role("button", name="搜索"), form=False)
        assert _scenes(w) == ["s:QB007"]
        _shot(w, "qr-admin-search.png")
        w.check()
    finally:
        w.context.close()

    m = walk.console(browser, live_server.url, "manager")
    try:
        walk.console_login(m, console.BRAND, manager_phone, f.PASSWORD)
        page = m.page
        expect(page).to_have_url(re.compile(r"/console/"))
        m.open(URL)
        assert set(_scenes(m)) == mine
        expect(page.get_by_test_id("pager-older")).to_have_count(0)
        _shot(m, "qr-manager.png")
        m.check()
    finally:
        m.context.close()
