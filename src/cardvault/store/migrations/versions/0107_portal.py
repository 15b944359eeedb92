"""self-service portal: notification dispatch state, sealed message secrets, recovery counter

Revision ID: 0107_portal
Revises: 0108_piv
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0107_portal"
down_revision = "0108_piv"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_secrets", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_until", cardvault.store.types.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("expires_at", cardvault.store.types.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("failed_at", cardvault.store.types.UtcDateTime(), nullable=True)
        )
        batch_op.create_index("ix_notifications_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            "ix_notifications_org_status", ["organisation_id", "status"], unique=False
        )
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recovery_failures", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_card_purpose", ["card_id", "purpose"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index("ix_links_card_purpose")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_column("recovery_failures")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_org_status")
        batch_op.drop_index("ix_notifications_due")
        batch_op.drop_column("failed_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("sealed_secrets")
