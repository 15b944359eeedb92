"""RA managers run their organisation (issue 19): role grants awaiting a second RA manager,
sponsors' card approvals, and when a leaver's last membership ended (the erasure clock)

Revision ID: 0114_ra_self_service
Revises: 0116_every_card
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0114_ra_self_service"
down_revision = "0116_every_card"
branch_labels = None
depends_on = None

UTC = cardvault.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "role_grant_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", UTC(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_role_grant_requests_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_role_grant_requests_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["persons.id"],
            name=op.f("fk_role_grant_requests_requested_by_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["persons.id"], name=op.f("fk_role_grant_requests_decided_by_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grant_requests")),
    )
    with op.batch_alter_table("role_grant_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_role_grant_requests_organisation_id"), ["organisation_id"]
        )
        batch_op.create_index(batch_op.f("ix_role_grant_requests_person_id"), ["person_id"])
    op.create_table(
        "card_approvals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("approved_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_card_approvals_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_card_approvals_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["persons.id"], name=op.f("fk_card_approvals_approved_by_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_approvals")),
        sa.UniqueConstraint(
            "person_id", "organisation_id", name=op.f("uq_card_approvals_person_id")
        ),
    )
    with op.batch_alter_table("card_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_approvals_organisation_id"), ["organisation_id"])
        batch_op.create_index(batch_op.f("ix_card_approvals_person_id"), ["person_id"])
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("left_at", UTC(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_column("left_at")
    op.drop_table("card_approvals")
    op.drop_table("role_grant_requests")
