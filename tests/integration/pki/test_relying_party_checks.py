"""A relying party that knows nothing of cardvault checks a card certificate the standard
way (issue 17): the CRL and OCSP URLs come from the certificate, and real ``openssl`` says
good before ``cardvault card revoke`` and revoked — with the reason and time — right after."""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from sqlalchemy import select
from tests.support import factories as f
from tests.support import openssl_pki as rp
from tests.support.cli import Cli
from tests.support.live_server import serve_runtime
from tests.support.pki import ec_root_ca

from cardvault.services.cards import issuance
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Certificate


def card_certificates(rt: Runtime, card_id: str) -> dict[str, x509.Certificate]:
    with rt.db() as session:
        rows = session.scalars(select(Certificate).where(Certificate.card_id == card_id))
        return {r.usage: x509.load_pem_x509_certificate(r.pem.encode()) for r in rows}


def write_pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_openssl_says_good_then_revoked_with_reason_after_card_revoke(
    rt: Runtime, operator: Actor, cli: Cli, tmp_path: Path
) -> None:
    with serve_runtime(rt) as url:
        f.org(rt, operator)
        card = f.active_card(rt, operator)
        certs = card_certificates(rt, card.card_id)
        auth = certs["authentication"]
        assert rp.crl_url(auth).startswith(f"{url}/pki/crl/")
        assert rp.ocsp_url(auth) == f"{url}/pki/ocsp"
        ca_pem = tmp_path / "ca.pem"
        ca_pem.write_bytes(
            x509.load_der_x509_certificate(rp.fetch(rp.ca_issuers_url(auth))).public_bytes(
                serialization.Encoding.PEM
            )
        )
        assert ca_pem.read_bytes() == ca.export_pem(rt.data_dir)
        auth_pem = write_pem(tmp_path / "auth.pem", auth)
        cc_pem = write_pem(tmp_path / "cc.pem", certs["content_commitment"])

        crl = rp.crl_pem(rp.fetch(rp.crl_url(auth)), tmp_path)
        for pem in (auth_pem, cc_pem):
            done = rp.verify_with_crl(ca_pem, pem, crl)
            assert done.returncode == 0, done.stdout + done.stderr
            assert ": OK" in done.stdout
            answer = rp.ocsp_query(ca_pem, pem, rp.ocsp_url(auth))
            assert answer.returncode == 0, answer.stderr
            assert f"{pem}: good" in answer.stdout
            assert "Response verify OK" in answer.stderr

        cli.run("card", "revoke", card.serial, "--reason", "lost", "--code", "keyCompromise").ok()

        crl = rp.crl_pem(rp.fetch(rp.crl_url(auth)), tmp_path)
        for pem in (auth_pem, cc_pem):
            done = rp.verify_with_crl(ca_pem, pem, crl)
            assert done.returncode != 0
            assert "certificate revoked" in done.stdout + done.stderr
            answer = rp.ocsp_query(ca_pem, pem, rp.ocsp_url(auth))
            assert f"{pem}: revoked" in answer.stdout, answer.stdout + answer.stderr
            assert "Reason: keyCompromise" in answer.stdout
            assert re.search(r"Revocation Time: \w{3} +\d+ [\d:]+ \d{4} GMT", answer.stdout)
        text = rp.openssl("crl", "-in", crl, "-noout", "-text", check=True).stdout
        assert "X509v3 CRL Number" in text
        assert "Next Update" in text
        assert text.count("Key Compromise") == 2


