"""The one draw engine: pure functions from a random number and a prize table to a prize.

Every game type is an adapter over this (``ADAPTERS``): the wheel, the scratch card and the
nine-grid draw once per play; the check-in rewards a streak day instead of drawing. A new
game type adds an adapter and its page, not an engine.

The random number of a draw is ``HMAC-SHA256(seed, f"{campaign_id}:{draw_id}")`` (hex). Its
first 8 bytes, read as a big-endian integer ``r`` in [0, 2**64), pick the prize: with the
prizes ordered by position and ``total`` the sum of their weights, the point
``x = (r * total) >> 64`` falls in exactly one prize's interval ``[w_1 + ... + w_(i-1),
w_1 + ... + w_i)``. Anyone with the revealed seed and the prize table can recompute it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from games.models import CHECKIN, GRID, SCRATCH, WHEEL


def new_seed() -> str:
    """A fresh secret seed (32 random bytes, hex)."""
    return secrets.token_hex(32)


def seed_hash(seed: str) -> str:
    """The SHA-256 of the seed's text, published before the campaign starts."""
    return hashlib.sha256(seed.encode()).hexdigest()


def draw_random(seed: str, campaign_id: int, draw_id: int) -> str:
    """The draw's random number: HMAC-SHA256(seed, "campaign_id:draw_id"), hex."""
    message = f"{campaign_id}:{draw_id}".encode()
    return hmac.new(seed.encode(), message, hashlib.sha256).hexdigest()


def preview_random() -> str:
    """A preview draw's random number (not derived from the seed)."""
    return secrets.token_hex(32)


@dataclasses.dataclass(frozen=True)
class Slot:
    """What the engine needs of a prize: its id and weight, in position order."""

    prize_id: int
    weight: int


def pick(random_hex: str, slots: Sequence[Slot]) -> int | None:
    """The prize id that ``random_hex`` maps to under the weights (None: no weight at all)."""
    total = sum(s.weight for s in slots)
    if total <= 0:
        return None
    r = int(random_hex[:16], 16)
    x = (r * total) >> 64
    upto = 0
    for s in slots:
        upto += s.weight
        if x < upto:
            return s.prize_id
    return slots[-1].prize_id  # unreachable: x < total


def follow_fallback(
    prize_id: int | None, fallback_of: dict[int, int | None], refused: set[int]
) -> int | None:
    """Where a refused prize's chance goes: along the fallbacks, skipping refused ones, to
    the first prize still open (None: thanks). Cycles end in thanks."""
    seen: set[int] = set()
    current = prize_id
    while current is not None and current in refused:
        if current in seen:
            return None
        seen.add(current)
        current = fallback_of.get(current)
    return current


@dataclasses.dataclass(frozen=True)
class Adapter:
    """A game type over the engine: whether a play draws, and how its page shows the pool."""

    kind: str
    draws: bool  # False: the check-in, whose reward is the streak day's prize
    max_prizes: int
    min_prizes: int


ADAPTERS: dict[str, Adapter] = {
    WHEEL: Adapter(WHEEL, draws=True, max_prizes=12, min_prizes=2),
    SCRATCH: Adapter(SCRATCH, draws=True, max_prizes=12, min_prizes=1),
    GRID: Adapter(GRID, draws=True, max_prizes=8, min_prizes=2),  # the 8 cells around "go"
    CHECKIN: Adapter(CHECKIN, draws=False, max_prizes=31, min_prizes=1),
}


def streak_prize(streak: int, cycle: int, by_day: dict[int, int]) -> int | None:
    """The check-in reward of a streak: the prize of day ((streak - 1) % cycle) + 1."""
    if streak < 1 or cycle < 1:
        return None
    return by_day.get((streak - 1) % cycle + 1)
