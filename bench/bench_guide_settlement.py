"""Commission settlement: the periodic job (``jobs_commission.settle_brand``, batches
of 20,000 lines keyed by id, each batch settling its lines, locking the guides' accounts in
order, changing them and writing one ledger entry per guide) settles LINES frozen commission
lines that are due, against one raw SQL ``UPDATE`` of the same rows to settled, in the same
run. The job runs in its own process so that its peak memory (max RSS) is its own.

The rows are made with set-based SQL (generate_series): 1,000 guides of one store, their
accounts, LINES due lines spread over them. Before each side the rows are put back to frozen
and the table vacuumed, so that both sides start from the same state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench import common

LINES = int(os.environ.get("WMB_BENCH_SETTLE_LINES", "1000000"))
GUIDES = 1000
TARGET = 0.5
MAX_RSS_MB = 300
TITLE = "Commission settlement: the periodic job against one raw UPDATE"

_CHILD = """
import json, resource, sys, time
from app import create_app
from config import Config
from core.db import db
from guide_distribution import jobs_commission as jobs
app = create_app(Config())
with app.app_context():
    db.session.execute(db.text("SELECT 1"))
    started = time.perf_counter()
    n = jobs.settle_brand(int(sys.argv[1]))
    elapsed = time.perf_counter() - started
