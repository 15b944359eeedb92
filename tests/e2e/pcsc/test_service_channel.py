"""The PC/SC channel end to end: ``cardvault serve``, ``cardvault-agent connector``, pcscd, and
unmodified yubico-piv-tool, OpenSC, OpenSSL and curl (DESIGN §3.8), on SQLite and PostgreSQL.

Issuance: an RA's connector inserts a blank card; yubico-piv-tool personalises it (default
management key, then a new one; keys in 9A and 9C; a certificate from the CA via a CSR signed
by the card for 9A, a self-signed one for 9C; PIN and PUK); the service then holds an issued
card. Use: after enrolment the holder signs in, the connector inserts the card, and smartcard
software signs with it and authenticates a TLS client with it; logout takes it out.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from tests.support import factories as f
from tests.support import pcsc_stack as st
from tests.support.pcsc_stack import READER, run

from cardvault.services.cards import enrolment, methods
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor
from cardvault.store.models import AuditEvent, Card

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]

NEW_KEY = "5f1e8a3c7b9d2e4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b"
PIN = "31415926"
PUK = "27182818"


@dataclass
class Issued:
    stack: Stack
    serial: str
    directory: Path
    log: str

    def cert(self, slot: str) -> Path:
        return self.directory / f"{slot}.crt"


@dataclass
class Stack:
    service: st.Service
    ra: st.Person
    holder: st.Person
    ra_agent: st.Agent
    holder_agent: st.Agent
    scratch: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest,
    pcscd: None,
    key_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    scratch = tmp_path_factory.mktemp(f"pcsc-{request.param}")
    with st.service_on(request.param, key_template, scratch) as service:
        operator = Actor.operator("pcsc-test")
        yield Stack(
            service=service,
            ra=st.create_ra(service.rt, operator),
            holder=st.create_holder(service.rt, operator),
            ra_agent=st.Agent(service, scratch / "ra-agent"),
            holder_agent=st.Agent(service, scratch / "holder-agent"),
            scratch=scratch,
        )


# -- issuance ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def issued(stack: Stack) -> Iterator[Issued]:
    """An RA issues the card with yubico-piv-tool through the connector's blank card."""
    stack.ra_agent.login(stack.ra, "--ra", "--organisation", st.ORG, "--role", "ra_agent")
    log = stack.scratch / "ra-connector.log"
    connector = stack.ra_agent.connector(
        "--issue-for", stack.holder.user_id, "--org", st.ORG, log=log
    )
    try:
        st.wait_for(st.card_present, timeout=30, what="the blank card in the reader")
        st.wait_for(lambda: "Blank card CV" in log.read_text(), timeout=10, what="its serial")
        blank = re.search(r"Blank card (CV\w+)", log.read_text())
        assert blank
        directory = stack.scratch / "issuance"
        directory.mkdir()
        st.personalise(stack.service, directory, serial=blank[1], new_key=NEW_KEY, pin=PIN, puk=PUK)
        st.wait_for(lambda: "is issued" in log.read_text(), timeout=10, what="issued")
    finally:
        code = st.stop(connector)
    text = log.read_text()
    assert code == 0, text
    serial = re.search(r"Blank card (CV\w+)", text)
    assert serial, text
    st.wait_for(lambda: not st.card_present(), timeout=10, what="the card to leave the reader")
    return Issued(stack=stack, serial=serial[1], directory=directory, log=text)


def test_the_connector_showed_the_issuance_steps(issued: Issued) -> None:
    assert "Still to do: change the management key; generate a key in 9a" in issued.log
    assert f"Card {issued.serial} is issued." in issued.log
    assert f"Card {issued.serial} removed from the reader: stopped." in issued.log


def test_the_ra_sees_the_issued_card(issued: Issued) -> None:
    agent = issued.stack.ra_agent
    token = _token(agent)
    shown = httpx.get(
        f"{agent.service.url}/api/v1/ra/cards/{issued.serial}",
        headers={"Authorization": f"Bearer {token}"},
        verify=agent.service.tls(),
    ).json()
    assert shown["card"]["status"] == "issued"
    assert shown["holder"]["user_id"] == issued.stack.holder.user_id
    usages = {c["usage"]: c for c in shown["certificates"]}
    assert set(usages) == {"authentication", "content_commitment"}
    assert (
        usages["authentication"]["issuer"]
        == ca.load(agent.service.rt).cert.subject.rfc4514_string()
    )
    assert usages["content_commitment"]["subject"] == "CN=Hana Holder 9c"


