"""web sessions for the browser areas (vRA Manager, self-service portal)

Revision ID: 0104_web
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0104_web"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("area", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=True),
        sa.Column("card_session_id", sa.String(length=36), nullable=True),
        sa.Column("authenticated_at", cardvault.store.types.UtcDateTime(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("created_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("idle_expires_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_sessions_card_session_id"), ["card_session_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_web_sessions_idle_expires_at"), ["idle_expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_idle_expires_at"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_card_session_id"))
    op.drop_table("web_sessions")