def test_the_crl_is_numbered_cached_and_conditional(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    with serve_runtime(rt):
        f.org(rt, operator)
        card = f.active_card(rt, operator)
        url = rp.crl_url(card_certificates(rt, card.card_id)["authentication"])
        with urllib.request.urlopen(url, timeout=10) as first:  # noqa: S310
            etag = first.headers["ETag"]
            assert first.headers["Content-Type"] == "application/pkix-crl"
            assert "max-age=" in first.headers["Cache-Control"]
            before = x509.load_der_x509_crl(first.read())
        again = urllib.request.Request(url, headers={"If-None-Match": etag})  # noqa: S310
        with pytest.raises(urllib.error.HTTPError) as not_modified:
            urllib.request.urlopen(again, timeout=10)  # noqa: S310
        assert not_modified.value.code == 304
        not_modified.value.close()
        f.org(rt, operator, "ORG2")
        f.issued_card(rt, operator, "ORG2")  # another card changes nothing on the CRL
        issuance.revoke_card(rt, operator, card.serial, reason="left", reason_code="superseded")
        after = x509.load_der_x509_crl(rp.fetch(url))
        number = x509.CRLNumber
        assert (
            after.extensions.get_extension_for_class(number).value.crl_number
            > before.extensions.get_extension_for_class(number).value.crl_number
        )
        assert len(after) == 2
        assert len(before) == 0
        assert after.next_update_utc is not None


def test_ocsp_answers_the_rfc_statuses_for_bad_input_never_a_500(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    with serve_runtime(rt) as url:
        f.org(rt, operator)
        card = f.active_card(rt, operator)
        auth = card_certificates(rt, card.card_id)["authentication"]

        def post(body: bytes) -> ocsp.OCSPResponse:
            request = urllib.request.Request(  # noqa: S310
                f"{url}/pki/ocsp",
                data=body,
                headers={"Content-Type": "application/ocsp-request"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                assert response.headers["Content-Type"] == "application/ocsp-response"
                return ocsp.load_der_ocsp_response(response.read())

        malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert post(b"not an OCSP request").response_status is malformed
        assert post(b"\x30" * (1024 * 1024)).response_status is malformed

        # another CA's certificate: this responder does not answer for that issuer
        other_key, other_ca = ec_root_ca("Someone Else", now=auth.not_valid_before_utc, days=2)
        other_ca_pem = write_pem(tmp_path / "other-ca.pem", other_ca)
        done = rp.ocsp_query(
            other_ca_pem, write_pem(tmp_path / "auth.pem", auth), f"{url}/pki/ocsp"
        )
        assert "unauthorized" in done.stdout + done.stderr
        del other_key

        # a serial this CA never issued: unknown, signed
        ca_pem = tmp_path / "ca.pem"
        ca_pem.write_bytes(ca.export_pem(rt.data_dir))
        done = rp.openssl(
            "ocsp",
            "-issuer",
            ca_pem,
            "-serial",
            "0x1234",
            "-url",
            f"{url}/pki/ocsp",
            "-CAfile",
            ca_pem,
        )
        assert "0x1234: unknown" in done.stdout, done.stdout + done.stderr
        assert "Response verify OK" in done.stderr

        # GET (RFC 6960 A.1) with a nonce echoed
        done = rp.ocsp_query(
            ca_pem, tmp_path / "auth.pem", f"{url}/pki/ocsp", "-reqout", str(tmp_path / "req.der")
        )
        assert ": good" in done.stdout
        encoded = urllib.parse.quote(base64.b64encode((tmp_path / "req.der").read_bytes()))
        answer = ocsp.load_der_ocsp_response(rp.fetch(f"{url}/pki/ocsp/{encoded}"))
        assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert any(isinstance(e.value, x509.OCSPNonce) for e in answer.extensions)
        bad = ocsp.load_der_ocsp_response(rp.fetch(f"{url}/pki/ocsp/%%%not-base64"))
        assert bad.response_status is malformed


def test_a_crl_that_missed_a_revocation_is_not_served(rt: Runtime, operator: Actor) -> None:
    """Re-signing after a change may fail (it is logged, the change stands); the next fetch
    then re-signs rather than serve a list without the revocation."""
    from datetime import timedelta

    from cardvault.crypto import x509 as cx509
    from cardvault.services.pki import crl as crls
    from cardvault.store.db import transaction

    f.org(rt, operator)
    card = f.active_card(rt, operator)
    first = crls.publish(rt)
    assert first is not None
    with transaction(rt.db) as session:  # as if the re-signing after this revocation failed
        for row in session.scalars(select(Certificate).where(Certificate.card_id == card.card_id)):
            row.status, row.revocation_reason = "revoked", "keyCompromise"
            row.revoked_at = rt.clock() + timedelta(seconds=2)
    key_id = cx509.ca_key_id(ca.load(rt).cert)
    served = crls.current(rt, key_id)
    assert served.number > first.number
    assert len(x509.load_der_x509_crl(served.der)) == 2


def test_a_rate_limited_ocsp_client_is_told_try_later_in_its_own_protocol(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    """OCSP clients read no HTTP 429: past the limit the responder answers tryLater (RFC
    6960 §2.3), which ``openssl ocsp`` names; the CRL URL keeps HTTP's own 429."""
    with serve_runtime(rt, rate_limits_enabled=True, rate_limit_status="3/1m") as url:
        f.org(rt, operator)
        card = f.active_card(rt, operator)
        auth = card_certificates(rt, card.card_id)["authentication"]
        ca_pem = tmp_path / "ca.pem"
        ca_pem.write_bytes(ca.export_pem(rt.data_dir))
        auth_pem = write_pem(tmp_path / "auth.pem", auth)
        said = [rp.ocsp_query(ca_pem, auth_pem, f"{url}/pki/ocsp") for _ in range(3)]
        assert all(": good" in done.stdout for done in said)
        done = rp.ocsp_query(ca_pem, auth_pem, f"{url}/pki/ocsp")
        assert ": good" not in done.stdout
        assert "trylater" in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
        with urllib.request.urlopen(f"{url}/pki/ocsp/AAAA", timeout=10) as response:  # noqa: S310
            assert response.status == 200
            assert int(response.headers["Retry-After"]) > 0
            refused = ocsp.load_der_ocsp_response(response.read())
        assert refused.response_status is ocsp.OCSPResponseStatus.TRY_LATER
        with pytest.raises(urllib.error.HTTPError) as crl_refused:
            rp.fetch(rp.crl_url(auth))
        crl_refused.value.close()
        assert crl_refused.value.code == 429
