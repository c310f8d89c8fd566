"""The data overview and the reports draw their ECharts charts, with data, without errors."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.walk import Walker, console, console_login
from tests.core.test_overview import build_world


@pytest.fixture
def admin_walker(browser, live_server):
    with live_server.app.app_context():
        world = build_world()
        phone, slug = world["admin"].phone, world["brand"].slug
    w = console(browser, live_server.url, "overview")
    console_login(w, slug, phone, factories.PASSWORD)
    expect(w.page).to_have_url(re.compile(r"/console/$"))
    yield w
    w.context.close()


def _drawn(w: Walker, at_least: int) -> None:
    charts = w.page.locator("[data-echart]")
    expect(charts.first).to_have_attribute("data-echart-ready", "1")
    assert charts.count() >= at_least
    expect(w.page.locator("[data-echart] canvas").first).to_be_visible()
    for i in range(charts.count()):
        box = charts.nth(i).locator("canvas").first.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100


def test_overview_draws_its_charts(admin_walker):
    w = admin_walker
    w.follow(w.page.get_by_role("link", name="近 30 天"))
    expect(w.page.locator('[data-figure="new_members"] .ov-value')).to_have_text("5")
    _drawn(w, 5)
    # The trend really holds the figures: ECharts has the option the page gave it.
    total = w.page.evaluate(
        """() => {
          const el = document.querySelector('#ov-members [data-echart]');
          const opt = echarts.getInstanceByDom(el).getOption();
          return opt.series[0].data.reduce((a, b) => a + b, 0);
        }"""
    )
    assert total == 5
    w.shot("/console/?period=30d")
    w.check()


def test_reports_draw_their_charts(admin_walker):
    w = admin_walker
    w.open("/console/points/report", form=False)
    _drawn(w, 2)
    w.shot("/console/points/report")
    w.open("/console/coupons/report", form=False)
    _drawn(w, 2)
    w.shot("/console/coupons/report")
    w.check()
