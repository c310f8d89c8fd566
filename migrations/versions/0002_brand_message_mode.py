"""brand message mode: plaintext, compatible or safe, as set in the official account

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 00:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'brand',
        sa.Column('message_mode', sa.String(length=12), server_default='safe', nullable=False),
    )
    # A brand without an EncodingAESKey can only be in plaintext mode.
    op.execute("UPDATE brand SET message_mode = 'plaintext' WHERE aes_key IS NULL OR aes_key = ''")


def downgrade():
    op.drop_column('brand', 'message_mode')
