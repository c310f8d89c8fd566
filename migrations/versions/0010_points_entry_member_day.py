"""a member's points entries by day, covering kind and recording time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:05:00

"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_points_entry_member_day', 'points_entry', ['member_id', 'local_day'],
        postgresql_include=['kind', 'created_at'],
    )
    op.drop_index('ix_points_entry_member_id', table_name='points_entry')


def downgrade():
    op.create_index('ix_points_entry_member_id', 'points_entry', ['member_id'])
    op.drop_index('ix_points_entry_member_day', table_name='points_entry')
