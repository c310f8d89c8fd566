"""Errors of the points ledger (rendered as 4xx by the one error handler)."""

from __future__ import annotations

from core.errors import Conflict, NotFound, ValidationError


class InsufficientPoints(Conflict):
    """The member's available balance does not cover the points asked for."""

    code = "insufficient_points"


class IdempotencyConflict(Conflict):
    """An idempotency key already used for a different operation or member."""

    code = "idempotency_conflict"


class UnknownMember(NotFound):
    """No member with this id in the current brand."""

    code = "unknown_member"


class InvalidPoints(ValidationError):
    """Zero, negative or otherwise unusable amounts."""

    code = "invalid_points"
