"""The shop over HTTP through gunicorn, each against the bare endpoint of bench/bare_app.py
under the same settings in the same run:

- a flash sale: 5,000 attempts by 5,000 members for 100 units at once (the member pages'
  checkout: session, CSRF, Redis's decision, PostgreSQL's confirmation, the order with its
  stock reservation), zero oversell;
- till orders: the POS API with a store key, each order distinct, earning points.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

from bench import common

TITLE = "Shop over HTTP: a flash sale of 100 units, till orders"
ATTEMPTS = int(os.environ.get("WMB_BENCH_FLASH_ATTEMPTS", "5000"))
UNITS = 100
TILL_ORDERS = int(os.environ.get("WMB_BENCH_TILL_ORDERS", "3000"))
BARE_REQUESTS = int(os.environ.get("WMB_BENCH_SHOP_BARE", "6000"))
WRK_THREADS = 2
CONNECTIONS = int(os.environ.get("WMB_BENCH_CONNECTIONS", "16"))
LUA = Path(__file__).with_name("bench_shop.lua")
SLUG = "benchshop"


def _setup(env: dict, runs: int) -> dict:
    """A brand with a store and its POS key, a SKU in a flash sale per run and a SKU for the
    till, members with sessions; answers the request lines of every run."""
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
    from shop import stock
    from shop.models import FlashSale, Product, ShopSettings, Sku

    app = create_app(Config(env))
    with app.app_context():
        db.create_all()
        brand = org.create_brand(slug=SLUG, name="Bench Shop")
        db.session.commit()
        with use_brand(brand.id):
            store = org.create_store(code="S001", name="Bench store", city="上海")
            db.session.add(ShopSettings())
            now = dt.datetime.now(dt.UTC)
            sales = []
            for run in range(runs):
                p = Product(code=f"F{run}", name=f"秒杀{run}", on_sale=True)
                db.session.add(p)
                db.session.flush()
                sku = Sku(product_id=p.id, code=f"FSKU{run}", price_fen=5000)
                db.session.add(sku)
                db.session.flush()
                stock.change(sku_id=sku.id, delta=1000, reason="import", idempotency_key=f"f{run}")
                sale = FlashSale(
                    sku_id=sku.id,
                    name="秒杀",
                    price_fen=990,
                    quantity=UNITS,
                    per_member_limit=1,
                    starts_at=now - dt.timedelta(minutes=1),
                    ends_at=now + dt.timedelta(hours=2),
                )
                db.session.add(sale)
                db.session.flush()
                sales.append((sku.id, sale.id))
            p = Product(code="T", name="乌龙茶", on_sale=True)
            db.session.add(p)
            db.session.flush()
            till_sku = Sku(product_id=p.id, code="TSKU", price_fen=2000)
            db.session.add(till_sku)
            db.session.flush()
            stock.change(sku_id=till_sku.id, delta=10**8, reason="import", idempotency_key="t")
            _row, pos_key = coupons.create_key(store_id=store.id, label="bench")
            db.session.execute(
                text(
                    "INSERT INTO member (brand_id, card_no, phone, name, gender, source, status,"
                    " created_at, updated_at) SELECT :b, 'M' || g, '139' || lpad(g::text, 8, '0'),"
                    " '', '', 'import', 'active', now(), now() FROM generate_series(1, :n) g"
                ),
                {"b": brand.id, "n": ATTEMPTS},
            )
            members = db.session.execute(text("SELECT id, phone FROM member ORDER BY id")).all()
            db.session.commit()
            store_id = store.id
        serializer = app.session_interface.get_signing_serializer(app)
        sessions = []
        for mid, _phone in members:
            with app.test_request_context("/"):
                g.pop("csrf_token", None)
                member_session.login(brand_id=brand.id, openid=None, member_id=mid)
                token = generate_csrf()
                sessions.append((f"session={serializer.dumps(dict(session))}", token))
    flash_runs = []
    for sku_id, sale_id in sales:
        lines = []
        for n in range(ATTEMPTS):
            cookie, token = sessions[n]
            body = (
                f"csrf_token={token}&request_key={uuid.uuid4().hex}&sku_id={sku_id}&quantity=1"
                f"&flash_sale_id={sale_id}&price_{sku_id}=990&fulfilment=pickup&store_id={store_id}"
            )
            headers = f"Content-Type:application/x-www-form-urlencoded|Cookie:{cookie}"
            lines.append(f"POST\t/m/{SLUG}/shop/checkout\t{headers}\t{body}")
        flash_runs.append(lines)
    till_runs = []
    for run in range(runs):
        lines = []
        for n in range(TILL_ORDERS):
            phone = members[n % len(members)][1]
            order = {
                "idempotency_key": f"r{run}-{n}",
                "pos_order_no": f"POS{run}-{n}",
                "lines": [
                    {"sku_code": "TSKU", "unit_price_fen": 2000, "quantity": 1 + n % 3},
                    {"name": "手提袋", "unit_price_fen": 50, "quantity": 1},
                ],
                "pay_fen": 2000 * (1 + n % 3) + 50,
                "member": {"phone": phone},
            }
            headers = f"Content-Type:application/json|Authorization:Bearer {pos_key}"
            lines.append(f"POST\t/api/pos/{SLUG}/orders\t{headers}\t{json.dumps(order)}")
        till_runs.append(lines)
    return {"flash": flash_runs, "till": till_runs, "sales": [s for _, s in sales]}


def _write(prefix: Path, lines: list[str]) -> None:
    per = len(lines) // WRK_THREADS
    for t in range(WRK_THREADS):
        with open(f"{prefix}.{t + 1}.txt", "w") as f:
            f.write("\n".join(lines[t * per : (t + 1) * per]) + "\n")


def _bare(prefix: Path) -> None:
    body = "<xml><Encrypt><![CDATA[x]]></Encrypt></xml>"
    line = f"POST\t/wechat/bench/callback\tContent-Type:text/xml\t{body}"
    _write(prefix, [line] * BARE_REQUESTS)


def _wrk(url: str, prefix: Path, ok_status: int, idle: str = "/healthz") -> dict:
    """Send every line of the files once; wrk is stopped as soon as every thread has its
    answers (it would otherwise wait out its duration)."""
    import signal
    import subprocess
    import time

    done = [Path(f"{prefix}.done.{t + 1}") for t in range(WRK_THREADS)]
    for f in done:
        f.unlink(missing_ok=True)
    cmd = [
        "wrk", "-t", str(WRK_THREADS), "-c", str(CONNECTIONS), "-d", "300s", "--timeout", "30s",
        "-s", str(LUA), url, "--", str(prefix), str(ok_status), idle,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if all(f.exists() for f in done):
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=60)
    for line in stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise RuntimeError(f"wrk printed no summary:\n{stdout}\n{stderr}")


def _totals(env: dict, sale_ids: list[int]) -> dict:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        flash = conn.execute(
            "SELECT s.id, s.sold, k.stock, (SELECT count(*) FROM shop_order o"
            " WHERE o.flash_sale_id = s.id), (SELECT COALESCE(sum(delta), 0) FROM"
            " shop_stock_entry e WHERE e.sku_id = k.id) FROM shop_flash_sale s"
            " JOIN shop_sku k ON k.id = s.sku_id ORDER BY s.id"
        ).fetchall()
        till = conn.execute(
            "SELECT (SELECT count(*) FROM shop_order WHERE channel = 'till'),"
            " (SELECT count(*) FROM points_entry WHERE kind = 'earn'),"
            " (SELECT count(*) FROM shop_stock_entry WHERE reason = 'till')"
        ).fetchone()
    return {"flash": [tuple(int(v) for v in row) for row in flash], "till": tuple(till)}


def _rps(r: dict) -> float:
    return r["requests"] / (r["duration_us"] / 1e6)


_TILL_PARTS = ("app", "postgres", "redis")


def run(*, repeats: int, log) -> dict:
    common.recreate_database()
    common.flush_redis()
    env = common.bench_env()
    common.OUT.mkdir(exist_ok=True)
    data = _setup(env, runs=repeats)
    log(f"  {ATTEMPTS:,} members, {repeats} flash sales, {TILL_ORDERS:,} till orders a run")
    bare_prefix = common.OUT / "shop-bare"
    _bare(bare_prefix)
    flash_runs, till_runs, bare_runs = [], [], []
    till_cpu: list[dict] = []  # per run: CPU ms per till order of each part, per bare request
    with (
        common.gunicorn("bench.bare_app:app", env=env) as bare_url,
        common.gunicorn("wsgi:app", env=env, ready_path="/healthz") as app_url,
    ):
        for rep in range(repeats):
            before = common.cpu_parts()
            bare = _wrk(bare_url, bare_prefix, 200, "/")
            after = common.cpu_parts()
            cpu = common.cpu_per(before, after, bare["ok"], ("bare",))
            prefix = common.OUT / f"shop-flash-{rep}"
            _write(prefix, data["flash"][rep])
            flash = _wrk(app_url, prefix, 303)
            prefix = common.OUT / f"shop-till-{rep}"
            _write(prefix, data["till"][rep])
            before = common.cpu_parts()
            till = _wrk(app_url, prefix, 201)
            after = common.cpu_parts()
            cpu.update(common.cpu_per(before, after, till["ok"], _TILL_PARTS))
            till_cpu.append(cpu)
            log(f"    CPU ms per till order: {common.cpu_line(cpu, _TILL_PARTS)}")
            bare_runs.append(bare)
            flash_runs.append(flash)
            till_runs.append(till)
            log(
                f"  run {rep + 1}: flash {_rps(flash):.0f} attempts/s, {flash['ok']} orders,"
                f" {flash['conflicts']} sold out, other {flash['other']}, errors"
                f" {flash['errors']}, p99 {flash['p99_us'] / 1000:.1f} ms; till"
                f" {till['ok'] / (till['duration_us'] / 1e6):.0f} orders/s, p99"
                f" {till['p99_us'] / 1000:.1f} ms, other {till['other']}; bare"
                f" {_rps(bare):.0f} req/s p99 {bare['p99_us'] / 1000:.1f} ms"
            )
    totals = _totals(env, data["sales"])
    log(f"  database after the runs: {totals}")
    med = common.median
    bare_rps = med([_rps(r) for r in bare_runs])
    bare_p99 = med([r["p99_us"] / 1000 for r in bare_runs])
    flash_rps = med([_rps(r) for r in flash_runs])
    flash_p99 = med([r["p99_us"] / 1000 for r in flash_runs])
    till_ops = med([r["ok"] / (r["duration_us"] / 1e6) for r in till_runs])
    till_p99 = med([r["p99_us"] / 1000 for r in till_runs])
    cpu_med = {part: med([c[part] for c in till_cpu]) for part in (*_TILL_PARTS, "bare")}
    log(f"  CPU ms per till order, medians: {common.cpu_line(cpu_med, _TILL_PARTS)}")
    exact = all(
        sold == UNITS and orders == UNITS and stock == 1000 - UNITS and ledger == stock
        for _id, sold, stock, orders, ledger in totals["flash"]
    )
    answered = all(r["ok"] == UNITS and r["ok"] + r["conflicts"] == ATTEMPTS for r in flash_runs)
    till_orders, earned, till_stock = totals["till"]
    till_ok = sum(r["ok"] for r in till_runs)
    till_exact = till_orders == earned == till_stock == till_ok == TILL_ORDERS * repeats
    return {
        "rows": [
            (
                "Flash sale: attempts per second (bare: requests per second)",
                flash_rps,
                bare_rps,
                "higher",
            ),
            ("Flash sale: latency p99 (ms)", flash_p99, bare_p99, "lower"),
            ("Till orders per second (bare: requests per second)", till_ops, bare_rps, "higher"),
            ("Till orders: latency p99 (ms)", till_p99, bare_p99, "lower"),
            (
                "Till orders: CPU per order of the app's server, ms (bare: per request of its"
                " server)",
                cpu_med["app"],
                cpu_med["bare"],
                "lower",
            ),
            (
                "Till orders: CPU per order of the app's server, PostgreSQL and Redis, ms",
                sum(cpu_med[p] for p in _TILL_PARTS),
                cpu_med["bare"],
                "lower",
            ),
        ],  # fmt: skip
        "checks": [
            (
                f"flash sale: {ATTEMPTS:,} attempts for {UNITS} units make exactly {UNITS}"
                " orders, the rest answered sold out (409)",
                ", ".join(f"{r['ok']} orders / {r['conflicts']} sold out" for r in flash_runs),
                answered,
            ),
            (
                "zero oversell: sold = orders = 100, stock = 900 = its ledger, every sale",
                "; ".join(
                    f"sold {s}, orders {o}, stock {k}" for _i, s, k, o, _l in totals["flash"]
                ),
                exact,
            ),
            (
                "till orders at least 0.3 of the bare endpoint's requests per second",
                f"{till_ops / bare_rps:.2f}",
                till_ops >= 0.3 * bare_rps,
            ),
            (
                "every till order created once, earned points once, took stock once",
                f"{till_orders:,} orders, {earned:,} earnings, {till_stock:,} stock entries",
                till_exact,
            ),
        ],
        "notes": [
            f"Flash sale: {ATTEMPTS:,} members each post the member pages' checkout once"
            f" (session cookie, CSRF token, pick-up in store) for one SKU in a flash sale of"
            f" {UNITS} units, limit 1 per member; Redis takes the first decision (one Lua"
            " script), PostgreSQL confirms (conditional UPDATE of the sale's sold units) and"
            " the order reserves its stock. A placed order answers 303 to its pay page, a"
            " refusal 409. Attempts per second count every answer.",
            f"Till orders: {TILL_ORDERS:,} distinct orders a run through POST"
            " /api/pos/<brand>/orders with the store's key: a catalog line and a free line,"
            " the member by phone; each order takes stock, earns points, records the purchase"
            " and the purchase facts. Orders per second count orders created (201).",
            f"gunicorn --workers {common.GUNICORN_WORKERS} --worker-class gthread --threads"
            f" {common.GUNICORN_THREADS} for both servers; wrk -t {WRK_THREADS} -c"
            f" {CONNECTIONS}, each line sent once; {repeats} runs, medians quoted. Bare:"
            " bench/bare_app.py's endpoint, the same in both comparisons.",
            "CPU: user + system time read from /proc over each till run, of the app's"
            " gunicorn processes, of PostgreSQL's server processes and of Redis, divided by"
            " the orders created; the bare server's over its run, divided by its requests."
            f" Medians: {common.cpu_line(cpu_med, _TILL_PARTS)}.",
        ],
        "raw": {"flash": flash_runs, "till": till_runs, "bare": bare_runs},
    }
