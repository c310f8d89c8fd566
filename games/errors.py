"""Domain errors of games: each has a ``code`` the pages and the API switch on and a message
the member reads (translated)."""

from __future__ import annotations

from core.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationError


class GameError(Conflict):
    """A play or check-in refused; ``code`` says why."""

    code = "game_error"


class NotStarted(GameError):
    code = "not_started"


class Ended(GameError):
    code = "ended"


class Paused(GameError):
    code = "paused"


class LimitReached(GameError):
    code = "limit_reached"


class NoPoints(GameError):
    code = "no_points"


class AlreadyCheckedIn(GameError):
    code = "already_checked_in"


class NotEligible(GameError, Forbidden):
    status = 403
    code = "not_eligible"


class GameRateLimited(GameError, RateLimited):
    status = 429
    code = "rate_limited"


class CampaignNotFound(NotFound):
    code = "not_found"


class InvalidCampaign(ValidationError):
    """Settings refused on save (the field says which)."""

    code = "invalid"


class AgainstPlayers(InvalidCampaign):
    """A change to a live campaign that is not in the players' favour."""

    code = "against_players"
