"""Cost of one till order (``POST /api/pos/<brand>/orders``), in one process, for working on
its path.

    WMB_BENCH_DB=... WMB_BENCH_REDIS_DB=... .venv/bin/python bench/profile_till.py \
        [--count N] [--top N] [--sql] [--sort tottime]

Prepares the bench database as ``bench/run.py shop`` does (fewer members), then posts
distinct till orders through Flask's test client (no server, no load generator) and prints,
per order: round trips to PostgreSQL (statements and commits, counted at the driver, by
kind) and the app's CPU time; with ``--sql`` the statements of one order; then where the
CPU goes (cProfile).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_shop as bench  # noqa: E402
from bench import common  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--sql", action="store_true", help="print one order's statements")
    args = parser.parse_args()
    common.OUT.mkdir(exist_ok=True)
    env = common.bench_env(JOBS_INLINE="0")
    bench.ATTEMPTS = 500
    bench.TILL_ORDERS = args.count * 2 + 200
    common.recreate_database()
    common.flush_redis()
    lines = bench._setup(env, 1)["till"][0]

    from app import create_app
    from config import Config

    app = create_app(Config(env))
    statements = common.count_round_trips()
    client = app.test_client(use_cookies=False)

    def post(line: str) -> None:
        method, path, header_spec, body = line.split("\t")
        headers = dict(h.split(":", 1) for h in header_spec.split("|"))
        res = client.open(path, method=method, data=body, headers=headers)
        assert res.status_code == 201, (res.status_code, res.get_data(as_text=True)[:300])

    pos = 0

    def take(n: int) -> list[str]:
        nonlocal pos
        pos += n
        return lines[pos - n : pos]

    def run(batch: list[str]) -> tuple[float, float]:
        statements.clear()
        cpu = time.process_time()
        for line in batch:
            post(line)
        return (time.process_time() - cpu) / len(batch) * 1000, len(statements) / len(batch)

    run(take(50))  # warm up: imports, caches, connections
    if args.sql:
        statements.clear()
        post(take(1)[0])
        print(f"--- statements of one till order ({len(statements)}):")
        for s in statements:
            print("  " + " ".join(s.split())[:220])
    cpus, counts = [], []
    for _ in range(max(args.count // 100, 2)):
        cpu, count = run(take(100))
        cpus.append(cpu)
        counts.append(count)
    kinds = collections.Counter(s.split(None, 1)[0].upper() for s in statements)
    print(
        f"per till order: {min(counts):.1f} round trips ({dict(kinds)} in the last batch of"
        f" 100), CPU {min(cpus):.2f} ms (best batch; median {common.median(cpus):.2f})"
    )
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    run(take(args.count // 2))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
