"""A certificate an external CA returns for a card key: accepted only when it is that
key's, current, fit for its purpose, strongly signed and, when configured, the CA's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from tests.support.x509_cases import FIELDS, NOW, CardKey, openssl, write

from cardvault.crypto.cert_errors import (
    CertificateExpired,
    CertificateKeyMismatch,
    CertificateNotYetValid,
    CertificateUnreadable,
    CertificateUntrustedIssuer,
    CertificateWeakSignature,
    CertificateWrongUsage,
)
from cardvault.crypto.imported_certificate import check_imported_certificate
from cardvault.crypto.x509 import (
    DEFAULT_SUBJECT_TEMPLATE,
    CertUsage,
    build_csr,
    ca_key_to_pem,
    certificate_to_pem,
    csr_to_pem,
    render_subject,
)


def sign_like_an_external_ca(
    csr: x509.CertificateSigningRequest,
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    *,
    key_usage: x509.KeyUsage | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    start: datetime = NOW - timedelta(days=1),
    days: int = 365,
    ca_flag: bool = False,
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca[1].subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
    )
    if key_usage is None:
        for ext in csr.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
    else:
        builder = builder.add_extension(key_usage, critical=True)
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return certificate_to_pem(builder.sign(ca[0], hashes.SHA256()))


def ku(**bits: bool) -> x509.KeyUsage:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ]
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


def check(
    pem: bytes,
    key: CardKey,
    *,
    usage: CertUsage = CertUsage.AUTHENTICATION,
    ca_cert: x509.Certificate | None = None,
    now: datetime = NOW,
) -> x509.Certificate:
    """The import check of ``pem`` for the card key ``key`` (authentication, no CA pinned)."""
    return check_imported_certificate(
        pem, expected_public_key=key.public_key(), usage=usage, ca_cert=ca_cert, now=now
    )


@pytest.fixture
def csr_for(
    card_keys: dict[str, CardKey],
) -> Callable[[str, CertUsage], x509.CertificateSigningRequest]:
    def _csr(kind: str, usage: CertUsage) -> x509.CertificateSigningRequest:
        return build_csr(
            subject=render_subject(DEFAULT_SUBJECT_TEMPLATE, FIELDS),
            private_key=card_keys[kind],
            usage=usage,
        )

    return _csr


@pytest.mark.parametrize("usage", list(CertUsage))
def test_certificate_from_the_external_ca_is_accepted(
    usage: CertUsage,
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    pem = sign_like_an_external_ca(csr_for("rsa2048", usage), other_ca)
    cert = check(pem, card_keys["rsa2048"], usage=usage, ca_cert=other_ca[1])
    assert cert.public_key() == card_keys["rsa2048"].public_key()


@pytest.mark.parametrize(
    "pem",
    [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
def test_import_refuses_what_does_not_parse(pem: bytes, card_keys: dict[str, CardKey]) -> None:
    with pytest.raises(CertificateUnreadable, match="not a PEM certificate") as caught:
        check(pem, card_keys["p256"])
    assert caught.value.code == "certificate_unreadable"


def test_import_refuses_a_bundle_of_several_certificates(
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    pem = sign_like_an_external_ca(csr_for("p256", CertUsage.AUTHENTICATION), other_ca)
    with pytest.raises(CertificateUnreadable, match="holds 2 certificates"):
        check(pem + certificate_to_pem(other_ca[1]), card_keys["p256"])


def test_import_refuses_a_certificate_for_the_other_card_key(
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    pem = sign_like_an_external_ca(csr_for("p256", CertUsage.CONTENT_COMMITMENT), other_ca)
    with pytest.raises(CertificateKeyMismatch) as caught:
        check(pem, card_keys["rsa2048"], usage=CertUsage.CONTENT_COMMITMENT, ca_cert=other_ca[1])
    assert caught.value.message == (
        "This certificate is for a different key: it does not match the card's "
        "content-commitment key."
    )
    assert caught.value.code == "certificate_key_mismatch"


@pytest.mark.parametrize(
    ("start", "error", "code"),
    [
        (NOW - timedelta(days=400), CertificateExpired, "certificate_expired"),
        (NOW + timedelta(days=2), CertificateNotYetValid, "certificate_not_yet_valid"),
    ],
)
def test_import_refuses_a_certificate_outside_its_validity(
    start: datetime,
    error: type[Exception],
    code: str,
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    pem = sign_like_an_external_ca(
        csr_for("p256", CertUsage.AUTHENTICATION), other_ca, start=start, days=365
    )
    with pytest.raises(error) as caught:
        check(pem, card_keys["p256"], ca_cert=other_ca[1])
    assert getattr(caught.value, "code", None) == code


@pytest.mark.parametrize(
    ("usage", "key_usage", "eku", "complaint"),
    [
        (CertUsage.AUTHENTICATION, ku(key_encipherment=True), None, "lacks digitalSignature"),
        (
            CertUsage.AUTHENTICATION,
            ku(digital_signature=True),
            [ExtendedKeyUsageOID.SERVER_AUTH],
            "neither client authentication nor smartcard logon",
        ),
        (
            CertUsage.CONTENT_COMMITMENT,
            ku(digital_signature=True),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            "lacks nonRepudiation",
        ),
        (
            CertUsage.AUTHENTICATION,
            ku(digital_signature=True, key_cert_sign=True),
            None,
            "CA certificate",
        ),
    ],
)
def test_import_refuses_the_wrong_key_usage(
    usage: CertUsage,
    key_usage: x509.KeyUsage,
    eku: list[x509.ObjectIdentifier] | None,
    complaint: str,
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    pem = sign_like_an_external_ca(csr_for("p256", usage), other_ca, key_usage=key_usage, eku=eku)
    with pytest.raises(CertificateWrongUsage) as caught:
        check(pem, card_keys["p256"], usage=usage, ca_cert=other_ca[1])
    assert complaint in caught.value.message
    assert caught.value.code == "certificate_wrong_usage"


def test_import_refuses_a_ca_certificate_for_the_card_key(
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    pem = sign_like_an_external_ca(
        csr_for("p256", CertUsage.AUTHENTICATION), other_ca, ca_flag=True
    )
    with pytest.raises(CertificateWrongUsage, match="CA certificate"):
        check(pem, card_keys["p256"])


def test_import_refuses_a_sha1_signature(
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
    tmp_path: Path,
) -> None:
    # cryptography no longer signs with SHA-1, so an old-fashioned CA is played by openssl.
    csr = write(tmp_path / "r.pem", csr_to_pem(csr_for("p256", CertUsage.AUTHENTICATION)))
    ca_pem = write(tmp_path / "ca.pem", certificate_to_pem(other_ca[1]))
    ca_key = write(tmp_path / "ca.key", bytes(ca_key_to_pem(other_ca[0])))
    leaf = tmp_path / "leaf.pem"
    openssl(
        "x509",
        "-req",
        "-sha1",
        "-days",
        "30",
        "-copy_extensions",
        "copy",
        "-in",
        csr,
        "-CA",
        ca_pem,
        "-CAkey",
        ca_key,
        "-out",
        leaf,
    )
    with pytest.raises(CertificateWeakSignature, match="SHA1") as caught:
        check(leaf.read_bytes(), card_keys["p256"], ca_cert=other_ca[1], now=datetime.now(UTC))
    assert caught.value.code == "certificate_weak_signature"


def test_import_refuses_a_certificate_not_signed_by_the_configured_ca(
    card_keys: dict[str, CardKey],
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
) -> None:
    # Same subject name on both CAs, so only the signature tells them apart.
    assert ca[1].subject == other_ca[1].subject
    pem = sign_like_an_external_ca(csr_for("p256", CertUsage.AUTHENTICATION), other_ca)
    with pytest.raises(
        CertificateUntrustedIssuer, match="not issued by the configured CA"
    ) as caught:
        check(pem, card_keys["p256"], ca_cert=ca[1])
    assert caught.value.code == "certificate_untrusted_issuer"


def test_imported_certificate_chain_verifies_with_openssl(
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    csr_for: Callable[[str, CertUsage], x509.CertificateSigningRequest],
    tmp_path: Path,
) -> None:
    pem = sign_like_an_external_ca(csr_for("rsa3072", CertUsage.AUTHENTICATION), other_ca)
    check(pem, card_keys["rsa3072"], ca_cert=other_ca[1])
    ca_pem = write(tmp_path / "ca.pem", certificate_to_pem(other_ca[1]))
    leaf = write(tmp_path / "leaf.pem", pem)
    assert f"{leaf}: OK" in openssl("verify", "-purpose", "sslclient", "-CAfile", ca_pem, leaf)
