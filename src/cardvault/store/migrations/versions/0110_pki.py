"""PKI for relying parties (DESIGN §3.9, issue 17): CRL state per issuing CA, revocation
reasons and issuing key on certificates, suspension, AD SIDs

Revision ID: 0110_pki
Revises: 0109_second_factor
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from cryptography import x509

import cardvault.store.types

revision = "0110_pki"
down_revision = "0109_second_factor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crls",
        sa.Column("ca_key_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("this_update", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("next_update", cardvault.store.types.UtcDateTime(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("ca_key_id", name=op.f("pk_crls")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revocation_reason", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("ca_key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("expiry_notified_at", cardvault.store.types.UtcDateTime(), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_certificates_ca_key_id"), ["ca_key_id"])
        batch_op.create_index(batch_op.f("ix_certificates_serial_hex"), ["serial_hex"])
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspended_from", sa.String(length=10), nullable=True))
    with op.batch_alter_table("ad_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sid", sa.String(length=190), nullable=True))
    _backfill()


def _backfill() -> None:
    """Revoked certificates so far get reason unspecified; every certificate the key
    identifier its issuer names (the CRL lists this CA's serials; OCSP still checks the
    signature before it says good)."""
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, pem, status FROM certificates")).all()
    for row_id, pem, status in rows:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            key_id = aki.key_identifier.hex() if aki.key_identifier else None
        except (ValueError, x509.ExtensionNotFound):
            key_id = None
        conn.execute(
            sa.text("UPDATE certificates SET ca_key_id = :k, revocation_reason = :r WHERE id = :i"),
            {"k": key_id, "r": "unspecified" if status == "revoked" else None, "i": row_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("ad_accounts", schema=None) as batch_op:
        batch_op.drop_column("sid")
    with op.batch_alter_table("cards", schema=None) as batch_op:
        batch_op.drop_column("suspended_from")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_serial_hex"))
        batch_op.drop_index(batch_op.f("ix_certificates_ca_key_id"))
        batch_op.drop_column("expiry_notified_at")
        batch_op.drop_column("ca_key_id")
        batch_op.drop_column("revocation_reason")
    op.drop_table("crls")
