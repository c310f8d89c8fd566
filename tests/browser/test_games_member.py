"""The games in WeChat's browser (390x844): from the member center to the wheel, a spin that
stops on the drawn prize (the sector under the pointer is the recorded draw's), the coupon
in "my coupons"; a scratch card rubbed off with the mouse; the nine-grid and the check-in.

Screenshots of every page go to WMB_WALKTHROUGH_SHOTS (see walk.py)."""

from __future__ import annotations

import datetime as dt
import os
import re

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db, utcnow
from core.tenancy import use_brand
from coupons import services as coupons
from games import services
from games.models import GameDraw
from tests import factories as f
from tests.browser.walk import WECHAT_UA, Walker

OPENID = "o-e2e-games"


def _window() -> dict:
    now = utcnow()
    return {"starts_at": now - dt.timedelta(hours=1), "ends_at": now + dt.timedelta(days=7)}


def _campaign(kind: str, name: str, prizes: list) -> int:
    c = services.create_campaign(
        kind=kind, values={"name": name, "contact": "400-820-8820", **_window()}, prizes=prizes
    )
    services.start_campaign(campaign_id=c.id)
    return c.id


def _setup(live_server) -> dict:
    with live_server.app.app_context():
        brand = f.brand(name="茶语")
        with use_brand(brand.id):
            member = f.member(phone="13900008888", name="王小明", activated=True, openid=OPENID)
            tpl = coupons.create_template(
                name="奶茶立减5元",
                kind="cash",
                value_fen=500,
                threshold_fen=0,
                valid_from=utcnow() - dt.timedelta(days=1),
                valid_until=utcnow() + dt.timedelta(days=30),
            )
            db.session.flush()
            # The coupon is the only prize with a weight: the spin must land on it, among others.
            wheel = _campaign(
                "wheel",
                "幸运大转盘",
                [
                    {"name": "20积分", "kind": "points", "points": 20, "value_fen": 20,
                     "weight": 0},
                    {"name": "奶茶立减5元", "kind": "coupon", "coupon_template_id": tpl.id,
                     "value_fen": 500, "weight": 1, "stock": 100},
                    {"name": "保温杯", "kind": "gift", "value_fen": 5900, "weight": 0, "stock": 3},
                    {"name": "谢谢参与", "kind": "none", "weight": 0},
                    {"name": "5积分", "kind": "points", "points": 5, "value_fen": 5, "weight": 0},
                ],
            )  # fmt: skip
            scratch = _campaign(
                "scratch",
                "刮刮乐",
                [
                    {"name": "10积分", "kind": "points", "points": 10, "value_fen": 10,
                     "weight": 1},
                    {"name": "谢谢参与", "kind": "none", "weight": 0},
                ],
            )  # fmt: skip
            grid = _campaign(
                "grid",
                "九宫格抽奖",
                [
                    {"name": "8积分", "kind": "points", "points": 8, "value_fen": 8, "weight": 0},
                    {"name": "谢谢参与", "kind": "none", "weight": 1},
                    {"name": "3积分", "kind": "points", "points": 3, "value_fen": 3, "weight": 0},
                ],
            )  # fmt: skip
            checkin = _campaign(
                "checkin",
                "每日签到",
                [{"name": "签到2积分", "kind": "points", "points": 2, "value_fen": 2,
                  "streak_day": 1}],
            )  # fmt: skip
            store = f.store(brand, name="南京西路店")
            gift = services.create_campaign(
                kind="wheel",
                values={"name": "礼品转盘", "contact": "400-820-8820",
                        "pickup_store_ids": [store.id], **_window()},
                prizes=[
                    {"name": "保温杯", "kind": "gift", "value_fen": 5900, "weight": 1, "stock": 3},
                    {"name": "谢谢参与", "kind": "none", "weight": 0},
                ],
            ).id  # fmt: skip
            services.start_campaign(campaign_id=gift)
            db.session.commit()
            data = {"gift": gift, "brand": brand.slug, "brand_id": brand.id, "member_id": member.id,
                    "wheel": wheel, "scratch": scratch, "grid": grid,
                    "checkin": checkin}  # fmt: skip
        db.session.remove()
    return data


def _phone(browser, live_server, data) -> Walker:
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True, device_scale_factor=2,
    )  # fmt: skip
    app = live_server.app
    value = app.session_interface.get_signing_serializer(app).dumps(
        {
            f"member:{data['brand_id']}": {
                "b": data["brand_id"],
                "o": OPENID,
                "u": None,
                "m": data["member_id"],
            }
        }  # fmt: skip
    )
    context.add_cookies([{"name": app.config.get("SESSION_COOKIE_NAME", "session"),
                          "value": value, "url": live_server.url}])  # fmt: skip
    return Walker(context, "games")


