"""Subscribe-message pushes and one-time opt-ins: a push takes the member's acceptance before
it calls WeChat, so two pushes at once send once with it (the other skips the member without
calling WeChat); WeChat's "sent" report does not take a second one; a send WeChat refused
without using the acceptance gives it back, and one that got no answer keeps it."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import text

from campaigns import push
from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from members import consent
from members.models.consent import ACCEPT, POPUP, SENT
from tests.campaigns import push_support as ps
from tests.support.wechat import FakeWeChat
from wechat.sandbox import store

TPL = "SUB-SPRING"
BIZSEND = "/cgi-bin/message/subscribe/bizsend"


def _accept(brand, openids, *, times: int = 1) -> None:
    """Each user accepted the template ``times`` times: WeChat (the sandbox) and our records,
    from WeChat's popup events, agree."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for i, openid in enumerate(openids):
        store.grant_subscription(brand.appid, openid, TPL, times)
        for k in range(times):
            consent.record_choice(
                openid=openid,
                template_id=TPL,
                kind=POPUP,
                status=ACCEPT,
                at=at + dt.timedelta(seconds=i * 10 + k),
            )
    db.session.commit()


def _campaign(seg, name: str) -> Campaign:
    c = push.create_campaign(
        name=name,
        segment_id=seg.id,
        coupon_template_id=None,
        channel="subscribe",
        wx_template_id=TPL,
        title="春季上新",
        body="新品到店，欢迎选购",
        holdout_pct=0,
    )
    db.session.commit()
    return c


def _left(openids) -> dict[str, int]:
    """Acceptances left per user in our records."""
    rows = db.session.execute(
        text(
            "SELECT openid, accepts - sends FROM subscribe_consent WHERE template_id = :t"
            " AND openid = ANY(:o)"
        ),
        {"t": TPL, "o": list(openids)},
    ).all()
    db.session.commit()
    return dict(rows)


def _left_at_wechat(brand, openid: str) -> int:
    return int(store.get_redis().hget(store._k("subs", brand.appid, openid), TPL) or 0)


def _outcomes(cid: int) -> dict[int, tuple[str, str | None]]:
    rows = db.session.execute(
        text(
            "SELECT member_id, state, skip_reason FROM campaign_recipient WHERE campaign_id = :c"
            " AND holdout = 0"
        ),
        {"c": cid},
    ).all()
    db.session.commit()
    return {m: (st, why) for m, st, why in rows}


def _uses(openids) -> dict[str, list[tuple[str, str | None]]]:
    rows = db.session.execute(
        text(
            "SELECT openid, state, msg_id FROM subscribe_consent_use WHERE template_id = :t"
            " AND openid = ANY(:o) ORDER BY id"
        ),
        {"t": TPL, "o": list(openids)},
    ).all()
    db.session.commit()
    out: dict[str, list] = {}
    for openid, state, msg_id in rows:
        out.setdefault(openid, []).append((state, msg_id))
    return out


def test_two_pushes_at_once_send_once_per_acceptance(wx_app, wx_brand, monkeypatch):
    n = 40
    # small batches, so that the two pushes' batches interleave
    monkeypatch.setitem(wx_app.config, "CAMPAIGN_BATCH_SIZE", 4)
    with use_brand(wx_brand.id):
        ps.rules(per_day=2, per_week=4)
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, n)
        _accept(wx_brand, openids.values())
        seg = ps.segment()
        a, b = _campaign(seg, "春季上新 A"), _campaign(seg, "春季上新 B")
    for job_id in ps.due_jobs():  # the recipients of both
        ps.run_job(wx_app, job_id)
    chunk_jobs = ps.due_jobs()
    assert len(chunk_jobs) == 2
    calls_before = store.calls(BIZSEND)
    start = threading.Barrier(2)
    results: list = []

    def run(job_id: int) -> None:
        start.wait()
        results.append(ps.run_job(wx_app, job_id))

    threads = [threading.Thread(target=run, args=(j,)) for j in chunk_jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == ["done", "done"]
    calls = store.calls(BIZSEND) - calls_before
    with use_brand(wx_brand.id):
        got_a, got_b = _outcomes(a.id), _outcomes(b.id)
        targets = set(got_a)
        assert targets == set(got_b) and len(targets) > n // 2
        for m in targets:
            # exactly one of the two sent with the member's acceptance; the other skipped
            # the member without calling WeChat (no 43101, no failure)
            assert sorted([got_a[m], got_b[m]]) == [("sent", None), ("skipped", "no_opt_in")]
        # one call to WeChat per acceptance, none refused
        assert calls == len(targets)
        target_openids = [openids[m] for m in targets]
        assert set(_left(target_openids).values()) == {0}
        assert {_left_at_wechat(wx_brand, o) for o in target_openids} == {0}
        assert set(ps.messages_per_openid(wx_brand.appid, target_openids).values()) == {1}
        uses = _uses(target_openids)
        assert all(len(u) == 1 and u[0][0] == "used" and u[0][1] for u in uses.values())
        for c in (a, b):
            assert db.session.get(Campaign, c.id).status == "completed"


def _sent_event(openid: str, msg_id: str, at: int) -> str:
    lists = (
        f"<List><TemplateId><![CDATA[{TPL}]]></TemplateId><MsgID>{msg_id}</MsgID>"
        "<ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List>"
    )
    return (
        f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{at}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe_msg_sent_event]]></Event>"
        f"<SubscribeMsgSentEvent>{lists}</SubscribeMsgSentEvent></xml>"
    )


