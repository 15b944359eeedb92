"""PIV applet state per card and per reader link (the PC/SC channel, DESIGN §3.8)

Revision ID: 0108_piv
Revises: 0105_devices
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0108_piv"
down_revision = "0105_devices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "piv_cards",
        sa.Column("card_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("secrets", sa.LargeBinary(), nullable=False),
        sa.Column("secrets_version", sa.Integer(), nullable=False),
        sa.Column("public_keys", sa.JSON(), nullable=False),
        sa.Column("created_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_piv_cards_card_id_cards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_piv_cards")),
    )
    op.create_table(
        "piv_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("card_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("link_state", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("issuance_wrap", sa.LargeBinary(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_response", sa.LargeBinary(), nullable=True),
        sa.Column("pin_recheck", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("last_used_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_piv_links_card_id_cards"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["card_sessions.id"],
            name=op.f("fk_piv_links_session_id_card_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_piv_links")),
    )
    with op.batch_alter_table("piv_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_piv_links_card_id"), ["card_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_piv_links_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("piv_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_piv_links_session_id"))
        batch_op.drop_index(batch_op.f("ix_piv_links_card_id"))
    op.drop_table("piv_links")
    op.drop_table("piv_cards")
