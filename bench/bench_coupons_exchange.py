"""Contended points-mall exchange over HTTP: many members, a few hot coupons, through
gunicorn (the member center's exchange endpoint: session, CSRF, points spend, stock, coupon
issue, one transaction each), against the bare endpoint of bench/bare_app.py under the same
gunicorn settings in the same run.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from bench import common

TITLE = "Points-mall exchange over HTTP (contended: 3 hot coupons)"
DURATION = int(os.environ.get("WMB_BENCH_DURATION", "10"))
WRK_THREADS = 2
CONNECTIONS = int(os.environ.get("WMB_BENCH_CONNECTIONS", "8"))
MEMBERS = int(os.environ.get("WMB_BENCH_MALL_MEMBERS", "2000"))
# Distinct exchanges per wrk thread and run: more than a thread gets through in a run.
PER_THREAD = int(os.environ.get("WMB_BENCH_MALL_PER_THREAD", str(1000 * DURATION)))
HOT_ITEMS = 3
LUA = Path(__file__).with_name("bench_coupons_exchange.lua")
BARE_LUA = Path(__file__).with_name("requests.lua")


def _setup(env: dict, runs: int = 1) -> list[str]:
    """A brand, HOT_ITEMS mall items, MEMBERS members with points; returns one line per
    request (path, session cookie, form body), each a distinct exchange, for ``runs`` runs."""
    from flask import g, session
    from flask_wtf.csrf import generate_csrf
    from sqlalchemy import text

    from app import create_app
    from config import Config
    from core.db import db
    from core.tenancy import use_brand
    from coupons import services as coupons
    from members import session as member_session
    from org import services as org
    from points import services as points

    app = create_app(Config(env))
    with app.app_context():
        db.create_all()
        brand = org.create_brand(slug="benchmall", name="Bench Mall")
        db.session.commit()
        with use_brand(brand.id):
            items = []
            for n in range(HOT_ITEMS):
                tpl = coupons.create_template(
                    name=f"5元券{n}", kind="cash", value_fen=500, valid_days=30
                )
                item = coupons.create_mall_item(
                    template_id=tpl.id, title=f"热门{n}", price_points=100
                )
                items.append(item)
            db.session.execute(
                text(
                    "INSERT INTO member (brand_id, card_no, name, gender, source, status,"
                    " created_at, updated_at) SELECT :b, 'M' || g, '', '', 'import', 'active',"
                    " now(), now() FROM generate_series(1, :n) g"
                ),
                {"b": brand.id, "n": MEMBERS},
            )
            member_ids = (
                db.session.execute(text("SELECT id FROM member ORDER BY id")).scalars().all()
            )
            for mid in member_ids:
                points.adjust(
                    member_id=mid, points=10_000_000, reason="bench", idempotency_key=f"b{mid}"
                )
            db.session.commit()
            item_ids = [i.id for i in items]
        serializer = app.session_interface.get_signing_serializer(app)
        sessions = {}
        for mid in member_ids:
            with app.test_request_context("/"):
                g.pop("csrf_token", None)  # flask_wtf caches the token for the app context
                member_session.login(brand_id=brand.id, openid=None, member_id=mid)
                token = generate_csrf()
                cookie = f"session={serializer.dumps(dict(session))}"
            sessions[mid] = (cookie, token)
    lines = []
    total = PER_THREAD * WRK_THREADS * runs
    for n in range(total):
        mid = member_ids[n % len(member_ids)]
        cookie, token = sessions[mid]
        item_id = item_ids[n % HOT_ITEMS]
        body = f"csrf_token={token}&request_key={uuid.uuid4().hex}"
        lines.append(f"/m/benchmall/mall/{item_id}/exchange\t{cookie}\t{body}")
    return lines


def _write(prefix: Path, lines: list[str]) -> None:
    per = len(lines) // WRK_THREADS
    for t in range(WRK_THREADS):
        with open(f"{prefix}.{t + 1}.txt", "w") as f:
            f.write("\n".join(lines[t * per : (t + 1) * per]) + "\n")


def _bare_requests(prefix: Path) -> None:
    body = "<xml><Encrypt><![CDATA[x]]></Encrypt></xml>"
    for t in range(WRK_THREADS):
        with open(f"{prefix}.{t + 1}.txt", "w") as f:
            f.write(f"/wechat/bench/callback\t{body}\n" * 100)


def _ledger_totals(env: dict) -> dict:
    """What the database holds after the runs: every count the exchanges must agree on."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM coupon),"
            " (SELECT count(*) FROM coupon_mall_order),"
            " (SELECT count(*) FROM points_entry WHERE kind = 'spend'),"
            " (SELECT count(*) FROM coupon_stock_entry),"
            " (SELECT sum(sold) FROM coupon_mall_item),"
            " (SELECT sum(issued) FROM coupon_template),"
            " (SELECT sum(lifetime_spent) FROM points_account),"
            " (SELECT sum(balance) FROM points_account),"
            " (SELECT sum(remaining) FROM points_lot WHERE released),"
            " (SELECT count(*) FROM points_account WHERE balance < 0)"
        ).fetchone()
    names = "coupons orders spends stock_lines sold issued spent balance lots negative".split()
    return {n: int(v or 0) for n, v in zip(names, row, strict=True)}


def _rps(r: dict) -> float:
    return r["requests"] / (r["duration_us"] / 1e6)