def _recorded(live_server, data, draw_id: int) -> GameDraw:
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        draw = db.session.scalars(select(GameDraw).where(GameDraw.id == draw_id)).one()
        db.session.expunge(draw)
        db.session.remove()
    return draw


def _shot(page, tmp_path, name: str) -> None:
    folder = os.environ.get("WMB_WALKTHROUGH_SHOTS") or str(tmp_path)
    page.screenshot(path=os.path.join(folder, f"games-{name}.png"), full_page=True)


# The sector under the pointer, from where the disc actually stands (its computed transform).
_STOPPED_SECTOR = """() => {
  const disc = document.querySelector('.g-wheel__disc');
  const m = new DOMMatrixReadOnly(getComputedStyle(disc).transform);
  const turned = (Math.atan2(m.b, m.a) * 180 / Math.PI + 360) % 360;
  const labels = [...disc.querySelectorAll('[data-sector]')];
  const at = (360 - turned) % 360;  // the disc's angle now under the pointer (at the top)
  return labels[Math.floor(at / (360 / labels.length))].getAttribute('data-prize-id');
}"""


def test_spin_the_wheel_see_the_prize_and_find_the_coupon(browser, live_server, tmp_path):
    data = _setup(live_server)
    m = _phone(browser, live_server, data)
    page = m.page
    slug = data["brand"]
    try:
        m.open(f"/m/{slug}/", form=False)
        m.follow(page.locator(f"a[href$='/m/{slug}/games']").first, form=False)
        expect(page.get_by_test_id("games")).to_contain_text("幸运大转盘")
        m.follow(page.get_by_role("link", name=re.compile("幸运大转盘")), form=False)
        expect(page).to_have_url(re.compile(rf"/m/{slug}/games/{data['wheel']}$"))
        expect(page.locator("[data-plays-left]")).to_have_text("不限")
        expect(page.locator("[data-sector]")).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        _shot(page, tmp_path, "wheel-before")

        # A double tap plays once: the button is off while the wheel turns.
        go = page.get_by_role("button", name="抽奖")
        go.dblclick()
        dialog = page.locator("#game-dialog")
        expect(dialog).to_be_visible(timeout=15_000)
        expect(dialog).to_contain_text("恭喜中奖")
        expect(dialog).to_contain_text("奶茶立减5元")
        _shot(page, tmp_path, "wheel-result")
        draw_id = int(dialog.get_attribute("data-draw"))
        draw = _recorded(live_server, data, draw_id)
        assert draw.prize_name == "奶茶立减5元" and draw.status == "granted"
        # the animation stopped on the recorded prize's sector
        assert page.evaluate(_STOPPED_SECTOR) == str(draw.slot_prize_id)
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            plays = db.session.scalars(
                select(GameDraw.id).where(GameDraw.member_id == data["member_id"])
            ).all()
            db.session.remove()
        assert plays == [draw_id]  # the double tap drew once

        # From the dialog to "my coupons": the coupon is there.
        m.follow(dialog.get_by_role("link", name="我的优惠券"), form=False)
        expect(page.locator("main")).to_contain_text("奶茶立减5元")
        _shot(page, tmp_path, "my-coupons")
        m.open(f"/m/{slug}/games/prizes", form=False)
        expect(page.get_by_test_id("prize")).to_contain_text("奶茶立减5元")
        expect(page.get_by_test_id("prize")).to_contain_text("已放入我的优惠券")
        _shot(page, tmp_path, "my-prizes")
        m.open(f"/m/{slug}/games/{data['wheel']}/rules", form=False)
        expect(page.get_by_test_id("prize-table")).to_contain_text("100.00%")
        _shot(page, tmp_path, "rules")
        m.open(f"/m/{slug}/games/{data['wheel']}/fairness", form=False)
        expect(page.get_by_test_id("example")).to_contain_text("HMAC-SHA256")
        _shot(page, tmp_path, "fairness")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        m.check()
    finally:
        m.context.close()


