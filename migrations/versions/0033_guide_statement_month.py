"""guide statements: a brand's month found by its index (a closed month is not closed again)

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 12:45:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("guide_commission_statement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_guide_commission_statement_month", ["brand_id", "month"], unique=False
        )


def downgrade():
    with op.batch_alter_table("guide_commission_statement", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_commission_statement_month")