def _token(agent: st.Agent) -> str:
    return str(json.loads((agent.state_dir / "session.json").read_text())["token"])


def test_the_keys_are_sealed_under_the_issuance_pin(issued: Issued) -> None:
    rt = issued.stack.service.rt
    with pytest.raises(Exception, match="passcode"):
        enrolment.enrol(
            rt, Actor.operator("t"), f.enrol_request(issued.serial, issuance_passcode="123456")
        )


def test_the_issuance_is_in_the_audit_trail(issued: Issued) -> None:
    with issued.stack.service.rt.db() as session:
        card_id = session.scalar(select(Card.id).where(Card.serial == issued.serial))
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.card_id == card_id))
        )
    assert actions[0] == "card.issuance_started"
    assert "piv.management_key_changed" in actions
    assert actions.count("piv.key_generated") == 2
    assert actions.count("card.issued") == 1
    assert "card.signed" in actions  # the CSR and the self-signed certificate


# -- use -----------------------------------------------------------------------------------------


@dataclass
class InUse:
    issued: Issued
    connector: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def in_use(issued: Issued) -> Iterator[InUse]:
    """Enrolment (the PIN as issuance passcode), TOTP, sign-in, and the card in the reader."""
    stack = issued.stack
    rt, operator = stack.service.rt, Actor.operator("pcsc-test")
    enrolment.enrol(rt, operator, f.enrol_request(issued.serial, issuance_passcode=PIN))
    totp = methods.add_totp(rt, operator, serial=issued.serial, org_code=st.ORG)
    holder = st.Person(
        user_id=stack.holder.user_id, email=stack.holder.email, totp_secret=totp.secret
    )
    stack.holder_agent.login(holder)
    log = stack.scratch / "holder-connector.log"
    connector = stack.holder_agent.connector(log=log)
    try:
        st.wait_for(st.card_present, timeout=30, what="the holder's card in the reader")
        yield InUse(issued=issued, connector=connector, log=log)
    finally:
        st.stop(connector)
        st.wait_for(lambda: not st.card_present(), timeout=10, what="the card to go")


def test_opensc_recognises_a_piv_card(in_use: InUse) -> None:
    assert "Personal Identity Verification Card" in run("opensc-tool", "--reader", READER, "--name")


def test_pkcs11_lists_both_certificates_and_keys(in_use: InUse) -> None:
    public = st.pkcs11("-O")
    assert public.count("Certificate Object") == 2
    assert "CN=Hana Holder" in public
    private = st.pkcs11("--login", "--pin", PIN, "-O", "--type", "privkey")
    assert private.count("Private Key Object") == 2
    key_9c = private.split("ID:          02")[0].rsplit("Private Key Object", 1)[1]
    assert "always authenticate" in key_9c


def test_a_9a_signature_verifies_with_the_certificate(in_use: InUse) -> None:
    directory = in_use.issued.directory
    message, signature = directory / "login.txt", directory / "login.sig"
    message.write_text(secrets.token_hex(16))
    st.pkcs11(
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--id",
        "01",
        "-m",
        "SHA256-RSA-PKCS",
        "-i",
        str(message),
        "-o",
        str(signature),
    )
    public = _public_key(in_use.issued.cert("9a"), directory / "9a-public.pem")
    verified = run(
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(public),
        "-signature",
        str(signature),
        str(message),
    )
    assert "Verified OK" in verified


def test_a_9c_signature_verifies_with_the_certificate(in_use: InUse) -> None:
    directory = in_use.issued.directory
    message, signature = directory / "document.txt", directory / "document.sig"
    message.write_text("a prescription\n")
    st.pkcs11(
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--id",
        "02",
        "-m",
        "ECDSA-SHA256",
        "--signature-format",
        "openssl",
        "-i",
        str(message),
        "-o",
        str(signature),
    )
    public = _public_key(in_use.issued.cert("9c"), directory / "9c-public.pem")
    verified = run(
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(public),
        "-signature",
        str(signature),
        str(message),
    )
    assert "Verified OK" in verified


def _public_key(cert: Path, out: Path) -> Path:
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    out.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return out


