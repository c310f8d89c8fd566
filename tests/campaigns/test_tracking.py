"""Tracking a push: delivery reports (TEMPLATESENDJOBFINISH through the real callback), opens
through signed links, redemptions and refunds from the coupons' signals, purchases of
targets and holdouts, the platform tags; and the funnel equals the underlying records."""

from __future__ import annotations

import time

from sqlalchemy import text

from campaigns import analytics, tracking
from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from coupons import services as coupon_services
from tests import factories
from tests.campaigns import push_support as ps


def _wait_delivered(cid: int, n: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = db.session.execute(
            text(
                "SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c"
                " AND delivered_at IS NOT NULL"
            ),
            {"c": cid},
        ).scalar_one()
        db.session.commit()
        if got >= n:
            return got
        time.sleep(0.1)
    return got


def _count(sql: str, **params) -> int:
    value = db.session.execute(text(sql), params).scalar_one()
    db.session.commit()
    return value


def test_the_funnel_equals_the_records(wx_app, wx_brand, wx_client):
    brand = wx_brand
    with use_brand(brand.id):
        ps.rules()
        openids = ps.followers(brand, 60, unfollowed_every=20)
        store = factories.store(brand, city="杭州")
        db.session.execute(
            text("UPDATE member SET store_id = :s WHERE brand_id = :b"),
            {"s": store.id, "b": brand.id},
        )
        db.session.commit()
        tpl = factories.coupon_template(name="到店立减")
        from campaigns import push

        c = push.create_campaign(
            name="杭州门店推送",
            segment_id=ps.segment().id,
            coupon_template_id=tpl.id,
            channel="template",
            wx_template_id="TPL-COUPON",
            holdout_pct=20,
        )
        db.session.commit()
        ps.drain(wx_app)
        cid = c.id
        sent = _count(
            "SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c AND state = 'sent'",
            c=cid,
        )
        assert sent > 0
        # WeChat reports each template message delivered, through the signed callback
        assert _wait_delivered(cid, sent) == sent

        rows = db.session.execute(
            text(
                "SELECT member_id, coupon_id, msgid FROM campaign_recipient WHERE campaign_id = :c"
                " AND state = 'sent' ORDER BY member_id"
            ),
            {"c": cid},
        ).all()
        db.session.commit()
        # a report delivered twice counts once
        import datetime as dt

        assert tracking.record_delivery(msgid=rows[0].msgid, at=dt.datetime.now(dt.UTC)) is False
        # the first ten open their link (one of them three times); a forged link is refused
        for r in rows[:10]:
            token = tracking.link_token(brand_id=brand.id, campaign_id=cid, member_id=r.member_id)
            res = wx_client.get(f"/c/t/{token}")
            assert res.status_code == 302
            assert "/coupons" in res.headers["Location"]
        again = tracking.link_token(brand_id=brand.id, campaign_id=cid, member_id=rows[0].member_id)
        assert wx_client.get(f"/c/t/{again}").status_code == 302
        assert wx_client.get(f"/c/t/{again[:-2]}xx").status_code == 404
        assert wx_client.get("/c/t/WzEsMSwxXQ.forged").status_code == 404
        # four redeem their coupon at the till; one of those orders is refunded
        codes = dict(
            db.session.execute(
                text("SELECT id, code FROM coupon WHERE id = ANY(:ids)"),
                {"ids": [r.coupon_id for r in rows[:4]]},
            ).all()
        )
        for i, r in enumerate(rows[:4]):
            coupon_services.redeem(
                code=codes[r.coupon_id],
                store_id=store.id,
                order_id=f"POS-{i}",
                order_amount_fen=10_000 + i * 1000,
                idempotency_key=f"pos-{i}",
                channel="pos",
            )
        db.session.commit()
        coupon_services.reverse(store_id=store.id, order_id="POS-3", reason="refund")
        db.session.commit()

        campaign = db.session.get(Campaign, cid)
        rep = analytics.report(campaign)

        def records(where: str) -> int:
            return _count(
                f"SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c AND holdout = 0"  # noqa: S608
                f" AND {where}",
                c=cid,
            )

        assert rep.funnel == {
            "targeted": records("true"),
            "sent": records("state = 'sent'"),
            "delivered": records("delivered_at IS NOT NULL"),
            "opened": records("opened_at IS NOT NULL"),
            "claimed": records("coupon_id IS NOT NULL"),
            "redeemed": records("redeemed_at IS NOT NULL"),
        }
        assert rep.funnel["opened"] == 10 and rep.funnel["redeemed"] == 3
        redeemed_live = _count(
            "SELECT count(*) FROM coupon_redemption r JOIN campaign_recipient c"
            " ON c.coupon_id = r.coupon_id WHERE c.campaign_id = :c AND r.status = 'done'",
            c=cid,
        )
        assert redeemed_live == 3
        assert rep.revenue_fen == 10_000 + 11_000 + 12_000
        assert rep.unfollowed == records("skip_reason = 'unfollowed'") > 0
        assert rep.redemption_rate == 3 / rep.funnel["sent"]
        # the breakdowns add up to the whole, and name the store and city
        by_store = analytics.breakdown(campaign, "store")
        assert [(r.name, r.targeted, r.redeemed) for r in by_store] == [
            (store.name, rep.funnel["targeted"], 3)
        ]
        assert analytics.breakdown(campaign, "city")[0].name == "杭州"
        # the platform tags, written back for later segments
        for code, n in (
            ("campaign_received", sent),
            ("campaign_opened", 10),
            ("campaign_redeemed", 4),
        ):
            tagged = _count(
                "SELECT count(*) FROM member_tag t JOIN tag_definition d ON d.id = t.tag_id"
                " WHERE d.brand_id = :b AND d.code = :code",
                b=brand.id,
                code=code,
            )
            assert tagged == n, code
        assert len(openids) == 60


def test_purchases_of_targets_and_holdouts_give_the_uplift(wx_app, wx_brand):
    from shop import signals as shop_signals

    brand = wx_brand
    with use_brand(brand.id):
        ps.rules()
        ps.without_callback(brand)
        ps.followers(brand, 200)
        from campaigns import push

        c = push.create_campaign(
            name="提升测试",
            segment_id=ps.segment().id,
            coupon_template_id=factories.coupon_template().id,
            channel="none",
            holdout_pct=30,
        )
        db.session.commit()
        ps.drain(wx_app)
        groups = db.session.execute(
            text(
                "SELECT holdout, array_agg(member_id ORDER BY member_id) FROM campaign_recipient"
                " WHERE campaign_id = :c GROUP BY holdout"
            ),
            {"c": c.id},
        ).all()
        by = {g: ids for g, ids in groups}
        db.session.commit()
        # half the targets buy 100 yuan; a fifth of the holdouts buy 100 yuan
        buyers = by[0][: len(by[0]) // 2] + by[1][: len(by[1]) // 5]
        for i, mid in enumerate(buyers):
            order = _paid_order(brand.id, mid, 10_000, f"T{i}")
            shop_signals.order_paid.send(
                brand.id, order_id=order, member_id=mid, store_id=None, channel="h5"
            )
        # a second order of the same member raises the spend, not the buyers
        _second = _paid_order(brand.id, by[0][0], 5_000, "T-again")
        shop_signals.order_paid.send(
            brand.id, order_id=_second, member_id=by[0][0], store_id=None, channel="h5"
        )
        db.session.commit()
        rep = analytics.report(db.session.get(Campaign, c.id))
        assert rep.target.members == len(by[0])
        assert rep.target.purchased == len(by[0]) // 2
        assert rep.target.purchase_fen == (len(by[0]) // 2) * 10_000 + 5_000
        assert rep.holdout.purchased == len(by[1]) // 5
        expected = rep.target.purchased / rep.target.members - rep.baseline.purchased / (
            rep.baseline.members
        )
        assert abs(rep.uplift - expected) < 1e-9
        assert rep.uplift > 0 and rep.incremental_fen > 0


def _paid_order(brand_id: int, member_id: int, fen: int, no: str) -> int:
    """An order of the shop paid by the member (what the shop's payment leaves behind)."""
    from shop.models import Order

    order = Order(
        brand_id=brand_id,
        order_no=no,
        channel="h5",
        status="paid",
        member_id=member_id,
        goods_fen=fen,
        pay_fen=fen,
        paid_fen=fen,
        paid_at=db.func.now(),
    )
    db.session.add(order)
    db.session.flush()
    return order.id
