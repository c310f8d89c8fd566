"""Push campaigns: pause and resume, cancel, the frequency cap across campaigns, quiet
hours, SMS hours, the store manager's reach, and what a campaign may send."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import text

from campaigns import analytics, fanout, push
from campaigns.models import Campaign
from core.db import db, utcnow
from core.errors import Conflict, ValidationError
from core.tenancy import use_brand
from members.activation import sms
from tests import factories
from tests.campaigns import push_support as ps
from wechat.sandbox import store

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture
def chunks_of_100(wx_app, monkeypatch):
    monkeypatch.setitem(wx_app.config, "CAMPAIGN_CHUNK_SIZE", 100)


def _campaign(seg, tpl, **kw):
    values = dict(
        name="周末券",
        segment_id=seg.id,
        coupon_template_id=tpl.id if tpl else None,
        channel="template",
        wx_template_id="TPL-COUPON",
        holdout_pct=0,
    )
    values.update(kw)
    c = push.create_campaign(**values)
    db.session.commit()
    return c


def _states(cid) -> dict:
    rows = db.session.execute(
        text(
            "SELECT state, count(*) FROM campaign_recipient WHERE campaign_id = :c AND holdout = 0"
            " GROUP BY state"
        ),
        {"c": cid},
    ).all()
    db.session.commit()
    return dict(rows)


def _prepare(wx_app):
    jobs = ps.due_jobs()
    assert ps.run_job(wx_app, jobs[0]) == "done"
    return ps.due_jobs()


def test_pause_then_resume_sends_each_member_once(wx_app, wx_brand, chunks_of_100):
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, 300)
        c = _campaign(ps.segment(), factories.coupon_template())
        chunks = _prepare(wx_app)
        targets = db.session.get(Campaign, c.id).targeted
        ps.run_job(wx_app, chunks[0])
        push.pause(campaign_id=c.id)
        db.session.commit()
        ps.drain(wx_app)  # the other chunks' jobs find the campaign paused
        sent_while_paused = _states(c.id).get("sent", 0)
        assert 0 < sent_while_paused < targets
        assert db.session.get(Campaign, c.id).status == "paused"
        with pytest.raises(Conflict):
            push.pause(campaign_id=c.id)
        db.session.rollback()
        push.resume(campaign_id=c.id)
        db.session.commit()
        ps.drain(wx_app)
        c2 = db.session.get(Campaign, c.id)
        db.session.refresh(c2)
        assert c2.status == "completed"
        held = db.session.execute(
            text("SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c AND holdout <> 0"),
            {"c": c.id},
        ).scalar_one()
        assert _states(c.id) == {"sent": 300 - held}
        counts = ps.messages_per_openid(wx_brand.appid, list(openids.values()))
        assert sorted(set(counts.values())) == ([0, 1] if held else [1])
        assert sum(counts.values()) == 300 - held
        assert analytics.report(c2).funnel["sent"] == 300 - held


def test_cancel_stops_the_push_and_skips_the_rest(wx_app, wx_brand, chunks_of_100):
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        ps.followers(wx_brand, 300)
        c = _campaign(ps.segment(), factories.coupon_template())
        chunks = _prepare(wx_app)
        ps.run_job(wx_app, chunks[0])
        calls = store.calls(ps.TEMPLATE_SEND)
        push.cancel(campaign_id=c.id)
        db.session.commit()
        ps.drain(wx_app)
        assert store.calls(ps.TEMPLATE_SEND) == calls
        states = _states(c.id)
        sent = states["sent"]
        assert set(states) == {"sent", "skipped"}
        reasons = db.session.execute(
            text(
                "SELECT DISTINCT skip_reason FROM campaign_recipient WHERE campaign_id = :c"
                " AND state = 'skipped'"
            ),
            {"c": c.id},
        ).scalars()
        assert set(reasons) == {"cancelled"}
        rep = analytics.report(db.session.get(Campaign, c.id))
        assert rep.funnel["sent"] == sent and rep.skipped == states["skipped"]
        with pytest.raises(Conflict):
            push.cancel(campaign_id=c.id)


def test_frequency_cap_holds_across_two_campaigns(wx_app, wx_brand, sms_daytime):
    with use_brand(wx_brand.id):
        ps.rules(per_day=1, per_week=3)
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, 40)
        seg = ps.segment()
        first = _campaign(seg, factories.coupon_template(name="首单券"))
        ps.drain(wx_app)
        second = _campaign(seg, None, name="会员日", channel="sms", body="会员日全场8折")
        ps.drain(wx_app)
        s1, s2 = _states(first.id), _states(second.id)
        assert s1 == {"sent": sum(s1.values())}
        # nobody is reached twice in a day, whatever the campaign or channel
        assert set(s2) == {"skipped"}
        assert analytics.report(db.session.get(Campaign, second.id)).capped == s2["skipped"]
        counts = ps.messages_per_openid(wx_brand.appid, list(openids.values()))
        assert max(counts.values()) == 1


def test_weekly_cap_counts_days_of_one_week(brand):
    day = dt.date(2026, 12, 7)  # a Monday
    kw = dict(per_day=1, per_week=3, mass=False)
    members = [factories.member().id for _ in range(2)]
    for i in range(3):
        got = fanout.take_contacts(members, local_day=day + dt.timedelta(days=i), **kw)
        assert got == set(members)
        assert fanout.take_contacts(members, local_day=day + dt.timedelta(days=i), **kw) == set()
    # the fourth day of the week: over the weekly cap; next Monday: a new week
    assert fanout.take_contacts(members, local_day=day + dt.timedelta(days=3), **kw) == set()
    assert fanout.take_contacts(members, local_day=day + dt.timedelta(days=7), **kw) == set(members)


def test_mass_messages_at_most_four_a_month(brand):
    m = factories.member().id
    kw = dict(per_day=10, per_week=50, mass=True)
    got = [fanout.take_contacts([m], local_day=dt.date(2026, 12, d), **kw) for d in range(1, 7)]
    assert [bool(g) for g in got] == [True] * 4 + [False] * 2
    assert fanout.take_contacts([m], local_day=dt.date(2027, 1, 1), **kw) == {m}


def _local(h, m=0, day=8):
    return dt.datetime(2026, 12, day, h, m, tzinfo=SHANGHAI).astimezone(dt.UTC)


def test_quiet_hours_defer_the_sends_until_morning(wx_app, wx_brand):
    with use_brand(wx_brand.id):
        ps.rules(quiet_start=21, quiet_end=8)
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, 20)
        c = _campaign(ps.segment(), factories.coupon_template())
        _prepare(wx_app)
        assert fanout.process_chunk(c.id, 0, now=_local(22, 30)) == "deferred"
        assert store.calls(ps.TEMPLATE_SEND) == 0 or _states(c.id).get("sent") is None
        chunk = db.session.execute(
            text("SELECT state, available_at FROM campaign_chunk WHERE campaign_id = :c"),
            {"c": c.id},
        ).one()
        assert chunk.state == "pending"
        assert chunk.available_at == _local(8, day=9)
        again = db.session.execute(
            text(
                "SELECT available_at FROM outbox_job WHERE func LIKE '%send_chunk'"
                " AND dedupe_key LIKE '%quiet%'"
            )
        ).scalar_one()
        assert abs((again - _local(8, day=9)).total_seconds()) < 120 or again > utcnow()
        # a worker that picks the chunk up early finds it not yet due
        assert fanout.process_chunk(c.id, 0, now=_local(7, 59, day=9)) == "not-claimed"
        assert fanout.process_chunk(c.id, 0, now=_local(8, 1, day=9)) == "done"
        counts = ps.messages_per_openid(wx_brand.appid, list(openids.values()))
        held = db.session.execute(
            text("SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c AND holdout <> 0"),
            {"c": c.id},
        ).scalar_one()
        assert sum(counts.values()) == 20 - held


def test_sms_only_between_8_and_21_with_the_opt_out_line(wx_app, wx_brand):
    with use_brand(wx_brand.id):
        ps.rules()  # no quiet hours: SMS keeps its own hours by law
        ps.followers(wx_brand, 5)
        c = _campaign(
            ps.segment(),
            None,
            channel="sms",
            body="周末会员日全场8折",
            link_url="https://shop.example/d",
        )
        _prepare(wx_app)
        assert fanout.process_chunk(c.id, 0, now=_local(21, 30)) == "deferred"
        assert fanout.process_chunk(c.id, 0, now=_local(9, day=9)) == "done"
        phone = db.session.execute(
            text(
                "SELECT m.phone FROM campaign_recipient r JOIN member m ON m.id = r.member_id"
                " WHERE r.campaign_id = :c AND r.state = 'sent' LIMIT 1"
            ),
            {"c": c.id},
        ).scalar_one()
        last = sms.sandbox_last(phone)
        assert "周末会员日全场8折" in last["text"]
        assert "回T退订" in last["text"] or "退订" in last["text"]


def test_quiet_until_wraps_midnight():
    t = dt.datetime(2026, 12, 8, 23, 0, tzinfo=SHANGHAI)
    assert fanout.quiet_until(t, start=21, end=8, sms=False) == t.replace(day=9, hour=8, minute=0)
    assert fanout.quiet_until(t.replace(hour=12), start=21, end=8, sms=False) is None
    assert fanout.quiet_until(t.replace(hour=12), start=0, end=0, sms=False) is None
    assert fanout.quiet_until(t.replace(hour=6), start=0, end=0, sms=True) == t.replace(
        hour=8, minute=0
    )


def test_a_store_manager_reaches_only_their_store(wx_app, wx_brand):
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        mine, other = factories.store(wx_brand), factories.store(wx_brand)
        ps.followers(wx_brand, 30, store_id=mine.id)
        ps.followers(wx_brand, 30, store_id=other.id)
        brand_wide = ps.segment("全部会员")
        theirs = ps.segment("别店会员", store_id=other.id)
        with pytest.raises(ValidationError):
            push.create_campaign(
                name="越店推送",
                segment_id=theirs.id,
                channel="none",
                coupon_template_id=factories.coupon_template().id,
                store_id=mine.id,
            )
        db.session.rollback()
        c = _campaign(brand_wide, factories.coupon_template(), store_id=mine.id)
        ps.drain(wx_app)
        stores = db.session.execute(
            text("SELECT DISTINCT m.store_id FROM campaign_recipient r JOIN member m"
                 " ON m.id = r.member_id WHERE r.campaign_id = :c"),
            {"c": c.id},
        ).scalars().all()  # fmt: skip
        assert stores == [mine.id]
        assert db.session.get(Campaign, c.id).targeted == 30


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(channel="template", coupon_template_id=None), "coupon_template_id"),
        (dict(channel="none", coupon_template_id=None), "channel"),
        (dict(channel="subscribe", title="上新", body="x" * 21), "body"),
        (dict(channel="sms", body=""), "body"),
        (dict(holdout_pct=60), "holdout_pct"),
        (dict(schedule="at", scheduled_at=None), "scheduled_at"),
        (dict(schedule="monthly", monthly_day=31, monthly_time="10:00"), "monthly_day"),
        (dict(schedule="monthly", monthly_day=1, monthly_time="25:00"), "monthly_time"),
        (dict(link_url="javascript:alert(1)"), "link_url"),
        (dict(name=""), "name"),
    ],
)
def test_bad_campaigns_are_refused(brand, kw, field):
    ps.rules()
    seg = ps.segment()
    tpl = factories.coupon_template()
    values = dict(
        name="测试", segment_id=seg.id, coupon_template_id=tpl.id, channel="template",
        wx_template_id="TPL", title="", body="",
    )  # fmt: skip
    values.update(kw)
    with pytest.raises(ValidationError) as err:
        push.create_campaign(**values)
    assert err.value.field == field
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*) FROM campaign")).scalar_one() == 0


def test_scheduled_and_monthly_campaigns_start_on_time(brand):
    ps.rules()
    seg = ps.segment()
    tpl = factories.coupon_template()
    now = _local(9)
    at = push.create_campaign(
        name="定时", segment_id=seg.id, coupon_template_id=tpl.id, channel="none",
        schedule="at", scheduled_at=_local(10), now=now,
    )  # fmt: skip
    monthly = push.create_campaign(
        name="积分日", segment_id=seg.id, coupon_template_id=tpl.id, channel="none",
        schedule="monthly", monthly_day=15, monthly_time="10:00", now=now,
    )  # fmt: skip
    db.session.commit()
    assert monthly.next_run_at == _local(10, day=15)
    assert fanout.tick(now=_local(9, 30))["started"] == 0
    assert fanout.tick(now=_local(10, 1))["started"] == 1
    assert db.session.get(Campaign, at.id).status == "preparing"
    assert fanout.tick(now=_local(10, 1, day=15))["started"] == 1
    db.session.commit()
    runs = db.session.execute(
        text("SELECT run_key, status FROM campaign WHERE parent_id = :p"), {"p": monthly.id}
    ).all()
    assert runs == [("2026-12", "preparing")]
    m = db.session.get(Campaign, monthly.id)
    assert m.status == "scheduled"
    assert m.next_run_at == dt.datetime(2027, 1, 15, 10, tzinfo=SHANGHAI).astimezone(dt.UTC)
    # the same month never runs twice
    assert fanout.tick(now=_local(10, 2, day=15))["started"] == 0


def test_paused_before_its_recipients_were_chosen_then_resumed(wx_app, wx_brand):
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        ps.followers(wx_brand, 20)
        c = _campaign(ps.segment(), factories.coupon_template())
        push.pause(campaign_id=c.id)
        db.session.commit()
        ps.drain(wx_app)
        assert db.session.get(Campaign, c.id).targeted == 0
        push.resume(campaign_id=c.id)
        db.session.commit()
        ps.drain(wx_app)
        c2 = db.session.get(Campaign, c.id)
        db.session.refresh(c2)
        assert c2.status == "completed" and c2.targeted == 20
        assert analytics.report(c2).funnel["sent"] == _states(c.id)["sent"]


def test_cancel_after_wechat_said_stop_leaves_no_member_half_sent(wx_app, wx_brand, chunks_of_100):
    """WeChat's 45009 stops a batch midway (its unsent members stay ``sending`` for the
    retry); cancelled meanwhile, the retry skips them as cancelled and gives back the
    frequency-cap contact counted for them, so a later campaign may still reach them."""
    with use_brand(wx_brand.id):
        ps.rules(per_day=1, per_week=3)
        ps.without_callback(wx_brand)
        ps.followers(wx_brand, 200)
        c = _campaign(ps.segment(), factories.coupon_template())
        chunks = _prepare(wx_app)
        store.inject_fault(ps.TEMPLATE_SEND, errcode=45009, times=1)
        ps.run_job(wx_app, chunks[0])
        assert _states(c.id).get("sending", 0) > 0
        push.cancel(campaign_id=c.id)
        db.session.commit()
        calls = store.calls(ps.TEMPLATE_SEND)
        ps.drain(wx_app)
        assert store.calls(ps.TEMPLATE_SEND) == calls  # nothing more went out
        states = _states(c.id)
        assert set(states) <= {"sent", "skipped"}
        rep = analytics.report(db.session.get(Campaign, c.id))
        assert rep.funnel["sent"] == states.get("sent", 0) == calls - 1
        assert rep.skipped == states["skipped"]
        assert rep.funnel["sent"] + rep.skipped == rep.funnel["targeted"]
        counted = dict(
            db.session.execute(text("SELECT member_id, day_n FROM campaign_member_contact")).all()
        )
        skipped = db.session.execute(
            text(
                "SELECT member_id FROM campaign_recipient WHERE campaign_id = :c"
                " AND state = 'skipped'"
            ),
            {"c": c.id},
        ).scalars()
        assert all(counted.get(m, 0) == 0 for m in skipped)
        sent = db.session.execute(
            text(
                "SELECT member_id FROM campaign_recipient WHERE campaign_id = :c AND state = 'sent'"
            ),
            {"c": c.id},
        ).scalars()
        assert all(counted[m] == 1 for m in sent)


def test_mass_message_goes_to_a_chunk_in_one_call_and_never_to_one_follower(
    wx_app, wx_brand, chunks_of_100, monkeypatch
):
    """A mass message campaign: each chunk's followers in one call (WeChat takes 2 to
    10,000 openids); a chunk with a single follower left is skipped with its reason (WeChat
    refuses a list of one), its contact given back; nobody gets it twice."""
    mass_send = "/cgi-bin/message/mass/send"
    monkeypatch.setattr(fanout, "BRAND_HOLDOUT_PCT", 0)  # every follower a target
    with use_brand(wx_brand.id):
        ps.rules(per_day=5, per_week=10)
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, 201)  # chunks of 100, 100 and 1
        c = _campaign(
            ps.segment(), None, channel="mass", wx_template_id="", title="周末上新", body="全场八折"
        )
        _prepare(wx_app)
        ps.drain(wx_app)
        c = db.session.get(Campaign, c.id)
        db.session.refresh(c)
        assert c.status == "completed" and c.chunks_total == 3
        assert store.calls(mass_send) == 2
        assert _states(c.id) == {"sent": 200, "skipped": 1}
        counts = ps.messages_per_openid(wx_brand.appid, list(openids.values()))
        assert sorted(counts.values()).count(1) == 200 and sum(counts.values()) == 200
        reason, member_id = db.session.execute(
            text(
                "SELECT skip_reason, member_id FROM campaign_recipient WHERE campaign_id = :c"
                " AND state = 'skipped'"
            ),
            {"c": c.id},
        ).one()
        assert reason == "mass_single"
        left = db.session.execute(
            text("SELECT mass_n FROM campaign_member_contact WHERE member_id = :m"),
            {"m": member_id},
        ).scalar()
        assert not left  # the month's mass quota was not spent on them
        rep = analytics.report(c)
        assert rep.funnel["sent"] == 200 and rep.skipped == 1
