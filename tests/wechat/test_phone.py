"""The phone simulator over real HTTP: it posts signed, encrypted messages and events to the
app's callback and shows the chat log."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from core.db import db
from core.jobs import relay_committed
from core.tenancy import use_brand
from tests import factories as f
from wechat import chatbot, inbound
from wechat.models import InboundMessage
from wechat.sandbox import store

CREDENTIALS = dict(
    appid="wxphone000000001",
    secret="phone-secret-0001",
    token="phonetoken1",
    aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
)
GREETING = "欢迎关注手机模拟器品牌！"
MENU = {
    "button": [
        {"type": "click", "name": "会员卡", "key": "会员卡"},
        {
            "name": "更多",
            "sub_button": [
                {"type": "view", "name": "官网", "url": "http://127.0.0.1:1/shop"},
            ],
        },
    ]
}


@pytest.fixture
def brand(live_server):
    """A brand with a greeting, two keyword replies and a published menu."""
    with live_server.app.app_context():
        b = f.brand(slug="phonebrand", name="手机品牌", **CREDENTIALS)
        f.store(b, code="SH001", name="南京西路店")
        with use_brand(b.id):
            chatbot.save_replies(greeting=GREETING, default_reply="")
            for word, text in (("积分规则", "每消费1元积1分"), ("会员卡", "点击领取会员卡")):
                f.keyword(word, text=text)
            chatbot.save_menu(menu=MENU)
            chatbot.publish_menu(brand_id=b.id)
            db.session.commit()
            relay_committed()
        yield b
        db.session.remove()


class Phone:
    """What the simulator page's script does, done with requests."""

    def __init__(self, base: str, brand_slug: str):
        self.base, self.brand = base, brand_slug
        self.http = requests.Session()
        page = self.http.get(f"{base}/sandbox/phone", params={"brand": brand_slug})
        assert page.status_code == 200
        self.csrf = f.csrf(page.text)
        created = self.http.post(
            f"{base}/sandbox/phone/consumers",
            data={"nickname": "小明", "brand": brand_slug, "csrf_token": self.csrf},
            allow_redirects=False,
        )
        assert created.status_code == 302
        self.consumer = re.search(r"consumer=([0-9a-f]+)", created.headers["Location"])[1]

    def act(self, action: str, value: str = "", ticket: str = "") -> requests.Response:
        return self.http.post(
            f"{self.base}/sandbox/phone/act",
            json={
                "brand": self.brand,
                "consumer": self.consumer,
                "action": action,
                "value": value,
                "ticket": ticket,
            },
            headers={"X-CSRFToken": self.csrf},
        )

    def messages(self, after: int = 0) -> dict:
        r = self.http.get(
            f"{self.base}/sandbox/phone/messages",
            params={"brand": self.brand, "consumer": self.consumer, "after": after},
        )
        assert r.status_code == 200
        return r.json()


def _inbound(brand_id: int) -> list[InboundMessage]:
    inbound.flush_inbound()  # records buffered in Redis, stored as the periodic job does
    db.session.commit()
    with use_brand(brand_id):
        return list(
            db.session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars()
        )


def test_page_offers_accounts_consumers_and_store_codes(live_server, brand):
    phone = Phone(live_server.url, brand.slug)
    html = phone.http.get(
        f"{live_server.url}/sandbox/phone", params={"brand": brand.slug, "consumer": phone.consumer}
    ).text
    assert "手机品牌" in html and "小明" in html
    assert 'data-scene="s:SH001"' in html and "南京西路店 (SH001)" in html
    # the published menu is drawn from what the sandbox received from the gateway
    assert 'data-key="会员卡"' in html and 'data-url="http://127.0.0.1:1/shop"' in html
    assert 'class="phone"' in html


def test_scanning_follows_with_qrscene_then_sends_scan(live_server, brand, ctx):
    phone = Phone(live_server.url, brand.slug)
    r = phone.act("scan", "s:SH001")
    assert r.status_code == 200 and r.json()["following"] is True
    assert r.json()["reply"]["Content"] == GREETING
    r = phone.act("scan", "s:SH001")
    assert r.status_code == 200

    rows = _inbound(brand.id)
    assert [(m.event, m.event_key) for m in rows] == [
        ("subscribe", "qrscene_s:SH001"),
        ("SCAN", "s:SH001"),
    ]
    openid = store.openid_for(brand.appid, phone.consumer)
    assert {m.openid for m in rows} == {openid}

    chat = phone.messages()["messages"]
    assert [(m["direction"], m["msgtype"]) for m in chat[:2]] == [("in", "event"), ("out", "text")]
    assert chat[1]["content"] == GREETING
    assert chat[2]["event"] == "SCAN" and chat[2]["eventKey"] == "s:SH001"


