"""gunicorn.conf.py: the web processes' settings, read by `gunicorn wsgi:app` from the
working directory (and by the benchmarks)."""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.apps import DATABASE_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "gunicorn.conf.py"


def _settings(monkeypatch, **env) -> dict:
    for name in ("WEB_WORKERS", "WEB_THREADS", "WEB_BIND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_two_threaded_processes_per_cpu_by_default(monkeypatch):
    conf = _settings(monkeypatch)
    assert conf["worker_class"] == "gthread"
    assert conf["workers"] == 2 * len(os.sched_getaffinity(0))
    assert conf["threads"] == 2
    assert conf["bind"] == "0.0.0.0:8000"


def test_the_environment_overrides_the_counts_and_the_address(monkeypatch):
    conf = _settings(monkeypatch, WEB_WORKERS="3", WEB_THREADS=" 5 ", WEB_BIND="127.0.0.1:9000")
    assert (conf["workers"], conf["threads"], conf["bind"]) == (3, 5, "127.0.0.1:9000")


@pytest.mark.parametrize("value", ["0", "-2", "four", "1.5"])
def test_a_count_that_is_not_a_whole_number_stops_the_start(monkeypatch, value):
    with pytest.raises(ValueError, match="WEB_WORKERS"):
        _settings(monkeypatch, WEB_WORKERS=value)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_sockets(pid: int) -> int:
    """The process's open TCP connections to port 5432."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[2].endswith(":1538") and cols[9] in inodes:  # 0x1538 = 5432
                count += 1
    return count


def test_gunicorn_serves_the_app_with_these_settings(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "INSTANCE_PATH": str(tmp_path),
        "LOG_JSON": "0",
        "WEB_WORKERS": "3",
        "WEB_BIND": f"127.0.0.1:{port}",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed command
            [str(Path(sys.executable).parent / "gunicorn"), "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, log.read_text()
        # The master and the three workers the environment asked for.
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) != 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_children(proc.pid)) == 3, log.read_text()
        # The app was loaded once, by the master, before the workers were forked: a worker
        # answers as soon as it exists, having imported nothing of its own.
        workers = _children(proc.pid)
        assert max(_cpu_seconds(w) for w in workers) < _cpu_seconds(proc.pid) / 3
        # Every worker uses PostgreSQL through connections of its own; the one the master
        # opened while loading the app was closed before the first fork.
        for _ in range(12):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
        assert _postgres_sockets(proc.pid) == 0
        assert sum(_postgres_sockets(w) for w in workers) >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
