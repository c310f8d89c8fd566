"""The H5 activation end to end over the WeChat sandbox: scan -> OAuth -> SMS -> consent ->
member with store and guide, welcome hook, card activation job; and the bad inputs."""

# ruff: noqa: F811 - pytest fixtures imported from tests.wechat.conftest are parameters

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from core.db import db
from core.jobs import OutboxJob, run_outbox_job
from core.tenancy import use_brand
from members import activation
from members.activation import card, qrcodes, sms
from members.activation.services import WELCOME_GIFTS
from members.models import Member, MemberAttribution, MemberCardCode, MemberQrEvent
from tests import factories as f
from tests.wechat.conftest import (  # noqa: F401 - fixtures shared with the WeChat tests
    sandbox,
    sandbox_url,
    wx_app,
    wx_brand,
    wx_client,
    wx_consumer,
    wx_ctx,
)
from wechat.sandbox import api_mp, oauth, push, store


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert m, html[:500]
    return m.group(1)


class Phone:
    """A sandbox consumer using the brand's H5 pages through a test client."""

    def __init__(self, client, brand, consumer):
        self.client, self.brand, self.consumer = client, brand, consumer
        self.openid = consumer["openid"]
        self.base = f"/m/{brand.slug}"
        self.events = 0

    def _time(self) -> int:
        # WeChat dedupes events by sender + CreateTime: two scans in one second are one.
        self.events += 1
        return int(time.time()) + self.events

    def scan(self, qr, following=True):
        if following:
            fields = {
                "MsgType": "event",
                "Event": "SCAN",
                "EventKey": qr.scene,
                "CreateTime": self._time(),
            }
            return push.deliver(self.brand.appid, self.openid, fields)
        store.set_following(self.brand.appid, self.openid, False)
        return push.follow(self.brand.appid, self.openid, scene=qr.scene, ticket=qr.ticket)

    def oauth_code(self, *, snapshot=False):
        r = self.client.get(self.base + "/activate")
        assert r.status_code == 302, r.get_data(as_text=True)
        target = urlsplit(r.headers["Location"])
        assert target.path.endswith("/connect/oauth2/authorize")
        state = parse_qs(target.query)["state"][0]
        code = oauth.authorize_code(
            self.brand.appid, self.consumer["uid"], "snsapi_base", snapshot=snapshot
        )
        return code, state

    def sign_in(self, **kw):
        code, state = self.oauth_code(**kw)
        return self.client.get(f"{self.base}/activate/oauth?code={code}&state={state}")

    def request_code(self, phone):
        html = self.client.get(self.base + "/activate").get_data(as_text=True)
        # A sent code redirects to the activation page, which shows the code step.
        return self.client.post(
            self.base + "/activate/code",
            data={"phone": phone, "csrf_token": csrf(html)},
            follow_redirects=True,
        )

    def activate(self, phone, code=None, consent="yes"):
        html = self.client.get(self.base + "/activate").get_data(as_text=True)
        if code is None:
            code = sms.sandbox_last(phone)["code"]
        return self.client.post(
            self.base + "/activate",
            data={"phone": phone, "code": code, "consent": consent, "csrf_token": csrf(html)},
        )


@pytest.fixture
def shop(wx_brand):
    s = f.store(wx_brand, code="SH001", name="南京西路店")
    guide = f.staff(wx_brand, "guide", s)
    guide.name = "小李"
    db.session.commit()
    with use_brand(wx_brand.id):
        qrcodes.ensure_all()
        db.session.commit()
        codes = {qr.kind: qr for qr in qrcodes.visible_codes()}
    return s, guide, codes


@pytest.fixture
def welcome_calls():
    calls = []

    def gift(member_id):
        calls.append(member_id)

    activation.register_welcome_gift(gift)
    yield calls
    WELCOME_GIFTS.remove(gift)


def _run_jobs():
    ids = (
        db.session.execute(
            select(OutboxJob.id)
            .where(OutboxJob.status.in_(("pending", "queued")))
            .execution_options(all_brands=True)
        )
        .scalars()
        .all()
    )
    db.session.commit()
    return [run_outbox_job(i) for i in ids]


