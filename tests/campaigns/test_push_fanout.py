"""A push to 10,000 members against the WeChat sandbox, with WeChat answering -1 and 45009
mid-way and a worker killed mid-chunk: every member gets exactly one coupon and one
message, and the counters match the records."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from campaigns import analytics, fanout, push
from campaigns.models import Campaign
from campaigns.models.push import BRAND_HOLDOUT, CAMPAIGN_HOLDOUT
from core.db import db
from core.tenancy import use_brand
from tests import factories
from tests.campaigns import push_support as ps
from wechat.sandbox import store

N = 10_000


@pytest.fixture
def small_chunks(wx_app, monkeypatch):
    monkeypatch.setitem(wx_app.config, "CAMPAIGN_CHUNK_SIZE", 500)


def test_push_to_10000_members_with_faults_and_a_killed_worker(wx_app, wx_brand, small_chunks):
    brand = wx_brand
    with use_brand(brand.id):
        ps.rules()
        ps.without_callback(brand)
        openids = ps.followers(brand, N, unfollowed_every=50)
        seg = ps.segment()
        tpl = factories.coupon_template(name="双十二满100减20")
        db.session.commit()
        campaign = push.create_campaign(
            name="双十二大促",
            segment_id=seg.id,
            coupon_template_id=tpl.id,
            channel="template",
            wx_template_id="TPL-COUPON-ARRIVED",
            holdout_pct=10,
        )
        db.session.commit()
        cid = campaign.id
    jobs = ps.due_jobs()
    assert len(jobs) == 1
    assert ps.run_job(wx_app, jobs[0]) == "done"  # materialise the recipients

    with use_brand(brand.id):
        c = db.session.get(Campaign, cid)
        assert c.status == "running" and c.targeted == N
        chunk_jobs = ps.due_jobs()
        assert len(chunk_jobs) == c.chunks_total
    # two chunks go out normally
    for job_id in chunk_jobs[:2]:
        ps.run_job(wx_app, job_id)
    # WeChat is busy once, then says the day's quota is used up
    store.inject_fault(ps.TEMPLATE_SEND, errcode=-1, times=1)
    ps.run_job(wx_app, chunk_jobs[2])
    store.inject_fault(ps.TEMPLATE_SEND, errcode=45009, times=1)
    ps.run_job(wx_app, chunk_jobs[3])
    # a worker dies with its chunk half sent
    died_after = ps.kill_mid_job(wx_app, chunk_jobs[4], after_calls=180)
    assert died_after >= 180
    with use_brand(brand.id):
        states = dict(
            db.session.execute(
                text(
                    "SELECT state, count(*) FROM campaign_chunk WHERE campaign_id = :c"
                    " GROUP BY state"
                ),
                {"c": cid},
            ).all()
        )
        assert states.get("running") == 1  # the dead worker's chunk, held by its lease
        db.session.commit()
    # the rest runs; the tick finds the abandoned chunk once its lease has run out
    ps.drain(wx_app)
    with use_brand(brand.id):
        assert fanout.tick()["resent"] == 0  # its lease still runs: the worker may be alive
        db.session.commit()
        # the lease runs out (the clock moves on by the lease's length)
        db.session.execute(
            text(
                "UPDATE campaign_chunk SET lease_until = lease_until - :d WHERE state = 'running'"
            ),
            {"d": fanout.LEASE + dt.timedelta(seconds=1)},
        )
        db.session.commit()
        out = fanout.tick()
        db.session.commit()
        assert out["resent"] == 1
    ps.drain(wx_app)
    with use_brand(brand.id):
        assert fanout.tick()["completed"] == 0
        db.session.commit()

    with use_brand(brand.id):
        c = db.session.get(Campaign, cid)
        db.session.refresh(c)
        assert c.status == "completed"
        rows = db.session.execute(
            text(
                "SELECT member_id, holdout, state, skip_reason, coupon_id FROM campaign_recipient"
                " WHERE campaign_id = :c"
            ),
            {"c": cid},
        ).all()
        assert len(rows) == N
        # the holdout groups are exactly the members the hash puts there, and get nothing
        for r in rows:
            in_brand = fanout.bucket(f"brand-holdout:{brand.id}:", r.member_id) < 5
            in_campaign = fanout.bucket(f"campaign-holdout:{cid}:", r.member_id) < 10
            expected = BRAND_HOLDOUT if in_brand else CAMPAIGN_HOLDOUT if in_campaign else 0
            assert r.holdout == expected
        targets = [r for r in rows if r.holdout == 0]
        held = [r for r in rows if r.holdout != 0]
        assert 0.10 < len(held) / N < 0.20
        assert all(r.state == "held" and r.coupon_id is None for r in held)
        # every target: sent, or skipped because they unfollowed (43004)
        unfollowed = {m for i, m in enumerate(openids, 1) if i % 50 == 0}
        for r in targets:
            if r.member_id in unfollowed:
                assert (r.state, r.skip_reason) == ("skipped", "unfollowed")
            else:
                assert r.state == "sent", r
        # exactly one coupon per target (the campaign's key), none for the holdouts
        coupons = dict(
            db.session.execute(
                text(
                    "SELECT member_id, count(*) FROM coupon WHERE brand_id = :b"
                    " AND template_id = :t GROUP BY member_id"
                ),
                {"b": brand.id, "t": tpl.id},
            ).all()
        )
        assert set(coupons) == {r.member_id for r in targets}
        assert set(coupons.values()) == {1}
        issued = db.session.execute(
            text("SELECT issued FROM coupon_template WHERE id = :t"), {"t": tpl.id}
        ).scalar_one()
        assert issued == len(targets)
        # exactly one message per member who follows, none to anyone else
        counts = ps.messages_per_openid(brand.appid, list(openids.values()))
        target_ids = {r.member_id for r in targets}
        for mid, openid in openids.items():
            want = 1 if mid in target_ids and mid not in unfollowed else 0
            assert counts[openid] == want, (mid, counts[openid])
        # the rollups equal the records
        rep = analytics.report(c)
        sent = sum(1 for r in targets if r.state == "sent")
        skipped = sum(1 for r in targets if r.state == "skipped")
        assert rep.funnel["targeted"] == len(targets)
        assert rep.funnel["sent"] == sent
        assert rep.funnel["claimed"] == len(targets)
        assert rep.unfollowed == skipped == len(unfollowed & target_ids)
        assert rep.failed == 0 and rep.capped == 0
        assert rep.holdout.members + rep.brand_holdout.members == len(held)
        progress = analytics.progress(c)
        assert progress["percent"] == 100 and progress["done"] == len(targets)
        # the received tag is on every member who got the message
        tagged = db.session.execute(
            text(
                "SELECT count(*) FROM member_tag t JOIN tag_definition d ON d.id = t.tag_id"
                " WHERE d.brand_id = :b AND d.code = 'campaign_received'"
            ),
            {"b": brand.id},
        ).scalar_one()
        assert tagged == sent
