"""Certificate revocation lists (RFC 5280 §5): one full CRL per issuing CA, signed by it.

A CRL says, for each certificate the CA no longer vouches for, its serial, when it was
revoked and why (the reasonCode entry extension; left out for ``unspecified`` as §5.3.1
recommends). ``certificateHold`` marks a suspension, which an RA can lift: the serial then
simply leaves the next CRL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cardvault.crypto.external_key import sign_crl
from cardvault.crypto.x509 import CaKey, authority_key_identifier, signature_hash
from cardvault.errors import InvalidInput

#: the reasons an RA or operator may give when revoking (certificateHold is suspension's own,
#: removeFromCRL belongs to delta CRLs, which this service does not publish)
REVOCATION_REASONS = (
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
)
HOLD = "certificateHold"


def check_reason(name: str) -> str:
    """``name`` if it is a reason a revocation may give; InvalidInput naming them otherwise."""
    if name not in REVOCATION_REASONS:
        raise InvalidInput(
            f"The revocation reason must be one of {', '.join(REVOCATION_REASONS)}.",
            field="reason_code",
        )
    return name


def reason_flag(name: str | None) -> x509.ReasonFlags | None:
    """The RFC 5280 reason for a stored reason name; None for unspecified (no extension)."""
    if name is None or name == "unspecified":
        return None
    return x509.ReasonFlags(name)


@dataclass(frozen=True, kw_only=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str | None


def build_crl(
    *,
    ca_key: CaKey,
    ca_cert: x509.Certificate,
    entries: Iterable[RevokedEntry],
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """The DER CRL: version 2, CRL number and authority key identifier, entries by serial."""
    if number < 1 or next_update <= this_update:
        raise ValueError("a CRL needs a positive number and nextUpdate after thisUpdate")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(_second(this_update))
        .next_update(_second(next_update))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(authority_key_identifier(ca_cert), critical=False)
    )
    for entry in sorted(entries, key=lambda e: e.serial):
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(_second(entry.revoked_at))
        )
        flag = reason_flag(entry.reason)
        if flag is not None:
            revoked = revoked.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    if isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        crl = builder.sign(ca_key, signature_hash(ca_key))
    else:  # the CA key is in an HSM
        crl = sign_crl(builder, ca_key, signature_hash(ca_key))
    return crl.public_bytes(serialization.Encoding.DER)


def _second(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # SQLite gives naive datetimes back; they are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)
