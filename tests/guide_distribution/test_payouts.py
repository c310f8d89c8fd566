"""Payouts through WeChat Pay's merchant transfer in the sandbox: the bill waits for the
guide's confirmation, then pays; a failed bill gives the money back; approval above the
brand's threshold; the scene report the transfer requires; the pages and their forms."""

from __future__ import annotations

import secrets

import pytest
import requests
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import jobs_commission as jobs
from guide_distribution import ledger, payouts, settings
from guide_distribution.models.commission import Payout, PayoutEvent
from members.identities import attach_identity
from tests import factories as f
from tests.support.wechat_sandbox import give_pay_settings
from wechat import pay

PHONE = "13700001234"


@pytest.fixture
def world(wx_app, wx_brand, wx_consumer):
    mch_id = "19" + "".join(secrets.choice("0123456789") for _ in range(8))
    give_pay_settings(wx_brand, mch_id=mch_id)
    db.session.commit()
    with use_brand(wx_brand.id):
        store = f.store(wx_brand)
        g = f.staff(wx_brand, role="guide", store=store, phone=PHONE)
        m = f.member(activated=True, phone=PHONE) if _takes_phone() else f.member(activated=True)
        if not _takes_phone():
            from members.models import Member

            db.session.execute(
                Member.__table__.update().where(Member.id == m.id).values(phone=PHONE)
            )
        attach_identity(member_id=m.id, kind="mp_openid", value=wx_consumer["mp_openid"])
        db.session.commit()
    return {"brand": wx_brand, "guide": g, "mch_id": mch_id, "app": wx_app}


def _takes_phone() -> bool:
    import inspect

    return "phone" in inspect.signature(f.member).parameters


def _grant(guide_id: int, fen: int, key: str = "grant") -> None:
    """Withdrawable commission for the guide (as settlement would leave it)."""
    ledger.lock(guide_id)
    ledger.apply(guide_id, key=key, kind="settle", settled=fen)
    db.session.commit()


def _states(payout_id: int) -> list[str]:
    return list(
        db.session.execute(
            select(PayoutEvent.new_state)
            .where(PayoutEvent.payout_id == payout_id)
            .order_by(PayoutEvent.id)
        ).scalars()
    )


def test_a_transfer_waits_for_the_guide_then_pays(world, sandbox_url):
    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        _grant(g.id, 8000)
        p = payouts.request(guide_id=g.id, amount_fen=5000)
        db.session.commit()
        assert (p.method, p.state, p.openid is not None) == ("transfer", "approved", True)
        assert jobs.transfer_payout(b.id, p.id) == "wait_confirm"
        p = payouts.get_payout(p.id)
        assert p.package_info and p.transfer_bill_no
        assert ledger.balances(g.id).paying == 5000
        # the guide confirms in WeChat
        answer = requests.post(
            sandbox_url + "/_sandbox/pay/v3/transfer/confirm",
            json={"mchId": world["mch_id"], "appId": b.mp_appid, "package": p.package_info},
            timeout=10,
        ).json()
        assert answer["err_msg"] == "requestMerchantTransfer:ok"
        assert jobs.query_transfer(b.id, p.id) == "paid"
        bal = ledger.balances(g.id)
        assert (bal.settled, bal.paying, bal.paid) == (3000, 0, 5000)
        assert bal == ledger.entries_sum(g.id)
        assert _states(p.id) == ["approved", "transferring", "wait_confirm", "paid"]
        # asking again changes nothing
        assert jobs.query_transfer(b.id, p.id) == "paid"
        assert ledger.balances(g.id).paid == 5000


def test_a_failed_transfer_gives_the_money_back(world, sandbox_url):
    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        _grant(g.id, 2000)
        p = payouts.request(guide_id=g.id, amount_fen=2000)
        db.session.commit()
        jobs.transfer_payout(b.id, p.id)
        p = payouts.get_payout(p.id)
        requests.post(
            sandbox_url + f"/_sandbox/pay/v3/transfer/{p.out_bill_no}/fail",
            json={"mch_id": world["mch_id"]},
            timeout=10,
        )
        assert jobs.query_transfer(b.id, p.id) == "failed"
        bal = ledger.balances(g.id)
        assert (bal.settled, bal.paying, bal.paid) == (2000, 0, 0)
        assert bal == ledger.entries_sum(g.id)


def test_above_the_threshold_the_brand_approves_or_refuses(world):
    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        settings.update_settings(approval_over_fen=1000)
        _grant(g.id, 5000)
        big = payouts.request(guide_id=g.id, amount_fen=3000)
        db.session.commit()
        assert big.state == "approval"
        payouts.refuse(big.id, reason="核对中")
        db.session.commit()
        assert ledger.balances(g.id).settled == 5000
        again = payouts.request(guide_id=g.id, amount_fen=3000)
        payouts.approve(again.id)
        db.session.commit()
        assert jobs.transfer_payout(b.id, again.id) == "wait_confirm"
        assert _states(big.id) == ["approval", "refused"]
        assert _states(again.id)[:3] == ["approval", "approved", "transferring"]


def test_the_transfer_carries_the_scene_report_it_requires(world):
    b = world["brand"]
    with use_brand(b.id):
        with pytest.raises(pay.PayError) as err:
            pay.pay_transfer_bill(
                b.id,
                out_bill_no="GPX" + secrets.token_hex(6),
                openid="o-x",
                amount_fen=100,
                remark="导购佣金",
                report_infos=[{"info_type": "活动名称", "info_content": "x"}],
            )
        assert err.value.code == "PARAM_ERROR"


