"""What the X.509 tests share (``tests/unit/crypto``): a moment, a holder's subject, the
card key kinds, and the openssl command line they are checked against."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cardvault.crypto.x509 import SubjectFields
from tests.support import openssl_pki

NOW = datetime.now(UTC)
CardKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
KEY_KINDS = ["rsa2048", "rsa3072", "p256"]

FIELDS = SubjectFields(
    common_name="Alice Example",
    user_id="123456789012",
    organisation_name="Example Hospital NHS Trust",
    organisation_code="RX1",
    email="alice@example.org",
    given_name="Alice",
    surname="Example",
)


def openssl(*args: str | Path) -> str:
    """Run openssl, which must succeed; what it printed."""
    done = openssl_pki.openssl(*args, check=True)
    return done.stdout + done.stderr


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
