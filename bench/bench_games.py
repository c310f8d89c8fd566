"""Game draws over HTTP through gunicorn, against the bare endpoint of bench/bare_app.py under
the same settings in the same run: 2,000 members with mini-program sessions each play a
lucky wheel several times at once (POST /api/mp/<brand>/games/<id>/draws, answered by
``games.front``: the session, the play decided in one Redis script, the draw left in the
stream), prizes of 100 units each, while a worker and the scheduler write the draws to
PostgreSQL and grant the prizes (``games.jobs.record_plays``, as in production); zero
oversell and no lost grant checked in the database once the stream is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid

from bench import common
from bench.bench_campaign_fanout import _start, _stop
from bench.bench_shop import _bare, _rps, _write, _wrk

TITLE = "Game draws over HTTP: 2,000 members on a lucky wheel"
MEMBERS = int(os.environ.get("WMB_BENCH_GAMES_MEMBERS", "2000"))
PLAYS = int(os.environ.get("WMB_BENCH_GAMES_PLAYS", "5"))  # per member and run
UNITS = 100
SLUG = "benchgames"
DATABASE = os.environ.get("WMB_BENCH_GAMES_DB", common.BENCH_DB)


def _setup(env: dict) -> tuple[int, list[str]]:
    """A brand, a live wheel, members with mini-program sessions; answers the campaign id and
    each member's bearer token."""
    from sqlalchemy import text

    from app import create_app
    from config import Config
    from core.db import db
    from core.tenancy import use_brand
    from games import services
    from members import api as mp
    from org import services as org
    from points import services as points

    app = create_app(Config(env))
    with app.app_context():
        db.create_all()
        brand = org.create_brand(slug=SLUG, name="Bench Games")
        db.session.commit()
        with use_brand(brand.id):
            now = dt.datetime.now(dt.UTC)
            campaign = services.create_campaign(
                kind="wheel",
                values={
                    "name": "压测大转盘",
                    "contact": "400-000-0000",
                    "starts_at": now - dt.timedelta(minutes=5),
                    "ends_at": now + dt.timedelta(hours=6),
                },
                prizes=[
                    {
                        "name": "100积分",
                        "kind": "points",
                        "points": 100,
                        "value_fen": 100,
                        "weight": 5,
                        "stock": UNITS,
                        "daily_cap": UNITS,
                        "fallback": 4,
                    },
                    {
                        "name": "保温杯",
                        "kind": "gift",
                        "value_fen": 5900,
                        "weight": 5,
                        "stock": UNITS,
                        "fallback": 4,
                    },
                    {
                        "name": "20积分",
                        "kind": "points",
                        "points": 20,
                        "value_fen": 20,
                        "weight": 10,
                        "stock": UNITS,
                        "fallback": 4,
                    },
                    {"name": "1积分", "kind": "points", "points": 1, "value_fen": 1, "weight": 20},
                    {"name": "谢谢参与", "kind": "none", "weight": 60},
                ],  # fmt: skip
            )
            services.start_campaign(campaign_id=campaign.id)
            db.session.execute(
                text(
                    "INSERT INTO member (brand_id, card_no, phone, name, gender, source, status,"
                    " activated_at, created_at, updated_at) SELECT :b, 'G' || g,"
                    " '139' || lpad(g::text, 8, '0'), '', '', 'import', 'active', now(), now(),"
                    " now() FROM generate_series(1, :n) g"
                ),
                {"b": brand.id, "n": MEMBERS},
            )
            db.session.execute(
                text(
                    "INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)"
                    " SELECT brand_id, id, 'mp_openid', 'bench-' || id, now() FROM member"
                    " WHERE brand_id = :b"
                ),
                {"b": brand.id},
            )
            ids = list(
                db.session.execute(
                    text("SELECT id FROM member WHERE brand_id = :b ORDER BY id"), {"b": brand.id}
                ).scalars()
            )
            tokens = [
                mp.create_session(
                    brand_id=brand.id, openid=f"bench-{mid}", unionid=None, session_key=""
                )
                for mid in ids
            ]
            # Members of a brand in service hold points: an account and an entry each.
            for at in range(0, len(ids), 500):
                points.credit_many(
                    [
                        points.Credit(
                            member_id=mid, points=10, key=f"welcome-{mid}", reason="开卡礼"
                        )
                        for mid in ids[at : at + 500]
                    ]
                )
            db.session.commit()
            return campaign.id, tokens


def _lines(campaign_id: int, tokens: list[str]) -> list[str]:
    """Every member's plays, interleaved (member 1, 2, ... then again), each a new key."""
    lines = []
    for _round in range(PLAYS):
        for token in tokens:
            body = json.dumps({"request_key": uuid.uuid4().hex})
            headers = f"Content-Type:application/json|Authorization:Bearer {token}"
            lines.append(f"POST\t/api/mp/{SLUG}/games/{campaign_id}/draws\t{headers}\t{body}")
    return lines