def test_scan_oauth_sms_consent_activates_with_store_and_guide(
    wx_client, wx_brand, wx_consumer, shop, welcome_calls
):
    s, guide, codes = shop
    phone = Phone(wx_client, wx_brand, wx_consumer)
    reply = phone.scan(codes["guide"], following=False)
    article = reply["Articles"]["item"]
    assert "会员卡" in article["Title"] and article["Url"].endswith(f"/m/{wx_brand.slug}/activate")

    assert phone.sign_in().headers["Location"].endswith("/activate")
    page = wx_client.get(phone.base + "/activate").get_data(as_text=True)
    assert "激活会员卡" in page and "发送验证码" in page
    r = phone.request_code("139 1234 5678")
    assert r.status_code == 200 and "13912345678" in r.get_data(as_text=True)
    assert len(sms.sandbox_last("13912345678")["code"]) == 6
    r = phone.activate("13912345678")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/m/{wx_brand.slug}/?welcome=1")

    with use_brand(wx_brand.id):
        member = db.session.execute(select(Member)).scalar_one()
        assert member.phone == "13912345678" and member.activated_at is not None
        assert (member.store_id, member.guide_id) == (s.id, guide.id)
        assert member.consent_version == card.PRIVACY_TERMS_VERSION
        assert welcome_calls == [member.id]
        stats = qrcodes.stats(qr_ids=[codes["guide"].id])[codes["guide"].id]
        assert stats == {"scans": 1, "follows": 1, "activations": 1}

    center = wx_client.get(phone.base + "/").get_data(as_text=True)
    assert member.card_no in center and "南京西路店" in center and "小李" in center
    assert "我的会员卡" in center or "会员卡" in center


def test_card_taken_before_activation_is_activated_by_a_job(wx_client, wx_brand, wx_consumer, shop):
    from wechat import gateway

    card_id = gateway.create_member_card(
        wx_brand.id, {"card_type": "MEMBER_CARD", "member_card": {"base_info": {"title": "卡"}}}
    )
    code = api_mp.give_card(wx_brand.appid, wx_consumer["openid"], card_id)
    push.deliver(
        wx_brand.appid,
        wx_consumer["openid"],
        {"MsgType": "event", "Event": "user_get_card", "CardId": card_id, "UserCardCode": code},
    )
    with use_brand(wx_brand.id):
        assert db.session.execute(select(MemberCardCode.code)).scalar_one() == code
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.scan(shop[2]["store"])
    phone.sign_in()
    phone.request_code("13912340000")
    assert phone.activate("13912340000").status_code == 302
    assert _run_jobs() == ["done"]
    row = store.get_doc("card_code", wx_brand.appid, code)
    with use_brand(wx_brand.id):
        member = db.session.execute(select(Member)).scalar_one()
        assert member.store_id == shop[0].id and member.guide_id is None
    assert row["activated"] is True and row["membership_number"] == member.card_no


def test_native_card_form_leads_to_the_same_activation(wx_client, wx_brand, wx_consumer, shop):
    from wechat import gateway

    card_id = gateway.create_member_card(
        wx_brand.id, {"card_type": "MEMBER_CARD", "member_card": {"base_info": {"title": "卡"}}}
    )
    Phone(wx_client, wx_brand, wx_consumer).scan(shop[2]["guide"])
    code = api_mp.give_card(wx_brand.appid, wx_consumer["openid"], card_id)
    ticket = api_mp.submit_activate_form(
        wx_brand.appid,
        wx_consumer["openid"],
        card_id,
        {"mobile": "13955556666", "name": "王芳", "birthday": "1990-05-01"},
    )
    r = wx_client.get(
        f"/m/{wx_brand.slug}/card/activate?card_id={card_id}&activate_ticket={ticket}"
        f"&encrypt_code={api_mp.encrypt_code(code)}"
    )
    assert r.status_code == 302 and "/m/" in r.headers["Location"]
    assert _run_jobs() == ["done"]
    with use_brand(wx_brand.id):
        member = db.session.execute(select(Member)).scalar_one()
        assert (member.phone, member.name, str(member.birthday)) == (
            "13955556666",
            "王芳",
            "1990-05-01",
        )
        assert member.guide_id == shop[1].id and member.source == "card"
    assert store.get_doc("card_code", wx_brand.appid, code)["activated"] is True
    # the same consumer through the H5 page later: the same member, never a second one
    phone = Phone(wx_client, wx_brand, wx_consumer)
    assert wx_client.get(phone.base + "/").status_code == 200
    with use_brand(wx_brand.id):
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1


