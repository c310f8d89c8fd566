"""export files: exports written by background jobs, downloadable until they expire

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 03:30:00

"""
from alembic import op
import sqlalchemy as sa

import core.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'export_file',
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('requested_by', sa.String(length=40), nullable=False),
        sa.Column('requested_by_label', sa.String(length=120), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('rows_done', sa.BigInteger(), nullable=False),
        sa.Column('rows_expected', sa.BigInteger(), nullable=True),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('path', sa.String(length=300), nullable=True),
        sa.Column('size_bytes', sa.BigInteger(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('brand_id', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ['brand_id'], ['brand.id'],
            name=op.f('fk_export_file_brand_id_brand'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_export_file')),
    )
    op.create_index(op.f('ix_export_file_brand_id'), 'export_file', ['brand_id'], unique=False)
    op.create_index(
        'ix_export_file_requester', 'export_file', ['brand_id', 'requested_by', 'id'], unique=False
    )
    op.create_index('ix_export_file_expires_at', 'export_file', ['expires_at'], unique=False)


def downgrade():
    op.drop_index('ix_export_file_expires_at', table_name='export_file')
    op.drop_index('ix_export_file_requester', table_name='export_file')
    op.drop_index(op.f('ix_export_file_brand_id'), table_name='export_file')
    op.drop_table('export_file')
