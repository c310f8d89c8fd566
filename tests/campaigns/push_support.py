"""Helpers of the push campaign tests: members who follow the sandbox's official account,
a segment, the brand's push rules, and running the outbox jobs as the workers would."""

from __future__ import annotations

import os
import signal
import time

from sqlalchemy import text

from campaigns import push
from campaigns.models import Segment
from core.db import db
from core.jobs import run_outbox_job
from tests.support import bulk
from wechat.sandbox import accounts, store

EVERYONE_WITH_OPENID = {
    "op": "and",
    "items": [{"field": "identity", "op": "any", "value": ["oa_openid"]}],
}
TEMPLATE_SEND = "/cgi-bin/message/template/send"


def followers(brand, n: int, *, unfollowed_every: int = 0, store_id: int | None = None) -> dict:
    """``n`` members of ``brand`` with an official-account openid of a sandbox consumer who
    follows it (except every ``unfollowed_every``-th); returns member id -> openid."""
    first = db.session.execute(text("SELECT coalesce(max(id), 0) FROM member")).scalar_one()
    bulk.members(brand.id, n, offset=first, store_id=store_id)
    ids = (
        db.session.execute(
            text("SELECT id FROM member WHERE brand_id = :b AND id > :f ORDER BY id"),
            {"b": brand.id, "f": first},
        )
        .scalars()
        .all()
    )
    consumers = store.create_consumers("会员", len(ids))
    openids = {
        mid: store.openid_for(brand.appid, c["uid"]) for mid, c in zip(ids, consumers, strict=True)
    }
    db.session.execute(
        text(
            "INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)"
            " SELECT :b, m, 'oa_openid', o, now()"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:openids AS text[])) AS t(m, o)"
        ),
        {"b": brand.id, "ids": list(openids), "openids": list(openids.values())},
    )
    db.session.commit()
    follow = [
        o
        for i, (_m, o) in enumerate(openids.items(), 1)
        if not (unfollowed_every and i % unfollowed_every == 0)
    ]
    store.set_following_many(brand.appid, follow)
    return openids


def segment(name: str = "全部关注会员", definition=None, store_id: int | None = None) -> Segment:
    seg = Segment(name=name, definition=definition or EVERYONE_WITH_OPENID, store_id=store_id)
    db.session.add(seg)
    db.session.commit()
    return seg


def rules(**kw) -> None:
    """The brand's push rules for a test: no quiet hours and no throttle unless asked."""
    values = dict(per_day=1, per_week=3, quiet_start=0, quiet_end=0, rate_per_second=5000)
    values.update(kw)
    push.save_settings(**values)
    db.session.commit()


def without_callback(brand) -> None:
    """WeChat's delivery reports go nowhere (a big push's reports would be 10,000 posts)."""
    accounts.register_account(
        brand.appid, brand.secret, token=brand.token, aes_key=brand.aes_key, name=brand.name
    )


def due_jobs() -> list[int]:
    rows = db.session.execute(
        text("SELECT id FROM outbox_job WHERE status IN ('pending', 'retry', 'queued') ORDER BY id")
    ).scalars()
    ids = list(rows)
    db.session.commit()
    return ids


def run_job(app, job_id: int) -> str:
    """One outbox job, in its own application context, as a worker runs it."""
    with app.app_context():
        try:
            return run_outbox_job(job_id)
        finally:
            db.session.remove()


def drain(app, *, rounds: int = 200, waits_pass: bool = True) -> int:
    """Run outbox jobs until none is left; ``waits_pass``: the backoffs and quiet hours are
    over (a chunk's not-before time is cleared), as if the clock had moved on."""
    ran = 0
    for _ in range(rounds):
        if waits_pass:
            db.session.execute(text("UPDATE campaign_chunk SET available_at = NULL"))
            db.session.commit()
        ids = due_jobs()
        if not ids:
            return ran
        for job_id in ids:
            run_job(app, job_id)
            ran += 1
    raise AssertionError("jobs still due after many rounds")


def kill_mid_job(app, job_id: int, *, after_calls: int, endpoint: str = TEMPLATE_SEND) -> int:
    """Run a job in a forked worker and SIGKILL it once WeChat got ``after_calls`` more
    calls of ``endpoint``; returns the calls counted when it died."""
    start = store.calls(endpoint)
    pid = os.fork()
    if pid == 0:  # the worker
        code = 0
        try:
            with app.app_context():
                db.engine.dispose(close=False)
                run_outbox_job(job_id)
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    deadline = time.monotonic() + 120
    while store.calls(endpoint) - start < after_calls:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the worker sent nothing")
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return store.calls(endpoint) - start


def messages_per_openid(appid: str, openids) -> dict[str, int]:
    r = store.get_redis()
    pipe = r.pipeline(transaction=False)
    for o in openids:
        pipe.llen(store._k("chat", appid, o))
    return dict(zip(openids, pipe.execute(), strict=True))
