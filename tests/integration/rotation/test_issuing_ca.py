"""Rotating the issuing CA (issue 20): new cards chain to the new CA, while the old CA keeps
re-signing its own CRL and answering OCSP for the cards it certified, checked with openssl."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from tests.support import factories as f
from tests.support import openssl_pki as rp
from tests.support.cli import Cli
from tests.support.live_server import serve_runtime

from cardvault.services.cards import issuance
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Certificate


def auth_cert(rt: Runtime, card_id: str, folder: Path) -> tuple[Path, x509.Certificate]:
    with rt.db() as session:
        row = session.scalar(
            select(Certificate).where(
                Certificate.card_id == card_id, Certificate.usage == "authentication"
            )
        )
        assert row is not None
        cert = x509.load_pem_x509_certificate(row.pem.encode())
    path = folder / f"{card_id}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert


def checks(ca_pem: Path, pem: Path, cert: x509.Certificate, folder: Path) -> str:
    crl = rp.crl_pem(rp.fetch(rp.crl_url(cert)), folder)
    verified = rp.verify_with_crl(ca_pem, pem, crl)
    asked = rp.ocsp_query(ca_pem, pem, rp.ocsp_url(cert))
    assert "Response verify OK" in asked.stderr, asked.stderr
    return verified.stdout + verified.stderr + asked.stdout


def test_after_a_ca_rotation_the_old_ca_still_signs_its_crl_and_ocsp(
    rt: Runtime, operator: Actor, cli: Cli, tmp_path: Path
) -> None:
    with serve_runtime(rt):
        f.org(rt, operator)
        old_card = f.active_card(rt, operator)
        old_ca = tmp_path / "old-ca.pem"
        old_ca.write_bytes(ca.export_pem(rt.data_dir))

        done = cli.run("--json", "ca", "rotate", "--common-name", "cardvault CA 2").ok().json
        assert done["old_key_id"] != done["new_key_id"]
        new_ca = tmp_path / "new-ca.pem"
        new_ca.write_bytes(ca.export_pem(rt.data_dir))
        assert new_ca.read_bytes() != old_ca.read_bytes()

        new_card = f.active_card(rt, operator)
        new_pem, new_cert = auth_cert(rt, new_card.card_id, tmp_path)
        assert "cardvault CA 2" in new_cert.issuer.rfc4514_string()
        said = checks(new_ca, new_pem, new_cert, tmp_path)
        assert f"{new_pem}: OK" in said
        assert ": good" in said

        old_pem, old_cert = auth_cert(rt, old_card.card_id, tmp_path)
        said = checks(old_ca, old_pem, old_cert, tmp_path)
        assert f"{old_pem}: OK" in said
        assert ": good" in said
        issuance.revoke_card(rt, operator, old_card.serial, reason="left", reason_code="superseded")
        said = checks(old_ca, old_pem, old_cert, tmp_path)  # re-signed by the old key
        assert "certificate revoked" in said
        assert ": revoked" in said

        retired = cli.run("--json", "ca", "retire-previous").ok().json
        assert retired["retired"] == []  # the old CA's other certificates are still valid
    with rt.db() as session:
        assert "rotation.ca_rotated" in set(session.scalars(select(AuditEvent.action)))
