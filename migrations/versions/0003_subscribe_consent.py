"""subscribe-message consent per template, and its history

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 01:10:00

"""
from alembic import op
import sqlalchemy as sa

import core.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subscribe_consent',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('chosen_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepts', sa.Integer(), nullable=False),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('brand_id', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('accepts >= 0 AND sends >= 0', name=op.f('ck_subscribe_consent_counts')),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], name=op.f('fk_subscribe_consent_brand_id_brand'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribe_consent')),
    sa.UniqueConstraint('brand_id', 'openid', 'template_id', name=op.f('uq_subscribe_consent_brand_id_openid_template_id')),
    )
    op.create_index(op.f('ix_subscribe_consent_brand_id'), 'subscribe_consent', ['brand_id'], unique=False)
    op.create_table('subscribe_consent_event',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('popup_scene', sa.Integer(), nullable=True),
    sa.Column('msg_id', sa.String(length=64), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('occurred_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dedupe', sa.String(length=120), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('brand_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brand.id'], name=op.f('fk_subscribe_consent_event_brand_id_brand'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribe_consent_event')),
    sa.UniqueConstraint('brand_id', 'openid', 'template_id', 'dedupe', name=op.f('uq_subscribe_consent_event_brand_id_openid_template_id_dedupe')),
    )
    op.create_index(op.f('ix_subscribe_consent_event_brand_id'), 'subscribe_consent_event', ['brand_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_subscribe_consent_event_brand_id'), table_name='subscribe_consent_event')
    op.drop_table('subscribe_consent_event')
    op.drop_index(op.f('ix_subscribe_consent_brand_id'), table_name='subscribe_consent')
    op.drop_table('subscribe_consent')
