"""The issuing CA's key in the HSM (issue 17): made in a SoftHSM2 token or moved there from
its sealed file, it signs card certificates, CRLs and the OCSP responder's certificate
through PKCS#11, and real ``openssl`` checks the results as a relying party would."""

from __future__ import annotations

from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, ObjectClass
from sqlalchemy import select
from tests.support import factories as f
from tests.support import openssl_pki as rp
from tests.support import softhsm
from tests.support.cli import Cli
from tests.support.live_server import serve_runtime

from cardvault.errors import CardvaultError
from cardvault.services.cards import issuance
from cardvault.services.pki import ca, content_signer
from cardvault.services.system.runtime import Actor, Runtime, hsm_config
from cardvault.store.models import Certificate


@pytest.fixture
def hsm_rt(rt: Runtime, hsm: softhsm.SoftHsm) -> Runtime:
    """The test's runtime (local master key) with the PKCS#11 settings of the test token."""
    rt.settings = rt.settings.model_copy(
        update={"pkcs11_module": hsm.module, "pkcs11_token_label": hsm.token, "pkcs11_pin": hsm.pin}
    )
    return rt


def token_private_key(hsm: softhsm.SoftHsm, label: str) -> dict[Attribute, object]:
    token = pkcs11.lib(str(hsm.module)).get_token(token_label=hsm.token)
    try:
        session = token.open(user_pin=hsm.pin)
    except pkcs11.exceptions.UserAlreadyLoggedIn:  # the service's session holds the login
        session = token.open()
    with session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        return {a: key[a] for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.SIGN)}


def auth_certificate(rt: Runtime, card_id: str, folder: Path) -> tuple[Path, x509.Certificate]:
    with rt.db() as session:
        row = session.scalar(
            select(Certificate).where(
                Certificate.card_id == card_id,
                Certificate.usage == "authentication",
                Certificate.status == "valid",
            )
        )
        assert row is not None
        cert = x509.load_pem_x509_certificate(row.pem.encode())
    path = folder / f"auth-{card_id}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert


def relying_party_says(rt: Runtime, pem: Path, cert: x509.Certificate, folder: Path) -> str:
    """openssl verify -crl_check with the CRL from the certificate's URL, then openssl ocsp
    (which checks the responder's certificate against the CA)."""
    ca_pem = folder / "ca.pem"
    ca_pem.write_bytes(ca.export_pem(rt.data_dir))
    crl = rp.crl_pem(rp.fetch(rp.crl_url(cert)), folder)
    checked = rp.verify_with_crl(ca_pem, pem, crl)
    asked = rp.ocsp_query(ca_pem, pem, rp.ocsp_url(cert))
    assert "Response verify OK" in asked.stderr, asked.stderr
    return checked.stdout + checked.stderr + asked.stdout


def test_a_ca_made_in_the_hsm_signs_certificates_crls_and_ocsp_through_pkcs11(
    hsm_rt: Runtime, hsm: softhsm.SoftHsm, operator: Actor, tmp_path: Path
) -> None:
    rt, label = hsm_rt, softhsm.key_label()
    issuer = ca.create(
        rt.data_dir,
        rt.master_key,
        common_name="cardvault HSM CA",
        force=True,
        hsm=hsm_config(rt.settings, key_label=label),
    )
    assert issuer.in_hsm
    assert not (ca.ca_dir(rt.data_dir) / "ca-key.sealed").exists()
    attrs = token_private_key(hsm, label)
    assert attrs == {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True}
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(ca.export_pem(rt.data_dir))
    text = rp.openssl("x509", "-in", ca_pem, "-noout", "-text", check=True).stdout
    assert "CA:TRUE" in text
    rp.openssl("verify", "-CAfile", ca_pem, ca_pem, check=True)  # self-signed by the token

    with serve_runtime(rt):
        f.org(rt, operator)
        card = f.active_card(rt, operator)
        pem, cert = auth_certificate(rt, card.card_id, tmp_path)
        said = relying_party_says(rt, pem, cert, tmp_path)
        assert f"{pem}: OK" in said
        assert ": good" in said

        issuance.revoke_card(rt, operator, card.serial, reason="lost", reason_code="keyCompromise")
        said = relying_party_says(rt, pem, cert, tmp_path)
        assert "certificate revoked" in said
        assert ": revoked" in said
        assert "Reason: keyCompromise" in said


