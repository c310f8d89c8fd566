"""The official account's built-in keyword "积分": the member's points from live data."""

from __future__ import annotations

import pytest

from core.db import db
from core.tenancy import use_brand
from members.activation import activate_member
from points import rules, services
from tests.support.wechat import FakeWeChat, answering_brand, text_xml

OPENID = "oPoints000000000000000000001"


@pytest.fixture
def brand(ctx):
    return answering_brand()


@pytest.fixture
def wx(client, brand):
    return FakeWeChat(client, brand.slug)


def ask(wx, word: str, msg_id: int) -> str:
    return wx.open_reply(wx.post_aes(text_xml(OPENID, word, msg_id))).findtext("Content")


def test_a_member_asks_for_points_and_gets_the_balance(wx, brand):
    with use_brand(brand.id):
        rules.update_settings(welcome_points=0, pending_days=0)
        member, _ = activate_member(
            phone="13811112222", source="oa", consent_version="v1", oa_openid=OPENID
        )
        services.earn_for_purchase(member_id=member.id, amount_fen=12_300, idempotency_key="o1")
        db.session.commit()
        balance = services.balance(member.id).balance
    assert balance > 0
    assert ask(wx, "积分", 1) == f"可用积分：{balance}"
    # live data: the next question sees the next purchase
    with use_brand(brand.id):
        services.earn_for_purchase(member_id=member.id, amount_fen=5_000, idempotency_key="o2")
        db.session.commit()
        balance = services.balance(member.id).balance
    assert ask(wx, " 积分 ", 2) == f"可用积分：{balance}"


def test_someone_who_is_not_a_member_is_told_how_to_become_one(wx):
    assert ask(wx, "积分", 3) == "您还不是会员：扫描门店二维码即可开通会员卡。"
    assert ask(wx, "你好", 4) == "收到"  # other words still reach the brand's replies
