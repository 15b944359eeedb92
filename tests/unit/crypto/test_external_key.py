"""Signing with a CA key held outside the process: the certificate or CRL carries the
outside key's signature over the very tbs bytes, verifies under the CA certificate, and a
signature from any other key is refused before it leaves ``crypto``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cardvault.crypto import crl as ccrl
from cardvault.crypto import external_key
from cardvault.crypto import x509 as cx509

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class OutsideKey:
    """An ExternalKey that keeps its private key to itself, as a token does (a fake)."""

    def __init__(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.signed: list[bytes] = []

    def public_key(self) -> external_key.PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        self.signed.append(data)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algorithm)
        return self._key.sign(data, ec.ECDSA(algorithm))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@pytest.mark.parametrize("kind", ["rsa", "p256", "p384"])
def test_a_root_and_a_card_certificate_signed_outside_verify_under_the_root(
    kind: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = {
        "rsa": rsa_key,
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
    }[kind]
    outside = OutsideKey(private)
    root = cx509.self_signed_ca(outside, common_name="Outside CA", organisation=None, now=NOW)
    assert outside.signed == [root.tbs_certificate_bytes]
    root.verify_directly_issued_by(root)
    card_key = ec.generate_private_key(ec.SECP256R1())
    cert = cx509.issue_card_certificate(
        ca_key=outside,
        ca_cert=root,
        subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Holder")]),
        public_key=card_key.public_key(),
        usage=cx509.CertUsage.AUTHENTICATION,
        now=NOW,
    )
    cx509.check_issued_by(cert, root)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == cx509.signature_hash(outside).name


def test_a_crl_signed_outside_carries_its_entries_and_verifies(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    outside = OutsideKey(rsa_key)
    root = cx509.self_signed_ca(outside, common_name="Outside CA", organisation=None, now=NOW)
    der = ccrl.build_crl(
        ca_key=outside,
        ca_cert=root,
        entries=[ccrl.RevokedEntry(serial=0x1234, revoked_at=NOW, reason="keyCompromise")],
        number=7,
        this_update=NOW,
        next_update=NOW + timedelta(hours=24),
    )
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(rsa_key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(0x1234) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7


def test_a_signature_by_another_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    class WrongKey(OutsideKey):
        def public_key(self) -> external_key.PublicKey:
            return rsa_key.public_key()

    impostor = WrongKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(external_key.ExternalSignatureInvalid):
        cx509.self_signed_ca(impostor, common_name="Outside CA", organisation=None, now=NOW)
    with pytest.raises(external_key.ExternalSignatureInvalid):
        external_key.prove(impostor)


def test_a_pkcs11_ecdsa_signature_becomes_der() -> None:
    raw = (5).to_bytes(32, "big") + (7).to_bytes(32, "big")
    assert external_key.ecdsa_der(raw).hex() == "3006020105020107"
