"""The "coupons expiring soon" notice carries its message in the keywords WeChat shows."""

from __future__ import annotations

import datetime as dt

from core.db import db
from core.tenancy import use_brand
from coupons import claims, jobs
from coupons.models import CouponSettings
from members.identities import attach_identity
from tests import factories as f
from wechat.sandbox import store

NAME = "会员专享满三百减五十元超值优惠券春季特别版"  # 21 characters


def test_reminder_says_which_coupon_when_and_how_many(wx_brand, wx_consumer):
    with use_brand(wx_brand.id):
        tpl = f.coupon_template(name=NAME)
        db.session.add(
            CouponSettings(brand_id=wx_brand.id, remind_days=3, remind_template_id="TPL-EXP")
        )
        member = f.member().id
        attach_identity(member_id=member, kind="oa_openid", value=wx_consumer["openid"])
        ids = []
        for i in range(2):
            c = claims.claim(template_id=tpl.id, member_id=member, idempotency_key=f"r{i}")
            c.valid_until = dt.datetime(2030, 1, 2, 4, 30, tzinfo=dt.UTC)
            ids.append(c.id)
        db.session.commit()
        assert jobs.send_reminder(member, ids) == "sent"
    [shown] = store.messages(wx_brand.appid, wx_consumer["openid"])
    assert shown["data"] == {
        "keyword1": {"value": NAME[:20] + "…"},  # cut as WeChat would cut it
        "keyword2": {"value": "2030-01-02 12:30"},
        "keyword3": {"value": "2 张"},
    }
