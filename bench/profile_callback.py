"""CPU per request of the callback, in one process, for working on its hot path.

    .venv/bin/python bench/profile_callback.py [--count N] [--top N] [--no-prepare]

Prepares the bench database and Redis db (as ``bench/run.py callback`` does), then posts
distinct signed AES keyword messages through Flask's test client (no server, no load
generator) and prints the CPU time per request of the callback and of the bare endpoint, and
the functions where the callback's time goes (cProfile, sorted by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_callback, common  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--no-prepare", action="store_true")
    parser.add_argument("--callers", default="", help="also print the callers of these names")
    parser.add_argument("--callees", default="", help="also print the callees of these names")
    args = parser.parse_args()
    common.OUT.mkdir(exist_ok=True)
    env = common.bench_env(WECHAT_SANDBOX="0", JOBS_INLINE="0")
    if not args.no_prepare:
        bench_callback.prepare_app(env)
    else:
        import os

        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
    from app import create_app
    from bench.bare_app import app as bare
    from config import Config

    app = create_app(Config(env))
    prefix = common.OUT / "prof"
    bench_callback.PER_THREAD = args.count * 2 + 100
    bench_callback.build_requests(prefix, msgid_base=random.randrange(10**15, 10**16) * 1000)
    lines = Path(f"{prefix}.1.txt").read_text().splitlines()
    lines2 = Path(f"{prefix}.2.txt").read_text().splitlines()

    def run(flask_app, batch) -> float:
        client = flask_app.test_client()
        start = time.process_time()
        for line in batch:
            path, body = line.split("\t", 1)
            res = client.post(path, data=body, content_type="text/xml")
            assert res.status_code == 200, (res.status_code, res.data)
            assert b"<Encrypt>" in res.data, res.data
        return (time.process_time() - start) / len(batch) * 1000

    run(app, lines[:100])
    # Alternate the two, and keep each one's best batch: other processes on the machine
    # only ever add time.
    ours_runs, bare_runs = [], []
    for i in range(max(args.count // 250, 2)):
        ours_runs.append(run(app, lines[100 + i * 250 : 350 + i * 250]))
        bare_runs.append(run(bare, lines[:250]))
    ours, bare_ms = min(ours_runs), min(bare_runs)
    print(f"CPU per request: callback {ours:.3f} ms, bare {bare_ms:.3f} ms (best of batches)")
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    run(app, lines2[: args.count])
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats(args.sort)
    stats.print_stats(args.top)
    for name in filter(None, args.callers.split(",")):
        stats.print_callers(name)
    for name in filter(None, args.callees.split(",")):
        stats.print_callees(name)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
