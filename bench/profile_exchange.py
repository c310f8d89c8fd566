"""Cost of one points-mall exchange, in one process, for working on its hot path.

    WMB_BENCH_DB=... WMB_BENCH_REDIS_DB=... .venv/bin/python bench/profile_exchange.py \
        [--count N] [--top N] [--sql] [--no-prepare]

Prepares the bench database as ``bench/run.py coupons_exchange`` does (fewer members), then
posts distinct exchanges through Flask's test client (no server, no load generator) and
prints, per exchange: round trips to PostgreSQL (statements, the pool's pre-ping and the
commit, counted at the driver, by kind), CPU time and wall time; with ``--sql`` the
statements of one exchange; the CPU time of a few stages (``--time``); then where the CPU
goes (cProfile).
CPU time and statement counts are far less disturbed by other load than wall-clock figures.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_coupons_exchange as bench  # noqa: E402
from bench import common  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--sql", action="store_true", help="print one exchange's statements")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--callees", default="", help="also print the callees of these names")
    parser.add_argument(
        "--time",
        default="coupons.mall:exchange,org.models:Brand.by_slug,"
        "members.session:current_member_id,flask_wtf.csrf:CSRFProtect.protect,"
        "flask.sessions:SecureCookieSessionInterface.save_session",
        help="module:attr,... whose CPU time per request to report",
    )
    args = parser.parse_args()
    common.OUT.mkdir(exist_ok=True)
    env = common.bench_env(JOBS_INLINE="0")
    bench.MEMBERS = args.members
    bench.PER_THREAD = args.count * 2 + 200
    common.recreate_database()
    common.flush_redis()
    lines = bench._setup(env)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})

    from app import create_app
    from bench.bare_app import app as bare
    from config import Config

    app = create_app(Config(env))
    statements = common.count_round_trips()

    client = app.test_client(use_cookies=False)

    def post(line: str) -> None:
        path, cookie, body = line.split("\t")
        res = client.post(
            path,
            data=body,
            headers={"Cookie": cookie},
            content_type="application/x-www-form-urlencoded",
        )
        assert res.status_code == 303 and "/coupons" in res.headers["Location"], (
            res.status_code,
            res.headers.get("Location"),
        )

    def run(batch: list[str]) -> tuple[float, float, float]:
        statements.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        for line in batch:
            post(line)
        n = len(batch)
        return (
            (time.process_time() - cpu) / n * 1000,
            (time.perf_counter() - wall) / n * 1000,
            len(statements) / n,
        )

    def run_bare(n: int) -> float:
        bclient = bare.test_client()
        body = "<xml><Encrypt><![CDATA[x]]></Encrypt></xml>"
        cpu = time.process_time()
        for _ in range(n):
            bclient.post("/wechat/bench/callback", data=body, content_type="text/xml")
        return (time.process_time() - cpu) / n * 1000

    pos = 0

    def take(n: int) -> list[str]:
        nonlocal pos
        pos += n
        return lines[pos - n : pos]

    timers = _install_timers(args.time)
    run(take(50))  # warm up: imports, caches, connections
    if args.sql:
        statements.clear()
        post(take(1)[0])
        print(f"--- statements of one exchange ({len(statements)}):")
        for s in statements:
            print("  " + " ".join(s.split())[:220])
    batches = max(args.count // 100, 2)
    cpus, walls, counts, bares = [], [], [], []
    for _ in range(batches):
        cpu, wall, count = run(take(100))
        cpus.append(cpu)
        walls.append(wall)
        counts.append(count)
        bares.append(run_bare(200))
    kinds = collections.Counter(s.split(None, 1)[0].upper() for s in statements)
    for spent in timers.values():
        spent.clear()
    run(take(200))
    for name, spent in timers.items():
        print(f"  {name}: {sum(spent) / 200 * 1000:.3f} ms CPU per request")
    print(
        f"per exchange: {min(counts):.1f} round trips ({dict(kinds)} in the last batch of 100),"
        f" CPU {min(cpus):.2f} ms (best batch; median {common.median(cpus):.2f}),"
        f" wall {min(walls):.2f} ms (best; median {common.median(walls):.2f});"
        f" bare endpoint CPU {min(bares):.3f} ms"
    )
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    run(take(args.count))
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats(args.sort)
    stats.print_stats(args.top)
    for name in filter(None, args.callees.split(",")):
        stats.print_callees(name)
    print(out.getvalue())
    return 0


def _install_timers(spec: str) -> dict[str, list[float]]:
    """Wrap each module:attr (attr may be Class.method) to record its CPU time per call."""
    import functools
    import importlib

    timers: dict[str, list[float]] = {}
    for item in filter(None, spec.split(",")):
        module_name, attr = item.split(":")
        owner = importlib.import_module(module_name)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        spent: list[float] = []
        timers[item] = spent
        wrap = type(original) if isinstance(original, (classmethod, staticmethod)) else None
        func = original.__func__ if wrap else original

        def wrapper(*a, _func=func, _spent=spent, **kw):
            start = time.process_time()
            try:
                return _func(*a, **kw)
            finally:
                _spent.append(time.process_time() - start)

        functools.update_wrapper(wrapper, func)
        setattr(owner, name, wrap(wrapper) if wrap else wrapper)
    return timers


if __name__ == "__main__":
    sys.exit(main())