def _written(env: dict, campaign_id: int, sent: int, timeout: float = 900.0) -> float:
    """Wait until every play sent is in PostgreSQL with its prize granted; answers the
    seconds waited."""
    import psycopg

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            draws, pending = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'pending_grant')"
                " FROM game_draw WHERE campaign_id = %s",
                (campaign_id,),
            ).fetchone()
        if draws >= sent and pending == 0:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def _totals(env: dict, campaign_id: int) -> dict:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        prizes = conn.execute(
            "SELECT p.id, p.stock, p.awarded, (SELECT count(*) FROM game_draw d"
            " WHERE d.prize_id = p.id AND NOT d.preview) FROM game_prize p"
            " WHERE p.campaign_id = %s AND p.kind <> 'none' ORDER BY p.position",
            (campaign_id,),
        ).fetchall()
        draws, pending = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'pending_grant') FROM game_draw"
            " WHERE campaign_id = %s",
            (campaign_id,),
        ).fetchone()
        # every points prize won has its one points entry, of the prize's points
        points_won, points_given = conn.execute(
            "SELECT (SELECT coalesce(sum(p.points), 0) FROM game_draw d JOIN game_prize p"
            " ON p.id = d.prize_id WHERE d.campaign_id = %s AND p.kind = 'points'),"
            " (SELECT coalesce(sum(e.points), 0) FROM points_entry e JOIN game_draw d"
            " ON d.points_entry_id = e.id WHERE d.campaign_id = %s)",
            (campaign_id, campaign_id),
        ).fetchone()
    return {
        "prizes": [tuple(r) for r in prizes],
        "draws": draws,
        "pending": pending,
        "points_won": points_won,
        "points_given": points_given,
    }


_PARTS = ("app", "redis", "postgres", "writer")


