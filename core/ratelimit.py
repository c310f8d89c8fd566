"""Fixed-window rate limits and lockouts in Redis."""

from __future__ import annotations

from core.redis import get_redis, key


def hit(brand_id: int | None, name: str, ident: str, *, limit: int, window: int) -> bool:
    """Count one attempt; True while the count in the current window is within ``limit``."""
    r = get_redis()
    k = key(brand_id, "rl", name, ident)
    pipe = r.pipeline()
    # SET NX EX opens the window; not EXPIRE NX, which the Redis 6.2 of `make run` lacks.
    pipe.set(k, 0, ex=window, nx=True)
    pipe.incr(k)
    _, count = pipe.execute()
    return int(count) <= limit


def count(brand_id: int | None, name: str, ident: str) -> int:
    value = get_redis().get(key(brand_id, "rl", name, ident))
    return int(value or 0)


def clear(brand_id: int | None, name: str, ident: str) -> None:
    get_redis().delete(key(brand_id, "rl", name, ident))
