"""subscribe consent: the acceptances pushes take, one row per send

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.db

# revision identifiers, used by Alembic.
revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "subscribe_consent_use",
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brand.id"],
            name=op.f("fk_subscribe_consent_use_brand_id_brand"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribe_consent_use")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_subscribe_consent_use_brand_id_key")),
    )
    with op.batch_alter_table("subscribe_consent_use", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscribe_consent_use_brand_id"), ["brand_id"], unique=False
        )
        batch_op.create_index(
            "ix_subscribe_consent_use_user", ["brand_id", "openid", "template_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("subscribe_consent_use", schema=None) as batch_op:
        batch_op.drop_index("ix_subscribe_consent_use_user")
        batch_op.drop_index(batch_op.f("ix_subscribe_consent_use_brand_id"))
    op.drop_table("subscribe_consent_use")
