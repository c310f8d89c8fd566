"""Plays decided in Redis (``games.live``), written to PostgreSQL.

``record`` writes a batch of decided plays in the caller's transaction: the draws (one
statement; a draw already written is skipped, so a play is written once however often it is
handed in), then the counters of the draws written now, by addition: the members'
``game_player`` rows (today's counts restart on a new brand-local day; a play of an earlier
day written late counts in the totals only), the prizes' ``awarded`` (prizes with stock),
their ``game_prize_day`` (prizes with a daily cap) and the campaign's ``spent_fen`` (with a
budget). The counters are thus always the sums of the recorded draws.

A play left in the stream (its request died between the decision and its commit) is written
by ``games.jobs.record_plays`` a minute later, and its payment (an extra play or points, with
the play's key) taken then, exactly once: only for a draw written by that call.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging

from sqlalchemy import text

from core.db import db

log = logging.getLogger(__name__)

_INSERT_DRAWS = text(
    "INSERT INTO game_draw (id, brand_id, campaign_id, member_id, idempotency_key, preview,"
    " paid_with, points_spent, random_hex, picked_prize_id, fallbacks, slot_prize_id,"
    " prize_id, prize_name, prize_kind, value_fen, status, day, ip, created_at)"
    " SELECT r.id, r.brand_id, r.campaign_id, r.member_id, r.key, false, r.paid_with,"
    " r.points_spent, r.random_hex, r.picked, r.fallbacks, r.slot_prize_id, r.prize_id,"
    " r.prize_name, r.prize_kind, r.value_fen, r.status, r.day, r.ip, r.created_at"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, brand_id bigint,"
    " campaign_id bigint, member_id bigint, key varchar, paid_with varchar,"
    " points_spent integer, random_hex varchar, picked bigint, fallbacks json,"
    " slot_prize_id bigint, prize_id bigint, prize_name varchar, prize_kind varchar,"
    " value_fen integer, status varchar, day date, ip varchar, created_at timestamptz)"
    " ON CONFLICT DO NOTHING RETURNING id"
)

# One row per (campaign, member) of the draws written now: the plays and wins in total, and
# those of the latest brand-local day among them.
_COUNT_PLAYERS = text(
    "INSERT INTO game_player AS g (brand_id, campaign_id, member_id, day, plays_day, wins_day,"
    " free_used_day, plays_total, wins_total, extra_plays, new_member, first_play_at,"
    " created_at)"
    " SELECT r.brand_id, r.campaign_id, r.member_id, r.day, r.plays_day, r.wins_day,"
    " r.free_day, r.plays, r.wins, 0, r.new_member, r.first_at, r.first_at"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(brand_id bigint, campaign_id bigint,"
    " member_id bigint, day date, plays_day integer, wins_day integer, free_day integer,"
    " plays integer, wins integer, new_member boolean, first_at timestamptz)"
    " ON CONFLICT (campaign_id, member_id) DO UPDATE SET"
    " day = GREATEST(g.day, EXCLUDED.day),"
    " plays_day = CASE WHEN g.day IS NULL OR g.day < EXCLUDED.day THEN EXCLUDED.plays_day"
    "  WHEN g.day = EXCLUDED.day THEN g.plays_day + EXCLUDED.plays_day ELSE g.plays_day END,"
    " wins_day = CASE WHEN g.day IS NULL OR g.day < EXCLUDED.day THEN EXCLUDED.wins_day"
    "  WHEN g.day = EXCLUDED.day THEN g.wins_day + EXCLUDED.wins_day ELSE g.wins_day END,"
    " free_used_day = CASE WHEN g.day IS NULL OR g.day < EXCLUDED.day"
    "  THEN EXCLUDED.free_used_day WHEN g.day = EXCLUDED.day"
    "  THEN g.free_used_day + EXCLUDED.free_used_day ELSE g.free_used_day END,"
    " plays_total = g.plays_total + EXCLUDED.plays_total,"
    " wins_total = g.wins_total + EXCLUDED.wins_total,"
    " first_play_at = LEAST(g.first_play_at, EXCLUDED.first_play_at)"
)
_COUNT_PRIZES = text(
    "UPDATE game_prize p SET awarded = p.awarded + r.n"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, n integer)"
    " WHERE p.id = r.id"
)
_COUNT_DAYS = text(
    "INSERT INTO game_prize_day AS d (brand_id, prize_id, day, awarded)"
    " SELECT r.brand_id, r.id, r.day, r.n"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(brand_id bigint, id bigint, day date,"
    " n integer)"
    " ON CONFLICT (prize_id, day) DO UPDATE SET awarded = d.awarded + EXCLUDED.awarded"
)
_COUNT_SPENT = text(
    "UPDATE game_campaign c SET spent_fen = c.spent_fen + r.v"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, v integer)"
    " WHERE c.id = r.id"
)
TAKE_EXTRA = text(
    "UPDATE game_player SET extra_plays = extra_plays - 1"
    " WHERE campaign_id = :c AND member_id = :m AND brand_id = :b AND extra_plays > 0"
    " RETURNING id"
)


def _rows(draws: list[dict]) -> str:
    rows = []
    for d in draws:
        fallbacks = d.get("fallbacks")
        rows.append(
            {
                "id": d["id"],
                "brand_id": d["brand_id"],
                "campaign_id": d["campaign_id"],
                "member_id": d["member_id"],
                "key": d["key"],
                "paid_with": d["paid_with"],
                "points_spent": d.get("points_spent", 0),
                "random_hex": d["random_hex"],
                "picked": d.get("picked"),
                "fallbacks": fallbacks if isinstance(fallbacks, list) else [],
                "slot_prize_id": d.get("slot_prize_id"),
                "prize_id": d.get("prize_id"),
                "prize_name": d.get("prize_name", ""),
                "prize_kind": d.get("prize_kind", "none"),
                "value_fen": d.get("value_fen", 0),
                "status": d["status"],
                "day": d["day"],
                "ip": d.get("ip"),
                "created_at": d["created_at"],
            }
        )
    return json.dumps(rows, ensure_ascii=False)


def record(draws: list[dict], *, paid: bool) -> list[dict]:
    """Write the decided plays ``draws`` (the script's records) in the current transaction;
    answer the ones written now (the others were already). ``paid``: their extra plays or
    points were taken in this transaction already; otherwise they are taken now, for the
    draws written now."""
    if not draws:
        return []
    written = set(db.session.execute(_INSERT_DRAWS, {"rows": _rows(draws)}).scalars())
    new = [d for d in draws if d["id"] in written]
    if not new:
        return []
    players: dict[tuple, dict] = {}
    prizes: collections.Counter = collections.Counter()
    days: collections.Counter = collections.Counter()
    spent: collections.Counter = collections.Counter()
    for d in new:
        group = players.setdefault(
            (d["campaign_id"], d["member_id"]),
            {
                "brand_id": d["brand_id"],
                "campaign_id": d["campaign_id"],
                "member_id": d["member_id"],
                "day": d["day"],
                "plays_day": 0,
                "wins_day": 0,
                "free_day": 0,
                "plays": 0,
                "wins": 0,
                "new_member": bool(d.get("new_member")),
                "first_at": d["created_at"],
            },
        )
        won = 1 if d.get("won") else 0
        if d["day"] > group["day"]:  # ISO dates: a later day restarts the day's counts
            group.update(day=d["day"], plays_day=0, wins_day=0, free_day=0)
        if d["day"] == group["day"]:
            group["plays_day"] += 1
            group["wins_day"] += won
            group["free_day"] += int(d.get("free") or 0)
        group["plays"] += 1
        group["wins"] += won
        group["first_at"] = min(group["first_at"], d["created_at"])
        if d.get("took_stock"):
            prizes[d["prize_id"]] += 1
        if d.get("took_day"):
            days[(d["brand_id"], d["prize_id"], d["day"])] += 1
        if d.get("took_budget"):
            spent[d["campaign_id"]] += int(d.get("value_fen") or 0)
    rows = sorted(players.values(), key=lambda g: (g["campaign_id"], g["member_id"]))
    db.session.execute(_COUNT_PLAYERS, {"rows": json.dumps(rows)})
    if prizes:
        rows = [{"id": i, "n": n} for i, n in sorted(prizes.items())]
        db.session.execute(_COUNT_PRIZES, {"rows": json.dumps(rows)})
    if days:
        rows = [
            {"brand_id": b, "id": i, "day": day, "n": n} for (b, i, day), n in sorted(days.items())
        ]
        db.session.execute(_COUNT_DAYS, {"rows": json.dumps(rows)})
    if spent:
        rows = [{"id": i, "v": v} for i, v in sorted(spent.items())]
        db.session.execute(_COUNT_SPENT, {"rows": json.dumps(rows)})
    if not paid:
        for d in new:
            _pay_late(d)
    return new


def _pay_late(d: dict) -> None:
    """The payment of a play written after its request died: its extra play, or its points
    with the play's own key (taken once; none if the member no longer has them)."""
    if d["paid_with"] == "extra":
        taken = db.session.execute(
            TAKE_EXTRA, {"c": d["campaign_id"], "m": d["member_id"], "b": d["brand_id"]}
        ).first()
        if taken is None:
            log.warning("games: draw %s written late, its extra play already used", d["id"])
    elif d["paid_with"] == "points" and d.get("points_spent"):
        from points import services as points

        try:
            with db.session.begin_nested():
                points.spend_id(
                    member_id=d["member_id"],
                    points=d["points_spent"],
                    reason=d.get("campaign_name") or "",
                    idempotency_key=f"game-{d['key']}",
                    now=dt.datetime.fromisoformat(d["created_at"]),
                )
        except points.InsufficientPoints:
            log.warning("games: draw %s written late, the member's points are gone", d["id"])
