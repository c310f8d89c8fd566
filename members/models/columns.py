"""Column and key helpers the member-owned tables share (see ``members.models.member``)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, ForeignKeyConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId
from core.tenancy import require_brand_id


def brand_column(*, references_brand: bool) -> Mapped[int]:
    """``brand_id`` without the mixin's own index (and, for member rows, its own key).

    ``references_brand=False`` is for tables whose composite key to ``member(brand_id, id)``
    already guarantees the brand.
    """
    fk = (ForeignKey("brand.id", ondelete="CASCADE"),) if references_brand else ()
    return mapped_column(BigId, *fk, nullable=False, default=require_brand_id)


def member_key(table: str) -> ForeignKeyConstraint:
    """The composite key of a member's row to ``member(brand_id, id)``."""
    return ForeignKeyConstraint(
        ["brand_id", "member_id"],
        ["member.brand_id", "member.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_member",
    )
