"""The built-in CA and card certificates, checked against the real openssl command line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from tests.support.x509_cases import FIELDS, KEY_KINDS, NOW, CardKey, openssl, write

from cardvault.crypto.cert_errors import (
    CaKeyMismatch,
    CaUnusable,
    CertificateExpired,
    CertificateUntrustedIssuer,
)
from cardvault.crypto.keys import UnsupportedKey
from cardvault.crypto.x509 import (
    DEFAULT_SUBJECT_TEMPLATE,
    CertUsage,
    SubjectFields,
    SubjectTemplateInvalid,
    SubjectValueInvalid,
    build_csr,
    ca_key_to_pem,
    certificate_summary,
    certificate_to_der,
    certificate_to_pem,
    check_ca_pair,
    check_subject_template,
    create_ca,
    csr_to_pem,
    issue_card_certificate,
    load_ca,
    load_certificate_pem,
    name_text,
    render_subject,
    serial_hex,
    verify_chain,
)


@pytest.fixture
def issue(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> Callable[..., x509.Certificate]:
    def _issue(key: CardKey, usage: CertUsage, **kwargs: object) -> x509.Certificate:
        options: dict[str, object] = {
            "public_key": key.public_key(),
            "subject": render_subject(DEFAULT_SUBJECT_TEMPLATE, FIELDS),
            "now": NOW,
            "email": FIELDS.email,
        }
        options.update(kwargs)
        return issue_card_certificate(ca_key=ca[0], ca_cert=ca[1], usage=usage, **options)

    return _issue


def extension(cert: x509.Certificate, kind: type) -> object:
    return cert.extensions.get_extension_for_class(kind)


# -- the CA ------------------------------------------------------------------------------


def test_ca_is_a_self_signed_rsa3072_root_that_openssl_accepts(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate], tmp_path: Path
) -> None:
    key, cert = ca
    assert key.key_size == 3072
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.subject.rfc4514_string() == "CN=cardvault test CA,O=Example Trust"
    pem = write(tmp_path / "ca.pem", certificate_to_pem(cert))
    out = openssl("verify", "-x509_strict", "-check_ss_sig", "-CAfile", pem, pem)
    assert f"{pem}: OK" in out


def test_ca_validity_starts_slightly_before_now_and_lasts_ten_years(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    cert = ca[1]
    assert cert.not_valid_before_utc < NOW
    assert NOW - cert.not_valid_before_utc <= timedelta(minutes=6)
    assert cert.not_valid_after_utc - NOW > timedelta(days=3649)


def test_ca_without_organisation_has_only_a_common_name() -> None:
    _, cert = create_ca(common_name="Solo CA", organisation=None, now=NOW, validity_days=1)
    assert cert.subject.rfc4514_string() == "CN=Solo CA"


def test_create_ca_refuses_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_ca(common_name="x", organisation=None, now=datetime.now())


def test_ca_key_and_certificate_round_trip_through_pem(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key_pem = ca_key_to_pem(ca[0])
    assert isinstance(key_pem, bytearray)
    key, cert = load_ca(key_pem, certificate_to_pem(ca[1]))
    assert cert == ca[1]
    check_ca_pair(key, cert)


def test_ca_pair_with_another_key_is_refused(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    with pytest.raises(CaKeyMismatch, match="does not match its key") as caught:
        check_ca_pair(other_ca[0], ca[1])
    assert caught.value.code == "ca_key_mismatch"
    with pytest.raises(CaKeyMismatch):
        load_ca(ca_key_to_pem(other_ca[0]), certificate_to_pem(ca[1]))


def test_ca_pair_with_an_end_entity_certificate_is_refused(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    key = card_keys["rsa2048"]
    leaf = issue(key, CertUsage.AUTHENTICATION)
    with pytest.raises(CaUnusable, match="not a CA certificate"):
        check_ca_pair(key, leaf)


def test_load_ca_refuses_a_key_that_is_not_pem() -> None:
    with pytest.raises(Exception, match="not a readable PEM private key"):
        load_ca(b"garbage", b"garbage")


# -- card certificates -------------------------------------------------------------------


_PURPOSES = {
    CertUsage.AUTHENTICATION: "sslclient",
    CertUsage.CONTENT_COMMITMENT: "smimesign",
    CertUsage.KEY_MANAGEMENT: "smimeencrypt",
}


@pytest.mark.parametrize("kind", KEY_KINDS)
@pytest.mark.parametrize("usage", list(CertUsage))
def test_issued_card_certificate_verifies_with_openssl(
    kind: str,
    usage: CertUsage,
    card_keys: dict[str, CardKey],
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    issue: Callable[..., x509.Certificate],
    tmp_path: Path,
) -> None:
    cert = issue(card_keys[kind], usage)
    ca_pem = write(tmp_path / "ca.pem", certificate_to_pem(ca[1]))
    leaf = write(tmp_path / "leaf.pem", certificate_to_pem(cert))
    purpose = _PURPOSES[usage]
    if usage is CertUsage.KEY_MANAGEMENT and kind == "p256":
        purpose = "any"  # OpenSSL's smimeencrypt wants keyEncipherment; ECDH keys agree keys
    out = openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca_pem, leaf)
    assert f"{leaf}: OK" in out
    verify_chain(cert, ca[1], NOW)


def test_authentication_certificate_has_client_auth_and_smartcard_logon(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate], tmp_path: Path
) -> None:
    cert = issue(card_keys["rsa2048"], CertUsage.AUTHENTICATION)
    text = openssl(
        "x509", "-noout", "-text", "-in", write(tmp_path / "c.pem", certificate_to_pem(cert))
    )
    assert "Digital Signature, Key Encipherment" in text
    assert "Non Repudiation" not in text
    assert "TLS Web Client Authentication" in text
    assert "Microsoft Smartcard Login" in text
    assert "CA:FALSE" in text
    assert "email:alice@example.org" in text
    assert "Authority Key Identifier" in text
    assert "Subject Key Identifier" in text


def test_ec_authentication_certificate_has_no_key_encipherment(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    cert = issue(card_keys["p256"], CertUsage.AUTHENTICATION)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_encipherment


def test_content_commitment_certificate_has_non_repudiation(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate], tmp_path: Path
) -> None:
    cert = issue(card_keys["p256"], CertUsage.CONTENT_COMMITMENT)
    text = openssl(
        "x509", "-noout", "-text", "-in", write(tmp_path / "c.pem", certificate_to_pem(cert))
    )
    assert "Digital Signature, Non Repudiation" in text
    assert "E-mail Protection" in text
    assert "TLS Web Client Authentication" not in text
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical


def test_content_commitment_certificate_without_email_has_no_eku_or_san(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    cert = issue(card_keys["rsa2048"], CertUsage.CONTENT_COMMITMENT, email=None)
    kinds = {type(ext.value) for ext in cert.extensions}
    assert x509.ExtendedKeyUsage not in kinds
    assert x509.SubjectAlternativeName not in kinds


def test_card_certificate_links_to_the_ca_key_identifier(
    card_keys: dict[str, CardKey],
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    issue: Callable[..., x509.Certificate],
) -> None:
    cert = issue(card_keys["rsa2048"], CertUsage.AUTHENTICATION)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca[1].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.issuer == ca[1].subject


def test_serial_numbers_are_random_positive_and_fit_twenty_octets(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    serials = {issue(card_keys["p256"], CertUsage.AUTHENTICATION).serial_number for _ in range(8)}
    assert len(serials) == 8
    assert all(0 < s < 2**159 for s in serials)


def test_given_serial_number_is_used_and_out_of_range_ones_are_refused(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    key = card_keys["p256"]
    assert issue(key, CertUsage.AUTHENTICATION, serial_number=12345).serial_number == 12345
    for bad in (0, -1, 2**159):
        with pytest.raises(Exception, match="serial number"):
            issue(key, CertUsage.AUTHENTICATION, serial_number=bad)


@pytest.mark.parametrize(
    ("serial", "printed"),
    [
        (0x1, "01"),
        (0xAB, "AB"),
        (0xABC, "0ABC"),
        (0x0F00000000000000000000000000000000000001, "0F00000000000000000000000000000000000001"),
        (2**159 - 1, "7F" + "FF" * 19),
        (-0x1A2, "-01A2"),
    ],
)
def test_serial_is_printed_in_whole_octets_with_its_leading_zero(serial: int, printed: str) -> None:
    assert serial_hex(serial) == printed


@pytest.mark.parametrize("serial", [0x0A1B2C, 0x0123456789ABCDEF, 0xFEDCBA])
def test_serial_is_printed_as_openssl_prints_it(
    serial: int,
    card_keys: dict[str, CardKey],
    issue: Callable[..., x509.Certificate],
    tmp_path: Path,
) -> None:
    cert = issue(card_keys["p256"], CertUsage.AUTHENTICATION, serial_number=serial)
    pem = write(tmp_path / "card.pem", certificate_to_pem(cert))
    assert (
        openssl("x509", "-in", pem, "-noout", "-serial").strip() == f"serial={serial_hex(serial)}"
    )
    assert certificate_summary(cert)["serial"] == serial_hex(serial)


def test_names_spell_out_serial_number(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    cert = issue(card_keys["p256"], CertUsage.AUTHENTICATION)
    assert name_text(cert.subject) == (
        "CN=Alice Example,serialNumber=123456789012,O=Example Hospital NHS Trust"
    )
    assert "2.5.4.5" in cert.subject.rfc4514_string()  # what a plain rfc4514_string shows


def test_card_certificate_never_outlives_its_ca(card_keys: dict[str, CardKey]) -> None:
    ca_key, ca_cert = create_ca(
        common_name="Short CA", organisation=None, now=NOW, validity_days=30
    )
    cert = issue_card_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        subject=render_subject(DEFAULT_SUBJECT_TEMPLATE, FIELDS),
        public_key=card_keys["p256"].public_key(),
        usage=CertUsage.AUTHENTICATION,
        now=NOW,
    )
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_issuing_with_an_expired_ca_is_refused(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    issue: Callable[..., x509.Certificate],
    card_keys: dict[str, CardKey],
) -> None:
    with pytest.raises(CaUnusable, match="expired") as caught:
        issue(card_keys["p256"], CertUsage.AUTHENTICATION, now=NOW + timedelta(days=3651))
    assert caught.value.code == "ca_unusable"


def test_issuing_accepts_a_der_subject_public_key_info(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    key = card_keys["rsa2048"]
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert = issue(key, CertUsage.AUTHENTICATION, public_key=spki)
    assert cert.public_key() == key.public_key()


@pytest.mark.parametrize(
    "weak_key",
    [
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
        lambda: ec.generate_private_key(ec.SECP256K1()),
    ],
    ids=["rsa1024", "secp256k1"],
)
def test_weak_or_unusual_card_keys_are_refused(
    weak_key: Callable[[], CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    key = weak_key()
    with pytest.raises(UnsupportedKey) as caught:  # the key module's error: one to catch
        issue(key, CertUsage.AUTHENTICATION)
    assert caught.value.code == "key_unsupported"
    with pytest.raises(UnsupportedKey):
        build_csr(
            subject=render_subject(DEFAULT_SUBJECT_TEMPLATE, FIELDS),
            private_key=key,
            usage=CertUsage.AUTHENTICATION,
        )


def test_certificate_summary_describes_the_certificate(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    cert = issue(card_keys["p256"], CertUsage.CONTENT_COMMITMENT)
    summary = certificate_summary(cert)
    assert summary["subject"] == (
        "CN=Alice Example,serialNumber=123456789012,O=Example Hospital NHS Trust"
    )
    assert summary["issuer"] == "CN=cardvault test CA,O=Example Trust"
    assert summary["serial"] == serial_hex(cert.serial_number)
    assert summary["fingerprint_sha256"] == cert.fingerprint(hashes.SHA256()).hex()
    assert summary["key"] == "EC P-256"
    assert summary["usage"] == "content_commitment"
    assert summary["not_after"] == cert.not_valid_after_utc.isoformat()


def test_certificate_pem_and_der_round_trip(
    card_keys: dict[str, CardKey], issue: Callable[..., x509.Certificate]
) -> None:
    cert = issue(card_keys["p256"], CertUsage.AUTHENTICATION)
    assert load_certificate_pem(certificate_to_pem(cert)) == cert
    assert x509.load_der_x509_certificate(certificate_to_der(cert)) == cert


def test_verify_chain_refuses_another_ca_and_an_expired_certificate(
    card_keys: dict[str, CardKey],
    other_ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    issue: Callable[..., x509.Certificate],
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    cert = issue(card_keys["p256"], CertUsage.AUTHENTICATION, validity_days=1)
    with pytest.raises(CertificateUntrustedIssuer):
        verify_chain(cert, other_ca[1], NOW)
    with pytest.raises(CertificateExpired):
        verify_chain(cert, ca[1], NOW + timedelta(days=2))


# -- subject templates -------------------------------------------------------------------


def test_default_template_renders_in_rfc4514_order() -> None:
    name = render_subject(DEFAULT_SUBJECT_TEMPLATE, FIELDS)
    oids = [attr.oid for attr in name]
    assert oids == [NameOID.ORGANIZATION_NAME, NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME]
    assert name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "123456789012"


def test_template_with_every_supported_attribute_renders() -> None:
    template = (
        "CN={common_name},givenName={given_name},SN={surname},UID={user_id},"
        "emailAddress={email},OU=Smartcards,OU={organisation_code},O={organisation_name},"
        "L=Leeds,ST=West Yorkshire,C=GB"
    )
    check_subject_template(template)
    name = render_subject(template, FIELDS)
    assert name.rfc4514_string() == (
        "CN=Alice Example,2.5.4.42=Alice,2.5.4.4=Example,UID=123456789012,"
        "1.2.840.113549.1.9.1=alice@example.org,OU=Smartcards,OU=RX1,"
        "O=Example Hospital NHS Trust,L=Leeds,ST=West Yorkshire,C=GB"
    )


def test_template_placeholders_can_be_mixed_with_fixed_text() -> None:
    name = render_subject("CN={surname} {given_name} ({user_id}),O={organisation_name}", FIELDS)
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Example Alice (123456789012)"
    )


@pytest.mark.parametrize(
    "hostile",
    ["Mallory, O=Evil Corp", "Mallory+O=Evil", "Mallory\\,O=Evil", 'Mallory",O="Evil', "M=O"],
)
def test_values_cannot_inject_extra_attributes(hostile: str, tmp_path: Path) -> None:
    fields = SubjectFields(
        common_name=hostile,
        user_id="123456789012",
        organisation_name="Good Trust",
        organisation_code="G1",
    )
    name = render_subject(DEFAULT_SUBJECT_TEMPLATE, fields)
    assert len(name) == 3
    assert [a.value for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)] == [hostile]
    assert [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "Good Trust"
    ]
    # the encoded name also says so, read back by openssl
    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(subject=name, private_key=key, usage=CertUsage.AUTHENTICATION)
    text = openssl(
        "req",
        "-noout",
        "-subject",
        "-nameopt",
        "multiline",
        "-in",
        write(tmp_path / "r.pem", csr_to_pem(csr)),
    )
    assert text.count("organizationName") == 1


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("", "empty"),
        ("CN={common_name},XX=1", "'XX', which is not supported"),
        ("CN={nickname}", "{nickname}, which is not supported"),
        ("CN={common_name.__class__}", "which is not supported"),
        ("CN={common_name!r}", "which is not supported"),
        ("CN={common_name:>80}", "which is not supported"),
        ("CN={}", "{}, which is not supported"),
        ("CN={common_name", "unbalanced braces"),
        ("CN={common_name},O=A=B", "contains '='"),
        ("CN={common_name}+O=x", "contains '+'"),
        ("CN={common_name},CN={user_id}", "more than once"),
        ("CN={common_name},C=GBR", "two-letter country code"),
        ("CN={common_name},C=gb", "two-letter country code"),
        ("CN={common_name},O=", "would be empty"),
        ("CN={common_name},justtext", "KEY=value"),
    ],
)
def test_bad_templates_are_refused(template: str, complaint: str) -> None:
    with pytest.raises(SubjectTemplateInvalid) as caught:
        check_subject_template(template)
    assert complaint in caught.value.message
    assert caught.value.code == "subject_template_invalid"
    with pytest.raises(SubjectTemplateInvalid):
        render_subject(template, FIELDS)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"common_name": "   "}, "CN would be empty"),
        ({"common_name": "x" * 65}, "longer than 64"),
        ({"common_name": "Alice\nO=Evil"}, "control"),
        ({"common_name": "Alice\u202eEvil"}, "control"),
        ({"user_id": "12345_6789"}, "may contain only"),
    ],
)
def test_bad_values_are_refused(changes: dict[str, str], complaint: str) -> None:
    fields = SubjectFields(**{**FIELDS.__dict__, **changes})
    with pytest.raises(SubjectValueInvalid) as caught:
        render_subject(DEFAULT_SUBJECT_TEMPLATE, fields)
    assert complaint in caught.value.message
    assert caught.value.code == "subject_value_invalid"


def test_template_needing_a_missing_email_is_refused() -> None:
    fields = SubjectFields(**{**FIELDS.__dict__, "email": None})
    with pytest.raises(SubjectValueInvalid, match=r"needs \{email\}"):
        render_subject("CN={common_name},emailAddress={email}", fields)


def test_non_ascii_email_in_the_subject_is_refused() -> None:
    fields = SubjectFields(**{**FIELDS.__dict__, "email": "élise@example.org"})
    with pytest.raises(SubjectValueInvalid, match="ASCII email"):
        render_subject("CN={common_name},emailAddress={email}", fields)


def test_unicode_names_are_kept() -> None:
    fields = SubjectFields(**{**FIELDS.__dict__, "common_name": "Siân Ó Dálaigh"})
    name = render_subject(DEFAULT_SUBJECT_TEMPLATE, fields)
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Siân Ó Dálaigh"


# -- the external-CA path ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KEY_KINDS)
@pytest.mark.parametrize("usage", list(CertUsage))
def test_csr_self_signature_verifies_with_openssl(
    kind: str, usage: CertUsage, card_keys: dict[str, CardKey], tmp_path: Path
) -> None:
    csr = build_csr(
        subject=render_subject(DEFAULT_SUBJECT_TEMPLATE, FIELDS),
        private_key=card_keys[kind],
        usage=usage,
        email=FIELDS.email,
    )
    assert csr.is_signature_valid
    out = openssl(
        "req", "-verify", "-noout", "-text", "-in", write(tmp_path / "r.pem", csr_to_pem(csr))
    )
    assert "verify OK" in out
    expected = {
        CertUsage.AUTHENTICATION: "Digital Signature",
        CertUsage.CONTENT_COMMITMENT: "Non Repudiation",
        CertUsage.KEY_MANAGEMENT: "Key Agreement" if kind == "p256" else "Key Encipherment",
    }
    assert expected[usage] in out
