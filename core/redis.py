"""Redis: one client per process."""

from __future__ import annotations

import os
import threading
import time

import redis
from flask import Flask, current_app

_EXT = "wmb_redis"


def init_app(app: Flask) -> None:
    app.extensions[_EXT] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2
    )


def get_redis() -> redis.Redis:
    return current_app.extensions[_EXT]


def key(brand_id: int | None, *parts: object) -> str:
    """A Redis key; the brand id sits in a hash tag so a brand's keys share a cluster slot."""
    scope = "platform" if brand_id is None else str(brand_id)
    return "wmb:{b" + scope + "}:" + ":".join(str(p) for p in parts)


_LOCAL = threading.local()
IDLE_CHECK = 1.0


def run_script(client: redis.Redis, script, keys: list, args: list):
    """Run ``script`` (registered with ``client.register_script``) over the calling thread's
    own connection to the client's server.

    For the hottest paths (the WeChat callback's one round trip per message): checking a
    connection out of the pool and back (a lock, a fork check and a readiness poll each time)
    cost as much CPU as the round trip itself. Each thread keeps one connection made by the
    client's pool (same server, db and timeouts), and a forked child makes its own. A
    connection idle for over ``IDLE_CHECK`` seconds is checked before use (the server may
    have closed it: restarted, idle timeout) and made again if it was closed. A script
    missing from the server (restarted, flushed) is loaded again; a connection that fails
    while the command is sent is made again and the command sent once more, but one that
    fails while waiting for the answer raises: the script may have run.
    """
    pid = os.getpid()
    if getattr(_LOCAL, "pid", None) != pid:
        _LOCAL.conns = {}
        _LOCAL.pid = pid
    pool = client.connection_pool
    kept = _LOCAL.conns.get(id(pool))
    if kept is None or kept[0] is not pool:
        kept = _LOCAL.conns[id(pool)] = [pool, pool.make_connection(), 0.0]
    connection = kept[1]
    now = time.monotonic()
    if now - kept[2] > IDLE_CHECK:
        try:
            closed = connection.can_read()  # an idle connection has nothing to read...
        except (redis.exceptions.ConnectionError, OSError):
            closed = True
        if closed:  # ...unless the server closed it
            connection.disconnect()
    kept[2] = now
    command = ("EVALSHA", script.sha, len(keys), *keys, *args)
    loaded = resent = False
    while True:
        try:
            connection.send_command(*command)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            connection.disconnect()
            if resent:
                raise
            resent = True
            continue
        try:
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            if loaded:
                raise
            loaded = True
            client.script_load(script.script)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            connection.disconnect()
            raise
