"""Game campaigns, their prizes, draws, players and the counters that keep them exact.

Invariants live in the database: a prize's ``awarded`` never passes its ``stock`` (only prizes
with stock keep that counter; an unlimited prize's wins are its draws, summed by hour in
``game_stat_prize_hour``), a prize's
day never passes its daily cap, a campaign's ``spent_fen`` never passes its budget, a
player's counters never pass the campaign's limits (checked by conditional UPDATEs), every
draw carries a unique idempotency key, and a draw's grant happens once (a conditional status
change). Draws are never deleted: there is no delete path, and campaigns are ended, not
removed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Game kinds (each an adapter over the one draw engine, see games.draws).
WHEEL, SCRATCH, GRID, CHECKIN = "wheel", "scratch", "grid", "checkin"
KINDS = (WHEEL, SCRATCH, GRID, CHECKIN)
CHANCE_KINDS = (WHEEL, SCRATCH, GRID)

# Campaign statuses.
DRAFT, LIVE, PAUSED, ENDED = "draft", "live", "paused", "ended"
STATUSES = (DRAFT, LIVE, PAUSED, ENDED)

# Prize kinds.
COUPON, POINTS, GIFT, NONE = "coupon", "points", "gift", "none"
PRIZE_KINDS = (COUPON, POINTS, GIFT, NONE)

# Draw statuses. ``awaiting_address``: a gift waiting for the winner's address or store;
# ``preview``: an operator's test draw (nothing taken, nothing granted); ``lost``: thanks.
GRANTED, PENDING_GRANT, AWAITING_ADDRESS, PREVIEW, LOST, GRANT_FAILED = (
    "granted",
    "pending_grant",
    "awaiting_address",
    "preview",
    "lost",
    "grant_failed",
)
DRAW_STATUSES = (GRANTED, PENDING_GRANT, AWAITING_ADDRESS, PREVIEW, LOST, GRANT_FAILED)

# How a play was paid for.
PAID_FREE, PAID_EXTRA, PAID_POINTS, PAID_CHECKIN = "free", "extra", "points", "checkin"

# Why a drawn prize was replaced by its fallback (recorded on the draw, checked by verify).
FALLBACK_REASONS = ("stock", "daily_cap", "budget", "win_limit", "not_activated")

MAX_PRIZE_FEN = 5_000_000  # ¥50,000: the legal ceiling of one prize of a lottery promotion


class GameCampaign(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """One game (wheel, scratch card, nine-grid or check-in) with its window, rules and pool.

    ``seed`` is secret until the campaign ends; ``seed_hash`` (its SHA-256) is published on
    the rules page from creation on. ``started_at`` is set the first time it goes live: from
    then on only changes in the players' favour are accepted.
    """

    __tablename__ = "game_campaign"
    __audit_secret__ = frozenset({"seed"})
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint("cost_points >= 0 AND free_per_day >= 0", name="cost"),
        CheckConstraint("budget_fen IS NULL OR spent_fen <= budget_fen", name="within_budget"),
        CheckConstraint("spent_fen >= 0", name="spent_not_negative"),
        Index("ix_game_campaign_brand_status", "brand_id", "status"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Who may play: empty lists mean every member.
    tier_ids: Mapped[list] = mapped_column(JSON, default=list)
    tag_ids: Mapped[list] = mapped_column(JSON, default=list)
    store_ids: Mapped[list] = mapped_column(JSON, default=list)
    # What a play costs: free plays per day first, then earned extra plays, then points.
    cost_points: Mapped[int] = mapped_column(Integer, default=0)
    free_per_day: Mapped[int] = mapped_column(Integer, default=0)
    extra_per_purchase: Mapped[int] = mapped_column(Integer, default=0)
    extra_per_checkin: Mapped[int] = mapped_column(Integer, default=0)
    # Per-member limits (None: no limit).
    plays_per_day: Mapped[int | None] = mapped_column(Integer)
    plays_total: Mapped[int | None] = mapped_column(Integer)
    wins_per_day: Mapped[int | None] = mapped_column(Integer)
    wins_total: Mapped[int | None] = mapped_column(Integer)
    # Budget on the total value of prizes won (None: none beyond the stock).
    budget_fen: Mapped[int | None] = mapped_column(Integer)
    spent_fen: Mapped[int] = mapped_column(Integer, default=0)
    # Check-in: the streak cycle (day 1..cycle, then again from day 1).
    checkin_cycle: Mapped[int] = mapped_column(Integer, default=7)
    # The rules page: claim deadline for gifts and the organiser's contact.
    claim_days: Mapped[int] = mapped_column(Integer, default=30)
    contact: Mapped[str] = mapped_column(String(200), default="")
    pickup_store_ids: Mapped[list] = mapped_column(JSON, default=list)
    seed: Mapped[str] = mapped_column(String(64))
    seed_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(120), default="")


class GamePrize(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """One prize of a campaign's pool (a wheel's slice, a grid's cell, a streak day's reward).

    ``weight`` is its share of the draw (integer; the odds are weight / total weight);
    ``fallback_prize_id`` receives its chance when it cannot be given (none: thanks)."""

    __tablename__ = "game_prize"
    __table_args__ = (
        CheckConstraint("awarded >= 0", name="awarded_not_negative"),
        CheckConstraint("stock IS NULL OR awarded <= stock", name="awarded_within_stock"),
        CheckConstraint("weight >= 0", name="weight"),
        CheckConstraint("value_fen >= 0 AND value_fen <= 5000000", name="value_fen"),
        CheckConstraint("points >= 0", name="points"),
        UniqueConstraint("campaign_id", "position"),
    )

    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(10))
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
    coupon_template_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("coupon_template.id"))
    points: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    # Units won, kept only while the prize has stock (unlimited: see GameStatPrizeHour).
    awarded: Mapped[int] = mapped_column(Integer, default=0)
    fallback_prize_id: Mapped[int | None] = mapped_column(BigId)
    streak_day: Mapped[int | None] = mapped_column(Integer)  # check-in: the day it rewards


class GamePrizeDay(BrandScoped, db.Model):
    """A prize's winners of one brand-local day (the daily cap's counter)."""

    __tablename__ = "game_prize_day"
    __table_args__ = (CheckConstraint("awarded >= 0", name="awarded_not_negative"),)

    prize_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_prize.id"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    awarded: Mapped[int] = mapped_column(Integer, default=0)


class GamePlayer(IdMixin, BrandScoped, db.Model):
    """A member's counters in one campaign: today's and total plays and wins, free plays used
    today, earned extra plays left. Changed only by conditional UPDATEs under its row lock."""

    __tablename__ = "game_player"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id"),
        CheckConstraint("extra_plays >= 0", name="extra_not_negative"),
        CheckConstraint(
            "plays_day >= 0 AND wins_day >= 0 AND plays_total >= 0 AND wins_total >= 0",
            name="counts",
        ),
        Index("ix_game_player_member", "member_id"),
        # The hourly figures read the players who started in the last hours (every minute).
        Index("ix_game_player_first_play", "campaign_id", "first_play_at"),
    )

    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    day: Mapped[dt.date | None] = mapped_column(Date)
    plays_day: Mapped[int] = mapped_column(Integer, default=0)
    wins_day: Mapped[int] = mapped_column(Integer, default=0)
    free_used_day: Mapped[int] = mapped_column(Integer, default=0)
    plays_total: Mapped[int] = mapped_column(Integer, default=0)
    wins_total: Mapped[int] = mapped_column(Integer, default=0)
    extra_plays: Mapped[int] = mapped_column(Integer, default=0)
    first_play_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Whether the member joined the brand through this game (joined within the hour before).
    new_member: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GameExtraPlay(IdMixin, BrandScoped, db.Model):
    """Extra plays earned (a purchase, a check-in, a task): a ledger with a unique key per
    source event; the player's ``extra_plays`` is its cached balance."""

    __tablename__ = "game_extra_play"
    __table_args__ = (UniqueConstraint("brand_id", "idempotency_key"),)

    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    source: Mapped[str] = mapped_column(String(16))  # purchase | checkin | task
    plays: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GameDraw(IdMixin, BrandScoped, db.Model):
    """One play and its outcome; append-only (only the grant's status and the gift's address
    change afterwards).

    ``random_hex`` is HMAC-SHA256(seed, f"{campaign_id}:{id}") (preview draws: random bytes);
    ``picked_prize_id`` is the prize it maps to under the weights, ``fallbacks`` the recorded
    decisions that replaced it ([[prize_id, reason], ...]), ``slot_prize_id`` the prize shown
    (the wheel stops there), ``prize_id`` what the member won (None: thanks)."""

    __tablename__ = "game_draw"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key"),
        Index("ix_game_draw_campaign_created", "campaign_id", "created_at"),
        Index("ix_game_draw_member", "member_id", "campaign_id"),
        Index(
            "ix_game_draw_pending",
            "created_at",
            postgresql_where="status = 'pending_grant'",
        ),
    )

    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    preview: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_with: Mapped[str] = mapped_column(String(10))
    points_spent: Mapped[int] = mapped_column(Integer, default=0)
    random_hex: Mapped[str] = mapped_column(String(64))
    picked_prize_id: Mapped[int | None] = mapped_column(BigId)
    fallbacks: Mapped[list] = mapped_column(JSON, default=list)
    slot_prize_id: Mapped[int | None] = mapped_column(BigId)
    prize_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("game_prize.id"))
    prize_name: Mapped[str] = mapped_column(String(60), default="")
    prize_kind: Mapped[str] = mapped_column(String(10), default=NONE)
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    day: Mapped[dt.date] = mapped_column(Date)
    streak: Mapped[int | None] = mapped_column(Integer)  # check-in: the streak day
    ip: Mapped[str | None] = mapped_column(String(64))
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    points_entry_id: Mapped[int | None] = mapped_column(BigId)
    address: Mapped[dict | None] = mapped_column(JSON)
    grant_error: Mapped[str | None] = mapped_column(String(200))
    granted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def kind(self) -> str:
        """The prize kind won (``none`` for thanks)."""
        return self.prize_kind

    @property
    def won(self) -> bool:
        return self.prize_id is not None


