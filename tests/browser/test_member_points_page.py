"""The points page in WeChat's browser (390x844): future expiries one line per month of the
brand's calendar, history in keyset pages, nothing wider than the phone."""

from __future__ import annotations

import os
import re

from playwright.sync_api import expect

from tests.browser.test_member_center_weui import _activate_with_a_reload
from tests.browser.test_walkthrough import BRAND, _phone


def test_points_page_groups_expiries_by_month(browser, live_server, tmp_path):
    live_server.invoke("demo")
    m = _phone(browser, live_server)
    page = m.page
    try:
        _activate_with_a_reload(m)
        m.follow(page.locator("[data-figure=points]"))
        expect(page).to_have_url(re.compile(rf"/m/{BRAND}/points$"))
        months = page.get_by_test_id("expiring")
        assert months.count() <= 6
        for text in months.all_inner_texts():
            assert re.match(r"^\d{4}年\d{1,2}月\s+\d+ 积分到期$", text.strip()), text
        # the page fits the phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shots = os.environ.get("WMB_WALKTHROUGH_SHOTS") or str(tmp_path)
        page.screenshot(path=os.path.join(shots, "member-points.png"), full_page=True)
        m.check()
    finally:
        m.context.close()
