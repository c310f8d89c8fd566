"""Member merge (``members.merge.register_merge_handler``): the merged member's plays, wins,
check-ins and extra plays become the kept member's, so that one person's limits count all of
their plays and their prizes stay theirs.

A campaign both played: the kept member's counters take the merged member's added up (today's
only when both played the same brand-local day; when only the merged member's are of the
later day, theirs are today's), so the limits hold over both; a check-in day both made is
kept once.
"""

from __future__ import annotations

from sqlalchemy import text

from core.db import db
from core.tenancy import require_brand_id
from games import live
from members.merge import move_member_rows


def merge_member(kept_id: int, merged_id: int) -> dict:
    params = {"b": require_brand_id(), "kept": kept_id, "merged": merged_id}
    counts: dict[str, int] = {}
    # both played a campaign: add the counters up into the kept member's row (locked first,
    # in id order, as a play locks it), then drop the merged member's
    rows = db.session.execute(
        text(
            "SELECT id, member_id, campaign_id FROM game_player"
            " WHERE brand_id = :b AND member_id IN (:kept, :merged)"
            " ORDER BY id FOR UPDATE"
        ),
        params,
    ).all()
    merged_rows = sum(1 for r in rows if r.member_id == merged_id)
    # the live counters in Redis of both are read again from these rows at their next play
    live.forget_players_after_commit(
        params["b"], [(r.campaign_id, m) for r in rows for m in (kept_id, merged_id)]
    )
    if merged_rows:
        db.session.execute(
            text(
                "UPDATE game_player k SET"
                " plays_total = k.plays_total + m.plays_total,"
                " wins_total = k.wins_total + m.wins_total,"
                " extra_plays = k.extra_plays + m.extra_plays,"
                " day = CASE WHEN m.day > k.day OR k.day IS NULL THEN m.day ELSE k.day END,"
                " plays_day = CASE WHEN m.day = k.day THEN k.plays_day + m.plays_day"
                "  WHEN m.day > k.day OR k.day IS NULL THEN m.plays_day ELSE k.plays_day END,"
                " wins_day = CASE WHEN m.day = k.day THEN k.wins_day + m.wins_day"
                "  WHEN m.day > k.day OR k.day IS NULL THEN m.wins_day ELSE k.wins_day END,"
                " free_used_day = CASE WHEN m.day = k.day THEN k.free_used_day + m.free_used_day"
                "  WHEN m.day > k.day OR k.day IS NULL THEN m.free_used_day"
                "  ELSE k.free_used_day END,"
                " first_play_at = least(k.first_play_at, m.first_play_at),"
                " new_member = k.new_member OR m.new_member"
                " FROM game_player m WHERE k.brand_id = :b AND k.member_id = :kept"
                " AND m.member_id = :merged AND m.campaign_id = k.campaign_id"
            ),
            params,
        )
        db.session.execute(
            text(
                "DELETE FROM game_player m WHERE m.brand_id = :b AND m.member_id = :merged"
                " AND EXISTS (SELECT 1 FROM game_player k WHERE k.member_id = :kept"
                " AND k.campaign_id = m.campaign_id)"
            ),
            params,
        )
        db.session.execute(
            text(
                "UPDATE game_player SET member_id = :kept"
                " WHERE brand_id = :b AND member_id = :merged"
            ),
            params,
        )
        counts["game_players"] = merged_rows
    # a day both checked in on counts once (the kept member's check-in stays)
    db.session.execute(
        text(
            "DELETE FROM game_checkin m WHERE m.brand_id = :b AND m.member_id = :merged"
            " AND EXISTS (SELECT 1 FROM game_checkin k WHERE k.member_id = :kept"
            " AND k.campaign_id = m.campaign_id AND k.day = m.day)"
        ),
        params,
    )
    moved = (
        ("game_check_ins", "game_checkin"),
        ("game_draws", "game_draw"),
        ("game_extra_plays", "game_extra_play"),
    )
    return counts | move_member_rows(kept_id, merged_id, moved)
