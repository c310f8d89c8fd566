"""an operator's internal note on a points entry, apart from the member-facing reason

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 01:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('points_entry', sa.Column('note', sa.Text(), nullable=True))


def downgrade():
    op.drop_column('points_entry', 'note')