def run(*, repeats: int, log) -> dict:
    common.recreate_database()
    common.flush_redis()
    env = common.bench_env()
    common.OUT.mkdir(exist_ok=True)
    lines = _setup(env, runs=repeats)
    per_run = PER_THREAD * WRK_THREADS
    log(f"  {MEMBERS:,} members, {HOT_ITEMS} hot items, {len(lines):,} distinct exchanges")
    bare_prefix = common.OUT / "mall-bare"
    _bare_requests(bare_prefix)
    ours_runs, bare_runs = [], []
    with (
        common.gunicorn("bench.bare_app:app", env=env) as bare_url,
        common.gunicorn("wsgi:app", env=env, ready_path="/healthz") as app_url,
    ):
        for rep in range(repeats):
            prefix = common.OUT / f"mall-{rep}"
            # Each run its own exchanges: a key used in an earlier run would be a replay.
            _write(prefix, lines[rep * per_run : (rep + 1) * per_run])
            bare = common.run_wrk(
                bare_url,
                script=BARE_LUA,
                prefix=bare_prefix,
                threads=WRK_THREADS,
                connections=CONNECTIONS,
                duration=DURATION,
            )
            ours = common.run_wrk(
                app_url,
                script=LUA,
                prefix=prefix,
                threads=WRK_THREADS,
                connections=CONNECTIONS,
                duration=DURATION,
            )
            bare_runs.append(bare)
            ours_runs.append(ours)
            log(
                f"  run {rep + 1}: exchanges {ours['ok'] / (ours['duration_us'] / 1e6):.0f}/s"
                f" ({_rps(ours):.0f} req/s, p99 {ours['p99_us'] / 1000:.1f} ms, refused"
                f" {ours['bad_replies']}, errors {ours['errors']}, wrapped {ours['wrapped']});"
                f" bare {_rps(bare):.0f} req/s p99 {bare['p99_us'] / 1000:.1f} ms"
            )
    totals = _ledger_totals(env)
    ok_total = sum(r["ok"] for r in ours_runs)
    n = totals["coupons"]
    # wrk stops counting at the deadline; exchanges still in flight then may yet commit.
    counted = ok_total <= n <= ok_total + CONNECTIONS * repeats
    exact = (
        totals["orders"] == totals["spends"] == totals["stock_lines"] == n
        and totals["sold"] == totals["issued"] == n
        and totals["spent"] == 100 * n
        and totals["balance"] == totals["lots"]
        and totals["negative"] == 0
    )
    log(f"  ledger after the runs: {totals} (exchanges answered: {ok_total})")
    med = common.median
    ours_xps = med([r["ok"] / (r["duration_us"] / 1e6) for r in ours_runs])
    bare_rps = med([_rps(r) for r in bare_runs])
    ours_p99 = med([r["p99_us"] / 1000 for r in ours_runs])
    bare_p99 = med([r["p99_us"] / 1000 for r in bare_runs])
    refused = sum(r["bad_replies"] + r["errors"] for r in ours_runs)
    wrapped = sum(r["wrapped"] for r in ours_runs)
    return {
        "rows": [
            ("Exchanges per second (bare: requests per second)", ours_xps, bare_rps, "higher"),
            (
                "Latency p50 (ms)",
                med([r["p50_us"] / 1000 for r in ours_runs]),
                med([r["p50_us"] / 1000 for r in bare_runs]),
                "lower",
            ),
            ("Latency p99 (ms)", ours_p99, bare_p99, "lower"),
            ("Refused or failed exchanges (all runs)", refused, 0, "lower"),
        ],
        "checks": [
            ("every exchange succeeded", str(refused), refused == 0),
            ("no request replayed (each exchange distinct)", str(wrapped), wrapped == 0),
            (
                "ledger exact: coupons = orders = spends = stock lines = sold = issued,"
                " points spent = 100 x coupons, balances = open lots, none negative",
                f"{n:,} coupons",
                exact,
            ),
            ("every answered exchange is in the database", f"{ok_total:,} answered", counted),
        ],
        "notes": [
            f"{MEMBERS:,} members with points, {HOT_ITEMS} mall items every request hits"
            " (the hot rows: the item's and the template's stock), each request a distinct"
            " exchange (its own idempotency key). Ours: POST /m/<brand>/mall/<item>/exchange"
            " with the member's session and CSRF token; points spent, stock taken, coupon"
            " issued and order recorded in one transaction. Bare: bench/bare_app.py's"
            " endpoint. Same gunicorn settings, same wrk connections, same run.",
            f"gunicorn --workers {common.GUNICORN_WORKERS} --worker-class gthread --threads"
            f" {common.GUNICORN_THREADS} for both; wrk -t {WRK_THREADS} -c {CONNECTIONS}"
            f" -d {DURATION}s; {repeats} runs, medians quoted, the two servers alternating"
            " within each run. After the runs the database is checked: every count the"
            " exchanges must agree on (see the targets).",
            "Per exchange (bench/profile_exchange.py, in one process): 7 round trips to"
            " PostgreSQL (the pool's pre-ping, the brand, the signed-in member, the item read,"
            " the points account lock, one statement for points, stock, coupon and order,"
            " the commit); the hot rows are locked for the last statement and the commit.",
        ],
        "raw": {"ours": ours_runs, "bare": bare_runs},
    }
