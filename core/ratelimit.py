"""Fixed-window rate limits and lockouts in Redis."""

from __future__ import annotations

from core.redis import get_redis, key


def hit(brand_id: int | None, name: str, ident: str, *, limit: int, window: int) -> bool:
    """Count one attempt; True while the count in the current window is within ``limit``."""
    r = get_redis()
    k = key(brand_id, "rl", name, ident)
    pipe = r.pipeline()
    pipe.incr(k)
    pipe.expire(k, window, nx=True)
    count, _ = pipe.execute()
    return int(count) <= limit


def count(brand_id: int | None, name: str, ident: str) -> int:
    value = get_redis().get(key(brand_id, "rl", name, ident))
    return int(value or 0)


def clear(brand_id: int | None, name: str, ident: str) -> None:
    get_redis().delete(key(brand_id, "rl", name, ident))
