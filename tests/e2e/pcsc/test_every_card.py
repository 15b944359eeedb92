"""Every card is a smart card (DESIGN §3.8 revised), end to end: a card issued with
``cardvault card issue`` (keys made in the service, never on a card) and enrolled is used
with unmodified OpenSC, OpenSSL and curl through ``cardvault-agent connector``, on SQLite and
PostgreSQL.

The organisation gives its cards a key-management key (``cardvault org set-policy``), so the
card also decrypts S/MIME mail encrypted to its encryption certificate (9D). What the desktop
shows names the card: the PKCS#11 token serial is the one the vRA Manager shows, and
yubico-piv-tool reads cardvault's version and the serial derived from the card serial.

The holder sets the card PIN when the connector first starts, changes it with
``cardvault-agent pin change``, blocks it with three wrong PINs and unblocks it by signing in
again. The keys the desktop uses are the card's issued keys: signatures verify with the
certificates the service issued.
"""

from __future__ import annotations

import json
import os
import pty
import re
import secrets
import select as io_select
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.support import factories as f
from tests.support import pcsc_stack as st
from tests.support.pcsc_stack import READER, run

import cardvault
from cardvault.crypto import x509 as cx509
from cardvault.domain.audit_actions import AuditAction
from cardvault.services.cards import enrolment, methods
from cardvault.services.piv.image import desktop_names, piv_serial
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor
from cardvault.store.models import AuditEvent, Card, Certificate

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]

PIN = "27182818"
NEW_PIN = "20250607"
UNBLOCKED_PIN = "31415926"


@dataclass
class InUse:
    service: st.Service
    agent: st.Agent
    holder: st.Person
    serial: str
    directory: Path
    connector: subprocess.Popen[bytes]
    log: Path


def _start_connector(agent: st.Agent, log: Path, stdin: str) -> subprocess.Popen[bytes]:
    """``cardvault-agent connector --pin-stdin``: the card PIN to set, if asked, on stdin."""
    st.wait_until_reader_free()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*agent.base(), "connector", "--poll", "1", "--pin-stdin"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    assert process.stdin is not None
    process.stdin.write(stdin.encode())
    process.stdin.close()
    return process


_SLOTS = {"authentication": "9a", "content_commitment": "9c", "key_management": "9d"}


def _write_certificates(service: st.Service, serial: str, directory: Path) -> None:
    """The card's certificates as the service issued them, and the CA's, for openssl."""
    with service.rt.db() as session:
        card_id = session.scalar(select(Card.id).where(Card.serial == serial))
        rows = session.scalars(select(Certificate).where(Certificate.card_id == card_id)).all()
        for row in rows:
            (directory / f"{_SLOTS[row.usage]}.crt").write_text(row.pem)
    ca_pem = cx509.certificate_to_pem(ca.load(service.rt).cert)
    (directory / "ca.pem").write_bytes(ca_pem)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def in_use(
    request: pytest.FixtureRequest,
    pcscd: None,
    key_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InUse]:
    scratch = tmp_path_factory.mktemp(f"every-card-{request.param}")
    with st.service_on(request.param, key_template, scratch) as service:
        yield from _issued_enrolled_inserted(service, scratch)


def _issued_enrolled_inserted(service: st.Service, scratch: Path) -> Iterator[InUse]:
    rt, operator = service.rt, Actor.operator("pcsc-test")
    st.create_ra(rt, operator)  # the organisation, which gives its cards an encryption key:
    st.run(*_cardvault(service), "org", "set-policy", st.ORG, '{"key_management": true}',
           env=service.env)  # fmt: skip
    person = st.create_holder(rt, operator)
    issued, _progress = json.JSONDecoder().raw_decode(  # stderr's progress line follows
        st.run(
            *_cardvault(service),
            "--json",
            "card",
            "issue",
            "--org",
            st.ORG,
            "--user-id",
            person.user_id,
            "--passcode-stdin",
            stdin=f.ISSUANCE_PASSCODE + "\n",
            env=service.env,
        )
    )
    serial = issued["serial"]
    enrolment.enrol(rt, operator, f.enrol_request(serial))
    totp = methods.add_totp(rt, operator, serial=serial, org_code=st.ORG)
    holder = st.Person(user_id=person.user_id, email=person.email, totp_secret=totp.secret)
    agent = st.Agent(service, scratch / "agent")
    agent.login(holder)
    directory = scratch / "files"
    directory.mkdir()
    _write_certificates(service, serial, directory)
    log = scratch / "connector.log"
    used = InUse(
        service=service,
        agent=agent,
        holder=holder,
        serial=serial,
        directory=directory,
        connector=_start_connector(agent, log, PIN + "\n"),
        log=log,
    )
    try:
        st.wait_for(st.card_present, timeout=30, what="the holder's card in the reader")
        yield used
    finally:
        st.stop(used.connector)  # the last one: a test may have started it again
        st.wait_for(lambda: not st.card_present(), timeout=10, what="the card to go")