def test_wechat_s_sent_report_does_not_take_a_second_acceptance(wx_app, wx_brand, wx_client):
    wx = FakeWeChat(
        wx_client, wx_brand.slug, token=wx_brand.token, aes_key=wx_brand.aes_key,
        appid=wx_brand.appid,
    )  # fmt: skip
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, 6)
        _accept(wx_brand, openids.values(), times=2)
        c = _campaign(ps.segment(), "春季上新")
    ps.drain(wx_app)
    now = int(time.time())
    with use_brand(wx_brand.id):
        sent = [m for m, (st, _w) in _outcomes(c.id).items() if st == "sent"]
        assert sent
        reached = [openids[m] for m in sent]
        # the push took one acceptance each, as it sent (before any report)
        assert set(_left(reached).values()) == {1}
        uses = _uses(reached)
        for i, o in enumerate(reached):
            ((state, msg_id),) = uses[o]
            assert state == "used" and msg_id
            # WeChat reports the message sent, twice (a retry): no second acceptance taken
            for _ in range(2):
                assert wx.post_plain(_sent_event(o, msg_id, now + i)).status_code == 200
        assert set(_left(reached).values()) == {1}
        # a message sent by something else than a push (WeChat reports it) takes one
        first = reached[0]
        wx.post_plain(_sent_event(first, "990001", now + 100))
        assert _left([first]) == {first: 0}
    # a report that comes before the push recorded WeChat's answer finds the acceptance the
    # push took for it
    with use_brand(wx_brand.id):
        other = reached[1]
        held = consent.reserve_sends(template_id=TPL, wanted={"campaign:0:early": other})
        db.session.commit()
        assert held == {"campaign:0:early": "reserved"}
        assert _left([other]) == {other: 0}
        consent.record_choice(
            openid=other,
            template_id=TPL,
            kind=SENT,
            status="success",
            at=dt.datetime.fromtimestamp(now + 200, dt.UTC),
            msg_id="990002",
            error_code=0,
        )
        consent.settle_sends(used={"campaign:0:early": "990002"})
        db.session.commit()
        assert _left([other]) == {other: 0}
        assert _uses([other])[other][-1] == ("used", "990002")


@pytest.fixture
def one_thread(wx_app, monkeypatch):
    monkeypatch.setitem(wx_app.config, "CAMPAIGN_SEND_THREADS", 1)


def _push_waiting_on_its_chunk(wx_app, wx_brand, n: int):
    """A subscribe push to ``n`` followers who each accepted once, fanned out to its one chunk
    job (not run yet): the push, the followers' openids by member, the chunk job and the
    member ids in order."""
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        openids = ps.followers(wx_brand, n)
        _accept(wx_brand, openids.values())
        c = _campaign(ps.segment(), "春季上新")
    jobs = ps.due_jobs()
    ps.run_job(wx_app, jobs[0])
    (chunk_job,) = ps.due_jobs()
    with use_brand(wx_brand.id):
        order = sorted(_outcomes(c.id))
    return c, openids, chunk_job, order


def test_a_refused_send_gives_the_acceptance_back_and_an_unanswered_one_keeps_it(
    wx_app, wx_brand, one_thread
):
    c, openids, chunk_job, order = _push_waiting_on_its_chunk(wx_app, wx_brand, 12)
    first, second, rest = order[0], order[1], order[2:]
    # WeChat refuses the first send (48001: not authorised; nothing used) and the second gets
    # no answer (the connection drops: WeChat may have used the acceptance)
    store.inject_fault(BIZSEND, errcode=48001, times=1)
    store.inject_fault(BIZSEND, drop=True, times=1)
    ps.run_job(wx_app, chunk_job)  # WeChat gave no answer: the chunk backs off
    with use_brand(wx_brand.id):
        got = _outcomes(c.id)
        assert got[first] == ("failed", "e48001")
        assert got[second] == ("sending", None)
        left = _left(openids.values())
        assert left[openids[first]] == 1  # given back
        assert left[openids[second]] == 0  # kept: WeChat may have used it
        assert all(left[openids[m]] == 0 for m in rest)  # held for the retry
        uses = _uses([openids[first], openids[second]])
        assert uses[openids[first]] == [("released", None)]
        assert uses[openids[second]] == [("uncertain", None)]
    # the retry sends with the acceptance it holds: none taken twice
    ps.drain(wx_app)
    with use_brand(wx_brand.id):
        got = _outcomes(c.id)
        assert got[second] == ("sent", None)
        assert all(got[m] == ("sent", None) for m in rest)
        left = _left(openids.values())
        assert left[openids[first]] == 1
        assert all(left[openids[m]] == 0 for m in [second, *rest])
        assert all(len(u) == 1 for u in _uses([openids[m] for m in [second, *rest]]).values())
    assert _left_at_wechat(wx_brand, openids[first]) == 1


def test_cancel_gives_back_the_acceptances_of_sends_never_tried(wx_app, wx_brand, one_thread):
    c, openids, chunk_job, order = _push_waiting_on_its_chunk(wx_app, wx_brand, 10)
    store.inject_fault(BIZSEND, drop=True, times=1)  # the first send gets no answer
    ps.run_job(wx_app, chunk_job)  # WeChat gave no answer: the chunk backs off
    with use_brand(wx_brand.id):
        push.cancel(campaign_id=c.id)
        db.session.commit()
    ps.drain(wx_app)
    with use_brand(wx_brand.id):
        got = _outcomes(c.id)
        assert {got[m] for m in order} == {("skipped", "cancelled")}
        left = _left(openids.values())
        assert left[openids[order[0]]] == 0  # WeChat may have used it
        assert all(left[openids[m]] == 1 for m in order[1:])  # never tried: given back
