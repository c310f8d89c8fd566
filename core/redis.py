"""Redis: one client per process, or an in-process stand-in when REDIS_URL is unset."""

from __future__ import annotations

import redis
from flask import Flask, current_app

_EXT = "wmb_redis"


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    else:
        import fakeredis

        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app.extensions[_EXT] = client


def get_redis() -> redis.Redis:
    return current_app.extensions[_EXT]


def key(brand_id: int | None, *parts: object) -> str:
    """A Redis key; the brand id sits in a hash tag so a brand's keys share a cluster slot."""
    scope = "platform" if brand_id is None else str(brand_id)
    return "wmb:{b" + scope + "}:" + ":".join(str(p) for p in parts)
