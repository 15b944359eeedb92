"""every card is a smart card: how a PIV applet was written, and when its PIN was blocked
(DESIGN §3.8 revised, issue 18)

Revision ID: 0116_every_card
Revises: 0111_channel_keys
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0116_every_card"
down_revision = "0111_channel_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("piv_cards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=10), nullable=False, server_default="pcsc")
        )
        batch_op.add_column(
            sa.Column("pin_blocked_at", cardvault.store.types.UtcDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("piv_cards", schema=None) as batch_op:
        batch_op.drop_column("pin_blocked_at")
        batch_op.drop_column("origin")