print(json.dumps({"lines": n, "seconds": elapsed,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _sql(dsn: str, *statements: str, autocommit: bool = False) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=autocommit) as conn:
        started = time.perf_counter()
        for s in statements:
            conn.execute(s)
        if not autocommit:
            conn.commit()
        return time.perf_counter() - started


def _setup(app, lines: int) -> int:
    from sqlalchemy import text

    from core.db import db
    from org import services as org

    with app.app_context():
        db.create_all()
        brand = org.create_brand(slug=f"benchsettle{lines}", name="Bench Settle")
        db.session.commit()
        b = brand.id
        store = db.session.execute(
            text(
                "INSERT INTO store (brand_id, code, name, city, region, address, active,"
                " created_at, updated_at)"
                " VALUES (:b, 'S1', '一店', '上海', '华东', '', true, now(), now()) RETURNING id"
            ),
            {"b": b},
        ).scalar()
        db.session.execute(
            text(
                "INSERT INTO staff (brand_id, name, phone, role, store_id, password_hash, active,"
                " created_at, updated_at)"
                " SELECT :b, '导购' || g, '138' || lpad(g::text, 8, '0'), 'guide', :s, '', true,"
                " now(), now() FROM generate_series(1, :n) g"
            ),
            {"b": b, "s": store, "n": GUIDES},
        )
        db.session.execute(
            text(
                "INSERT INTO guide_commission_line (brand_id, guide_id, store_id, order_id,"
                " order_line_id, base_fen, quantity, rule, rate_bp, unit_fen, amount_fen,"
                " reversed_fen, state, settle_due_at, created_at, frozen_at)"
                " SELECT :b, (SELECT min(id) FROM staff WHERE brand_id = :b) + (g % :guides),"
                " :s, g, g, 10000, 1, 'default', 500, 0, 400 + (g % 200), (g % 7), 'frozen',"
                " now() - interval '1 day', now() - interval '20 days', now() - interval '20 days'"
                " FROM generate_series(1, :n) g"
            ),
            {"b": b, "s": store, "n": lines, "guides": GUIDES},
        )
        db.session.commit()
        return b


def _reset(dsn: str, brand_id: int) -> None:
    _sql(
        dsn,
        "UPDATE guide_commission_line SET state = 'frozen', settled_at = NULL"
        f" WHERE brand_id = {brand_id} AND state = 'settled'",
        "DELETE FROM guide_commission_entry",
        "DELETE FROM guide_account",
        "INSERT INTO guide_account (brand_id, guide_id, pending_fen, frozen_fen, settled_fen,"
        " paying_fen, paid_fen, owed_fen, updated_at)"
        " SELECT brand_id, guide_id, 0, sum(amount_fen - reversed_fen), 0, 0, 0,"
        f" 0, now() FROM guide_commission_line WHERE brand_id = {brand_id} GROUP BY 1, 2",
    )
    _sql(dsn, "VACUUM ANALYZE guide_commission_line", "CHECKPOINT", autocommit=True)


def _ours(env: dict, brand_id: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(brand_id)],
        env=env,
        cwd=str(common.ROOT),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _check(dsn: str, brand_id: int, lines: int) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        settled, frozen_left, owed = conn.execute(
            "SELECT count(*) FILTER (WHERE state = 'settled'),"
            " count(*) FILTER (WHERE state = 'frozen'), 0 FROM guide_commission_line"
            f" WHERE brand_id = {brand_id}"
        ).fetchone()
        assert (settled, frozen_left) == (lines, 0), (settled, frozen_left, owed)
        ok = conn.execute(
            "SELECT bool_and(a.frozen_fen = 0 AND a.settled_fen = e.s) FROM guide_account a"
            " JOIN (SELECT guide_id, sum(d_settled) s FROM guide_commission_entry GROUP BY 1) e"
            f" USING (guide_id) WHERE a.brand_id = {brand_id}"
        ).fetchone()[0]
        assert ok, "accounts and ledger disagree"


def _measure(app, env, dsn, lines: int, repeats: int, log) -> dict:
    brand_id = _setup(app, lines)
    log(f"  {lines:,} due commission lines over {GUIDES:,} guides ready")
    ours_runs, raw_runs, rss = [], [], []
    for rep in range(repeats):
        _reset(dsn, brand_id)
        got = _ours(env, brand_id)
        assert got["lines"] == lines, got
        _check(dsn, brand_id, lines)
        ours_runs.append(lines / got["seconds"])
        rss.append(got["max_rss_mb"])
        _reset(dsn, brand_id)
        seconds = _sql(
            dsn,
            "UPDATE guide_commission_line SET state = 'settled', settled_at = now()"
            f" WHERE brand_id = {brand_id} AND state = 'frozen' AND settle_due_at <= now()",
        )
        raw_runs.append(lines / seconds)
        log(
            f"  run {rep + 1}: job {got['seconds']:.2f} s ({ours_runs[-1]:,.0f}/s,"
            f" max RSS {got['max_rss_mb']:.0f} MB), raw UPDATE {seconds:.2f} s"
            f" ({raw_runs[-1]:,.0f}/s)"
        )
    return {
        "ours": common.median(ours_runs),
        "raw": common.median(raw_runs),
        "rss": max(rss),
        "ours_runs": ours_runs,
        "raw_runs": raw_runs,
    }


def run(*, repeats: int, log) -> dict:
    sizes = sorted({min(100_000, LINES), LINES})
    results = {}
    for size in sizes:
        common.recreate_database()
        common.flush_redis()
        env = common.bench_env()
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
        from app import create_app
        from config import Config

        app = create_app(Config(env))
        results[size] = _measure(app, env, env["DATABASE_URL"], size, repeats, log)
        with app.app_context():
            from core.db import db

            db.engine.dispose()
    top = results[LINES]
    ratio = top["ours"] / top["raw"]
    rows = [
        (f"Lines settled per second ({LINES:,})", top["ours"], top["raw"], "higher"),
    ]
    notes = [
        "Ours: `jobs.settle_brand` in its own process (the periodic job's per-brand run):"
        " batches of 20,000 due lines keyed by id, each batch one UPDATE ... RETURNING by"
        " primary key summed per guide, the guides' accounts locked in guide order and"
        " changed by one UPDATE (debt recovered first), one ledger entry per guide and batch,"
        " a commit per batch. Baseline: one raw `UPDATE` of the same rows to settled, one"
        " transaction, same table and indexes.",
        "Both sides start from the same state: the rows put back to frozen, the accounts"
        " rebuilt, `VACUUM ANALYZE` and `CHECKPOINT` before each side. After each job run the"
        " lines are all settled and every account equals the sum of its ledger entries.",
    ]
    if len(sizes) > 1:
        small = results[sizes[0]]
        rows.insert(
            0, (f"Lines settled per second ({sizes[0]:,})", small["ours"], small["raw"], "higher")
        )
        notes.append(
            f"Growth: from {sizes[0]:,} to {LINES:,} lines the job's rate went from"
            f" {small['ours']:,.0f}/s to {top['ours']:,.0f}/s (raw UPDATE {small['raw']:,.0f}/s"
            f" to {top['raw']:,.0f}/s); its peak memory from {small['rss']:.0f} MB to"
            f" {top['rss']:.0f} MB (it holds one batch's per-guide sums, not the lines)."
        )
    return {
        "rows": rows,
        "checks": [
            (f"job >= {TARGET:.0%} of the raw UPDATE's rate", f"{ratio:.0%}", ratio >= TARGET),
            (
                f"job's peak memory < {MAX_RSS_MB} MB",
                f"{top['rss']:.0f} MB",
                top["rss"] < MAX_RSS_MB,
            ),
        ],
        "notes": notes,
        "raw": {str(k): v for k, v in results.items()},
    }
