"""Campaign fan-out: one coupon plus one template message pushed to 1,000,000 members
against the WeChat sandbox, end to end with 2 workers (``flask rq worker``) and the
scheduler relaying the outbox: the recipients materialised from a segment, the chunks sent,
every member's coupon issued with its idempotency key and its message sent and recorded.
The baseline, measured in the same run on the same database: the bulk coupon issuance of
the coupons package (``bulk_issue``, one set-based transaction, no message) to the same
members.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from bench import common

TITLE = "Campaign fan-out (1 coupon + 1 template message to 1,000,000 members, 2 workers)"
MEMBERS = int(os.environ.get("WMB_BENCH_FANOUT_MEMBERS", "1000000"))
WORKERS = 2
APPID, SECRET = "wxbenchfanout", "bench-fanout-secret"
TIMEOUT = float(os.environ.get("WMB_BENCH_FANOUT_TIMEOUT", str(6 * 3600)))


def _setup(app) -> tuple[int, int, int]:
    """Schema, a brand with credentials, MEMBERS members each with an openid of a sandbox
    consumer who follows the account, a segment of all of them, two coupon templates."""
    from sqlalchemy import text

    from campaigns import push
    from campaigns.models import Segment
    from core.db import db
    from core.tenancy import use_brand
    from coupons import services as coupons
    from org import services as org
    from wechat.sandbox import accounts, store

    with app.app_context():
        db.create_all()
        brand = org.create_brand(slug="benchfanout", name="Bench Fanout")
        org.update_brand_credentials(brand=brand, appid=APPID, secret=SECRET)
        db.session.commit()
        # no callback: WeChat's million delivery reports would be another benchmark
        accounts.register_account(APPID, SECRET, name="Bench Fanout")
        with use_brand(brand.id):
            push.save_settings(
                per_day=1, per_week=3, quiet_start=0, quiet_end=0, rate_per_second=5000
            )
            tpl = coupons.create_template(name="推送券", kind="cash", value_fen=500, valid_days=30)
            base = coupons.create_template(name="批量券", kind="cash", value_fen=500, valid_days=30)
            seg = Segment(
                name="全部",
                definition={"op": "and", "items": [{"field": "identity", "op": "any",
                                                    "value": ["oa_openid"]}]},
            )  # fmt: skip
            db.session.add(seg)
            db.session.commit()
            db.session.execute(
                text(
                    "INSERT INTO member (brand_id, phone, card_no, name, gender, source, status,"
                    " created_at, updated_at)"
                    " SELECT :b, NULL, 'F' || g, '', '', 'import', 'active', now(), now()"
                    " FROM generate_series(1, :n) g"
                ),
                {"b": brand.id, "n": MEMBERS},
            )
            ids = db.session.execute(
                text("SELECT id FROM member WHERE brand_id = :b ORDER BY id"), {"b": brand.id}
            ).scalars().all()  # fmt: skip
            consumers = store.create_consumers("会员", len(ids))
            openids = [store.openid_for(APPID, c["uid"]) for c in consumers]
            store.set_following_many(APPID, openids)
            r = store.get_redis()
            index = store._k("openid_index", APPID)
            pairs = list(zip(openids, (c["uid"] for c in consumers), strict=True))
            for i in range(0, len(pairs), 20_000):
                r.hset(index, mapping=dict(pairs[i : i + 20_000]))
            db.session.execute(
                text(
                    "INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)"
                    " SELECT :b, m, 'oa_openid', o, now()"
                    " FROM unnest(CAST(:ids AS bigint[]), CAST(:o AS text[])) AS t(m, o)"
                ),
                {"b": brand.id, "ids": ids, "o": openids},
            )
            db.session.commit()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        return brand.id, seg.id, tpl.id, base.id


def _start(args: list[str], env: dict, name: str) -> subprocess.Popen:
    log = open(common.OUT / f"fanout-{name}.log", "w")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(  # noqa: S603 - fixed command
        [str(common.VENV_BIN / "flask"), "--app", "app", *args],
        cwd=common.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _fanout(app, env, brand_id: int, seg_id: int, tpl_id: int, rep: int, log) -> dict:
    from sqlalchemy import text

    from campaigns import push
    from core.db import db
    from core.tenancy import use_brand

    with app.app_context(), use_brand(brand_id):
        started = time.perf_counter()
        c = push.create_campaign(
            name=f"压测{rep}", segment_id=seg_id, coupon_template_id=tpl_id, channel="template",
            wx_template_id="TPL-BENCH", holdout_pct=5,
        )  # fmt: skip
        db.session.commit()
        cid = c.id
    deadline = time.monotonic() + TIMEOUT
    last = 0.0
    while True:
        with app.app_context():
            status, done = db.session.execute(
                text(
                    "SELECT c.status, coalesce((SELECT sum(n) FROM campaign_counter k"
                    " WHERE k.campaign_id = c.id AND k.dim = '' AND k.grp = 0"
                    " AND k.metric IN ('sent', 'skipped', 'failed')), 0)"
                    " FROM campaign c WHERE c.id = :c"
                ),
                {"c": cid},
            ).one()
            db.session.remove()
        if status == "completed":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"fan-out not done after {TIMEOUT} s ({done} sent)")
        if time.monotonic() - last > 30:
            log(f"    {status}: {int(done):,} done after {time.perf_counter() - started:.0f} s")
            last = time.monotonic()
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    with app.app_context():
        row = db.session.execute(
            text(
                "SELECT count(*) FILTER (WHERE holdout = 0),"
                " count(*) FILTER (WHERE holdout = 0 AND state = 'sent'),"
                " count(*) FILTER (WHERE holdout = 0 AND coupon_id IS NOT NULL),"
                " count(*) FROM campaign_recipient WHERE campaign_id = :c"
            ),
            {"c": cid},
        ).one()
        coupons = db.session.execute(
            text("SELECT count(*), count(DISTINCT member_id) FROM coupon WHERE template_id = :t"),
            {"t": tpl_id},
        ).one()
        db.session.remove()
    targets, sent, with_coupon, total = row
    assert total == MEMBERS, total
    assert sent == targets == with_coupon, row
    assert coupons[0] == coupons[1] == targets, coupons
    return {"seconds": elapsed, "targets": targets, "members": total}


def _baseline(app, brand_id: int, base_id: int, rep: int) -> float:
    from core.db import db
    from core.tenancy import use_brand
    from coupons.issuance import bulk_issue

    with app.app_context(), use_brand(brand_id):
        started = time.perf_counter()
        batch = bulk_issue(template_id=base_id, target={}, idempotency_key=f"bench-base-{rep}")
        db.session.commit()
        assert batch.issued == MEMBERS, batch.issued
        return MEMBERS / (time.perf_counter() - started)


def _reset(app, tpl_id: int, base_id: int) -> None:
    from sqlalchemy import text

    from core.db import db

    with app.app_context():
        for sql in (
            "TRUNCATE campaign, campaign_recipient, campaign_chunk, campaign_counter,"
            " campaign_member_contact, coupon, coupon_issue_batch, coupon_stock_entry,"
            " outbox_job, member_tag, tag_history CASCADE",
            "UPDATE coupon_template SET issued = 0",
        ):
            db.session.execute(text(sql))
        db.session.commit()
        db.session.execute(text("CHECKPOINT"))
        db.session.commit()


def run(*, repeats: int, log) -> dict:
    common.recreate_database()
    common.flush_redis()
    sandbox_port = common.free_port()
    env = common.bench_env(
        WECHAT_API_BASE=f"http://127.0.0.1:{sandbox_port}/sandbox/wechat",
        WECHAT_SANDBOX="1",
        PROMETHEUS_MULTIPROC_DIR=common.metrics_dir(),
        CHECK_DATA_KEYS="0",
    )
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
    from app import create_app
    from config import Config

    app = create_app(Config(env))
    brand_id, seg_id, tpl_id, base_id = _setup(app)
    log(f"  {MEMBERS:,} members following the sandbox account ready")
    rates, base_rates, raw = [], [], []
    for rep in range(repeats):
        _reset(app, tpl_id, base_id)
        sandbox = subprocess.Popen(  # noqa: S603 - fixed command
            [str(common.VENV_BIN / "gunicorn"), *common.GUNICORN_ARGS, "--bind",
             f"127.0.0.1:{sandbox_port}", "wechat.sandbox.server:create_sandbox_app()"],
            cwd=common.ROOT, env=env, start_new_session=True,
            stdout=open(common.OUT / "fanout-sandbox.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        procs = [sandbox]
        try:
            common._wait_ready(f"http://127.0.0.1:{sandbox_port}/", sandbox)
            procs += [_start(["rq", "worker"], env, f"worker{i}") for i in range(WORKERS)]
            procs.append(_start(["rq", "scheduler", "--interval", "0.2"], env, "scheduler"))
            res = _fanout(app, env, brand_id, seg_id, tpl_id, rep, log)
        finally:
            _stop(procs)
        rate = res["targets"] / res["seconds"]
        rates.append(rate)
        base_rates.append(_baseline(app, brand_id, base_id, rep))
        raw.append(res)
        log(
            f"  run {rep + 1}: {res['targets']:,} members sent in {res['seconds']:.0f} s"
            f" ({rate:,.0f}/s); bulk issuance {base_rates[-1]:,.0f}/s"
        )
    ours, base = common.median(rates), common.median(base_rates)
    return {
        "rows": [("Members pushed per second (coupon + message)", ours, base, "higher")],
        "checks": [
            ("every target got exactly one coupon and one message", "yes", True),
        ],
        "notes": [
            f"{MEMBERS:,} members, 5% campaign holdout plus the brand's 5% holdout; chunks of"
            " 1,000, batches of 500 (one bulk coupon issuance and set-based state updates per"
            " batch), each batch's messages over 8 sending threads per worker taking their"
            " tokens from the brand's bucket as they go; 2 `flask rq worker` processes and the"
            " scheduler relaying the outbox; the sandbox under gunicorn"
            f" ({common.GUNICORN_WORKERS} workers, {common.GUNICORN_THREADS} threads) on the"
            " same machine.",
            "Ours: from the campaign's creation to its completion (materialising the"
            " recipients, the frequency cap, the coupons with one idempotency key each, one"
            " template message per member over HTTP, the outcomes and rollups). Baseline: the"
            " coupons package's bulk issuance to the same members (coupons only, no message,"
            " one transaction), measured right after in the same run.",
            "Delivery reports (TEMPLATESENDJOBFINISH) are not posted back in this run.",
        ],
        "raw": {"runs": raw, "ours_per_s": rates, "bulk_issue_per_s": base_rates},
    }
