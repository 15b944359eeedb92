"""``cardvault ca certify`` (issue 17): a key generated on a card (here with cryptography, as
a card would) is certified from the card's CSR or its public key; the certificate verifies
against ``cardvault ca export`` with openssl and replaces the card's earlier one, which
relying parties then see as superseded. A CSR whose signature does not verify is refused."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from tests.support import factories as f
from tests.support import openssl_pki as rp
from tests.support.cli import Cli

from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Certificate


def card_csr(key: rsa.RSAPrivateKey, path: Path) -> Path:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hana Holder")]))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


def test_ca_certify_from_a_csr_and_from_a_public_key(
    rt: Runtime, operator: Actor, cli: Cli, tmp_path: Path
) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    with rt.db() as session:
        old = session.scalar(
            select(Certificate).where(
                Certificate.card_id == card.card_id, Certificate.usage == "authentication"
            )
        )
        assert old is not None
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_text(cli.run("ca", "export", json_output=False).ok().stdout)

    key_9a = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = card_csr(key_9a, tmp_path / "9a.csr")
    out = tmp_path / "9a.crt"
    done = cli.run("ca", "certify", "--card", card.serial, "--csr", str(csr), "--out", str(out))
    assert done.ok().json["usage"] == "authentication"
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    assert cert.public_key() == key_9a.public_key()
    verified = rp.openssl("verify", "-CAfile", ca_pem, out)
    assert verified.returncode == 0, verified.stderr
    assert "Microsoft Smartcard Login" in rp.openssl("x509", "-in", out, "-noout", "-text").stdout

    key_9c = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "9c.pem"
    pub.write_bytes(
        key_9c.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    out_9c = tmp_path / "9c.crt"
    cli.run(
        "ca",
        "certify",
        "--card",
        card.serial,
        "--usage",
        "content_commitment",
        "--public-key",
        str(pub),
        "--out",
        str(out_9c),
    ).ok()
    assert rp.openssl("verify", "-CAfile", ca_pem, out_9c).returncode == 0
    assert "Non Repudiation" in rp.openssl("x509", "-in", out_9c, "-noout", "-text").stdout

    with rt.db() as session:
        rows = session.scalars(select(Certificate).where(Certificate.card_id == card.card_id))
        state = {(r.usage, r.status, r.revocation_reason) for r in rows}
    assert ("authentication", "revoked", "superseded") in state
    assert ("authentication", "valid", None) in state
    assert ("content_commitment", "valid", None) in state

    # a request that the key did not sign: refused, nothing recorded
    der = x509.load_pem_x509_csr(csr.read_bytes()).public_bytes(serialization.Encoding.DER)
    broken = der[:-5] + bytes([der[-5] ^ 0xFF]) + der[-4:]
    bad = tmp_path / "bad.csr"
    bad.write_bytes(
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(broken)
        + b"-----END CERTIFICATE REQUEST-----\n"
    )
    refused = cli.run("ca", "certify", "--card", card.serial, "--csr", str(bad))
    assert refused.returncode != 0
    assert refused.error["code"] == "invalid_input"
    with rt.db() as session:
        count = len(
            session.scalars(select(Certificate).where(Certificate.card_id == card.card_id)).all()
        )
    assert count == 4
