"""FIDO2 security keys and HR cards: WebAuthn ceremonies begun outside a sign-in

Security key credentials and HR card UIDs live in ``associations`` (method, lookup_key,
details, counter); this adds only the table for ceremonies that start before there is an
authentication transaction (RA registration, sign-in that starts from the key).

Revision ID: 0106_fido2_hr
Revises: 0107_portal
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0106_fido2_hr"
down_revision = "0107_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webauthn_ceremonies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("organisation_id", sa.String(length=36), nullable=True),
        sa.Column("card_id", sa.String(length=36), nullable=True),
        sa.Column("association_id", sa.String(length=36), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("proof_hash", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_webauthn_ceremonies_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_webauthn_ceremonies_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_ceremonies")),
        sa.UniqueConstraint("proof_hash", name=op.f("uq_webauthn_ceremonies_proof_hash")),
    )
    with op.batch_alter_table("webauthn_ceremonies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webauthn_ceremonies_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webauthn_ceremonies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webauthn_ceremonies_expires_at"))
    op.drop_table("webauthn_ceremonies")
