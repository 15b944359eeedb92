"""The delegated OCSP responder's key: made P-256, read back from the PEM it is sealed as;
a key of another kind is not used (a new one is made), a damaged one is an integrity error."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cardvault.crypto.keys import KeyAlgorithm, algorithm_of, generate_private_key
from cardvault.crypto.ocsp import load_responder_key, new_responder_key
from cardvault.crypto.x509 import ca_key_to_pem
from cardvault.errors import IntegrityError


def test_new_responder_key_is_p256() -> None:
    assert algorithm_of(new_responder_key()) is KeyAlgorithm.ECP256


def test_load_responder_key_reads_back_the_sealed_pem() -> None:
    key = new_responder_key()
    loaded = load_responder_key(bytes(ca_key_to_pem(key)))
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()


def test_load_responder_key_gives_none_for_an_rsa_key() -> None:
    rsa_pem = bytes(ca_key_to_pem(generate_private_key(KeyAlgorithm.RSA2048)))
    assert load_responder_key(rsa_pem) is None


def test_load_responder_key_refuses_damaged_pem() -> None:
    with pytest.raises(IntegrityError, match="responder key is damaged"):
        load_responder_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