class GameCheckIn(IdMixin, BrandScoped, db.Model):
    """A member's check-in of one brand-local day in a check-in campaign."""

    __tablename__ = "game_checkin"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id", "day"),)

    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    day: Mapped[dt.date] = mapped_column(Date)
    streak: Mapped[int] = mapped_column(Integer)
    draw_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GameFlag(IdMixin, BrandScoped, db.Model):
    """A burst of plays from one network address within a minute, shown in the console."""

    __tablename__ = "game_flag"
    __table_args__ = (UniqueConstraint("campaign_id", "ip", "minute"),)

    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"), index=True)
    ip: Mapped[str] = mapped_column(String(64))
    minute: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    plays: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GameStatHour(BrandScoped, db.Model):
    """Per campaign and hour: plays, players new to the campaign, members new to the brand,
    wins and their value (a rollup the console reads instead of counting draws)."""

    __tablename__ = "game_stat_hour"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("game_campaign.id"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    plays: Mapped[int] = mapped_column(Integer, default=0)
    players: Mapped[int] = mapped_column(Integer, default=0)
    new_members: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
    points_spent: Mapped[int] = mapped_column(Integer, default=0)


class GameStatPrizeHour(BrandScoped, db.Model):
    """Per prize and hour: the winning draws and their value (a rollup of the draws, refreshed
    with ``game_stat_hour``). A prize without stock keeps no counter of its own (no row that
    every winner would lock), so the console reads its wins here."""

    __tablename__ = "game_stat_prize_hour"

    prize_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_prize.id"), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("game_campaign.id"), index=True)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
