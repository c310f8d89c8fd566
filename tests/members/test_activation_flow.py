"""The H5 activation end to end over the WeChat sandbox: scan -> OAuth -> SMS -> consent ->
member with store and guide, welcome hook, card activation job; and the bad inputs."""

from __future__ import annotations

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
from tests.support.member_h5 import Phone
from wechat.sandbox import api_mp, push, store


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

    # The OAuth return answers with the activation page itself, whose script replaces the
    # spent code's address with the page's own; the page there says the same.
    signed_in = phone.sign_in()
    assert signed_in.status_code == 200
    page = signed_in.get_data(as_text=True)
    assert "激活会员卡" in page and "发送验证码" in page
    assert f'data-address="/m/{wx_brand.slug}/activate"' in page
    again = wx_client.get(phone.base + "/activate").get_data(as_text=True)
    assert "发送验证码" in again and "data-address" not in again
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