def test_wechat_s_own_card_form_without_a_ticket_activates_too(
    wx_client, wx_brand, wx_consumer, shop
):
    """One-tap activation inside WeChat: submit_membercard_user_info carries no ticket, the
    form is read from the card's holder (card/membercard/userinfo/get)."""
    from wechat import gateway

    card_id = gateway.create_member_card(
        wx_brand.id, {"card_type": "MEMBER_CARD", "member_card": {"base_info": {"title": "卡"}}}
    )
    Phone(wx_client, wx_brand, wx_consumer).scan(shop[2]["store"])
    code = api_mp.give_card(wx_brand.appid, wx_consumer["openid"], card_id)
    api_mp.submit_activate_form(
        wx_brand.appid, wx_consumer["openid"], card_id, {"mobile": "13966667777", "name": "李雷"}
    )
    event = {
        "MsgType": "event",
        "Event": "submit_membercard_user_info",
        "CardId": card_id,
        "UserCardCode": code,
    }
    push.deliver(wx_brand.appid, wx_consumer["openid"], event)
    push.deliver(wx_brand.appid, wx_consumer["openid"], event)  # WeChat's retry: one job
    assert _run_jobs() == ["done"]  # one activation for the two deliveries...
    assert _run_jobs() == ["done"]  # ...which queues the card's activation
    with use_brand(wx_brand.id):
        member = db.session.execute(select(Member)).scalar_one()
        assert (member.phone, member.name, member.source) == ("13966667777", "李雷", "card")
        assert member.store_id == shop[0].id
    assert store.get_doc("card_code", wx_brand.appid, code)["activated"] is True


def test_a_card_code_of_someone_else_activates_nobody(wx_client, wx_brand, wx_consumer, shop):
    from wechat import gateway

    card_id = gateway.create_member_card(
        wx_brand.id, {"card_type": "MEMBER_CARD", "member_card": {"base_info": {"title": "卡"}}}
    )
    code = api_mp.give_card(wx_brand.appid, "oSomebodyElse0000000000000001", card_id)
    api_mp.submit_activate_form(
        wx_brand.appid, "oSomebodyElse0000000000000001", card_id, {"mobile": "13966668888"}
    )
    with use_brand(wx_brand.id), pytest.raises(card.ValidationError):
        card.native_activate_by_code(card_id=card_id, code=code, openid=wx_consumer["openid"])
    with use_brand(wx_brand.id):
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Member)) == 0


def test_rescan_never_duplicates_and_another_guides_scan_is_recorded(
    wx_client, wx_brand, wx_consumer, shop
):
    s, guide, codes = shop
    other_guide = f.staff(wx_brand, "guide", s)
    with use_brand(wx_brand.id):
        other_qr = qrcodes.ensure_guide_qr(staff_id=other_guide.id)
        db.session.commit()
    phone = Phone(wx_client, wx_brand, wx_consumer)
    phone.scan(codes["guide"])
    phone.sign_in()
    phone.request_code("13912345678")
    phone.activate("13912345678")
    reply = phone.scan(codes["guide"])
    assert "欢迎回来" in reply["Articles"]["item"]["Title"]
    phone.scan(other_qr)
    # signing in again finds the member: no second activation, no second member
    wx_client.get(phone.base + "/")  # still signed in
    with use_brand(wx_brand.id):
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1
        member = db.session.execute(select(Member)).scalar_one()
        assert member.guide_id == guide.id  # first touch kept
        touches = db.session.execute(
            select(MemberAttribution.kind, MemberAttribution.guide_id).order_by(
                MemberAttribution.id
            )
        ).all()
        assert touches == [("first_touch", guide.id), ("scan", other_guide.id)]
        scans = (
            db.session.execute(select(MemberQrEvent.kind).where(MemberQrEvent.qr_id == other_qr.id))
            .scalars()
            .all()
        )
        assert scans == ["scan"]


def test_a_scene_of_another_brand_attributes_nothing(wx_client, wx_brand, wx_consumer, shop):
    other = f.brand()
    other_store = f.store(other, code="SH001")
    other_guide = f.staff(other, "guide", other_store)
    phone = Phone(wx_client, wx_brand, wx_consumer)
    for scene in (f"g:{other_guide.id}", "s:NOPE", "x" * 64):
        reply = push.deliver(
            wx_brand.appid,
            wx_consumer["openid"],
            {"MsgType": "event", "Event": "SCAN", "EventKey": scene},
        )
        assert "Articles" not in reply
    phone.sign_in()
    phone.request_code("13912345678")
    assert phone.activate("13912345678").status_code == 302
    with use_brand(wx_brand.id):
        member = db.session.execute(select(Member)).scalar_one()
        assert member.store_id is None and member.guide_id is None
        assert db.session.scalar(select(func.count()).select_from(MemberQrEvent)) == 0
