"""`make run` (scripts/run.py): the embedded engines, migrations, the demo and the three
processes come up with nothing configured, and a stop leaves nothing running, even when the
stop signal arrives twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local test server
            return resp.status, resp.read().decode()
    except OSError:
        return 0, ""


def _engines_under(path: Path) -> list[str]:
    """Command lines of running processes that use ``path`` (postgres, redis-server)."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmd:
            out.append(cmd)
    return out


def test_make_run_serves_the_demo_and_stops_everything(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "FLASK_APP", "APP_ENV")
    }
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), RUN_PORT=str(port), LOG_JSON="1")
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            status, body = _get(f"{base}/healthz")
            if status == 200:
                break
            time.sleep(1)
        assert status == 200, (tmp_path / "run.log").read_text()[-3000:]
        assert '"database":"ok"' in body.replace(" ", "") and '"redis":"ok"' in body.replace(
            " ", ""
        )
        # The demo brand is loaded: its console login and member center answer.
        assert _get(f"{base}/console/login")[0] == 200
        assert _engines_under(tmp_path), "the embedded engines should be running"
    finally:
        # A supervisor's TERM, then another one while stopping.
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    text = (tmp_path / "run.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    assert code == 0
    time.sleep(1)
    assert _engines_under(tmp_path) == [], "an engine outlived `make run`"
