"""member search: trigram indexes on name and phone, a prefix index on name

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 03:10:00

"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.create_index(
        'ix_member_name_trgm', 'member', ['name'],
        postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'},
    )
    op.create_index(
        'ix_member_phone_trgm', 'member', ['phone'],
        postgresql_using='gin', postgresql_ops={'phone': 'gin_trgm_ops'},
    )
    op.create_index(
        'ix_member_brand_name_prefix', 'member', ['brand_id', 'name'],
        postgresql_ops={'name': 'text_pattern_ops'},
    )


def downgrade():
    op.drop_index('ix_member_brand_name_prefix', table_name='member')
    op.drop_index('ix_member_phone_trgm', table_name='member')
    op.drop_index('ix_member_name_trgm', table_name='member')
