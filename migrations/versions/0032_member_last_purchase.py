"""the members' last purchase and the lapsed tag's mark: the hourly tag reads only the members
who crossed the cutoff since its last run

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 12:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

# revision identifiers, used by Alembic.
revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

LAPSE = "status = 'active' AND last_purchase_at IS NOT NULL"
NEVER = "status = 'active' AND last_purchase_at IS NULL"


def upgrade():
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_purchase_at", UTCDateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE member SET last_purchase_at = a.last"
        " FROM (SELECT member_id, max(occurred_at) AS last FROM member_activity"
        " WHERE kind = 'purchase' GROUP BY member_id) a"
        " WHERE member.id = a.member_id"
    )
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_lapse",
            ["brand_id", "last_purchase_at"],
            unique=False,
            postgresql_where=sa.text(LAPSE),
        )
        batch_op.create_index(
            "ix_member_lapse_never_bought",
            ["brand_id", "activated_at"],
            unique=False,
            postgresql_where=sa.text(NEVER),
        )
    with op.batch_alter_table("tier_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lapsed_tagged_until", UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("tier_settings", schema=None) as batch_op:
        batch_op.drop_column("lapsed_tagged_until")
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index("ix_member_lapse_never_bought", postgresql_where=sa.text(NEVER))
        batch_op.drop_index("ix_member_lapse", postgresql_where=sa.text(LAPSE))
        batch_op.drop_column("last_purchase_at")
