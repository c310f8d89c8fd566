"""The fan-out's sending threads: several sends in flight at once never outrun the brand's
token bucket, and a pause mid-batch stops the threads between sends, leaves no member half
sent, and the resumed push reaches every member exactly once."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from campaigns import fanout, push
from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from tests import factories
from tests.campaigns import push_support as ps
from wechat import gateway

RATE = 40


def _campaign(seg, tpl):
    c = push.create_campaign(
        name="周末券",
        segment_id=seg.id,
        coupon_template_id=tpl.id,
        channel="template",
        wx_template_id="TPL-COUPON",
        holdout_pct=0,
    )
    db.session.commit()
    return c


def _sends(monkeypatch) -> list[tuple[float, str]]:
    """When each template message went out, and from which thread."""
    seen: list[tuple[float, str]] = []
    real = gateway.send_template

    def send_template(*a, **kw):
        seen.append((time.monotonic(), threading.current_thread().name))
        return real(*a, **kw)

    monkeypatch.setattr(gateway, "send_template", send_template)
    return seen


def _states(cid) -> dict:
    rows = db.session.execute(
        text(
            "SELECT state, count(*) FROM campaign_recipient WHERE campaign_id = :c"
            " AND holdout = 0 GROUP BY state"
        ),
        {"c": cid},
    ).all()
    db.session.commit()
    return dict(rows)


def _reached(appid: str, openids: dict) -> list[int]:
    """Messages each member got (members of the brand's holdout get none)."""
    return list(ps.messages_per_openid(appid, list(openids.values())).values())


def test_the_sending_threads_never_outrun_the_token_bucket(wx_app, wx_brand, monkeypatch):
    n = 3 * RATE
    monkeypatch.setitem(wx_app.config, "CAMPAIGN_SEND_THREADS", 8)
    seen = _sends(monkeypatch)
    with use_brand(wx_brand.id):
        ps.rules(rate_per_second=RATE)
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, n)
        c = _campaign(ps.segment(), factories.coupon_template())
    ps.drain(wx_app)
    with use_brand(wx_brand.id):
        assert db.session.get(Campaign, c.id).status == "completed"
        sent = _states(c.id)["sent"]
        assert _states(c.id) == {"sent": sent}
        counts = _reached(wx_brand.appid, openids)
        assert set(counts) <= {0, 1} and sum(counts) == sent
    times = sorted(t for t, _name in seen)
    assert len(times) == sent
    # several threads sent at once
    assert len({name for _t, name in seen}) > 1
    # a token bucket of RATE a second with bursts of RATE: at most 2 * RATE in any second,
    # and the 3 * RATE sends took at least the 2 seconds the bucket refills in
    for i, t in enumerate(times):
        in_a_second = sum(1 for u in times[i:] if u < t + 1.0)
        assert in_a_second <= 2 * RATE, (i, in_a_second)
    assert times[-1] - times[0] >= (sent - RATE) / RATE * 0.95


def test_a_pause_mid_batch_stops_between_sends_and_resume_sends_the_rest_once(
    wx_app, wx_brand, monkeypatch
):
    n = 6 * RATE  # one batch of n at RATE a second: about 5 seconds of sends
    monkeypatch.setattr(fanout, "STOP_POLL", 0.1)
    seen = _sends(monkeypatch)
    with use_brand(wx_brand.id):
        ps.rules(rate_per_second=RATE)
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, n)
        c = _campaign(ps.segment(), factories.coupon_template())
        cid = c.id
    jobs = ps.due_jobs()
    assert ps.run_job(wx_app, jobs[0]) == "done"  # the recipients
    (chunk_job,) = ps.due_jobs()

    def pause_soon():
        while len(seen) < RATE:
            time.sleep(0.02)
        with wx_app.app_context(), use_brand(wx_brand.id):
            push.pause(campaign_id=cid)
            db.session.commit()
            db.session.remove()

    pauser = threading.Thread(target=pause_soon)
    pauser.start()
    ps.run_job(wx_app, chunk_job)
    pauser.join()
    with use_brand(wx_brand.id):
        assert db.session.get(Campaign, cid).status == "paused"
        chunk = db.session.execute(
            text("SELECT state, lease_until FROM campaign_chunk WHERE campaign_id = :c"),
            {"c": cid},
        ).one()
        assert tuple(chunk) == ("pending", None)  # released, not held by a lease
        states = _states(cid)
        # no member is left half sent: sent, or back to pending with the coupon they got
        assert set(states) == {"sent", "pending"}
        targets = sum(states.values())
        assert RATE <= states["sent"] < targets
        assert states["sent"] == len(seen)
        coupons = db.session.execute(
            text("SELECT count(*), count(DISTINCT member_id) FROM coupon WHERE template_id ="
                 " (SELECT coupon_template_id FROM campaign WHERE id = :c)"),
            {"c": cid},
        ).one()  # fmt: skip
        assert coupons[0] == coupons[1] == targets
        push.resume(campaign_id=cid)
        db.session.commit()
    ps.drain(wx_app)
    with use_brand(wx_brand.id):
        assert db.session.get(Campaign, cid).status == "completed"
        assert _states(cid) == {"sent": targets}
        counts = _reached(wx_brand.appid, openids)
        assert set(counts) <= {0, 1} and sum(counts) == targets
        coupons = db.session.execute(
            text("SELECT count(*), count(DISTINCT member_id) FROM coupon WHERE template_id ="
                 " (SELECT coupon_template_id FROM campaign WHERE id = :c)"),
            {"c": cid},
        ).one()  # fmt: skip
        assert coupons[0] == coupons[1] == targets