def test_an_operator_moves_the_sealed_ca_key_into_the_hsm_and_issued_cards_still_verify(
    hsm_rt: Runtime, hsm: softhsm.SoftHsm, operator: Actor, tmp_path: Path, database_url: str
) -> None:
    rt, label = hsm_rt, softhsm.key_label()
    cli = Cli(
        data_dir=rt.data_dir,
        database_url=database_url,
        extra_env=(
            ("CARDVAULT_PKCS11_MODULE", str(hsm.module)),
            ("CARDVAULT_PKCS11_TOKEN_LABEL", hsm.token),
            ("CARDVAULT_PKCS11_PIN", hsm.pin),
        ),
    )
    with serve_runtime(rt):
        f.org(rt, operator)
        before = f.active_card(rt, operator)  # signed with the sealed key
        ca_before = ca.export_pem(rt.data_dir)
        done = cli.run("--json", "ca", "move-to-hsm", "--key-label", label).ok()
        assert done.json["in_hsm"] is True
        assert not (ca.ca_dir(rt.data_dir) / "ca-key.sealed").exists()
        assert token_private_key(hsm, label)[Attribute.EXTRACTABLE] is False
        assert ca.export_pem(rt.data_dir) == ca_before  # the same CA, its key elsewhere
        again = cli.run("--json", "ca", "move-to-hsm", "--key-label", label)
        assert again.returncode != 0
        assert "already in the HSM" in again.stderr
        assert ca.load(rt).in_hsm

        after = f.active_card(rt, operator)  # issued through PKCS#11
        for card in (before, after):
            pem, cert = auth_certificate(rt, card.card_id, tmp_path)
            said = relying_party_says(rt, pem, cert, tmp_path)
            assert f"{pem}: OK" in said
            assert ": good" in said
        issuance.revoke_card(rt, operator, before.serial, reason="left")
        pem, cert = auth_certificate_any(rt, before.card_id, tmp_path)
        assert "certificate revoked" in relying_party_says(rt, pem, cert, tmp_path)


def auth_certificate_any(rt: Runtime, card_id: str, folder: Path) -> tuple[Path, x509.Certificate]:
    with rt.db() as session:
        row = session.scalar(
            select(Certificate).where(
                Certificate.card_id == card_id, Certificate.usage == "authentication"
            )
        )
        assert row is not None
        cert = x509.load_pem_x509_certificate(row.pem.encode())
    path = folder / "revoked.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert


def test_a_ca_key_the_token_does_not_hold_is_refused_with_a_clear_error(
    hsm_rt: Runtime, tmp_path: Path
) -> None:
    rt = hsm_rt
    ca.create(
        rt.data_dir,
        rt.master_key,
        common_name="cardvault HSM CA",
        force=True,
        hsm=hsm_config(rt.settings, key_label=softhsm.key_label()),
    )
    description = ca.ca_dir(rt.data_dir) / "ca-key.pkcs11.json"
    description.write_text(description.read_text().replace("test-", "gone-"))
    with pytest.raises(CardvaultError, match="no private key labelled"):
        ca.load(rt)
    rt.settings = rt.settings.model_copy(update={"pkcs11_module": None})
    with pytest.raises(CardvaultError, match="CARDVAULT_PKCS11_MODULE"):
        ca.load(rt)


def test_the_piv_content_signer_is_certified_by_a_ca_whose_key_is_in_the_hsm(
    hsm_rt: Runtime, tmp_path: Path
) -> None:
    # The CHUID of every card is signed by a content signer the CA certifies (issue 18);
    # with the CA key in the token, that certificate is signed through PKCS#11 too.
    rt = hsm_rt
    ca.create(
        rt.data_dir,
        rt.master_key,
        common_name="cardvault HSM CA",
        force=True,
        hsm=hsm_config(rt.settings, key_label=softhsm.key_label()),
    )
    signer = content_signer.load_or_create(rt)
    ca_pem, signer_pem = tmp_path / "ca.pem", tmp_path / "signer.pem"
    ca_pem.write_bytes(ca.export_pem(rt.data_dir))
    signer_pem.write_bytes(signer.cert.public_bytes(serialization.Encoding.PEM))
    assert (
        rp.openssl("verify", "-CAfile", ca_pem, signer_pem, check=True)
        .stdout.strip()
        .endswith("OK")
    )
