"""Suspension (certificateHold) and lifting it, from the CLI and the vRA Manager; the vRA
Manager's revoke with a reason code. Relying parties check with real ``openssl``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from tests.support import auth as a
from tests.support import openssl_pki as rp
from tests.support import ra_web as w
from tests.support.cli import Cli
from tests.support.live_server import serve_runtime

from cardvault.errors import CardvaultError
from cardvault.services.pki import ca
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Certificate
from cardvault.web.errors import status_of


def auth_pem(rt: Runtime, card_id: str, folder: Path) -> tuple[Path, x509.Certificate]:
    with rt.db() as session:
        row = session.scalar(
            select(Certificate).where(
                Certificate.card_id == card_id, Certificate.usage == "authentication"
            )
        )
        assert row is not None
        cert = x509.load_pem_x509_certificate(row.pem.encode())
    path = folder / "auth.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert


class RelyingParty:
    """Fetches the CRL named in the certificate and asks its OCSP responder, with openssl."""

    def __init__(self, rt: Runtime, folder: Path, pem: Path, cert: x509.Certificate) -> None:
        self.folder, self.pem, self.cert = folder, pem, cert
        self.ca = folder / "ca.pem"
        self.ca.write_bytes(ca.export_pem(rt.data_dir))

    def crl_says(self) -> str:
        crl = rp.crl_pem(rp.fetch(rp.crl_url(self.cert)), self.folder)
        done = rp.verify_with_crl(self.ca, self.pem, crl)
        return done.stdout + done.stderr

    def ocsp_says(self) -> str:
        return rp.ocsp_query(self.ca, self.pem, rp.ocsp_url(self.cert)).stdout

    def status_api_says(self, base_url: str) -> str:
        """What cardvault's own JSON status API answers about the certificate."""
        fingerprint = self.cert.fingerprint(hashes.SHA256()).hex()
        url = f"{base_url}/api/v1/certificates/status?fingerprint={fingerprint}"
        answer = json.loads(rp.fetch(url))
        assert answer["fingerprint_sha256"] == fingerprint
        return str(answer["status"])


def test_suspend_and_resume_from_the_cli_and_a_suspended_card_cannot_sign_in(
    rt: Runtime, operator: Actor, cli: Cli, tmp_path: Path
) -> None:
    with serve_runtime(rt) as url:
        a.open_org(rt, operator)
        holder = a.holder(rt, operator)
        serial = holder.card.serial
        relying = RelyingParty(rt, tmp_path, *auth_pem(rt, holder.card.card_id, tmp_path))
        assert ": OK" in relying.crl_says()
        assert relying.status_api_says(url) == "good"
        engine = Engine(rt)
        assert a.login(engine, holder, code=holder.code()).session is not None

        done = cli.run("--json", "card", "suspend", serial, "--reason", "under investigation")
        assert done.ok().json == {"serial": serial, "status": "suspended"}
        assert "certificate revoked" in relying.crl_says()
        said = relying.ocsp_says()
        assert ": revoked" in said
        assert "Reason: certificateHold" in said
        assert relying.status_api_says(url) == "suspended"
        with pytest.raises(CardvaultError) as refused:
            a.login(engine, holder, code=holder.code(at=holder_time_later()))
        assert status_of(refused.value) in (401, 403, 423)
        again = cli.run("card", "suspend", serial, "--reason", "twice")
        assert again.returncode != 0  # already suspended: refused, nothing changed

        done = cli.run("--json", "card", "resume", serial, "--reason", "cleared")
        assert done.ok().json == {"serial": serial, "status": "active"}
        assert ": OK" in relying.crl_says()
        assert ": good" in relying.ocsp_says()
        assert relying.status_api_says(url) == "good"
        assert a.login(engine, holder, code=holder.code(at=holder_time_later())).session is not None


def holder_time_later(seconds: float = 30) -> float:
    """A TOTP code from the next time step (each code is accepted once)."""
    import time

    return time.time() + seconds


def test_the_vra_manager_suspends_resumes_and_revokes_with_a_reason(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    with serve_runtime(rt) as base_url:
        a.open_org(rt, operator, "ORGA")
        ra = w.ra_user(rt, operator, "ORGA")
        c = w.client(rt)
        w.sign_in(c, ra)
        holder = a.holder(rt, operator, "ORGA")
        relying = RelyingParty(rt, tmp_path, *auth_pem(rt, holder.card.card_id, tmp_path))
        url = f"/ra/persons/{holder.card.user_id}/card"
        person = c.get(f"/ra/persons/{holder.card.user_id}").text
        assert f"{url}/suspend" in person

        assert w.post(c, f"{url}/suspend", reason="").status_code == 422
        assert ": OK" in relying.crl_says()  # nothing changed
        assert w.post(c, f"{url}/suspend", reason="On leave").status_code == 303
        assert "Reason: certificateHold" in relying.ocsp_says()
        assert f"{url}/resume" in c.get(f"/ra/persons/{holder.card.user_id}").text
        assert w.post(c, f"{url}/resume", reason="Back").status_code == 303
        assert ": good" in relying.ocsp_says()

        page = c.get(f"{url}/revoke").text
        assert 'name="reason_code"' in page
        r = w.post(c, f"{url}/revoke", reason="Left", reason_code="notAReason")
        assert r.status_code == 422
        assert ": good" in relying.ocsp_says()
        r = w.post(c, f"{url}/revoke", reason="Left", reason_code="affiliationChanged")
        assert r.status_code == 303
        said = relying.ocsp_says()
        assert ": revoked" in said
        assert "Reason: affiliationChanged" in said
        assert "certificate revoked" in relying.crl_says()
        assert relying.status_api_says(base_url) == "revoked"
        with rt.db() as session:
            card = session.scalar(select(Card).where(Card.serial == holder.card.serial))
            assert card is not None
            assert card.status == "revoked"
        audit = c.get(f"/ra/audit?card={holder.card.serial}").text
        for phrase in ("Card suspended", "Card suspension lifted", "Card revoked"):
            assert phrase in audit
