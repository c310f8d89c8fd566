"""brand-wide day rollups: redemptions per template and day, new members per day

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 05:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _brand():
    return sa.Column(
        'brand_id', sa.BigInteger(), sa.ForeignKey('brand.id', ondelete='CASCADE'),
        nullable=False,
    )


def _values(*names):
    return [sa.Column(n, sa.BigInteger(), nullable=False) for n in names]


def upgrade():
    op.create_table(
        'coupon_redemption_day_rollup',
        _brand(),
        sa.Column('template_id', sa.BigInteger(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *_values('n', 'discount_fen'),
        sa.PrimaryKeyConstraint('brand_id', 'template_id', 'day'),
    )
    op.create_table(
        'member_day_total_rollup',
        _brand(),
        sa.Column('day', sa.Date(), nullable=False),
        *_values('new_members', 'activations'),
        sa.PrimaryKeyConstraint('brand_id', 'day'),
    )
    # Existing brands fill them with `flask --app app rollups rebuild` (readers count the
    # rows since the watermark live until then: exact, only slower).


def downgrade():
    op.drop_table('member_day_total_rollup')
    op.drop_table('coupon_redemption_day_rollup')
