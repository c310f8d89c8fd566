"""The list pager in the browser: the members list pages forward and back by its links, the
search kept in them, and the total shown as a capped count."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from org.models import Brand
from tests.browser import walk_console as console
from tests.support import bulk


def _cards(w) -> list[str]:
    return w.page.locator("main table tbody td:first-child a").all_inner_texts()


def test_members_list_pages_by_its_links(browser, live_server):
    live_server.invoke("demo")
    with live_server.app.app_context():
        brand_id = db.session.execute(select(Brand.id).where(Brand.slug == console.BRAND)).scalar()
        bulk.members(brand_id, 45, name="'翻页会员' || g", phone="'135' || lpad(g::text, 8, '0')")
    w = console.console(browser, live_server)
    try:
        console.log_in(w)
        w.open("/console/members")
        page = w.page
        total = page.get_by_test_id("pager-total")
        expect(total).to_have_text(re.compile(r"^共 \d+ 条$"))
        n = int(re.search(r"\d+", total.inner_text()).group())
        assert n >= 45
        first = _cards(w)
        assert len(first) == 20
        expect(page.get_by_test_id("pager-newer")).to_have_count(0)

        pages = [first]
        while page.get_by_test_id("pager-older").count():
            w.follow(page.get_by_test_id("pager-older"), form=False)
            pages.append(_cards(w))
        seen = [card for cards in pages for card in cards]
        assert len(seen) == len(set(seen)) == n  # every member once

        w.follow(page.get_by_test_id("pager-newer"), form=False)
        assert _cards(w) == pages[-2]
        w.follow(page.get_by_test_id("pager-first"), form=False)
        assert _cards(w) == first

        # A search stays in the pager's links.
        page.get_by_placeholder("卡号、手机号或姓名").fill("翻页会员")
        w.follow(page.get_by_role("button", name="搜索"), form=False)
        expect(total).to_have_text("共 45 条")
        w.follow(page.get_by_test_id("pager-older"), form=False)
        assert "q=" in page.url and "after=" in page.url
        expect(page.get_by_placeholder("卡号、手机号或姓名")).to_have_value("翻页会员")
        expect(total).to_have_text("共 45 条")
        assert all(c for c in _cards(w))
        w.check()
    finally:
        w.context.close()
