"""session channel keys for card sessions and PIV reader links (DESIGN §3.5 revised, issue 16)

Revision ID: 0111_channel_keys
Revises: 0110_pki
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0111_channel_keys"
down_revision = "0110_pki"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("card_sessions", "piv_links"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("channel_key", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    for table in ("card_sessions", "piv_links"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("channel_key")
