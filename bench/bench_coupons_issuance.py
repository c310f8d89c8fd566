"""Bulk coupon issuance: 1,000,000 coupons to 1,000,000 members with the real service
(``coupons.issuance.bulk_issue``: choosing the members, making the codes in SQL, stock and
ledger, one transaction) against a raw ``COPY`` of the very same rows into the same table
with the same indexes, in the same run.
"""

from __future__ import annotations

import io
import os
import time

from bench import common

TITLE = "Bulk coupon issuance (1,000,000 coupons to 1,000,000 members)"
MEMBERS = int(os.environ.get("WMB_BENCH_ISSUE_MEMBERS", "1000000"))
TARGET = 0.75
COLUMNS = (
    "brand_id, template_id, member_id, code, status, source, issued_at, issued_day,"
    " valid_from, valid_until, batch_id"
)


def _setup(app) -> tuple[int, int]:
    """Schema, a brand, a template and MEMBERS members (set-based)."""
    from sqlalchemy import text

    from core.db import db
    from core.tenancy import use_brand
    from coupons import services as coupons
    from org import services as org

    with app.app_context():
        db.create_all()
        brand = org.create_brand(slug="benchissue", name="Bench Issue")
        db.session.commit()
        with use_brand(brand.id):
            tpl = coupons.create_template(name="5元券", kind="cash", value_fen=500, valid_days=30)
            db.session.commit()
            db.session.execute(
                text(
                    "INSERT INTO member (brand_id, phone, card_no, name, gender, source, status,"
                    " created_at, updated_at)"
                    " SELECT :b, NULL, 'B' || g, '', '', 'import', 'active', now(), now()"
                    " FROM generate_series(1, :n) g"
                ),
                {"b": brand.id, "n": MEMBERS},
            )
            db.session.commit()
            db.session.execute(text("ANALYZE member"))
            db.session.commit()
        return brand.id, tpl.id


def _reset(app, tpl_id: int) -> None:
    from sqlalchemy import text

    from core.db import db

    with app.app_context():
        db.session.execute(text("TRUNCATE coupon, coupon_issue_batch, coupon_stock_entry CASCADE"))
        db.session.execute(
            text("UPDATE coupon_template SET issued = 0 WHERE id = :t"), {"t": tpl_id}
        )
        db.session.commit()
        db.session.execute(text("CHECKPOINT"))
        db.session.commit()


def _ours(app, brand_id: int, tpl_id: int, rep: int) -> tuple[float, int]:
    from core.db import db
    from core.tenancy import use_brand
    from coupons.issuance import bulk_issue

    with app.app_context(), use_brand(brand_id):
        started = time.perf_counter()
        batch = bulk_issue(template_id=tpl_id, target={}, idempotency_key=f"bench-{rep}")
        db.session.commit()
        elapsed = time.perf_counter() - started
        return elapsed, batch.issued


def _export(dsn: str) -> bytes:
    import psycopg

    buf = io.BytesIO()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY coupon ({COLUMNS}) TO STDOUT") as copy:
            for chunk in copy:
                buf.write(chunk)
    return buf.getvalue()


def _copy(dsn: str, data: bytes) -> float:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(f"COPY coupon ({COLUMNS}) FROM STDIN") as copy:
            view = memoryview(data)
            for i in range(0, len(view), 1 << 20):
                copy.write(view[i : i + (1 << 20)])
        conn.commit()
        return time.perf_counter() - started


def run(*, repeats: int, log) -> dict:
    common.recreate_database()
    common.flush_redis()
    env = common.bench_env()
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
    from app import create_app
    from config import Config

    app = create_app(Config(env))
    dsn = env["DATABASE_URL"]
    brand_id, tpl_id = _setup(app)
    log(f"  {MEMBERS:,} members ready")
    ours_runs, copy_runs = [], []
    for rep in range(repeats):
        _reset(app, tpl_id)
        seconds, n = _ours(app, brand_id, tpl_id, rep)
        assert n == MEMBERS, n
        ours_runs.append(MEMBERS / seconds)
        data = _export(dsn)
        _reset(app, tpl_id)
        copy_seconds = _copy(dsn, data)
        copy_runs.append(MEMBERS / copy_seconds)
        log(
            f"  run {rep + 1}: issuance {seconds:.2f} s ({ours_runs[-1]:,.0f}/s),"
            f" COPY {copy_seconds:.2f} s ({copy_runs[-1]:,.0f}/s)"
        )
    ours, base = common.median(ours_runs), common.median(copy_runs)
    ratio = ours / base
    return {
        "rows": [("Coupons issued per second", ours, base, "higher")],
        "checks": [(f"issuance >= {TARGET:.0%} of COPY's rate", f"{ratio:.0%}", ratio >= TARGET)],
        "notes": [
            "Ours: `bulk_issue` to the whole segment in one transaction (one INSERT ... SELECT"
            " choosing the members and making each code from gen_random_uuid() in SQL, then"
            " the stock update and its ledger entry). Baseline: COPY of the same rows (exported"
            " from our run) into the emptied table, same indexes, one transaction.",
        ],
        "raw": {"ours_per_s": ours_runs, "copy_per_s": copy_runs, "members": MEMBERS},
    }