def _status_words(output: str) -> list[tuple[str, str]]:
    found = re.finditer(r"SW1=0x([0-9a-f]{2}), SW2=0x([0-9a-f]{2})", output)
    return [(match[1], match[2]) for match in found]


def test_9c_asks_for_the_pin_before_every_signature(in_use: InUse) -> None:
    pin = PIN.encode().hex()
    verify = f"00:20:00:80:08:{':'.join(pin[i : i + 2] for i in range(0, len(pin), 2))}"
    sign = "00:87:11:9C:26:7C:24:82:00:81:20:" + ":".join(["5A"] * 32)
    output = run(
        "opensc-tool",
        "--reader",
        READER,
        "-s",
        verify,
        "-s",
        sign,
        "-s",
        sign,
        "-s",
        verify,
        "-s",
        sign,
    )
    assert _status_words(output) == [
        ("90", "00"),
        ("90", "00"),
        ("69", "82"),
        ("90", "00"),
        ("90", "00"),
    ]


def test_a_wrong_pin_is_refused_counted_and_audited(in_use: InUse) -> None:
    wrong = st.pkcs11("--login", "--pin", "11112222", "-O", check=False)
    assert "CKR_PIN_INCORRECT" in wrong
    st.pkcs11("--login", "--pin", PIN, "-O")
    with in_use.issued.stack.service.rt.db() as session:
        reasons = list(
            session.scalars(select(AuditEvent.reason).where(AuditEvent.action == "piv.verify"))
        )
    assert "incorrect card PIN" in reasons


def test_card_administration_is_refused_to_the_holder(in_use: InUse) -> None:
    output = st.ykpiv(f"--key={NEW_KEY}", "-a", "generate", "-s", "9e", check=False)
    assert "authentication" in output.lower()


def fetch_crl(issued: Issued, folder: Path) -> Path:
    """The CRL named in the 9A certificate, as a relying party fetches it (PEM for openssl)."""
    cert = x509.load_pem_x509_certificate(issued.cert("9a").read_bytes())
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    names = points[0].full_name
    assert names is not None
    path = urlsplit(str(names[0].value)).path
    assert path.startswith("/pki/crl/")
    service = issued.stack.service
    der = httpx.get(service.url + path, verify=service.tls()).raise_for_status().content
    (folder / "crl.der").write_bytes(der)
    run(
        "openssl",
        "crl",
        "-inform",
        "DER",
        "-in",
        str(folder / "crl.der"),
        "-out",
        str(folder / "crl.pem"),
    )
    return folder / "crl.pem"


def test_tls_client_authentication_with_the_card(in_use: InUse, tmp_path: Path) -> None:
    """openssl s_server trusts only the issuing CA, requires a client certificate and checks
    cardvault's CRL; curl authenticates with the 9A key through OpenSSL's pkcs11 engine and
    OpenSC."""
    directory = in_use.issued.directory
    crl = fetch_crl(in_use.issued, tmp_path)
    with st.tls_server(tmp_path, directory / "ca.pem", crl=crl) as server:
        page = server.fetch_with_card(in_use.issued.cert("9a"), PIN)
        refused = server.fetch(check=False)
        assert "Client certificate" in page, page
    assert "CN=Hana Holder" in page
    assert "Client certificate" not in refused


def test_logout_takes_the_card_out_of_the_reader(in_use: InUse) -> None:
    in_use.issued.stack.holder_agent.run("logout")
    st.wait_for(lambda: not st.card_present(), timeout=10, what="the card to leave the reader")
    assert in_use.connector.wait(timeout=10) == 0
    assert "removed from the reader: you signed out" in in_use.log.read_text()


def test_revocation_reaches_relying_parties_and_ends_the_card(
    issued: Issued, tmp_path: Path
) -> None:
    """`cardvault card revoke`: the CRL and OCSP say revoked for the certificate the CA gave
    the PC/SC-personalised card. (A TLS handshake with the card is no longer possible at all:
    revocation destroys its keys, and ends the session that put it in the reader.)"""
    service = issued.stack.service
    service.cardvault(
        "card", "revoke", issued.serial, "--reason", "lost", "--code", "keyCompromise"
    )
    crl = fetch_crl(issued, tmp_path)
    ca_pem = issued.directory / "ca.pem"
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-crl_check",
            "-CAfile",
            str(ca_pem),
            "-CRLfile",
            str(crl),
            str(issued.cert("9a")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "certificate revoked" in done.stdout + done.stderr