def test_the_workbench_page_shows_balances_and_withdraws(world):
    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        _grant(g.id, 3000)
    client = world["app"].test_client()
    f.login(client, b, g)
    page = client.get("/console/workbench/commission")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "我的提成" in html and "¥30.00" in html
    token = f.csrf(html)
    key = html.split('name="request_key"')[1].split('value="')[1].split('"')[0]
    over = client.post(
        "/console/workbench/commission/withdraw",
        data={"csrf_token": token, "amount": "50", "request_key": key},
    )
    assert over.status_code == 409 and "可提现余额" in over.get_data(as_text=True)
    ok = client.post(
        "/console/workbench/commission/withdraw",
        data={"csrf_token": token, "amount": "20", "request_key": key},
    )
    assert ok.status_code == 302
    again = client.post(  # a double tap: the same request
        "/console/workbench/commission/withdraw",
        data={"csrf_token": token, "amount": "20", "request_key": key},
    )
    assert again.status_code == 302
    with use_brand(b.id):
        assert db.session.execute(select(Payout).where(Payout.guide_id == g.id)).scalars().all()
        assert len(db.session.execute(select(Payout)).scalars().all()) == 1
        assert ledger.balances(g.id).settled == 1000


def test_console_pages_and_forms(world):
    b = world["brand"]
    with use_brand(b.id):
        admin = f.staff(b, role="brand_admin")
        from shop.models import Category

        db.session.add(Category(code="tea", name="茶"))
        db.session.commit()
    client = world["app"].test_client()
    f.login(client, b, admin)
    for url in (
        "/console/distribution/commission",
        "/console/distribution/commission/settings",
        "/console/distribution/payouts",
        "/console/distribution/statements",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
    token = f.csrf(client, "/console/distribution/commission")
    over = client.post(
        "/console/distribution/commission/rules",
        data={
            "csrf_token": token,
            "rule-kind": "category_rate",
            "rule-target": "tea",
            "rule-rate": "120",
        },
    )
    assert over.status_code == 400 and "100%" in over.get_data(as_text=True)
    ok = client.post(
        "/console/distribution/commission/rules",
        data={
            "csrf_token": token,
            "rule-kind": "category_rate",
            "rule-target": "tea",
            "rule-rate": "12.5",
        },
    )
    assert ok.status_code == 302
    html = client.get("/console/distribution/commission").get_data(as_text=True)
    assert "12.5%" in html and "品类" in html
    tier = client.post(
        "/console/distribution/commission/tiers",
        data={"csrf_token": token, "tier-name": "金牌", "tier-target": "10000", "tier-rate": "8"},
    )
    assert tier.status_code == 302
    saved = client.post(
        "/console/distribution/commission/settings",
        data={
            "csrf_token": token,
            "default_rate": "3",
            "settle_after_days": "7",
            "payout_min": "20",
            "approval_over": "3000",
        },
    )
    assert saved.status_code == 302
    with use_brand(b.id):
        s = settings.get_settings()
        assert (s.default_rate_bp, s.commission_on_promotions, s.settle_after_days) == (
            300,
            False,
            7,
        )
        assert (s.payout_min_fen, s.approval_over_fen) == (2000, 300000)


def test_the_monthly_statement_pays_out_what_is_withdrawable(world):
    from core.db import utcnow
    from core.jobs import OutboxJob
    from guide_distribution.models.commission import CommissionStatement

    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        _grant(g.id, 1500)
        month = utcnow().astimezone(b.tz).date()
        assert payouts.close_month(month) == 1
        db.session.commit()
        assert payouts.close_month(month) == 0  # once a month
        st = db.session.execute(select(CommissionStatement)).scalar_one()
        payout = db.session.get(Payout, st.payout_id)
        assert (payout.amount_fen, payout.source, payout.state) == (1500, "statement", "approved")
        assert st.closing_settled_fen == 1500
        queued = db.session.execute(
            select(OutboxJob.id).where(OutboxJob.dedupe_key == f"guide:transfer:{payout.id}")
        ).scalar()
        assert queued is not None
        assert ledger.balances(g.id).paying == 1500


def test_an_admin_approves_a_payout_in_the_console(world):
    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        admin = f.staff(b, role="brand_admin")
        settings.update_settings(approval_over_fen=1000)
        _grant(g.id, 5000)
        p = payouts.request(guide_id=g.id, amount_fen=3000)
        db.session.commit()
    client = world["app"].test_client()
    f.login(client, b, admin)
    html = client.get("/console/distribution/payouts").get_data(as_text=True)
    assert "待审批" in html and "¥30.00" in html
    token = f.csrf(html)
    assert (
        client.post(
            f"/console/distribution/payouts/{p.id}/approve", data={"csrf_token": token}
        ).status_code
        == 302
    )
    with use_brand(b.id):
        assert _states(p.id)[:2] == ["approval", "approved"]
    html = client.get("/console/distribution/payouts").get_data(as_text=True)
    assert "变更内容" in html


def test_from_2000_yuan_a_payout_goes_through_payroll(world):
    b, g = world["brand"], world["guide"]
    with use_brand(b.id):
        settings.update_settings(approval_over_fen=1_000_000)
        _grant(g.id, 300_000)
        small = payouts.request(guide_id=g.id, amount_fen=199_999)
        big = payouts.request(guide_id=g.id, amount_fen=100_001)
        db.session.commit()
        assert (small.method, big.method) == ("transfer", "transfer")
        _grant(g.id, 200_000, key="grant-2")
        large = payouts.request(guide_id=g.id, amount_fen=200_000)
        db.session.commit()
        assert (large.method, large.openid) == ("payroll", None)
        body, n = payouts.export_payroll()
        db.session.commit()
        assert n == 1 and "2000.00" in body
        assert ledger.balances(g.id).paid == 200_000
