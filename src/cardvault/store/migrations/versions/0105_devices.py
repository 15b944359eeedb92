"""devices: a push challenge outlives its sign-in transaction

The authentication engine deletes a transaction when its session opens or it expires; a push
challenge that pointed at it must not block that delete, and its outcome (approved, denied,
"this wasn't me") must stay for the per-card back-off. So ``transaction_id`` becomes nullable
with ``ON DELETE SET NULL``, and challenges get an index by card and time.

Revision ID: 0105_devices
Revises: 0104_web
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0105_devices"
down_revision = "0104_web"
branch_labels = None
depends_on = None

FK = "fk_push_challenges_transaction_id_auth_transactions"


def upgrade() -> None:
    with op.batch_alter_table("push_challenges", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.alter_column("transaction_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.create_foreign_key(
            FK, "auth_transactions", ["transaction_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(
            "ix_push_challenges_card_created", ["card_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("push_challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_push_challenges_card_created")
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.alter_column("transaction_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_foreign_key(FK, "auth_transactions", ["transaction_id"], ["id"])
