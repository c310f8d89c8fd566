"""Cost of one member activation (scan -> OAuth -> phone -> card), in one process, for
working on its path.

    WMB_BENCH_DB=... WMB_BENCH_REDIS_DB=... .venv/bin/python bench/profile_activation.py \
        [--count N] [--top N] [--sql STEP] [--sort tottime]

Prepares the bench database as ``bench/run.py activation`` does, starts WeChat's sandbox in
its own gunicorn (as the benchmark does), then takes consumers one after the other through
the app with Flask's test client (no app server, no load generator) and prints, per step and
per request: round trips to PostgreSQL (statements and commits, counted at the driver) and
to Redis (commands or pipelines sent), and the app's CPU time; with ``--sql STEP`` the
statements of one consumer's step; then where the CPU goes (cProfile of the app's requests).
CPU time and round-trip counts are far less disturbed by other load than wall-clock figures.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_activation as bench  # noqa: E402
from bench import common  # noqa: E402

# Characters of each statement printed by --sql (WMB_SQL_WIDTH=0: whole statements).
WIDTH = int(os.environ.get("WMB_SQL_WIDTH", "200")) or None


class Counter:
    """Round trips to PostgreSQL and Redis, and the app's CPU time, per request."""

    def __init__(self) -> None:
        self.pg: list[str] = []
        self.redis: list[str] = []
        self.rows: dict[str, list[tuple[int, int, float]]] = collections.defaultdict(list)
        self.prof: cProfile.Profile | None = None
        self.only = ""

    def install(self) -> None:
        import psycopg
        import redis

        execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit
        send = redis.connection.AbstractConnection.send_packed_command
        counter = self

        def counted_execute(cur, query, *a, **kw):
            counter.pg.append(query if isinstance(query, str) else str(query))
            return execute(cur, query, *a, **kw)

        def counted_commit(conn):
            counter.pg.append("COMMIT")
            return commit(conn)

        def counted_send(conn, command, *a, **kw):
            first = command[0] if isinstance(command, list) and command else command
            counter.redis.append(bytes(first)[:80].decode("latin-1", "replace"))
            return send(conn, command, *a, **kw)

        psycopg.Cursor.execute = counted_execute
        psycopg.Connection.commit = counted_commit
        redis.connection.AbstractConnection.send_packed_command = counted_send

    def request(self, step: str, fn):
        self.pg.clear()
        self.redis.clear()
        cpu = time.process_time()
        profile = self.prof is not None and self.only in ("", step)
        if profile:
            self.prof.enable()
        try:
            return fn()
        finally:
            if profile:
                self.prof.disable()
            self.rows[step].append((len(self.pg), len(self.redis), time.process_time() - cpu))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--sql", default="", help="print one consumer's statements of a request")
    parser.add_argument("--callees", default="", help="also print the callees of these names")
    parser.add_argument("--only", default="", help="profile only this step's requests")
    args = parser.parse_args()
    common.OUT.mkdir(exist_ok=True)
    bench.CONSUMERS = args.count + 20
    common.recreate_database()
    common.flush_redis()
    sandbox_port = common.free_port()
    base = "http://127.0.0.1:5000"
    env = common.bench_env(
        WECHAT_API_BASE=f"http://127.0.0.1:{sandbox_port}/sandbox/wechat",
        PUBLIC_URL=base,
        WECHAT_SANDBOX="1",
        SMS_IP_LIMIT="1000000",
        PROMETHEUS_MULTIPROC_DIR=common.metrics_dir(),
        JOBS_INLINE="0",
    )
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
    import requests

    from app import create_app
    from config import Config
    from members.activation import sms
    from wechat.sandbox import accounts, push

    app = create_app(Config(env))
    _brand_id, scene, consumers = bench._setup(app, base)
    with app.app_context():
        account = accounts.get_account(bench.APPID)
    counter = Counter()
    counter.install()
    counter.only = args.only
    m = f"/m/{bench.SLUG}"
    show_sql = args.sql

    def one(consumer: dict, client, http) -> None:
        def req(step, fn):
            out = counter.request(step, fn)
            if show_sql == step:
                print(f"--- {step}: {len(counter.pg)} PostgreSQL, {len(counter.redis)} Redis")
                for s in counter.pg:
                    print("  pg    " + " ".join(s.split())[:WIDTH])
                for s in counter.redis:
                    print("  redis " + s.replace("\r\n", " ")[:100])
            return out

        xml = push.build_xml(
            {
                "ToUserName": account["original_id"],
                "FromUserName": consumer["openid"],
                "CreateTime": int(time.time()),
                "MsgType": "event",
                "Event": "subscribe",
                "EventKey": f"qrscene_{scene}",
            }
        )
        params, body = push.signed_request(account, xml, consumer["openid"])
        path = f"/wechat/{bench.SLUG}/callback?" + urlencode(params)
        r = req("scan", lambda: client.post(path, data=body, content_type="text/xml"))
        assert r.status_code == 200, r.data[:200]
        r = req("activate page (to OAuth)", lambda: client.get(m + "/activate"))
        assert r.status_code == 302, r.data[:300]
        url = r.headers["Location"].partition("#")[0] + f"&uid={consumer['uid']}"
        back = http.get(url, allow_redirects=False, timeout=10).headers["Location"]
        q = parse_qs(urlsplit(back).query)
        r = req(
            "OAuth return",
            lambda: client.get(
                m + "/activate/oauth", query_string={"code": q["code"][0], "state": q["state"][0]}
            ),
        )
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and 'id="phone-form"' in html, html[:300]
        r = req(
            "send code",
            lambda: client.post(
                m + "/activate/code",
                data={"phone": consumer["phone"], "csrf_token": bench._csrf(html)},
                headers={"Accept": "application/json"},
            ),
        )
        assert r.status_code == 200 and r.is_json, r.data[:300]
        with app.app_context():
            code = sms.sandbox_last(consumer["phone"])["code"]
        r = req(
            "activate",
            lambda: client.post(
                m + "/activate",
                data={
                    "phone": consumer["phone"],
                    "code": code,
                    "consent": "yes",
                    "csrf_token": bench._csrf(html),
                },
            ),
        )
        assert r.status_code == 302, r.data[:300]
        r = req("card page", lambda: client.get(r.headers["Location"]))
        assert r.status_code == 200 and b'id="card-no"' in r.data, r.data[:300]

    with bench._gunicorn(sandbox_port, env, "wechat.sandbox.server:create_sandbox_app()"):
        http = requests.Session()
        warm = consumers[:20]
        for c in warm:
            show_sql = ""
            one(c, app.test_client(), http)
        counter.rows.clear()
        show_sql = args.sql
        rest = consumers[20 : 20 + args.count]
        half = len(rest) // 2
        for i, c in enumerate(rest[:half]):
            one(c, app.test_client(), http)
            show_sql = "" if i == 0 else show_sql
        totals = {
            step: (
                common.median([r[0] for r in rows]),
                common.median([r[1] for r in rows]),
                common.median([r[2] for r in rows]) * 1000,
            )
            for step, rows in counter.rows.items()
        }
        counter.prof = cProfile.Profile(time.process_time)
        for c in rest[half:]:
            one(c, app.test_client(), http)
    print(f"per request (median of {half} consumers): PostgreSQL / Redis round trips, app CPU ms")
    for step, (pg, rd, cpu) in totals.items():
        print(f"  {step:28} {pg:5.0f} {rd:5.0f} {cpu:8.2f}")
    print(
        "  {:28} {:5.0f} {:5.0f} {:8.2f}".format(
            "per activation",
            sum(v[0] for v in totals.values()),
            sum(v[1] for v in totals.values()),
            sum(v[2] for v in totals.values()),
        )
    )
    out = io.StringIO()
    stats = pstats.Stats(counter.prof, stream=out).sort_stats(args.sort)
    stats.print_stats(args.top)
    for name in filter(None, args.callees.split(",")):
        stats.print_callees(name)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
