"""Console at scale: every console page and the member searches at 100,000 and 1,000,000
members, on gunicorn, against a bare Flask endpoint under the same settings.

For each size (``WMB_SCALE_SIZES``, default 100000,1000000) the scratch database
(``WMB_SCALE_DB``, default wmb_scale) is created afresh: the schema, the demo brand
(``flask demo``'s steps) grown set-based by bench/scale_data.py, ``VACUUM ANALYZE``, the
invariants checked, and the report rollups rebuilt when the app has the ``rollups``
command. The app then runs under gunicorn (bench/common.py's settings) and one client,
signed in as the demo brand's admin, requests every sidebar page of that role (read from
the registered navigation, so new pages are timed without changing this file) and the
member searches: one warm-up request, then TIMED requests each (median and max), each
answering 200 without the error page. The bare endpoint (bench/bare_app.py) is timed the
same way in the same run. Each page's SQL statements are then counted in-process (Flask's
test client with a cursor listener on the engine), outside the timed runs. The database is
dropped at the end unless ``WMB_SCALE_KEEP=1``.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse

from bench import common, scale_data

TITLE = "Console at scale (100k vs 1M members)"
SIZES = [int(s) for s in os.environ.get("WMB_SCALE_SIZES", "100000,1000000").split(",")]
DB = os.environ.get("WMB_SCALE_DB", "wmb_scale")
KEEP = os.environ.get("WMB_SCALE_KEEP") == "1"
SLUG = "demo"
ROLE = "brand_admin"
TIMED = 5
PAGE_MEDIAN_MS, PAGE_MAX_MS, SEARCH_MS = 150, 300, 50
ERROR_MARKERS = ('class="card error-page"', "Traceback (most recent call last)")
# Pages beside the sidebar's own addresses: the overview's longest period.
EXTRA_PAGES = [("Overview, last 30 days", "/console/?period=30d")]


def _pages(app) -> list[tuple[str, str]]:
    """(name, path) of every sidebar page of the brand admin answering GET, in sidebar order."""
    from flask import url_for
    from flask_babel import force_locale

    from core.console import NAV, NAV_GROUPS

    get_endpoints = {r.endpoint for r in app.url_map.iter_rules() if "GET" in r.methods}
    pages = []
    with app.test_request_context(), force_locale("en"):
        for group in NAV_GROUPS:
            for n in NAV:
                if n.group == group and ROLE in n.roles and n.endpoint in get_endpoints:
                    pages.append((f"{NAV_GROUPS[group]} / {n.label}", url_for(n.endpoint)))
    return pages + EXTRA_PAGES


def _searches(engine, brand_id: int) -> list[tuple[str, str]]:
    """The member searches, for a member of three-character name half-way through the list."""
    from sqlalchemy import text

    with engine.connect() as conn:
        phone, card_no, name = conn.execute(
            text(
                "SELECT phone, card_no, name FROM member WHERE brand_id = :b"
                " AND char_length(name) = 3 AND phone IS NOT NULL AND id >= ("
                " SELECT (min(id) + max(id)) / 2 FROM member WHERE brand_id = :b)"
                " ORDER BY id LIMIT 1"
            ),
            {"b": brand_id},
        ).one()
    q = [
        ("full phone", phone),
        ("card number", card_no),
        ("phone prefix (7 digits)", phone[:7]),
        ("3-character name", name),
        ("1-character name", name[0]),
    ]
    return [
        (f"Member search: {what}", "/console/members?" + urllib.parse.urlencode({"q": value}))
        for what, value in q
    ]


def _login(base: str):
    import requests

    from org.cli import DEMO_ADMIN_PHONE, DEMO_PASSWORD

    http = requests.Session()
    token = common.csrf_token(http.get(base + "/console/login", timeout=30).text)
    r = http.post(
        base + "/console/login",
        data={
            "brand": SLUG,
            "account": DEMO_ADMIN_PHONE,
            "password": DEMO_PASSWORD,
            "csrf_token": token,
        },
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return http


def _time(http, url: str, n: int) -> dict:
    """One warm-up request, then ``n`` timed ones (ms): median, max, and what went wrong."""
    problems = []
    runs = []
    for i in range(n + 1):
        started = time.perf_counter()
        r = http.get(url, allow_redirects=False, timeout=300)
        ms = (time.perf_counter() - started) * 1000
        if r.status_code != 200:
            problems.append(f"status {r.status_code}")
        elif any(marker in r.text for marker in ERROR_MARKERS):
            problems.append("error page")
        if i:
            runs.append(ms)
    return {
        "median": common.median(runs),
        "max": max(runs),
        "runs": runs,
        "problems": sorted(set(problems)),
    }


def _count_sql(app, targets: list[tuple[str, str]]) -> dict[str, dict]:
    """Statements each page runs and their time (in-process, second request, not timed)."""
    from sqlalchemy import event

    from core.db import db
    from org.cli import DEMO_ADMIN_PHONE, DEMO_PASSWORD

    tally = {"n": 0, "ms": 0.0}
    starts = []

    def before(*_args, **_kw):
        starts.append(time.perf_counter())

    def after(*_args, **_kw):
        tally["n"] += 1
        tally["ms"] += (time.perf_counter() - starts.pop()) * 1000

    out = {}
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        client = app.test_client()
        token = common.csrf_token(client.get("/console/login").get_data(as_text=True))
        client.post(
            "/console/login",
            data={
                "brand": SLUG,
                "account": DEMO_ADMIN_PHONE,
                "password": DEMO_PASSWORD,
                "csrf_token": token,
            },
        )
        for name, path in targets:
            client.get(path)
            tally.update(n=0, ms=0.0)
            client.get(path)
            out[name] = dict(tally)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return out


def _rollups(env: dict, log) -> dict:
    """Rebuild the report rollups of the brand when the app has the command."""
    flask = [str(common.VENV_BIN / "flask"), "--app", "app", "rollups"]
    probe = subprocess.run(  # noqa: S603 - fixed command
        [*flask, "--help"], cwd=common.ROOT, env=env, capture_output=True, text=True
    )
    if probe.returncode != 0:
        log("    rollups: no `flask rollups` command in this app; skipped")
        return {"present": False}
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - fixed command
        [*flask, "rebuild", "--brand", SLUG],
        cwd=common.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    log(f"    rollups rebuild: exit {done.returncode} in {seconds:.1f} s")
    return {
        "present": True,
        "ok": done.returncode == 0,
        "seconds": seconds,
        "output": (done.stdout + done.stderr)[-500:],
    }


def _build(app, size: int, log) -> dict:
    from core.audit import acting_as
    from core.cli import CLI_ACTOR, DEMO_STEPS
    from core.db import db, utcnow

    with app.app_context():
        db.engine.dispose()
    common.recreate_database(DB)
    common.flush_redis()
    started = time.perf_counter()
    with app.app_context():
        db.create_all()
        with acting_as(CLI_ACTOR):
            for _, step in DEMO_STEPS:
                step()
                db.session.commit()
        db.session.remove()
        demo_s = time.perf_counter() - started
        log(f"    schema and demo brand: {demo_s:.1f} s")
        built = scale_data.build(db.engine, slug=SLUG, members=size, now=utcnow(), log=log)
        build_s = time.perf_counter() - started - demo_s
        log(f"  {size:,} members built in {build_s:.0f} s")
        started = time.perf_counter()
        checked = scale_data.check(db.engine, built["brand_id"])
        log(f"    invariants: {checked['bad']} ({time.perf_counter() - started:.0f} s)")
        log(f"    rows: {checked['counts']}")
    return {
        "brand_id": built["brand_id"],
        "steps": built["timings"],
        "demo_s": demo_s,
        "build_s": build_s,
        **checked,
    }


def _measure_size(app, size: int, n: int, log) -> dict:
    from core.db import db

    env = common.bench_env(database=DB, PROMETHEUS_MULTIPROC_DIR=common.metrics_dir())
    out = {"size": size, "n": n, "build": _build(app, size, log)}
    out["rollups"] = _rollups(env, log)
    with app.app_context():
        targets = _pages(app) + _searches(db.engine, out["build"]["brand_id"])
    out["targets"] = targets
    timings = {}
    out["load_before"] = os.getloadavg()[0]
    with common.gunicorn("wsgi:app", env=env, ready_path="/console/login") as base:
        http = _login(base)
        for name, path in targets:
            timings[name] = _time(http, base + path, n)
            t = timings[name]
            log(
                f"    {name}: median {t['median']:.0f} ms, max {t['max']:.0f} ms"
                + (f" {t['problems']}" if t["problems"] else "")
            )
    with common.gunicorn("bench.bare_app:app", env=env) as base:
        import requests

        bare = _time(requests.Session(), base + "/", n)
    log(f"    bare endpoint: median {bare['median']:.1f} ms")
    out["timings"], out["bare"] = timings, bare
    out["load_after"] = os.getloadavg()[0]
    out["sql"] = _count_sql(app, targets)
    return out


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _details(results: list[dict], names: list[str]) -> list[str]:
    small, large = results[0], results[-1]
    s, lg = f"{small['size']:,}", f"{large['size']:,}"
    lines = [
        f"Per page (ms; median and max of {large['n']} after one warm-up; growth = median at {lg}"
        f" / median at {s}; × bare = median at {lg} / the bare endpoint's median; SQL = the"
        f" statements one request runs at {lg}, and their time in ms):",
        "",
        f"| Page | median {s} | max {s} | median {lg} | max {lg} | growth | × bare | SQL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bare = large["bare"]["median"]
    for name in names:
        a, b = small["timings"][name], large["timings"][name]
        sql = large["sql"].get(name, {})
        lines.append(
            f"| {name} | {_fmt_ms(a['median'])} | {_fmt_ms(a['max'])} | {_fmt_ms(b['median'])}"
            f" | {_fmt_ms(b['max'])} | {b['median'] / a['median']:.2f}"
            f" | {b['median'] / bare:,.0f} | {sql.get('n', '–')} ({_fmt_ms(sql.get('ms'))}) |"
        )
    lines += [
        f"| Bare endpoint | {_fmt_ms(small['bare']['median'])} | {_fmt_ms(small['bare']['max'])}"
        f" | {_fmt_ms(bare)} | {_fmt_ms(large['bare']['max'])} | | | |",
        "",
        "Building the data (seconds per step, one transaction each):",
        "",
        "| Step | " + " | ".join(f"{r['size']:,} members" for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    steps = ["schema and demo brand", *results[0]["build"]["steps"], "total"]
    for step in steps:
        cells = []
        for r in results:
            b = r["build"]
            value = {"schema and demo brand": b["demo_s"], "total": b["demo_s"] + b["build_s"]}
            cells.append(f"{value.get(step, b['steps'].get(step, 0)):.1f}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines += ["", "Rows of the brand:", ""]
    lines += ["| Table | " + " | ".join(f"{r['size']:,}" for r in results) + " |"]
    lines += ["|---|" + "---:|" * len(results)]
    for table in results[0]["build"]["counts"]:
        lines.append(
            f"| {table} | " + " | ".join(f"{r['build']['counts'][table]:,}" for r in results) + " |"
        )
    return lines


def run(*, repeats: int, log) -> dict:
    started = time.perf_counter()
    env = common.bench_env(database=DB)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
    from app import create_app
    from config import Config

    app = create_app(Config(env))
    n = max(TIMED, repeats)
    results = []
    try:
        for size in SIZES:
            log(f"  {size:,} members:")
            results.append(_measure_size(app, size, n, log))
    finally:
        from core.db import db

        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if not KEEP:
            common.drop_database(DB)
    total = time.perf_counter() - started
    log(f"  total {total / 60:.1f} min")
    small, large = results[0], results[-1]
    names = [name for name, _ in large["targets"]]
    pages = [name for name in names if not name.startswith("Member search")]
    searches = [name for name in names if name.startswith("Member search")]
    lg = f"{large['size']:,}"
    rows = [
        (f"{name} at {lg} (ms)", large["timings"][name]["median"],
         small["timings"][name]["median"] if len(results) > 1 else 0, "lower")
        for name in names
    ]  # fmt: skip
    rows.append(
        (
            f"Bare Flask endpoint at {lg} (ms)",
            large["bare"]["median"],
            small["bare"]["median"] if len(results) > 1 else 0,
            "lower",
        )
    )
    t = large["timings"]
    slow = sorted((n_ for n_ in pages if t[n_]["median"] >= PAGE_MEDIAN_MS),
                  key=lambda n_: -t[n_]["median"])  # fmt: skip
    over = sorted((n_ for n_ in pages if t[n_]["max"] > PAGE_MAX_MS), key=lambda n_: -t[n_]["max"])
    worst = max(pages, key=lambda n_: t[n_]["max"])
    problems = {
        f"{r['size']:,}: {name}": r["timings"][name]["problems"]
        for r in results
        for name in names
        if r["timings"][name]["problems"]
    }
    bad_rows = {
        f"{r['size']:,}: {k}": v for r in results for k, v in r["build"]["bad"].items() if v
    }
    checks = [
        (
            f"every page's median under {PAGE_MEDIAN_MS} ms at {lg} members",
            f"{len(pages) - len(slow)} of {len(pages)}"
            + (
                "; over: " + ", ".join(f"{x} {t[x]['median']:,.0f} ms" for x in slow)
                if slow
                else ""
            ),
            not slow,
        ),
        (
            f"no page request over {PAGE_MAX_MS} ms at {lg} members",
            f"{len(over)} pages over; slowest {worst} {t[worst]['max']:,.0f} ms",
            not over,
        ),
    ]
    for name in searches:
        checks.append(
            (
                f"{name} under {SEARCH_MS} ms at {lg} members",
                f"{t[name]['median']:,.1f} ms",
                t[name]["median"] < SEARCH_MS,
            )
        )
    checks += [
        (
            "every page and search answered 200 without the error page, at every size",
            "all" if not problems else "; ".join(f"{k} {v}" for k, v in problems.items()),
            not problems,
        ),
        (
            "points ledger, coupons and redemptions consistent, at every size",
            "0 offending rows" if not bad_rows else str(bad_rows),
            not bad_rows,
        ),
    ]
    rollups = large["rollups"]
    notes = [
        "Data: the demo brand (`flask demo`) grown set-based (bench/scale_data.py) by "
        + " and by ".join(f"{r['size']:,}" for r in results)
        + " members, each size in a fresh database: 200 stores, ~2,000 staff with QR codes,"
        " per member ~3.2 points entries (welcome, two purchases, a spend for one in five)"
        " with a lot per earning, one coupon (a fifth redeemed at a store, with its"
        " redemption row), one tag and tag-history row, an official-account identity for the"
        " 70% activated; one audit row per ten members; all over the last 720 days in the"
        " brand's time zone; the ledger's and the coupons' invariants checked after building.",
        f"Served by gunicorn ({common.GUNICORN_WORKERS} workers x {common.GUNICORN_THREADS}"
        " threads) on PostgreSQL; one client on the same machine, signed in as the brand"
        f" admin; each page one warm-up request then {n} timed (median; max in the details)."
        " Pages: every sidebar item of the brand admin that answers GET, read from the"
        " registered navigation (core.console.NAV), plus the overview's 30-day period.",
        f"Baseline column: the same page at {small['size']:,} members in the same run, so"
        f" Ours / baseline is the growth from {small['size']:,} to {lg} (flat is 1.00). The"
        " bare Flask endpoint (bench/bare_app.py under the same gunicorn settings) is the"
        " floor of any request; the details give each page as a multiple of it.",
        "Report rollups: "
        + (
            "not in this app (no `flask rollups` command); reports read the base tables."
            if not rollups["present"]
            else f"rebuilt with `flask rollups rebuild --brand {SLUG}` after building"
            f" ({rollups['seconds']:.0f} s at {lg}, "
            + ("ok" if rollups["ok"] else "FAILED: " + rollups["output"][-200:])
            + ")."
        ),
        f"Whole benchmark: {total / 60:.0f} min (building, checking, timing, both sizes)."
        " The machine's load average (1 min) before and after timing each size: "
        + ", ".join(
            f"{r['size']:,}: {r['load_before']:.1f} / {r['load_after']:.1f}" for r in results
        )
        + f" on {os.cpu_count()} CPUs (other work shares the machine).",
    ]
    return {
        "rows": rows,
        "checks": checks,
        "notes": notes,
        "details": _details(results, names) if len(results) > 1 else [],
        "raw": {"results": results, "total_s": total},
    }