def run(*, repeats: int, log) -> dict:
    common.recreate_database(DATABASE)
    common.flush_redis()
    env = common.bench_env(
        database=DATABASE,
        GAMES_MEMBER_RATE="100000",
        GAMES_IP_RATE="100000000",
        GAMES_FLAG_PER_MINUTE="100000000",
    )
    common.OUT.mkdir(exist_ok=True)
    campaign_id, tokens = _setup(env)
    common.vacuum_analyze(DATABASE)
    log(f"  {MEMBERS:,} members, {PLAYS} plays each a run, prizes of {UNITS} units")
    bare_prefix = common.OUT / "games-bare"
    _bare(bare_prefix)
    runs, bare_runs = [], []
    # the worker and the scheduler write the plays and grant the prizes meanwhile
    procs = [
        _start(["rq", "worker"], env, "games-worker"),
        _start(["rq", "scheduler", "--interval", "0.5"], env, "games-scheduler"),
    ]
    try:
        with (
            common.gunicorn("bench.bare_app:app", env=env) as bare_url,
            common.gunicorn("wsgi:app", env=env, ready_path="/healthz") as app_url,
        ):
            cpu: list[dict] = []  # per run: CPU ms per draw of each part, per bare request
            before: dict = {}  # CPU seconds when the run's draws started
            for rep in range(repeats + 1):
                # The bare endpoint gets the machine as the draws found it: the writer done with
                # the previous run's plays (it would otherwise take CPU from the bare runs only).
                waited = _written(env, campaign_id, MEMBERS * PLAYS * rep)
                after = common.cpu_parts(procs)
                if rep:  # the previous run's draws, written and granted
                    cpu[-1].update(common.cpu_per(before, after, runs[-1]["ok"], _PARTS))
                    log(f"    CPU ms per draw: {common.cpu_line(cpu[-1], _PARTS)}")
                if rep == repeats:
                    catch_up = waited
                    break
                bare = _wrk(bare_url, bare_prefix, 200, "/")
                before = common.cpu_parts(procs)
                cpu.append({"bare": common.cpu_per(after, before, bare["ok"], ("bare",))["bare"]})
                prefix = common.OUT / f"games-draws-{rep}"
                _write(prefix, _lines(campaign_id, tokens))
                draws = _wrk(app_url, prefix, 200, "/healthz")
                bare_runs.append(bare)
                runs.append(draws)
                log(
                    f"  run {rep + 1}: {_rps(draws):.0f} draws/s, {draws['ok']} ok, other"
                    f" {draws['other']}, errors {draws['errors']}, p99"
                    f" {draws['p99_us'] / 1000:.1f} ms; bare {_rps(bare):.0f} req/s p99"
                    f" {bare['p99_us'] / 1000:.1f} ms"
                )
    finally:
        _stop(procs)
    log(f"  every play written and granted {catch_up:.1f} s after the last run")
    totals = _totals(env, campaign_id)
    log(f"  database after the runs: {totals}")
    med = common.median
    bare_rps = med([_rps(r) for r in bare_runs])
    bare_p99 = med([r["p99_us"] / 1000 for r in bare_runs])
    rps = med([_rps(r) for r in runs])
    p99 = med([r["p99_us"] / 1000 for r in runs])
    cpu_med = {part: med([c[part] for c in cpu]) for part in (*_PARTS, "bare")}
    log(f"  CPU ms per draw, medians: {common.cpu_line(cpu_med, _PARTS)}")
    sent = MEMBERS * PLAYS
    # wrk may send a line once more at the end of a run (a replay: the same draw answers)
    answered = all(r["ok"] >= sent and r["other"] + r["errors"] == 0 for r in runs)
    # a prize with stock: its counter = its winning draws <= its stock; an unlimited prize
    # keeps no counter (its wins are its draws)
    exact = all(
        stock is None or awarded == won <= stock for _id, stock, awarded, won in totals["prizes"]
    )
    return {
        "rows": [
            ("Draws per second (bare: requests per second)", rps, bare_rps, "higher"),
            ("Latency p99 (ms)", p99, bare_p99, "lower"),
            (
                "CPU per draw of the app's server, ms (bare: per request of its server)",
                cpu_med["app"],
                cpu_med["bare"],
                "lower",
            ),
            (
                "CPU per draw of the app's server, Redis, PostgreSQL and the writer, ms",
                sum(cpu_med[p] for p in _PARTS),
                cpu_med["bare"],
                "lower",
            ),
            (
                "Seconds after the last run until every play is written and granted",
                catch_up,
                0,
                "lower",
            ),
        ],
        "checks": [
            (
                f"every play answered 200 ({sent:,} a run; a line wrk resends is a replay)",
                ", ".join(f"{r['ok']:,} ok / {r['other'] + r['errors']} other" for r in runs),
                answered,
            ),
            (
                "zero oversell: every stocked prize's winners = its counter <= its stock",
                "; ".join(
                    f"stock {s}, counter {a}, won {w}" if s is not None else f"unlimited, won {w}"
                    for _i, s, a, w in totals["prizes"]
                ),
                exact,
            ),
            (
                "no lost grant: points in the winners' entries = points won",
                f"{totals['points_given']:,} of {totals['points_won']:,}",
                totals["points_given"] == totals["points_won"],
            ),
            (
                "every prize granted (no draw left pending)",
                f"{totals['draws']:,} draws, {totals['pending']} pending",
                totals["pending"] == 0 and totals["draws"] == sent * repeats,
            ),
            (
                "draws at least 0.5 of the bare endpoint's requests per second",
                f"{rps / bare_rps:.2f}",
                rps >= 0.5 * bare_rps,
            ),
        ],
        "notes": [
            f"{MEMBERS:,} activated members, each with a mini-program session (bearer token),"
            f" post POST /api/mp/<brand>/games/<id>/draws {PLAYS} times a run, each with its"
            " own request key, the members interleaved so that all play at once. Each member"
            " holds points before the runs (an account and an entry), and the database is"
            " analysed (VACUUM ANALYZE) after the setup, as a database in service has its"
            " statistics. A free wheel"
            f" (no points), prizes of {UNITS} units (one with a daily cap of {UNITS}) falling"
            " back to an unlimited 1-point prize, and thanks. Each request (games.front, ahead"
            " of Flask's pipeline): the member, campaign and eligibility kept in the process"
            " (the member read from PostgreSQL on their first play in each server process and"
            " again after 30 s), the draw's HMAC, then one Redis script: the brand's marker and"
            " the session checked (a token's first play in a process reads them first), the"
            " rate limits, the play decided and put in the stream. One `flask rq worker` and"
            " the scheduler write the draws to PostgreSQL and grant the prizes during the runs"
            " (games.jobs.record_plays every 5 s; points in one batch credit per 100 wins), on"
            " the same 2 CPUs.",
            f"gunicorn --workers {common.GUNICORN_WORKERS} --worker-class gthread --threads"
            f" {common.GUNICORN_THREADS} for both servers; wrk -t 2 -c"
            f" {os.environ.get('WMB_BENCH_CONNECTIONS', '16')}, each line sent once;"
            f" {repeats} runs, medians quoted. Bare: bench/bare_app.py's endpoint, each run"
            " started once the writer has written and granted every play before it (the"
            " writer's work would otherwise take CPU from the bare runs only).",
            "CPU: user + system time read from /proc, per run, of the app's gunicorn"
            " processes, of Redis, of PostgreSQL's server processes and of the worker and the"
            " scheduler, from the start of a run's draws until all of them are written and"
            " granted, divided by its draws; the bare server's over its run, divided by its"
            f" requests. Medians: {common.cpu_line(cpu_med, _PARTS)}.",
        ],
        "raw": {"draws": runs, "bare": bare_runs},
    }
