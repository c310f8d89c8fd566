"""gunicorn's settings for the web processes: ``gunicorn wsgi:app`` reads this file from the
working directory; the benchmarks serve with the same settings.

Two processes per CPU, each with two threads (``gthread``). A keep-alive connection stays
with the process that accepted it for as long as it lives, so with one process per CPU a
few busy connections (a proxy's upstream pool, a burst of members behind one gateway) can
pin one CPU while the other idles; with two per CPU the connections spread evenly enough
that every CPU works. The threads let a process go on while one of its requests waits on
WeChat (an OAuth code exchange, a payment order) or on PostgreSQL.

The app is loaded once, in the master, before the workers are forked (``preload_app``): every
worker is ready the moment it exists. Loaded in each worker instead, the first worker to
finish importing accepts every connection waiting at a (re)start, a proxy's whole upstream
pool, and keeps them for as long as they live: one CPU's worth of Python for the site while
the other workers idle. No database connection crosses the fork (``pre_fork``); Redis's
client opens new ones in a process that did not open them.

Environment: ``WEB_WORKERS`` and ``WEB_THREADS`` override the counts, ``WEB_BIND`` the
address (``0.0.0.0:8000``).
"""

from __future__ import annotations

import os


def _cpus() -> int:
    """The CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _count(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


workers = _count("WEB_WORKERS", 2 * _cpus())
worker_class = "gthread"
threads = _count("WEB_THREADS", 2)
bind = os.environ.get("WEB_BIND", "").strip() or "0.0.0.0:8000"  # noqa: S104 - behind the proxy
backlog = 2048
preload_app = True


def pre_fork(server, worker) -> None:
    """Close the database connections the master opened while loading the app (each worker
    opens its own; a connection shared by two processes mixes their statements)."""
    app = server.app.callable  # the app preloaded in this process (a Flask app)
    sqlalchemy = getattr(app, "extensions", {}).get("sqlalchemy")
    if sqlalchemy is None:
        return
    with app.app_context():
        for engine in sqlalchemy.engines.values():
            engine.dispose()
