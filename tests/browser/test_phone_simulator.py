"""The phone simulator in headless chromium: the demo brand, set up by `flask demo`, greets a
consumer who scans a store's QR code, answers a keyword and answers a menu item."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from org.models import Brand
from wechat import chatbot
from wechat.models import KeywordReply

SCREENSHOT = "/tmp/phone_simulator.png"


def _plain(text: str) -> str:
    """What a bubble shows of a reply: links keep only their label."""
    return re.sub(r"<[^>]+>", "", text).strip()


def _demo_expectations(live_server) -> dict:
    with live_server.app.app_context():
        brand = Brand.by_slug("demo")
        with use_brand(brand.id):
            settings = chatbot.get_settings()
            rules = {
                r.keyword: r
                for r in db.session.execute(select(KeywordReply)).scalars()
                if r.reply_type == "text" and r.active
            }
            clicks = [
                (top, item)
                for top in settings.menu["button"]
                for item in (top.get("sub_button") or [top])
                if item.get("type") == "click"
            ]
        # a menu item (in a sub-menu when there is one) answered by a keyword reply, and a
        # keyword a person would type that no menu item uses
        clicks.sort(key=lambda c: "sub_button" not in c[0])
        top, item = next((t, i) for t, i in clicks if i["key"] in rules)
        keys = {i["key"] for _, i in clicks}
        keyword = next(k for k in rules if k not in keys and not k.isascii())
        return {
            "greeting": _plain(settings.greeting),
            "keyword": keyword,
            "keyword_reply": _plain(rules[keyword].text),
            "menu_top": top["name"],
            "menu_item": item["name"],
            "menu_key": item["key"],
            "menu_nested": "sub_button" in top,
            "menu_reply": _plain(rules[item["key"]].text),
        }


def test_scan_chat_and_tap_the_menu(page, live_server):
    live_server.invoke("demo")
    want = _demo_expectations(live_server)

    page.goto("/sandbox/phone?brand=demo")
    expect(page.locator(".phone .screen")).to_be_visible()
    page.fill("#nickname", "小红")
    with page.expect_navigation():  # the new consumer's page, not the old one
        page.click("#create-consumer")
    expect(page.locator("#consumer-select")).to_have_value(re.compile(r"^[0-9a-f]{16}$"))
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "no")

    # scan the QR code of the demo store SH001: the account greets the new follower
    page.locator(".targets li", has_text="SH001").locator(".scan-button").first.click()
    expect(page.locator(".chat .system").first).to_contain_text("SH001")
    # the passive reply is the member-card link of the store's code; the greeting follows
    # as a customer-service message
    expect(page.locator(".msg.out", has_text="激活会员卡")).to_have_count(1)
    expect(page.locator(".msg.out .bubble", has_text=want["greeting"])).to_have_count(1)
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "yes")

    # type a keyword: its reply appears under the green bubble
    if page.locator("#bottom").get_attribute("data-mode") == "menu":
        page.click("#mode-toggle")
    page.fill("#message-input", want["keyword"])
    page.click("#send-button")
    expect(page.locator(".msg.in .bubble").last).to_have_text(want["keyword"])
    expect(page.locator(".msg.out .bubble").last).to_have_text(want["keyword_reply"])

    # tap a menu item: a CLICK event whose key has a keyword reply
    page.click("#mode-toggle")
    menubar = page.locator("#menubar")
    if want["menu_nested"]:
        menubar.get_by_role("button", name=want["menu_top"]).click()
    menubar.get_by_role("button", name=want["menu_item"], exact=True).click()
    expect(page.locator(".msg.out .bubble").last).to_have_text(want["menu_reply"])
    expect(page.locator(".chat .system").last).to_contain_text(want["menu_key"])
    # the card link, the greeting, the keyword's reply and the menu item's reply
    expect(page.locator(".msg.out")).to_have_count(4)

    page.screenshot(path=SCREENSHOT)
