"""The smart-card-logon profile as ``openssl x509 -text`` shows it, validity by organisation
policy, and renewal from both sides (issue 17): the RA certifies the card's keys again with
the AD names added since, the holder gets new keys in a signed-in session; old certificates
are revoked as superseded, and the holder's passcode and methods keep working."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import openssl_pki as rp
from tests.support.cli import Cli
from tests.support.live_server import live_server, serve_runtime
from tests.support.pcsc_stack import BIN, run

from cardvault.services.cards import methods
from cardvault.services.directory import registry
from cardvault.services.pki import ca, renewal
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Certificate

SID = "S-1-5-21-1004336348-1177238915-682003330-1105"


def valid_certs(rt: Runtime, card_id: str) -> dict[str, x509.Certificate]:
    with rt.db() as session:
        rows = session.scalars(
            select(Certificate).where(Certificate.card_id == card_id, Certificate.status == "valid")
        )
        return {r.usage: x509.load_pem_x509_certificate(r.pem.encode()) for r in rows}


def text_of(cert: x509.Certificate, path: Path) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return rp.openssl("x509", "-in", path, "-noout", "-text", check=True).stdout


def test_ra_renewal_adds_the_ad_names_and_the_profile_is_what_openssl_shows(
    rt: Runtime, operator: Actor, cli: Cli, tmp_path: Path
) -> None:
    rt.settings = rt.settings.model_copy(update={"certificate_policy_oid": "1.2.826.0.1.999.1"})
    with serve_runtime(rt) as url:
        f.org(rt, operator, policy={"certificate_days": 365, "renew_days": 20})
        card = f.active_card(rt, operator, email="jo.smith@hospital.example")
        before = valid_certs(rt, card.card_id)
        first = before["authentication"]
        assert first.not_valid_after_utc - first.not_valid_before_utc == timedelta(
            days=365, minutes=5
        )
        assert "UPN" not in text_of(first, tmp_path / "first.pem")  # no AD account yet

        methods.add_ad_account(
            rt,
            operator,
            serial=card.serial,
            org_code="ORG1",
            account=r"HOSPITAL.EXAMPLE\jsmith",
            sid=SID,
        )
        operator_cli = replace(
            cli,
            extra_env=(
                ("CARDVAULT_PKI_BASE_URL", url),
                ("CARDVAULT_CERTIFICATE_POLICY_OID", "1.2.826.0.1.999.1"),
            ),
        )
        done = operator_cli.run("--json", "card", "renew", card.serial).ok().json
        assert done["new_keys"] is False
        after = valid_certs(rt, card.card_id)
        auth = text_of(after["authentication"], tmp_path / "auth.pem")
        assert "TLS Web Client Authentication, Microsoft Smartcard Login" in auth
        assert "othername: UPN::jsmith@hospital.example" in auth
        assert "email:jo.smith@hospital.example" in auth
        assert "Digital Signature, Key Encipherment" in auth
        assert "Policy: 1.2.826.0.1.999.1" in auth
        assert f"URI:{url}/pki/crl/" in auth
        assert f"OCSP - URI:{url}/pki/ocsp" in auth
        assert f"CA Issuers - URI:{url}/pki/ca/" in auth
        assert "1.3.6.1.4.1.311.25.2:" in auth
        dump = rp.openssl(
            "asn1parse",
            "-in",
            tmp_path / "auth.pem",
            "-strparse",
            _sid_offset(tmp_path),
            check=True,
        ).stdout
        assert "1.3.6.1.4.1.311.25.2.1" in dump
        assert SID.encode().hex().upper() in dump.replace(":", "").upper() or SID in dump
        cc = text_of(after["content_commitment"], tmp_path / "cc.pem")
        assert "Non Repudiation" in cc
        assert "E-mail Protection" in cc
        assert "UPN" not in cc
        assert "Policy: 1.2.826.0.1.999.1" in cc
        # same keys, new serials; the old ones are superseded for relying parties
        for usage, old in before.items():
            assert old.public_key() == after[usage].public_key()
            assert old.serial_number != after[usage].serial_number
        ca_pem = tmp_path / "ca.pem"
        ca_pem.write_bytes(ca.export_pem(rt.data_dir))
        (tmp_path / "old.pem").write_bytes(first.public_bytes(serialization.Encoding.PEM))
        said = rp.ocsp_query(ca_pem, tmp_path / "old.pem", f"{url}/pki/ocsp").stdout
        assert "Reason: superseded" in said
        assert ": good" in rp.ocsp_query(ca_pem, tmp_path / "auth.pem", f"{url}/pki/ocsp").stdout


def _sid_offset(folder: Path) -> str:
    """Where the SID extension's value starts in the certificate (asn1parse's own offsets)."""
    lines = rp.openssl("asn1parse", "-in", folder / "auth.pem", check=True).stdout.splitlines()
    for i, line in enumerate(lines):
        if "1.3.6.1.4.1.311.25.2" in line:
            return lines[i + 1].split(":", 1)[0].strip()
    raise AssertionError("no SID extension")


def test_the_holder_renews_with_new_keys_and_keeps_passcode_and_methods(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    engine = Engine(rt)
    result = a.login(engine, holder, code=holder.code())
    assert result.session is not None
    before = valid_certs(rt, holder.card.card_id)
    renewed = renewal.renew_in_session(rt, a.client(), result.session.token, result.session_key)
    assert renewed.new_keys is True
    after = valid_certs(rt, holder.card.card_id)
    for usage in ("authentication", "content_commitment"):
        assert before[usage].public_key() != after[usage].public_key()
    with rt.db() as session:
        old = session.scalars(
            select(Certificate).where(
                Certificate.card_id == holder.card.card_id, Certificate.status == "revoked"
            )
        ).all()
        assert {r.revocation_reason for r in old} == {"superseded"}
        assert len(old) == 2
    # the same passcode and authenticator still sign in, and the new key signs
    import time

    again = a.login(engine, holder, code=holder.code(at=time.time() + 30))
    assert again.session is not None
    registry.get_org  # noqa: B018 (the organisation is untouched)


def test_the_agent_renews_over_the_session_channel(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    """``cardvault-agent renew`` is an in-session call: it travels on the session's channel
    (DESIGN §3.5 revised), so a channel key that is not the session's gets it refused."""
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    with live_server(rt) as url:

        def agent(*args: str, stdin: str = "", check: bool = True) -> str:
            base = [str(BIN / "cardvault-agent"), "--server", url, "--state-dir", str(tmp_path)]
            return run(*base, *args, stdin=stdin, check=check)

        agent("login", "--email", holder.email, "--passcode-stdin", "--totp", holder.code(),
              stdin=f.STRONG_PASSCODE + "\n")  # fmt: skip
        state_file = tmp_path / "session.json"
        saved = state_file.read_text()
        signed_in = json.loads(saved)
        assert signed_in["channel_id"]
        assert signed_in["channel_key"]
        before = valid_certs(rt, holder.card.card_id)
        stranger = base64.b64encode(bytes(32)).decode()
        state_file.write_text(json.dumps({**signed_in, "channel_key": stranger}))
        refused = agent("renew", check=False)
        assert "renewed" not in refused
        assert "decrypt" in refused.lower()
        unchanged = valid_certs(rt, holder.card.card_id)
        assert {u: c.serial_number for u, c in unchanged.items()} == {
            u: c.serial_number for u, c in before.items()
        }
        state_file.write_text(saved)
        out = agent("renew")
        assert f"Card {holder.card.serial} renewed" in out
    after = valid_certs(rt, holder.card.card_id)
    for usage in ("authentication", "content_commitment"):
        assert before[usage].public_key() != after[usage].public_key()


def test_the_ra_enters_the_sid_with_the_ad_account_and_renews(
    rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    from tests.support import ra_web as w

    from cardvault.store.models import AdAccount

    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, ra)
    card = f.active_card(rt, operator, "ORGA")
    url = f"/ra/persons/{card.user_id}/methods/ad"
    bad = w.post(c, url, account=r"HOSPITAL.EXAMPLE\jsmith", sid="S-1-5-oops")
    assert bad.status_code == 422
    assert "f-sid" in bad.text  # the error summary links to the SID field
    with rt.db() as session:
        assert session.scalar(select(AdAccount)) is None  # nothing stored
    good = w.post(c, url, account=r"HOSPITAL.EXAMPLE\jsmith", sid=SID)
    assert good.status_code == 303
    assert w.post(c, f"/ra/persons/{card.user_id}/card/renew").status_code == 303
    auth = text_of(valid_certs(rt, card.card_id)["authentication"], tmp_path / "a.pem")
    assert "othername: UPN::jsmith@hospital.example" in auth
    assert "1.3.6.1.4.1.311.25.2:" in auth