def _cardvault(service: st.Service) -> list[str]:
    return [str(st.BIN / "cardvault"), "--data-dir", str(service.settings.data_dir)]


def test_the_connector_asked_for_the_first_card_pin(in_use: InUse) -> None:
    text = in_use.log.read_text()
    assert "no card PIN yet" in text
    assert f"Card {in_use.serial} is in the reader" in text


def test_pkcs11_lists_both_certificates_and_keys(in_use: InUse) -> None:
    assert "Personal Identity Verification Card" in run("opensc-tool", "--reader", READER, "-n")
    public = st.pkcs11("-O")
    assert public.count("Certificate Object") == 3  # 9A, 9C and the encryption key's 9D
    assert "Hana Holder" in public
    private = st.pkcs11("--login", "--pin", PIN, "-O", "--type", "privkey")
    assert private.count("Private Key Object") == 3
    keys = {
        found[1]: block
        for block in private.split("Private Key Object")[1:]
        if (found := re.search(r"ID:\s+(\w+)", block))
    }
    assert set(keys) == {"01", "02", "03"}
    assert "always authenticate" in keys["02"]
    assert "always authenticate" not in keys["01"] + keys["03"]
    assert "decrypt" in keys["03"]


def _verify(directory: Path, slot: str, message: Path, signature: Path) -> str:
    public = directory / f"{slot}-public.pem"
    public.write_text(
        run("openssl", "x509", "-in", str(directory / f"{slot}.crt"), "-pubkey", "-noout")
    )
    return run(
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(public),
        "-signature",
        str(signature),
        str(message),
    )


@pytest.mark.parametrize(("slot", "key_id"), [("9a", "01"), ("9c", "02")])
def test_signatures_with_the_issued_keys_verify(in_use: InUse, slot: str, key_id: str) -> None:
    message = in_use.directory / f"{slot}.txt"
    signature = in_use.directory / f"{slot}.sig"
    message.write_text(secrets.token_hex(16))
    st.pkcs11(
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--id",
        key_id,
        "-m",
        "SHA256-RSA-PKCS",
        "-i",
        str(message),
        "-o",
        str(signature),
    )
    assert "Verified OK" in _verify(in_use.directory, slot, message, signature)


def test_the_random_generator_answers(in_use: InUse) -> None:
    out = in_use.directory / "random.bin"
    st.pkcs11("--generate-random", "32", "-o", str(out))
    assert len(out.read_bytes()) == 32


