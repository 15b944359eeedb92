"""per-card second-factor failure counter (DESIGN §3.3 revised, issue 14)

Revision ID: 0109_second_factor
Revises: 0106_fido2_hr
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0109_second_factor"
down_revision = "0106_fido2_hr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("second_factor_failures", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_column("second_factor_failures")