def test_issued_qr_code_is_listed_and_scanned_by_ticket(live_server, brand, ctx):
    base = f"{live_server.url}/sandbox/wechat"
    token = requests.get(
        f"{base}/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": CREDENTIALS["appid"],
            "secret": CREDENTIALS["secret"],
        },
    ).json()["access_token"]
    ticket = requests.post(
        f"{base}/cgi-bin/qrcode/create",
        params={"access_token": token},
        json={
            "action_name": "QR_LIMIT_STR_SCENE",
            "action_info": {"scene": {"scene_str": "s:SH001"}},
        },
    ).json()["ticket"]

    phone = Phone(live_server.url, brand.slug)
    html = phone.http.get(
        f"{live_server.url}/sandbox/phone", params={"brand": brand.slug, "consumer": phone.consumer}
    ).text
    assert f'data-ticket="{ticket}"' in html
    assert html.count('data-scene="s:SH001"') == 1  # the issued code replaces the fallback

    assert phone.act("scan", "s:SH001", ticket=ticket).status_code == 200
    assert phone.act("scan", "", ticket="no-such-ticket").status_code == 400
    assert [(m.event, m.event_key) for m in _inbound(brand.id)] == [
        ("subscribe", "qrscene_s:SH001")
    ]
    assert f"<Ticket><![CDATA[{ticket}]]></Ticket>" in _inbound(brand.id)[0].payload


def test_text_and_menu_click_get_keyword_replies(live_server, brand, ctx):
    phone = Phone(live_server.url, brand.slug)
    phone.act("follow")
    assert phone.act("text", "积分规则").json()["reply"]["Content"] == "每消费1元积1分"
    assert phone.act("click", "会员卡").json()["reply"]["Content"] == "点击领取会员卡"
    assert phone.act("view", "http://127.0.0.1:1/shop").status_code == 200

    rows = _inbound(brand.id)
    assert [(m.msg_type, m.event, m.event_key) for m in rows] == [
        ("event", "subscribe", None),
        ("text", None, None),
        ("event", "CLICK", "会员卡"),
        ("event", "VIEW", "http://127.0.0.1:1/shop"),
    ]
    replies = [m["content"] for m in phone.messages()["messages"] if m["direction"] == "out"]
    assert replies == [GREETING, "每消费1元积1分", "点击领取会员卡"]


def test_pushed_messages_show_in_the_chat(live_server, brand):
    phone = Phone(live_server.url, brand.slug)
    phone.act("follow")
    seen = phone.messages()["messages"][-1]["seq"]
    base = f"{live_server.url}/sandbox/wechat"
    token = requests.get(
        f"{base}/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": CREDENTIALS["appid"],
            "secret": CREDENTIALS["secret"],
        },
    ).json()["access_token"]
    with live_server.app.app_context():
        openid = store.openid_for(brand.appid, phone.consumer)
    r = requests.post(
        f"{base}/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={"touser": openid, "msgtype": "text", "text": {"content": "积分到账"}},
    )
    assert r.json()["errcode"] == 0
    new = phone.messages(after=seen)["messages"]
    assert [(m["via"], m["content"]) for m in new] == [("customer_service", "积分到账")]


def test_bad_requests_are_refused(live_server, brand):
    phone = Phone(live_server.url, brand.slug)
    assert phone.act("dance", "x").status_code == 400
    assert phone.act("text", "").status_code == 400
    r = phone.http.post(
        f"{live_server.url}/sandbox/phone/act",
        json={"brand": "nope", "consumer": phone.consumer, "action": "text", "value": "hi"},
        headers={"X-CSRFToken": phone.csrf},
    )
    assert r.status_code == 404
    # without the CSRF header the request is refused before anything is sent
    r = phone.http.post(
        f"{live_server.url}/sandbox/phone/act",
        json={"brand": brand.slug, "consumer": phone.consumer, "action": "text", "value": "hi"},
    )
    assert r.status_code == 400
    assert phone.messages()["messages"] == []


def test_links_open_as_the_chosen_consumer(live_server, brand):
    phone = Phone(live_server.url, brand.slug)
    r = phone.http.get(
        f"{live_server.url}/sandbox/phone/open",
        allow_redirects=False,
        params={"consumer": phone.consumer, "url": "http://127.0.0.1:1/member"},
    )
    assert r.status_code == 302 and r.headers["Location"] == "http://127.0.0.1:1/member"
    assert phone.http.cookies.get("wmb_sandbox_consumer") == phone.consumer
    r = phone.http.get(
        f"{live_server.url}/sandbox/phone/open",
        allow_redirects=False,
        params={"consumer": phone.consumer, "url": "javascript:alert(1)"},
    )
    assert r.status_code == 400


def test_demo_prints_the_simulator_url(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Phone simulator: http://127.0.0.1:5000/sandbox/phone" in result.output