def _typing_the_pin(args: list[str], pin: str, *, timeout: float = 60) -> str:
    """Run ``args`` on a terminal and type the PIN when it asks, as a person would: OpenSSL's
    pkcs11 engine asks for a PIN-always key's PIN on /dev/tty, not through -passin."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execvp(args[0], args)  # noqa: S606 (a tool of the test, no shell)
    output, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = io_select.select([terminal], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not typed and b"PIN" in output:
                os.write(terminal, pin.encode() + b"\n")
                typed = True
    finally:
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def test_an_smime_signature_with_the_card_verifies(in_use: InUse) -> None:
    directory = in_use.directory
    message, signed = directory / "letter.txt", directory / "letter.p7m"
    message.write_text("Dear colleague,\nthe results are attached.\n")
    asked = _typing_the_pin(
        [
            *("openssl", "cms", "-sign", "-engine", "pkcs11", "-keyform", "engine"),
            *("-inkey", st.key_uri("02", PIN), "-signer", str(directory / "9c.crt")),
            *("-in", str(message), "-out", str(signed), "-outform", "PEM", "-md", "sha256"),
            "-nodetach",
        ],
        PIN,
    )
    assert "PIN" in asked  # 9C: the PIN once more, for this signature
    verified = run(
        "openssl",
        "cms",
        "-verify",
        "-in",
        str(signed),
        "-inform",
        "PEM",
        "-CAfile",
        str(directory / "ca.pem"),
        "-purpose",
        "any",
    )
    assert "Verification successful" in verified
    assert "the results are attached" in verified


def test_tls_client_authentication_with_the_card(in_use: InUse, tmp_path: Path) -> None:
    directory = in_use.directory
    with st.tls_server(tmp_path, directory / "ca.pem") as server:
        page = server.fetch_with_card(directory / "9a.crt", PIN)
        assert "Client certificate" in page, page
    assert "Hana Holder" in page


def test_mail_encrypted_to_the_card_decrypts_with_its_9d_key(in_use: InUse) -> None:
    """S/MIME: ``openssl cms -encrypt`` to the encryption certificate, ``-decrypt`` with the
    card through OpenSC's PKCS#11 module (OpenSSL's pkcs11 engine); each use is audited."""
    directory = in_use.directory
    message, sealed, opened = (directory / name for name in ("note.txt", "note.p7m", "out.txt"))
    message.write_text("Results for the patient in bay 4: negative.\n")
    run(
        *("openssl", "cms", "-encrypt", "-aes256", "-in", str(message)),
        *("-out", str(sealed), "-outform", "PEM", str(directory / "9d.crt")),
    )
    assert "negative" not in sealed.read_text()
    run(
        *("openssl", "cms", "-decrypt", "-engine", "pkcs11", "-keyform", "engine"),
        *("-inkey", st.key_uri("03", PIN), "-recip", str(directory / "9d.crt")),
        *("-in", str(sealed), "-inform", "PEM", "-out", str(opened)),
    )
    assert opened.read_text() == message.read_text()
    with in_use.service.rt.db() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert AuditAction.CARD_DECRYPTED in actions


def test_the_token_serial_is_the_one_the_ra_sees(in_use: InUse) -> None:
    """OpenSC names the token by the CHUID's GUID, the card's UUID: its last 16 hex digits,
    which the vRA Manager shows next to the card serial."""
    with in_use.service.rt.db() as session:
        card_id = session.scalar(select(Card.id).where(Card.serial == in_use.serial))
        assert card_id is not None
        shown = desktop_names(session, card_id)
    assert shown is not None
    assert st.token_serial() == shown.token_serial == uuid.UUID(card_id).hex[-16:]


def test_yubico_piv_tool_reads_cardvaults_version_and_the_cards_serial(in_use: InUse) -> None:
    status = st.ykpiv("-a", "version", "-a", "status")
    assert f"Application version {cardvault.__version__} found" in status
    found = re.search(r"Serial Number:\s*(\d+)", status)
    assert found, status
    assert int(found[1]) == piv_serial(in_use.serial)
    assert "Slot 9d" in status


def test_pin_change_with_the_agent(in_use: InUse) -> None:
    weak = in_use.agent.run("pin", "change", "--pin-stdin", stdin=f"{PIN}\n123456\n", check=False)
    assert "straight up or down" in weak
    changed = in_use.agent.run("pin", "change", "--pin-stdin", stdin=f"{PIN}\n{NEW_PIN}\n")
    assert f"Card PIN of card {in_use.serial} changed" in changed
    assert "CKR_PIN_INCORRECT" in st.pkcs11("--login", "--pin", PIN, "-O", check=False)
    assert "Private Key Object" in st.pkcs11("--login", "--pin", NEW_PIN, "-O")


def test_a_blocked_pin_is_unblocked_by_signing_in_again(in_use: InUse) -> None:
    for _ in range(3):
        st.pkcs11("--login", "--pin", "11223344", "-O", check=False)
    assert "CKR_PIN_LOCKED" in st.pkcs11("--login", "--pin", NEW_PIN, "-O", check=False)
    refused = in_use.agent.run(
        "pin", "change", "--pin-stdin", stdin=f"{UNBLOCKED_PIN}\n", check=False
    )
    assert "blocked" in refused
    st.stop(in_use.connector)
    st.wait_for(lambda: not st.card_present(), timeout=10, what="the card to go")
    in_use.agent.run("logout")
    in_use.agent.login(in_use.holder, offset=30)
    unblocked = in_use.agent.run("pin", "change", "--pin-stdin", stdin=f"{UNBLOCKED_PIN}\n")
    assert "unblocked" in unblocked
    in_use.connector = _start_connector(in_use.agent, in_use.log, "")
    st.wait_for(st.card_present, timeout=30, what="the card back in the reader")
    assert "Private Key Object" in st.pkcs11("--login", "--pin", UNBLOCKED_PIN, "-O")
    with in_use.service.rt.db() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"piv.applet_built", "piv.pin_set", "piv.blocked", "piv.pin_unblocked"} <= actions
