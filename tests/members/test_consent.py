"""Subscribe-message consent: what a user chose per template, from WeChat's three events
posted through the real callback, recorded once however often WeChat retries."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from members import consent
from members.models import SubscribeConsentEvent
from tests.support.wechat import OA_ID, FakeWeChat, answering_brand

OPENID = "otFpruAK8D-E6EfStSYonYSBZ8_4"
T_A = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
T_B = "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"


def _event(event: str, container: str, lists: str, at: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{OA_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>{at}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<{container}>{lists}</{container}></xml>"
    )


def popup(at: int, *choices: tuple[str, str]) -> str:
    lists = "".join(
        f"<List><TemplateId><![CDATA[{t}]]></TemplateId><SubscribeStatusString><![CDATA[{s}]]>"
        f"</SubscribeStatusString><PopupScene>2</PopupScene></List>"
        for t, s in choices
    )
    return _event("subscribe_msg_popup_event", "SubscribeMsgPopupEvent", lists, at)


def change(at: int, template: str, status: str) -> str:
    lists = (
        f"<List><TemplateId><![CDATA[{template}]]></TemplateId>"
        f"<SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString></List>"
    )
    return _event("subscribe_msg_change_event", "SubscribeMsgChangeEvent", lists, at)


def sent(at: int, template: str, msg_id: str, code: int) -> str:
    status = "success" if code == 0 else "failed:user refuse to accept the msg"
    lists = (
        f"<List><TemplateId><![CDATA[{template}]]></TemplateId><MsgID>{msg_id}</MsgID>"
        f"<ErrorCode>{code}</ErrorCode><ErrorStatus><![CDATA[{status}]]></ErrorStatus></List>"
    )
    return _event("subscribe_msg_sent_event", "SubscribeMsgSentEvent", lists, at)


@pytest.fixture
def brand_wx(client, ctx):
    b = answering_brand()
    return b, FakeWeChat(client, b.slug)


def _choices(b):
    with use_brand(b.id):
        db.session.expire_all()
        return {
            t: (c.status, c.accepts, c.sends)
            for t, c in consent.current_choices(openid=OPENID).items()
        }


@pytest.mark.parametrize("mode", ["plaintext", "aes"])
def test_the_popup_answer_is_recorded_per_template_once(brand_wx, mode):
    b, wx = brand_wx
    xml = popup(int(time.time()), (T_A, "accept"), (T_B, "reject"))
    post = wx.post_plain if mode == "plaintext" else wx.post_aes
    for _ in range(3):  # WeChat retries
        assert post(xml).status_code == 200
    assert _choices(b) == {T_A: ("accept", 1, 0), T_B: ("reject", 0, 0)}
    with use_brand(b.id):
        assert db.session.scalar(select(func.count()).select_from(SubscribeConsentEvent)) == 2


def test_changes_and_sends_update_the_choice_and_older_news_never_wins(brand_wx):
    b, wx = brand_wx
    now = int(time.time())
    wx.post_aes(popup(now - 20, (T_A, "accept")))
    assert wx.post_aes(sent(now - 15, T_A, "1700000001", 0)).status_code == 200
    assert _choices(b)[T_A] == ("accept", 1, 1)  # the one message it allowed was sent
    assert wx.post_aes(change(now - 5, T_A, "reject")).status_code == 200
    assert _choices(b)[T_A] == ("reject", 1, 1)
    # a change reported late, made before the rejection, does not undo it
    assert wx.post_aes(change(now - 10, T_A, "accept")).status_code == 200
    assert _choices(b)[T_A][0] == "reject"
    # a failed send is history, not a send
    wx.post_aes(sent(now - 4, T_A, "1700000002", 43101))
    assert _choices(b)[T_A] == ("reject", 1, 1)
    with use_brand(b.id):
        kinds = db.session.scalars(
            select(SubscribeConsentEvent.kind).order_by(SubscribeConsentEvent.id)
        ).all()
    assert kinds == ["popup", "sent", "change", "change", "sent"]


def test_deleting_an_account_deletes_its_subscribe_choices(brand_wx):
    from members.identities import attach_identity
    from members.models import SubscribeConsent
    from members.privacy import data_rights
    from tests import factories

    b, wx = brand_wx
    now = int(time.time())
    wx.post_aes(popup(now - 20, (T_A, "accept"), (T_B, "accept")))
    with use_brand(b.id):
        consent.record_choice(
            openid="o-someone-else", template_id=T_A, kind="popup", status="accept",
            at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        member = factories.member(phone="13900000021", activated=True).id
        attach_identity(member_id=member, kind="oa_openid", value=OPENID)
        db.session.commit()
        data_rights.delete_member(member_id=member)
        db.session.commit()
        left = db.session.scalars(select(SubscribeConsent.openid)).all()
        events = db.session.scalars(select(SubscribeConsentEvent.openid)).all()
    assert left == ["o-someone-else"] and set(events) == {"o-someone-else"}