def test_scratch_the_card_with_the_mouse(browser, live_server, tmp_path):
    data = _setup(live_server)
    m = _phone(browser, live_server, data)
    page = m.page
    try:
        m.open(f"/m/{data['brand']}/games/{data['scratch']}", form=False)
        canvas = page.locator(".g-scratch canvas")
        expect(canvas).to_be_visible()
        _shot(page, tmp_path, "scratch-before")
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 10, box["y"] + 10)
        page.mouse.down()
        # rub row by row across the card, as a finger would
        rows = 7
        for r in range(rows):
            y = box["y"] + 12 + r * (box["height"] - 24) / (rows - 1)
            for step in range(12):
                x = box["x"] + 8 + (box["width"] - 16) * (step if r % 2 == 0 else 11 - step) / 11
                page.mouse.move(x, y, steps=2)
        page.mouse.up()
        dialog = page.locator("#game-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("10积分")
        expect(page.locator(".g-scratch [data-result]")).to_have_text("10积分")
        expect(canvas).to_have_class(re.compile(r"\bgone\b"))
        _shot(page, tmp_path, "scratch-result")
        draw = _recorded(live_server, data, int(dialog.get_attribute("data-draw")))
        assert draw.prize_name == "10积分" and draw.status == "granted"
        # The member's points history says where the 10 points came from.
        m.open(f"/m/{data['brand']}/points", form=False)
        won = page.get_by_test_id("history").filter(has_text="游戏奖励").first
        expect(won).to_contain_text("+10")
        _shot(page, tmp_path, "points-history")
        m.check()
    finally:
        m.context.close()


def test_nine_grid_stops_on_the_prize_and_check_in(browser, live_server, tmp_path):
    data = _setup(live_server)
    m = _phone(browser, live_server, data)
    page = m.page
    try:
        m.open(f"/m/{data['brand']}/games/{data['grid']}", form=False)
        expect(page.locator("[data-cell]")).to_have_count(8)
        page.get_by_role("button", name="抽奖").click()
        dialog = page.locator("#game-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("谢谢参与")
        lit = page.locator(".g-grid__cell.on")
        expect(lit).to_have_count(1)
        draw = _recorded(live_server, data, int(dialog.get_attribute("data-draw")))
        assert lit.get_attribute("data-prize-id") == str(draw.slot_prize_id)
        _shot(page, tmp_path, "grid-result")
        page.locator("[data-close]").click()
        expect(dialog).to_be_hidden()
        _shot(page, tmp_path, "grid")

        m.open(f"/m/{data['brand']}/games/{data['checkin']}", form=False)
        expect(page.locator("[data-streak]")).to_have_text("0")
        page.get_by_role("button", name="立即签到").click()
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("签到2积分")
        expect(page.locator("[data-streak]")).to_have_text("1")
        expect(page.locator("td.today")).to_have_class(re.compile(r"\bdone\b"))
        _shot(page, tmp_path, "checkin-result")
        page.locator("[data-close]").click()
        expect(page.get_by_role("button", name="今日已签到")).to_be_disabled()
        _shot(page, tmp_path, "checkin")
        m.check()
    finally:
        m.context.close()


def test_a_gift_winner_gives_an_address(browser, live_server, tmp_path):
    data = _setup(live_server)
    m = _phone(browser, live_server, data)
    page = m.page
    try:
        m.open(f"/m/{data['brand']}/games/{data['gift']}", form=False)
        page.get_by_role("button", name="抽奖").click()
        dialog = page.locator("#game-dialog")
        expect(dialog).to_contain_text("保温杯")
        m.follow(dialog.get_by_role("link", name="领取礼品"))
        expect(page.locator("main")).to_contain_text("收货地址")
        page.get_by_label("收货人").fill("王小明")
        page.get_by_label("手机号").fill("1390000")
        page.get_by_label("省份").fill("上海市")
        page.get_by_label("城市").fill("上海市")
        page.get_by_label("详细地址").fill("南京西路100号")
        page.get_by_role("button", name="提交").click()
        expect(page.locator(".error")).to_contain_text("请输入手机号码")
        expect(page.get_by_label("详细地址")).to_have_value("南京西路100号")
        _shot(page, tmp_path, "claim-error")
        # the refused form answers 400, which Chromium logs; nothing else went wrong
        assert m.problems and all("status of 400" in p for p in m.problems), m.problems
        m.problems.clear()
        page.get_by_label("手机号").fill("139 0000 8888")
        m.submit(page.get_by_role("button", name="提交"))
        expect(page).to_have_url(re.compile(rf"/m/{data['brand']}/games/prizes$"))
        expect(page.get_by_test_id("prize")).to_contain_text("已收到收货信息")
        expect(page.get_by_test_id("prize")).to_contain_text("南京西路100号")
        _shot(page, tmp_path, "claim-done")
        m.check()
    finally:
        m.context.close()
