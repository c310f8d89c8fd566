"""Shared pieces of the benchmarks: gunicorn servers, wrk runs, a scratch database."""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("WMB_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("WMB_BENCH_DB", "wmb_bench")
BENCH_REDIS_DB = os.environ.get("WMB_BENCH_REDIS_DB", "8")

# Both sides of every comparison run under exactly these settings: production's, from
# gunicorn.conf.py (two processes per CPU, two threads each), with this machine's CPUs.
_SERVE = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
GUNICORN_WORKERS = _SERVE["workers"]
GUNICORN_THREADS = _SERVE["threads"]
GUNICORN_ARGS = [
    "--workers",
    str(GUNICORN_WORKERS),
    "--worker-class",
    "gthread",
    "--threads",
    str(GUNICORN_THREADS),
    "--backlog",
    "2048",
    "--log-level",
    "warning",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_dir() -> str:
    """A folder of its own for the gunicorn workers' Prometheus samples (multiprocess mode, as
    in production); an empty PROMETHEUS_MULTIPROC_DIR would put them in the current folder."""
    OUT.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="metrics-", dir=OUT)


def bench_env(*, database: str | None = None, **extra: str) -> dict[str, str]:
    """Environment of the app under test: its own PostgreSQL database and Redis db."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{database or BENCH_DB}",
        REDIS_URL=f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}",
        SECRET_KEY="bench-secret-key",
        APP_ENV="bench",
        LOG_JSON="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def recreate_database(database: str | None = None) -> None:
    import psycopg

    name = database or BENCH_DB
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def vacuum_analyze(database: str | None = None) -> None:
    """``VACUUM ANALYZE`` the bench database after its setup: a database in service has its
    statistics, and plans made without them (a table thought empty) are not what it runs."""
    import psycopg

    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + (database or BENCH_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def drop_database(database: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}").flushdb()


@contextlib.contextmanager
def gunicorn(app_spec: str, *, env: dict[str, str], ready_path: str = "/") -> Iterator[str]:
    """Serve ``app_spec`` under gunicorn with the shared settings; yields the base URL."""
    port = free_port()
    log = open(OUT / f"gunicorn-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), *GUNICORN_ARGS, "--bind", f"127.0.0.1:{port}", app_spec],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base + ready_path, proc)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen) -> None:
    """Until the server answers ``url`` and every worker has booted (``_wait_settled``)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {OUT}")
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - loopback only
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"{url} did not answer within 30 s")
    _wait_settled(proc.pid, deadline)


def _wait_settled(pgid: int, deadline: float) -> None:
    """Until the server started as process group ``pgid`` has all its workers and they sit
    idle: the first worker answers while the others still import the app, and a load that
    starts then puts every keep-alive connection on that one process (one CPU's worth of
    Python for the whole run, whatever the workers' count)."""
    last = cpu_seconds(group(pgid))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        pids = group(pgid)
        now = cpu_seconds(pids)
        if len(pids) > GUNICORN_WORKERS and now - last < 0.05:
            return
        last = now
    raise RuntimeError(f"gunicorn's workers did not settle within 30 s; see {OUT}")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """User + system CPU time of these processes (those still alive)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def cpu_parts(writers=()) -> dict[str, float]:
    """CPU seconds so far of the app's gunicorn processes (``app``), the bare endpoint's
    (``bare``), Redis, PostgreSQL (its server processes alive now) and ``writer``: the
    process groups of ``writers`` (a worker and the scheduler, started in sessions of their
    own)."""
    found: dict[str, list[int]] = {"app": [], "bare": [], "redis": [], "postgres": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "gunicorn" in cmd and "wsgi:app" in cmd:
            found["app"].append(int(entry))
        elif "gunicorn" in cmd and "bench.bare_app:app" in cmd:
            found["bare"].append(int(entry))
        elif "redis-server" in cmd:
            found["redis"].append(int(entry))
        elif cmd.startswith("postgres"):
            found["postgres"].append(int(entry))
    writer = [pid for p in writers for pid in group(p.pid)]
    return {
        **{part: cpu_seconds(pids) for part, pids in found.items()},
        "writer": cpu_seconds(writer),
    }


def cpu_per(before: dict, after: dict, n: int, parts) -> dict[str, float]:
    """Milliseconds of CPU per item of each of ``parts`` between two ``cpu_parts``."""
    return {part: (after[part] - before[part]) * 1000 / max(n, 1) for part in parts}


def cpu_line(cpu: dict, parts) -> str:
    """``cpu`` (``cpu_per`` of ``parts`` and ``bare``) as a line of the results' notes."""
    ours = ", ".join(f"{part} {cpu[part]:.2f}" for part in parts)
    return f"{ours} (together {sum(cpu[p] for p in parts):.2f}); bare {cpu['bare']:.2f}"


def group(pgid: int) -> list[int]:
    """The processes of a process group (a gunicorn master and its workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def run_wrk(
    url: str, *, script: Path, prefix: Path, threads: int, connections: int, duration: int
) -> dict:
    """One wrk run; the Lua script prints its summary as a JSON line."""
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(prefix),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 120)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")


def count_round_trips() -> list[str]:
    """From now on, every round trip of this process to PostgreSQL appended to the list
    answered, counted at the driver: SQLAlchemy's statements, the pool's pre-ping and the
    commits (``"COMMIT"``). For the in-process profiles."""
    import psycopg

    statements: list[str] = []
    execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def counted_execute(self, query, *a, **kw):
        statements.append(query if isinstance(query, str) else str(query))
        return execute(self, query, *a, **kw)

    def counted_commit(self):
        statements.append("COMMIT")
        return commit(self)

    psycopg.Cursor.execute = counted_execute
    psycopg.Connection.commit = counted_commit
    return statements


def median(values: list[float]) -> float:
    return statistics.median(values)


def csrf_token(html: str) -> str:
    """The CSRF token of the first form of a page (console and member pages alike)."""
    import re

    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
