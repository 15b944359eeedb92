"""The CAs and card keys the X.509 tests share (made once per run: RSA keys are slow)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tests.support.x509_cases import NOW, CardKey

from cardvault.crypto.x509 import create_ca


@pytest.fixture(scope="session")
def ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return create_ca(common_name="cardvault test CA", organisation="Example Trust", now=NOW)


@pytest.fixture(scope="session")
def other_ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return create_ca(common_name="cardvault test CA", organisation="Example Trust", now=NOW)


@pytest.fixture(scope="session")
def card_keys() -> dict[str, CardKey]:
    return {
        "rsa2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa3072": rsa.generate_private_key(public_exponent=65537, key_size=3072),
        "p256": ec.generate_private_key(ec.SECP256R1()),
    }
