"""QR code counters: scans, follows and activations per code, backfilled from the events

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:15:00

"""

import sqlalchemy as sa
from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The same recount as members.activation.qrcodes.rebuild_stats (idempotent).
BACKFILL = """
UPDATE member_qr_code AS q
SET scans = c.scans, follows = c.follows, activations = c.activations
FROM (
    SELECT q2.id,
           count(e.id) FILTER (WHERE e.kind IN ('scan', 'follow')) AS scans,
           count(e.id) FILTER (WHERE e.kind = 'follow') AS follows,
           count(e.id) FILTER (WHERE e.kind = 'activation') AS activations
    FROM member_qr_code AS q2
    LEFT JOIN member_qr_event AS e ON e.qr_id = q2.id
    GROUP BY q2.id
) AS c
WHERE c.id = q.id
  AND (q.scans, q.follows, q.activations) IS DISTINCT FROM (c.scans, c.follows, c.activations)
"""


def upgrade():
    for name in ("scans", "follows", "activations"):
        op.add_column(
            "member_qr_code",
            sa.Column(name, sa.Integer(), server_default="0", nullable=False),
        )
    op.execute(BACKFILL)


def downgrade():
    for name in ("activations", "follows", "scans"):
        op.drop_column("member_qr_code", name)
