"""rollups: points per day and kind, accounts per day, coupons issued, redeemed, reversed and
expired per template and day, members per day; their watermarks; indexes on recording times

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 03:40:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
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
        'rollup_state',
        _brand(),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('watermark', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rows_added', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('brand_id', 'name'),
    )
    op.create_table(
        'points_day_rollup',
        _brand(),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        *_values('entries', 'points_in', 'points_out', 'd_balance', 'd_pending', 'd_debt'),
        sa.PrimaryKeyConstraint('brand_id', 'day', 'kind'),
    )
    op.create_table(
        'points_active_rollup',
        _brand(),
        sa.Column('end_day', sa.Date(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        *_values('members'),
        sa.Column('watermark', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('brand_id', 'end_day', 'days'),
    )
    op.create_table(
        'points_account_rollup',
        _brand(),
        sa.Column('day', sa.Date(), nullable=False),
        *_values('accounts'),
        sa.PrimaryKeyConstraint('brand_id', 'day'),
    )
    op.create_table(
        'coupon_issued_rollup',
        _brand(),
        sa.Column('template_id', sa.BigInteger(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('source', sa.String(length=12), nullable=False),
        *_values('n'),
        sa.PrimaryKeyConstraint('brand_id', 'template_id', 'day', 'source'),
    )
    op.create_table(
        'coupon_redemption_rollup',
        _brand(),
        sa.Column('template_id', sa.BigInteger(), nullable=False),
        sa.Column('store_id', sa.BigInteger(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *_values('n', 'discount_fen'),
        sa.PrimaryKeyConstraint('brand_id', 'template_id', 'store_id', 'day'),
    )
    op.create_table(
        'coupon_reversal_rollup',
        _brand(),
        sa.Column('template_id', sa.BigInteger(), nullable=False),
        sa.Column('store_id', sa.BigInteger(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *_values('n', 'discount_fen', 'to_expired'),
        sa.PrimaryKeyConstraint('brand_id', 'template_id', 'store_id', 'day'),
    )
    op.create_table(
        'coupon_expired_rollup',
        _brand(),
        sa.Column('template_id', sa.BigInteger(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *_values('n'),
        sa.PrimaryKeyConstraint('brand_id', 'template_id', 'day'),
    )
    op.create_table(
        'member_day_rollup',
        _brand(),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('store_id', sa.BigInteger(), nullable=False),
        sa.Column('guide_id', sa.BigInteger(), nullable=False),
        *_values('new_members', 'activations'),
        sa.PrimaryKeyConstraint('brand_id', 'day', 'source', 'store_id', 'guide_id'),
    )
    op.create_index('ix_member_brand_created', 'member', ['brand_id', 'created_at'])
    op.create_index('ix_member_brand_activated', 'member', ['brand_id', 'activated_at'])
    op.create_index('ix_member_brand_updated', 'member', ['brand_id', 'updated_at'])
    op.add_column(
        'points_account',
        sa.Column(
            'created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
            nullable=False,
        ),
    )
    op.create_index('ix_points_account_created', 'points_account', ['brand_id', 'created_at'])
    op.create_index('ix_points_entry_recorded', 'points_entry', ['brand_id', 'created_at'])
    op.create_index('ix_coupon_issued_at', 'coupon', ['brand_id', 'issued_at'])
    op.create_index(
        'ix_coupon_expired_at', 'coupon', ['brand_id', 'expired_at'],
        postgresql_where=sa.text('expired_at IS NOT NULL'),
    )
    op.create_index(
        'ix_coupon_redemption_brand_at', 'coupon_redemption', ['brand_id', 'created_at']
    )
    op.create_index(
        'ix_coupon_redemption_reversed_at', 'coupon_redemption', ['brand_id', 'reversed_at'],
        postgresql_where=sa.text('reversed_at IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_coupon_redemption_reversed_at', table_name='coupon_redemption')
    op.drop_index('ix_coupon_redemption_brand_at', table_name='coupon_redemption')
    op.drop_index('ix_coupon_expired_at', table_name='coupon')
    op.drop_index('ix_coupon_issued_at', table_name='coupon')
    op.drop_index('ix_points_entry_recorded', table_name='points_entry')
    op.drop_index('ix_points_account_created', table_name='points_account')
    op.drop_column('points_account', 'created_at')
    op.drop_index('ix_member_brand_updated', table_name='member')
    op.drop_index('ix_member_brand_activated', table_name='member')
    op.drop_index('ix_member_brand_created', table_name='member')
    for t in (
        'member_day_rollup',
        'coupon_expired_rollup', 'coupon_reversal_rollup', 'coupon_redemption_rollup',
        'coupon_issued_rollup', 'points_account_rollup', 'points_active_rollup', 'points_day_rollup', 'rollup_state',
    ):
        op.drop_table(t)
