"""The certificate status API vouches only for certificates this service's CA issued
(DESIGN §3.9): a certificate from another CA that sits on one of our cards, one that merely
names our CA as its issuer, or one never seen is ``unknown``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support.pki import ec_root_ca

from cardvault.crypto import x509 as cx509
from cardvault.errors import InvalidInput
from cardvault.services.cards import issuance
from cardvault.services.cards import state as cards
from cardvault.services.pki import ca
from cardvault.services.pki.status import status_by_fingerprint
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Certificate
from cardvault.web.app import create_app

NOW = datetime.now(UTC)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def stored_certificates(rt: Runtime, card_id: str) -> list[x509.Certificate]:
    with rt.db() as session:
        rows = session.scalars(select(Certificate).where(Certificate.card_id == card_id))
        return [x509.load_pem_x509_certificate(r.pem.encode()) for r in rows]


def another_ca() -> tuple[cx509.PrivateKey, x509.Certificate]:
    """Someone else's CA, made with cryptography's builder."""
    return ec_root_ca("Some Other CA", now=NOW, days=3650)


def sign_csr(csr_pem: str, ca_key: cx509.PrivateKey, ca_cert: x509.Certificate) -> bytes:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    cert = cx509.issue_card_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        subject=csr.subject,
        public_key=csr.public_key(),  # type: ignore[arg-type]
        usage=cx509.CertUsage.AUTHENTICATION,
        now=NOW,
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_certificates_this_ca_issued_are_good_then_revoked(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    certs = stored_certificates(rt, card.card_id)
    assert len(certs) == 2
    for cert in certs:
        assert status_by_fingerprint(rt, fingerprint(cert))["status"] == "good"
    issuance.revoke_card(rt, operator, card.serial, reason="stolen")
    for cert in certs:
        assert status_by_fingerprint(rt, fingerprint(cert))["status"] == "revoked"


def test_a_certificate_from_another_ca_on_one_of_our_cards_is_unknown(
    rt: Runtime, operator: Actor
) -> None:
    """The external-CA path stores what that CA returned; the status API cannot vouch for it."""
    f.org(rt, operator)
    issued = f.issued_card(rt, operator, external_ca=True)
    other_key, other_cert = another_ca()
    csr = cards.export_csr(rt, issued.serial, "authentication")
    cards.import_certificate(
        rt, operator, issued.serial, "authentication", sign_csr(csr, other_key, other_cert)
    )
    (foreign,) = stored_certificates(rt, issued.card_id)
    assert foreign.issuer == other_cert.subject

    answer = status_by_fingerprint(rt, fingerprint(foreign))

    assert answer == {"status": "unknown", "fingerprint_sha256": fingerprint(foreign)}


def test_a_certificate_naming_our_ca_with_a_serial_it_never_issued_is_unknown(
    rt: Runtime, operator: Actor
) -> None:
    """Same issuer name, a fresh serial, signed by another key, stored on a real card the
    way PC/SC personalisation stores what a card management system wrote."""
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    ours = ca.load(rt).cert
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=Mallory"))
        .issuer_name(ours.subject)
        .public_key(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(ours.not_valid_after_utc)
        .sign(impostor_key, hashes.SHA256())
    )
    with rt.db.begin() as session:
        session.add(
            issuance.certificate_row(card.card_id, cx509.CertUsage.AUTHENTICATION, impostor)
        )

    assert status_by_fingerprint(rt, fingerprint(impostor))["status"] == "unknown"
    a.local_network(rt, operator)  # the status API is behind the ingress gate
    client = TestClient(create_app(rt), client=("127.0.0.1", 50000))
    answer = client.get(
        "/api/v1/certificates/status", params={"fingerprint": fingerprint(impostor)}
    )
    assert answer.status_code == 200
    assert answer.json() == {"status": "unknown", "fingerprint_sha256": fingerprint(impostor)}


def test_a_fingerprint_never_seen_is_unknown_and_a_malformed_one_invalid(rt: Runtime) -> None:
    _, cert = another_ca()
    assert status_by_fingerprint(rt, fingerprint(cert))["status"] == "unknown"
    for text in ("", "zz" * 32, "ab" * 31, "ab" * 33):
        with pytest.raises(InvalidInput, match="64 hex digits"):
            status_by_fingerprint(rt, text)


def test_cards_certified_by_a_replaced_ca_stay_good(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    ca.create(rt.data_dir, rt.master_key, common_name="cardvault CA 2", force=True)
    newer = f.active_card(rt, operator)
    for cert in stored_certificates(rt, card.card_id) + stored_certificates(rt, newer.card_id):
        assert status_by_fingerprint(rt, fingerprint(cert))["status"] == "good"
